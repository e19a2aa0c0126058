"""A screener's start from excon's cache (`dsl.cache`): what `Screener(db=…)` makes from the
rulebooks a knowledge base keeps before it can screen — its private in-memory database with
the rulebook's tables, the support relations and the compiled checks, and what its windows read
— kept as one entry, so that a tool's process that starts a screener over the same knowledge
base again neither parses, checks nor compiles the rulebooks (two thirds of a start), nor
creates the tables and views again.

An entry is named by a digest of the rulebook files the knowledge base keeps, of the
parameters set for the screener, of excon's code (`dsl/`, `kb/`) and of the versions of the
libraries and of SQLite that shaped it: a changed rulebook, setting, excon or library never
reads a stale entry. The checked and compiled rulebook themselves are made only when a caller
asks for them (another engine's checks, a bundle, the explanations in Chinese).
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

from dsl.cache import cache_root, code_digest, read_pickled, write_pickled
from kb.screen.history import Windows

FOLDER = "screeners"


@dataclass(frozen=True)
class Start:
    """What a screener starts from."""

    image: bytes  # its database, serialised (`sqlite3.Connection.serialize`)
    windows: Windows
    version: str  # the rulebook's version


def start_key(files: list[tuple[str, str]], settings: Mapping[str, str]) -> str | None:
    """The entry's name for rulebook files (path, text) and parameters set; None when there
    is no cache."""
    if cache_root() is None:
        return None
    digest = hashlib.sha256(code_digest() + _kb_digest())
    digest.update(repr((sorted(files), sorted(settings.items()))).encode())
    return digest.hexdigest()


def read_start(key: str | None) -> Start | None:
    """The entry named `key`, or None (no cache, none kept, unreadable, or made by another
    Python)."""
    root = cache_root()
    if key is None or root is None:
        return None
    return read_pickled(root / FOLDER / f"{key}.pickle", Start)


def write_start(key: str | None, conn: sqlite3.Connection, windows: Windows,
                version: str) -> None:
    """Keep a screener's database (committed, before anything of a screening is in it) and
    what its windows read under `key`."""
    root = cache_root()
    if key is None or root is None:
        return
    write_pickled(root / FOLDER / f"{key}.pickle", Start(conn.serialize(), windows, version))


def started(start: Start, statements: int) -> sqlite3.Connection:
    """An in-memory connection holding a kept screener's database (`statements`: prepared
    statements it keeps)."""
    conn = sqlite3.connect(":memory:", cached_statements=statements)
    conn.deserialize(start.image)
    return conn


@functools.cache
def _kb_digest() -> bytes:
    """A digest of excon's knowledge-base code (the tables, the support relations, the loads)
    and of the versions of what it builds with."""
    here = Path(__file__).parent.parent
    digest = hashlib.sha256(" ".join([sqlite3.sqlite_version, *(
        f"{p}={package_version(p)}" for p in ("sqlite-utils", "sqlglot"))]).encode())
    for file in sorted(here.rglob("*.py")):
        digest.update(str(file.relative_to(here)).encode() + b"\0" + file.read_bytes())
    return digest.digest()
