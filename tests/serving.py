"""`excon serve` in a process of its own, for the tests whose behaviour is the server's."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from kb.publish.auth import hash_password
from tests.postgres import free_port

PASSWORD = "correct horse"


class Server:
    """`excon serve` on a free port, with an HTTP client that keeps its cookies."""

    def __init__(self, db: Path, workers: int = 1, args: tuple[str, ...] = (),
                 credentials: Path | None = None) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "DATASETTE_SECRET"}
        command = [sys.executable, "-m", "kb.cli", "serve", "--db", str(db), "--port",
                   str(self.port), "--workers", str(workers), *args]
        if credentials is None:
            env["EXCON_CREDENTIALS"] = f"analyst:{hash_password(PASSWORD)}"
        else:
            env.pop("EXCON_CREDENTIALS", None)
            command += ["--credentials", str(credentials)]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.jar = http.cookiejar.CookieJar()
        self.opener = self.client(self.jar)
        self.wait_until(lambda: self.get("/")[0] == 200)

    @staticmethod
    def client(jar: http.cookiejar.CookieJar) -> Any:
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                           NoRedirect)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, path: str, data: bytes | None = None,
                headers: dict[str, str] | None = None,
                opener: Any = None) -> tuple[int, dict[str, str], str]:
        """Status, headers (lower-case names; repeated ones joined by newlines) and body."""
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with (opener or self.opener).open(request, timeout=30) as r:
                return r.status, _headers(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, _headers(e.headers), e.read().decode()
        except OSError:
            return 0, {}, ""

    def get(self, path: str, data: bytes | None = None) -> tuple[int, str]:
        status, _, body = self.request(path, data)
        return status, body

    def wait_until(self, ready: Any, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            assert time.monotonic() < deadline, "the server did not get there in time"
            time.sleep(0.2)

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def csrf_token(self, opener: Any = None) -> str:
        status, _, form = self.request("/-/login", opener=opener)
        assert status == 200
        token = re.search(r'name="csrftoken" value="([^"]+)"', form)
        assert token, form[:500]
        return token.group(1)

    def login(self, user: str = "analyst", password: str = PASSWORD,
              opener: Any = None, token: str | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """Post the login form (with `token`, the CSRF token `opener` already has, or a new
        one)."""
        fields = {"username": user, "password": password,
                  "csrftoken": token or self.csrf_token(opener)}
        return self.request("/-/login", urllib.parse.urlencode(fields).encode(),
                            headers=headers, opener=opener)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=30)


def _headers(message: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in message.items():
        key = key.lower()
        out[key] = f"{out[key]}\n{value}" if key in out else value
    return out
