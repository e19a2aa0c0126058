"""`excon serve`: publish a built knowledge base with Datasette, read-only.

The served file is a *snapshot*: a hard link to the built file taken at start, in a folder of
its own. `excon build` replaces `kb.db` by renaming a new file over it, which gives the name a
new inode and leaves the snapshot (the old inode) whole, so a running server never sees a
rebuild, half-written or not. Send the server SIGHUP to serve the current build: it takes a
new snapshot and replaces its workers one by one, finishing their requests.

The processes are gunicorn's, with uvicorn workers running Datasette's ASGI app: a worker that
dies is replaced, a worker is recycled after `max_requests` requests and killed when it stops
answering for `timeout` seconds.

Logins (kb.publish.auth, kb.publish.datasette.guard): each analyst is a line
`name:password-hash` in the file given by `--credentials` or in the environment variable
EXCON_CREDENTIALS (lines or commas).
Make a hash with `excon password-hash`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kb.publish.auth import SESSION_HOURS, Credentials, CredentialsError
from kb.publish.decisions import decisions_path, initialise
from kb.publish.metadata import DECISIONS_DB, access_metadata
from kb.publish.result_cache import ResultCache
from kb.store.atomic import pid_alive

SETTINGS = {
    "sql_time_limit_ms": 3000,
    "facet_time_limit_ms": 1000,
    "default_page_size": 50,
    "max_returned_rows": 2000,
    # still needs a login: kb.publish.datasette denies it to anonymous visitors
    "allow_download": True,
    "suggest_facets": False,  # suggestions run extra queries on every table page
}


class ServeError(Exception):
    pass


def read_credentials(path: str | Path | None, environ: dict[str, str] | None = None
                     ) -> Credentials:
    """The analysts of a credentials file (read again when it changes) and EXCON_CREDENTIALS."""
    try:
        return Credentials(path, environ)
    except CredentialsError as e:
        raise ServeError(str(e)) from None


@contextlib.contextmanager
def snapshot(db_path: Path) -> Iterator[Path]:
    """A private hard link to the built file (a copy where links are impossible)."""
    if not db_path.is_file():
        raise ServeError(f"{db_path}: no such knowledge base; build it with `excon build`")
    prefix = f".{db_path.name}.serving-"
    for stale in db_path.parent.glob(f"{prefix}*"):
        pid = stale.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):  # left by a server that was killed
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


def datasette_app(db_file: Path, credentials: Credentials | dict[str, str],
                  secret: str | None = None, sessions: Path | None = None,
                  session_hours: float = SESSION_HOURS, secure: bool = False,
                  decisions: Path | None = None) -> Any:
    """The Datasette instance serving one snapshot, immutable, with excon's metadata, logins
    (sessions in `sessions`, by default beside the snapshot) and guards; and, when given,
    the analysts' decisions file (kb.publish.decisions: made if missing, never touched by a build)
    as the `decisions` database, with the snapshot attached to it read-only as `kb`."""
    from datasette.app import Datasette
    from datasette.database import Database as DatasetteDatabase

    from kb.publish.datasette import guard, take_over_logins

    if isinstance(credentials, dict):
        credentials = Credentials.of(credentials)
    name = db_file.stem
    if decisions is not None and name == DECISIONS_DB:
        raise ServeError(f"{db_file}: a knowledge base may not be named {DECISIONS_DB!r} "
                         "(the decisions database is)")
    metadata = served_metadata(db_file, with_decisions=decisions is not None)
    take_over_logins()
    # DATASETTE_SECRET (as for `datasette serve`) keeps logins valid across restarts
    ds = Datasette(immutables=[str(db_file)], metadata=metadata, settings=SETTINGS,
                   cors=False, secret=secret or os.environ.get("DATASETTE_SECRET"))
    guard.install(ds, credentials, sessions or db_file.parent / "sessions.db", session_hours,
                  secure)
    _table_allows_once(ds)
    ds.excon_results = ResultCache(
        ds.databases[name], db_file, lambda conn: ds._prepare_connection(conn, name)).install()
    ds.excon_kb = (name, db_file)
    # exact counts, once: Datasette counts each table with a 10 ms limit, and where one is
    # slower (declarations, at a million) lists foreign keys of every table on every page
    ds.databases[name]._cached_table_counts = table_counts(db_file)
    ds.excon_decisions = None
    if decisions is not None:
        try:
            initialise(decisions)
        except sqlite3.Error as e:
            raise ServeError(f"{decisions}: cannot open the decisions file: {e}") from None
        ds.add_database(DatasetteDatabase(ds, path=str(decisions), is_mutable=True),
                        name=DECISIONS_DB)
        ds.excon_decisions = decisions
    return ds


def table_counts(db_file: Path) -> dict[str, int]:
    """The number of rows of every table of the snapshot (a second or so at 1,000,000
    declarations, once per worker)."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro&immutable=1", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                            "'table' ORDER BY name")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n.replace(chr(34), chr(34) * 2)}"'
                                ).fetchone()[0] for n in names}
    finally:
        conn.close()


