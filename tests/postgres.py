"""A real PostgreSQL server for the tests: a throw-away cluster started on a free port.

PostgreSQL comes from Debian's packages (`.ci/run` installs them when missing); initdb will not
run as root, so the cluster belongs to the `postgres` user when the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
    """Start a cluster (C locale, so text sorts by code point as on SQLite); yield its DSN."""
    root = Path(tempfile.mkdtemp(prefix="excon-pg-"))
    data = root / "data"
    port = free_port()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres")
    subprocess.run([*prefix, _bin("initdb"), "-D", str(data), "--locale=C", "-E", "UTF8",
                    "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    subprocess.run([*prefix, _bin("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                    # a throw-away cluster: durability settings off, as in any test cluster
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c jit=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, _bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
