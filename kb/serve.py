"""`excon serve`: publish a built knowledge base with Datasette, read-only.

The served file is a *snapshot*: a hard link to the built file taken at start, in a folder of
its own. `excon build` replaces `kb.db` by renaming a new file over it, which gives the name a
new inode and leaves the snapshot (the old inode) whole, so a running server never sees a
rebuild, half-written or not. Restart the server — or send it SIGHUP, which restarts it in
place — to serve the new build.

Logins (datasette-auth-passwords): each analyst is a line `name:password-hash` in the file given
by `--credentials` or in the environment variable EXCON_CREDENTIALS (lines or commas). Make a
hash with `excon password-hash`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kb.publish import access_metadata, credential_variables
from kb.result_cache import ResultCache

CREDENTIALS_ENV = "EXCON_CREDENTIALS"
SETTINGS = {
    "sql_time_limit_ms": 3000,
    "facet_time_limit_ms": 1000,
    "default_page_size": 50,
    "max_returned_rows": 2000,
    "allow_download": True,  # still needs a login: kb.datasette denies it to anonymous visitors
    "suggest_facets": False,  # suggestions run extra queries on every table page
}
USER = re.compile(r"^[A-Za-z0-9_.-]+$")


class ServeError(Exception):
    pass


def read_credentials(path: str | Path | None, environ: dict[str, str] | None = None
                     ) -> dict[str, str]:
    """`name:hash` pairs from a file (one per line) and from EXCON_CREDENTIALS."""
    environ = dict(os.environ) if environ is None else environ
    sources: list[tuple[str, str]] = []
    if path is not None:
        try:
            sources.append((str(path), Path(path).read_text(encoding="utf-8")))
        except OSError as e:
            raise ServeError(f"{path}: cannot read the credentials: {e.strerror}") from None
    if environ.get(CREDENTIALS_ENV):
        sources.append((CREDENTIALS_ENV, environ[CREDENTIALS_ENV].replace(",", "\n")))
    out: dict[str, str] = {}
    for name, text in sources:
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not USER.match(user) or not hashed.startswith("pbkdf2_sha256$"):
                raise ServeError(f"{name}:{number}: expected name:pbkdf2_sha256$… (make the "
                                 "hash with `excon password-hash`)")
            out[user] = hashed
    return out


@contextlib.contextmanager
def snapshot(db_path: Path) -> Iterator[Path]:
    """A private hard link to the built file (a copy where links are impossible)."""
    if not db_path.is_file():
        raise ServeError(f"{db_path}: no such knowledge base; build it with `excon build`")
    prefix = f".{db_path.name}.serving-"
    for stale in db_path.parent.glob(f"{prefix}*"):
        pid = stale.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):  # left by a server that was killed
            shutil.rmtree(stale, ignore_errors=True)
    # one folder per snapshot: two servers of one process never share (or remove) one
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=db_path.parent))
    target = folder / db_path.name
    try:
        try:
            os.link(db_path, target)
        except OSError:
            shutil.copy2(db_path, target)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def datasette_app(db_file: Path, credentials: dict[str, str], secret: str | None = None) -> Any:
    """The Datasette instance serving one snapshot, immutable, with excon's metadata."""
    from datasette.app import Datasette

    name = db_file.stem
    os.environ.update(credential_variables(credentials))
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        metadata = access_metadata(Database(conn), name, credentials)
    except sqlite3.Error as e:
        raise ServeError(f"{db_file}: not a knowledge base built by excon ({e})") from None
    finally:
        conn.close()
    # DATASETTE_SECRET (as for `datasette serve`) keeps logins valid across restarts
    ds = Datasette(immutables=[str(db_file)], metadata=metadata, settings=SETTINGS,
                   cors=False, secret=secret or os.environ.get("DATASETTE_SECRET"))
    _table_allows_once(ds)
    ds.excon_results = ResultCache(
        ds.databases[name], db_file, lambda conn: ds._prepare_connection(conn, name)).install()
    return ds


