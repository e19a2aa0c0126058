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


def datasette_app(db_file: Path, credentials: dict[str, str]) -> Any:
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
                   cors=False, secret=os.environ.get("DATASETTE_SECRET"))
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


def serve(db_path: Path, host: str, port: int, credentials: dict[str, str]) -> None:
    import signal

    import uvicorn

    with snapshot(db_path) as served:
        ds = datasette_app(served, credentials)
        restart = False

        def on_hup(signum: int, frame: Any) -> None:
            nonlocal restart
            restart = True
            server.should_exit = True

        config = uvicorn.Config(ds.app(), host=host, port=port, log_level="warning")
        server = uvicorn.Server(config)
        signal.signal(signal.SIGHUP, on_hup)
        # uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown; exit through Python so
        # that the snapshot is removed
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        print(f"serving {db_path} (snapshot {served}) on http://{host}:{port}/ "
              f"with {len(credentials)} analyst login(s)", file=sys.stderr, flush=True)
        server.run()
    if restart:  # SIGHUP: serve the current build
        os.execv(sys.executable, [sys.executable, "-m", "kb.cli", *sys.argv[1:]])
