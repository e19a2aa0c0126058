"""The deployment of docs/deploy.md, tried as written: Debian's nginx with a throw-away
certificate in front of `excon serve --https-proxy`, configured from deploy/nginx.conf. Over
HTTPS the session cookie is Secure and HSTS is sent; failed logins count against the client's
own address as the proxy forwards it, never the proxy's or one the client claims; and a
request that skips the proxy cannot claim another address either."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kb.build import build
from kb.inputs.demo import generate, write
from kb.publish.auth import hash_password
from tests.conftest import ROOT, RULEBOOKS
from tests.postgres import free_port

NGINX = "/usr/sbin/nginx"
PASSWORD = "a long analyst passphrase"


def _nginx_conf(folder: Path, https_port: int, app_port: int) -> str:
    """deploy/nginx.conf's server, on test ports and a throw-away certificate, inside the
    top-level settings a Debian nginx.conf has (here: files in the test's folder)."""
    site = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    site = site.split("server {\n    listen 80;")[0]  # the HTTPS server only
    site = (site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
            .replace("127.0.0.1:8001", f"127.0.0.1:{app_port}")
            .replace("/etc/ssl/certs/excon.pem", str(folder / "cert.pem"))
            .replace("/etc/ssl/private/excon.key", str(folder / "key.pem")))
    temp = "".join(f"    {kind}_temp_path {folder / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'};\nevents {{ worker_connections 64; }}\n"
            f"http {{\n    access_log {folder / 'access.log'};\n{temp}{site}}}\n")


def _wait_for(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, verify=False, timeout=2)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    assert Path(NGINX).exists(), "Debian's nginx is missing: run `make system-deps`"
    folder = tmp_path_factory.mktemp("deploy")
    write(generate(300, 2, [RULEBOOKS]), folder / "demo")
    db = folder / "kb.db"
    build(db, [RULEBOOKS], *(folder / "demo" / f for f in
                             ("declarations.csv", "licences.csv", "parties.csv")))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    app_port, https_port = free_port(), free_port()
    (folder / "nginx.conf").write_text(_nginx_conf(folder, https_port, app_port),
                                       encoding="utf-8")
    sessions = folder / "sessions.db"
    env = dict(os.environ, EXCON_CREDENTIALS=f"analyst:{hash_password(PASSWORD)}")
    app = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--db", str(db),
                            "--host", "127.0.0.1", "--port", str(app_port), "--workers", "1",
                            "--sessions", str(sessions), "--https-proxy",
                            "--proxy-ips", "127.0.0.2"],
                           env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen([NGINX, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(f"http://127.0.0.1:{app_port}/", app, "excon serve")
        _wait_for(f"https://127.0.0.1:{https_port}/", proxy, "nginx")
        yield {"https": f"https://127.0.0.1:{https_port}",
               "direct": f"http://127.0.0.1:{app_port}", "sessions": sessions}
    finally:
        for p in (proxy, app):
            p.terminate()
            p.wait(timeout=10)


def _login(client: httpx.Client, base: str, password: str,
           headers: dict[str, str] | None = None) -> httpx.Response:
    page = client.get(f"{base}/-/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    # the cookies as a browser sends them back (over plain HTTP a Secure cookie would not be)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return client.post(f"{base}/-/login",
                       data={"username": "analyst", "password": password,
                             "csrftoken": token.group(1)},
                       headers={"Cookie": cookie, **(headers or {})})


def _failed_addresses(sessions: Path) -> set[str]:
    with sqlite3.connect(sessions) as conn:
        return {k.split(":", 1)[1] for (k,) in conn.execute(
            "SELECT key FROM login_failures WHERE key LIKE 'address:%'")}


def test_https_through_nginx_sends_hsts_and_secure_cookies(
        deployed: dict[str, object]) -> None:
    base = str(deployed["https"])
    with httpx.Client(verify=False) as client:
        home = client.get(base + "/")
        assert home.status_code == 200
        assert "max-age=" in home.headers.get("strict-transport-security", "")
        done = _login(client, base, PASSWORD)
        assert done.status_code == 302, done.text[:300]
        cookies = done.headers.get_list("set-cookie")
        session = [c for c in cookies if "HttpOnly" in c and "csrf" not in c.lower()]
        assert session and all("Secure" in c for c in cookies), cookies


def test_failed_logins_count_against_the_client_the_proxy_names(
        deployed: dict[str, object]) -> None:
    base, sessions = str(deployed["https"]), Path(str(deployed["sessions"]))
    with httpx.Client(verify=False) as client:
        # a client behind nginx that claims another address: nginx replaces the header
        wrong = _login(client, base, "wrong", {"X-Forwarded-For": "203.0.113.9"})
        assert wrong.status_code in (200, 401, 403), wrong.status_code
    failed = _failed_addresses(sessions)
    assert "127.0.0.1" in failed  # the client, as nginx forwards it
    assert not failed & {"203.0.113.9", "127.0.0.2"}  # not the claim, not the proxy
    # straight to excon serve, skipping the proxy: the forwarded header is not trusted
    with httpx.Client() as client:
        _login(client, str(deployed["direct"]), "wrong", {"X-Forwarded-For": "198.51.100.7"})
    assert "198.51.100.7" not in _failed_addresses(sessions)