def served_metadata(db_file: Path, with_decisions: bool = False) -> dict[str, Any]:
    """The metadata Datasette gets for a knowledge base; ServeError when it is not one."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return access_metadata(Database(conn), db_file.stem, with_decisions)
    except (sqlite3.Error, ValueError) as e:
        raise ServeError(f"{db_file}: not a knowledge base built by excon ({e})") from None
    finally:
        conn.close()


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


@dataclass
class Options:
    """How `excon serve` runs, besides where: see `excon serve --help`."""
    workers: int = 1
    sessions: Path | None = None  # default: .NAME.sessions beside the knowledge base
    session_hours: float = SESSION_HOURS
    https_proxy: bool = False  # behind a TLS proxy: Secure cookies, its X-Forwarded-For
    proxy_ips: str = "127.0.0.1"
    max_requests: int = 10_000
    timeout_s: int = 60
    decisions: Path | None = None  # default: NAME.decisions.db beside the knowledge base


def serve(db_path: Path, host: str, port: int, credentials: Credentials | dict[str, str],
          options: Options | None = None) -> None:
    """Serve snapshots of `db_path` on host:port until SIGTERM or SIGINT (then the snapshots
    are removed); SIGHUP serves the current build. Every worker signs logins with one secret
    (DATASETTE_SECRET, or one drawn at start) and shares one session file, so a login made
    through one worker is valid on all, and a logout on all."""
    import secrets
    import socket

    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter

    opts = options or Options()
    if isinstance(credentials, dict):
        credentials = Credentials.of(credentials)
    logins = credentials
    sessions = opts.sessions or db_path.parent / f".{db_path.name}.sessions"
    decisions = opts.decisions or decisions_path(db_path)
    secret = os.environ.get("DATASETTE_SECRET") or secrets.token_hex(32)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror}") from None

    with snapshots(db_path) as take:

        class Server(BaseApplication):  # type: ignore[misc]
            served = take()

            def load_config(self) -> None:
                settings = {
                    "bind": [f"fd://{sock.fileno()}"], "workers": max(1, opts.workers),
                    "worker_class": "uvicorn_worker.UvicornWorker",
                    "max_requests": opts.max_requests,
                    "max_requests_jitter": max(1, opts.max_requests // 10),
                    "timeout": opts.timeout_s, "graceful_timeout": 10,
                    "keepalive": 5, "loglevel": "warning", "accesslog": None,
                    "forwarded_allow_ips": opts.proxy_ips if opts.https_proxy else "",
                    "proc_name": "excon-serve", "on_reload": self.on_reload,
                }
                for key, value in settings.items():
                    self.cfg.set(key, value)

            def on_reload(self, arbiter: Any) -> None:
                # SIGHUP: the workers started next serve the current build
                Server.served = take()

            def load(self) -> Any:  # in each worker, after the fork
                return datasette_app(Server.served, logins, secret, sessions,
                                     opts.session_hours, opts.https_proxy, decisions).app()

        try:
            served_metadata(Server.served)  # a bad file fails here, not in every worker
            initialise(decisions)
        except ServeError:
            sock.close()
            raise
        except sqlite3.Error as e:
            sock.close()
            raise ServeError(f"{decisions}: cannot open the decisions file: {e}") from None
        print(f"serving {db_path} (snapshot {Server.served}) on http://{host}:{port}/ "
              f"with {len(logins.users())} analyst login(s), {opts.workers} worker(s); "
              f"decisions in {decisions}",
              file=sys.stderr, flush=True)
        try:
            Arbiter(Server()).run()
        except SystemExit as e:
            if e.code not in (0, None):
                raise ServeError(f"the server stopped (gunicorn exit status {e.code}); its "
                                 "error is above") from None
        finally:
            with contextlib.suppress(OSError):  # gunicorn closes the listener it was given
                sock.close()


@contextlib.contextmanager
def snapshots(db_path: Path) -> Iterator[Any]:
    """`take()` makes a new snapshot of `db_path` (each SIGHUP takes one); the one before the
    newest is kept while the old workers finish their requests, older ones are removed, and
    all are at the end."""
    held: list[contextlib.ExitStack] = []

    def take() -> Path:
        stack = contextlib.ExitStack()
        path: Path = stack.enter_context(snapshot(db_path))
        held.append(stack)
        while len(held) > 2:
            held.pop(0).close()
        return path

    try:
        yield take
    finally:
        for stack in held:
            stack.close()


MAX_DEFAULT_WORKERS = 8  # each worker is a Datasette of its own (~100-150 MB)


def default_workers() -> int:
    """One worker per CPU this process may use, at most eight."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))
