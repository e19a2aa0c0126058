"""Writing a database file atomically: the build's time and software version, the half-built
files of killed builds (`.<name>.building-<pid>`), and the fsyncs that make a rename durable.
`kb.build` builds a knowledge base with these; `excon serve` tells a running build by its pid."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def software_version() -> str:
    try:
        return version("excon")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned(db_path: Path) -> None:
    """Remove the half-built files of builds that were killed (`.kb.db.building-PID`, and
    its journal) whose process is gone; a build still running keeps its file."""
    prefix = f".{db_path.name}.building-"
    for stale in db_path.parent.glob(f"{prefix}*"):
        pid = stale.name[len(prefix):].removesuffix("-journal")
        if pid.isdigit() and not pid_alive(int(pid)):
            stale.unlink(missing_ok=True)


def build_time() -> str:
    """Now in UTC, or SOURCE_DATE_EPOCH (reproducible builds) when it is set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch
            else dt.datetime.now(dt.UTC).replace(microsecond=0))
    return when.isoformat()


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        fsync(path)
