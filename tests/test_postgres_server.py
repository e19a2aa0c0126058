"""The throw-away PostgreSQL server the tests and benchmarks start is stopped however the
process that started it ends: a benchmark interrupted by a time limit (SIGTERM) or killed
outright once left a server running."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

HOLD = """
import time
from tests.postgres import postgres_server
with postgres_server() as dsn:
    print(dsn, flush=True)
    time.sleep(120)
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_the_server_stops_when_its_process_is_ended(how: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().rsplit(":", 1)[1].split("/")[0])
    assert _listening(port)
    proc.send_signal(how)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(port), f"the server on {port} outlived its process ({how.name})"
