"""excon's cache on disk (as Python's `__pycache__`): what a command would otherwise work out
again from unchanged inputs at every start — the parsed tree of each rulebook file, the SQL of
each compiled rulebook's checks. Each entry is named by a digest of what it is made from, of
excon's own language code (`dsl`) and of the libraries it uses, so a changed file, excon or
library never reads a stale entry; entries are written whole or not at all.
`$EXCON_CACHE_DIR` (default `$XDG_CACHE_HOME/excon`, `~/.cache/excon`) says where; set empty,
nothing is cached. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from dsl import ast
    from dsl.diagnostics import Diagnostic

T = TypeVar("T")


def cache_root() -> Path | None:
    """excon's cache folder (`$EXCON_CACHE_DIR`, else `$XDG_CACHE_HOME/excon`, else
    `~/.cache/excon`); None when `$EXCON_CACHE_DIR` is set empty or there is no home."""
    configured = os.environ.get("EXCON_CACHE_DIR")
    if configured == "":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        return (Path(base) if base else Path.home() / ".cache") / "excon"
    except RuntimeError:  # no home directory: no cache
        return None


def parse_cached(data: bytes, name: str, max_errors: int) -> tuple[ast.SourceFile,
                                                                   list[Diagnostic]]:
    """`parse_bytes`, or its result for the same file and bytes from the cache: a file that
    parses without a diagnostic is kept there, pickled, under a digest of its name, its bytes
    and excon's language code, so that a command that loads unchanged rulebooks does not run
    Lark again (a fifth of a second for the repository's)."""
    from dsl import ast  # (the syntax tree's classes: not for a program that reads no tree)

    root = cache_root()
    folder = root / "parsed" if root is not None else None
    path = None
    if folder is not None:
        key = hashlib.sha256(code_digest() + name.encode() + b"\0" + data).hexdigest()
        path = folder / key[:2] / f"{key}.pickle"
        found = read_pickled(path, ast.SourceFile)
        if found is not None and found.path == name:
            return found, []
    from dsl.parse import parse_bytes  # (Lark: not for a program that parses nothing)

    sf, diags = parse_bytes(data, name, max_errors)
    if path is not None and not diags:
        write_pickled(path, sf)
    return sf, diags


def cached_statements(kind: str, version: str, make: Callable[[], list[str]]) -> list[str]:
    """`make()`, a list of SQL statements made from a rulebook of `version` (its digest), or
    the same list from the cache."""
    return cached_json(kind, version, make, lambda s: isinstance(s, str))


def cached_json(kind: str, version: str, make: Callable[[], list[T]],
                valid: Callable[[Any], bool], folder: str = "sql") -> list[T]:
    """`make()`, a list of JSON values made from a rulebook of `version` (its digest), or the
    same list from the cache's `folder` (each of its items `valid`)."""
    root = cache_root()
    if root is None:
        return make()
    key = hashlib.sha256(code_digest() + f"{kind}\0{version}".encode()).hexdigest()
    path = root / folder / f"{key}.json"
    with contextlib.suppress(Exception):
        found = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(found, list) and all(valid(s) for s in found):
            return found
    made = make()
    write_whole(path, json.dumps(made).encode("utf-8"))
    return made


def cached_object(folder: str, made_from: bytes, make: Callable[[], T], kind: type[T]) -> T:
    """`make()`, or the object of `kind` it made before from the same inputs (`made_from`,
    their bytes), kept pickled in the cache's `folder` under a digest of them and of excon's
    code: for what is costly to make and quick to read back (the party graph of 29,000 trade
    parties: 2.5 s to make, its keys computed name by name)."""
    root = cache_root()
    if root is None:
        return make()
    key = hashlib.sha256(code_digest() + folder.encode() + b"\0" + made_from).hexdigest()
    path = root / folder / f"{key}.pickle"
    found = read_pickled(path, kind)
    if found is not None:
        return found
    made = make()
    write_pickled(path, made)
    return made


def read_pickled(path: Path, kind: type[T]) -> T | None:
    """The object of `kind` pickled at `path`; None when it is missing, unreadable, from
    another Python or of another kind."""
    with contextlib.suppress(Exception):
        found = pickle.loads(path.read_bytes())
        if isinstance(found, kind):
            return found
    return None


def write_pickled(path: Path, value: object) -> None:
    """`value` pickled at `path`, whole or not at all."""
    write_whole(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def write_whole(path: Path, data: bytes) -> None:
    """`data` written to `path` whole or not at all (a cache that cannot be written is
    ignored)."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
            f.write(data)
        Path(f.name).replace(path)  # whole or not at all, whoever reads it meanwhile


@functools.cache
def code_digest() -> bytes:
    """A digest of excon's version, of its language's code (the grammar, the parser, the
    trees, the checker, the compiler) and of the versions of the libraries they use (Lark
    builds the trees, sqlglot prints the SQL): what makes a syntax tree or a check's SQL."""
    here = Path(__file__).parent
    digest = hashlib.sha256(" ".join(f"{p}={package_version(p)}" for p in (
        "excon", "lark", "sqlglot", "unidecode", "pypinyin")).encode())
    for file in sorted([*here.rglob("*.py"), here / "grammar.lark"]):
        digest.update(str(file.relative_to(here)).encode() + b"\0" + file.read_bytes())
    return digest.digest()
