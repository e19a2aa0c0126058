"""Find and read rulebook files: folders are read recursively (`*.excon`, sorted), and each
`use "path"` brings in another file or folder, relative to the file that uses it.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dsl import ast
from dsl.cache import parse_cached
from dsl.check import check
from dsl.diagnostics import MAX_ERRORS, Diagnostic, sort_key
from dsl.overrides import apply_settings
from dsl.rulebook import CheckedRulebook
from dsl.schema import Schema

if TYPE_CHECKING:  # dsl.compile (and sqlglot) load on the first compile
    from dsl.compile import CompiledRulebook

SUFFIX = ".excon"


@dataclass
class LoadResult:
    """Parsed files, their text (for rendering diagnostics) and every diagnostic found."""

    files: list[ast.SourceFile] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    rulebook: CheckedRulebook | None = None
    # the checks compiled while loading (None when the rulebooks have errors)
    compiled: CompiledRulebook | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unreported

    @property
    def unreported(self) -> int:
        """Syntax errors found past the run's limit of described ones (MAX_ERRORS)."""
        return sum(f.unreported for f in self.files)


def display_path(path: Path) -> str:
    """Paths in diagnostics are relative to the working directory when that is shorter."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def rulebook_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
    return [path]


@dataclass
class _Read:
    """What a load read: each path's listing of rulebook files (None: it did not exist) and a
    digest of each file, so that a later load can tell it would read the same."""

    listings: dict[Path, tuple[Path, ...] | None] = field(default_factory=dict)
    digests: dict[Path, bytes] = field(default_factory=dict)

    def unchanged(self) -> bool:
        try:
            return all((tuple(rulebook_files(p)) if p.exists() else None) == listing
                       for p, listing in self.listings.items()) and \
                all(hashlib.sha256(f.read_bytes()).digest() == d for f, d in self.digests.items())
        except OSError:
            return False


def parse_paths(paths: Iterable[Path | str], follow_uses: bool = True,
                read: _Read | None = None) -> LoadResult:
    """Parse every rulebook file under `paths` (and what they `use`), each file once.
    `read`: records what was read (`load` keeps it to reuse an unchanged load)."""
    read = read if read is not None else _Read()
    result = LoadResult()
    seen: set[Path] = set()
    queue: list[tuple[Path, ast.Span | None]] = [(Path(p), None) for p in paths]
    while queue:
        path, used_at = queue.pop(0)
        if not path.exists():
            read.listings[path] = None
            span = used_at or ast.Span(display_path(path), 0, 0, 0, 0)
            code = "E207" if used_at else "E002"
            result.diagnostics.append(Diagnostic(code, f"'{path}' does not exist", span))
            continue
        files = rulebook_files(path)
        read.listings[path] = tuple(files)
        if not files:
            result.diagnostics.append(Diagnostic(
                "W001", f"the folder '{path}' holds no rulebook file (*{SUFFIX})",
                used_at or ast.Span(display_path(path), 0, 0, 0, 0),
                "check the path: nothing in it was checked"))
        for file in files:
            real = file.resolve()
            if real in seen:
                continue
            seen.add(real)
            name = display_path(file)
            try:
                data = file.read_bytes()
                read.digests[file] = hashlib.sha256(data).digest()
            except OSError as e:
                read.digests[file] = b""  # never a digest: a later load reads it again
                span = ast.Span(name, 0, 0, 0, 0)
                result.diagnostics.append(Diagnostic("E002", f"cannot read it: {e.strerror}", span))
                continue
            described = sum(d.is_error for d in result.diagnostics)
            sf, diags = parse_cached(data, name, max(0, MAX_ERRORS - described))
            result.files.append(sf)
            result.diagnostics.extend(diags)
            if not sf.declarations and not diags:
                result.diagnostics.append(Diagnostic(
                    "W002", "the file declares nothing", ast.Span(name, 1, 1, 1, 1),
                    "an empty or comment-only file: was it saved?"))
            result.sources[name] = data.decode("utf-8", errors="replace").lstrip("\ufeff")
            if follow_uses:
                for d in sf.declarations:
                    if isinstance(d, ast.Use):
                        queue.append((file.parent / d.path.value, d.path.span))
    return result


# The last loads of this process, reused while their files are unchanged: a tool (or a test
# suite) that makes several screeners or builds from the same rulebooks parses, checks and
# compiles them once. Keyed by the paths as given, the working directory (file names in
# diagnostics are relative to it), the schema and whether the checks were compiled.
_RECENT: OrderedDict[tuple[object, ...], tuple[Schema, _Read, LoadResult]] = \
    OrderedDict()
_RECENT_SIZE = 4
_RECENT_LOCK = threading.Lock()


def load(paths: Iterable[Path | str], schema: Schema, *, checks: bool = True,
         parameters: Mapping[str, str] | None = None) -> LoadResult:
    """Parse, check and compile: the one call an embedding tool needs. Loading the same,
    unchanged files again in this process gives the same checked rulebook without parsing,
    checking or compiling them again. With `checks` False (`excon check`), the diagnostics
    only: the conditions are compiled (where a construct may not compile) but not the
    checks around them, and `compiled` is None. `parameters` sets parameters to other values
    for this load (`dsl.overrides`; NAME → "300 kg"): a name the rulebooks do not have, or a
    value that cannot be read, raises `SettingError`."""
    paths = list(paths)
    settings = dict(parameters or {})
    key = (tuple(str(p) for p in paths), str(Path.cwd()), id(schema), checks,
           tuple(sorted(settings.items())))
    with _RECENT_LOCK:
        kept = _RECENT.get(key)
    if kept is not None and kept[0] is schema and kept[1].unchanged():
        with _RECENT_LOCK:
            _RECENT.move_to_end(key)
        done = kept[2]
        return replace(done, files=list(done.files), sources=dict(done.sources),
                       diagnostics=list(done.diagnostics))
    read = _Read()
    with _few_collections():
        result = _load(paths, schema, read, checks, settings)
    with _RECENT_LOCK:
        _RECENT[key] = (schema, read, result)
        while len(_RECENT) > _RECENT_SIZE:
            _RECENT.popitem(last=False)
    return replace(result, files=list(result.files), sources=dict(result.sources),
                   diagnostics=list(result.diagnostics))


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Python's cyclic garbage collector run less often while a rulebook loads: compiling
    makes hundreds of thousands of SQL expression nodes, and the collector's passes over them
    took a third of a large rulebook's time (2,910 rules: 22 s, 14 s with this; the same peak
    memory, which turning it off altogether more than doubles)."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _load(paths: list[Path | str], schema: Schema, read: _Read, checks: bool,
          settings: Mapping[str, str]) -> LoadResult:
    from dsl.compile import compile_conditions, compile_rulebook

    result = parse_paths(paths, read=read)
    if not result.errors:  # (a file that did not parse fails the load whatever is set)
        result.files = apply_settings(result.files, settings)
    rb, diags = check(result.files, schema)
    result.rulebook = rb
    result.diagnostics.extend(diags)
    if not result.errors and checks:
        result.compiled, compile_diags = compile_rulebook(rb, schema)
        result.diagnostics.extend(compile_diags)
    elif not result.errors:
        result.diagnostics.extend(compile_conditions(rb, schema))
    result.diagnostics.sort(key=sort_key)
    return result
