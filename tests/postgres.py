"""A real PostgreSQL server for the tests: a throw-away cluster started on a free port.

PostgreSQL comes from Debian's packages (`.ci/run` installs them when missing); initdb will not
run as root, so the cluster belongs to the `postgres` user when the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _bin(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install postgresql")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster (C collation, so text sorts by code point as on SQLite); yield its DSN."""
    root = Path(tempfile.mkdtemp(prefix="excon-pg-"))
    data = root / "data"
    port = free_port()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres")
    # letters' cases from Unicode (C.UTF-8), as a server set up for UTF-8 has them: its LOWER
    # then folds "GALLİUM" to "gallium", which the compiled checks must not rely on
    subprocess.run([*prefix, _bin("initdb"), "-D", str(data), "--locale=C",
                    "--lc-ctype=C.UTF-8", "-E", "UTF8", "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*prefix, _bin("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                    # a throw-away cluster: durability settings off, as in any test cluster
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c jit=off", "start"],
                   check=True, capture_output=True)
    stop = [*prefix, _bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]
    # A watchdog stops the server when this process ends without getting to `finally` (killed,
    # or stopped by a time limit): an interrupted benchmark once left a server running.
    watchdog = subprocess.Popen(
        ["sh", "-c", 'while kill -0 "$0" 2>/dev/null; do sleep 1; done; "$@"; rm -rf "$ROOT"',
         str(os.getpid()), *stop], env={**os.environ, "ROOT": str(root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # SIGTERM (a CI time limit, `kill`) unwinds like Ctrl-C, so `finally` stops the server now
    previous = _raise_on_sigterm()
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(stop, check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        watchdog.kill()
        watchdog.wait()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_on_sigterm() -> Any:
    """Make SIGTERM raise KeyboardInterrupt (main thread only); returns the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:  # someone else (pytest-timeout, xdist) handles it
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    return previous