def _table_allows_once(ds: Any) -> None:
    """Datasette finds a table's `allow` blocks by deep-copying the whole metadata (every
    table's columns and every stored query) on each permission check, and a page makes
    dozens: a third of a rule page's time. The served metadata never changes (no plugin
    supplies metadata; the snapshot is immutable), so each table's blocks are found once."""
    find = ds._table_permission_allows

    @functools.lru_cache(maxsize=4096)
    def allows(database: str, table: str) -> tuple[Any, ...]:
        return tuple(find(database, table))

    ds._table_permission_allows = lambda database, table: list(allows(database, table))
    ds._table_permission_allows.cache_info = allows.cache_info


def serve(db_path: Path, host: str, port: int, credentials: dict[str, str],
          workers: int = 1) -> None:
    """Serve a snapshot of `db_path` on host:port with `workers` server processes.

    The parent takes the snapshot, listens on the socket and forks the workers; each builds its
    own Datasette (its own connections and result cache) and runs uvicorn on the shared socket,
    so the kernel spreads connections over them, and pages are rendered on every core rather
    than queueing behind one Python interpreter. Every worker signs logins with one secret
    (DATASETTE_SECRET, or one drawn at start), so a login made through one is valid on all.
    SIGTERM or SIGINT stops the workers and removes the snapshot; SIGHUP stops them and starts
    again on the current build; a worker that dies stops the server (exit status 1)."""
    import secrets
    import signal
    import socket

    with snapshot(db_path) as served:
        secret = os.environ.get("DATASETTE_SECRET") or secrets.token_hex(32)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.create_server((host, port), family=family, backlog=2048)
        except OSError as e:
            raise ServeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        watched = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        children: list[int] = []
        restart = failed = False
        try:
            for _ in range(max(1, workers)):
                children.append(_fork_worker(served, credentials, secret, sock, mask))
            print(f"serving {db_path} (snapshot {served}) on http://{host}:{port}/ "
                  f"with {len(credentials)} analyst login(s), {len(children)} worker(s)",
                  file=sys.stderr, flush=True)
            while True:
                received = signal.sigwait(watched)
                if received != signal.SIGCHLD:
                    restart = received == signal.SIGHUP
                    break
                if _reap(children):
                    failed = True
                    break
        finally:
            _stop(children)
            sock.close()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    if restart:  # SIGHUP: serve the current build
        os.execv(sys.executable, [sys.executable, "-m", "kb.cli", *sys.argv[1:]])
    if failed:
        raise ServeError("a server worker stopped unexpectedly (its error is above); "
                         "the server stopped")


def _fork_worker(served: Path, credentials: dict[str, str], secret: str, sock: Any,
                 mask: Any) -> int:
    """A worker process serving the snapshot on the listening socket; returns its pid."""
    import signal
    import traceback

    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        import uvicorn

        # the parent alone answers SIGHUP (a hangup of the terminal reaches the whole group);
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises it: exit quietly
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, lambda signum, frame: os._exit(0))
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        ds = datasette_app(served, credentials, secret)
        server = uvicorn.Server(uvicorn.Config(ds.app(), log_level="warning"))
        server.run(sockets=[sock])
        status = 0
    except BaseException:  # a worker must never return into the parent's code
        traceback.print_exc()
    finally:
        os._exit(status)


def _reap(children: list[int]) -> bool:
    """Collect workers that exited; whether any did."""
    gone = False
    while children:
        pid, _status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        if pid in children:
            children.remove(pid)
            gone = True
    return gone


def _stop(children: list[int], grace: float = 10.0) -> None:
    """SIGTERM every worker, wait for them to finish their requests; SIGKILL the late ones."""
    import signal
    import time

    def send(signum: int) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    send(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while children:
        if not _reap(children):
            if time.monotonic() > deadline:
                send(signal.SIGKILL)
            time.sleep(0.05)


MAX_DEFAULT_WORKERS = 8  # each worker is a Datasette of its own (~100-150 MB)


def default_workers() -> int:
    """One worker per CPU this process may use, at most eight."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))
