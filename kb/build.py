"""Build the whole knowledge base into a new file and swap it in atomically.

The build writes `.<name>.building-<pid>` next to the target, checks it (`PRAGMA
integrity_check`, foreign keys), runs ANALYZE, and only then replaces the target with
`os.replace`. A failed build — a bad rulebook, an unreadable input, a full disk, Ctrl-C — removes
its temporary file and leaves the previous database untouched. The result is deterministic: the
same inputs give the same content (and, with SOURCE_DATE_EPOCH set, the same bytes).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

import dsl
from dsl.compile import CompiledRulebook
from dsl.diagnostics import Diagnostic
from kb.inputs.load import load_csv
from kb.inputs.reference import load_reference
from kb.inputs.report import LoadError, LoadReport
from kb.publish.metadata import publish
from kb.screen.checks import install, refresh_inputs, tune_connection
from kb.store.atomic import build_time, fsync, fsync_dir, remove_abandoned, software_version
from kb.store.rulebook_rows import load_rulebook
from kb.store.schema import declaration_schema, hs_subheadings
from kb.store.tables import MIGRATIONS

DEFAULT_DB = Path("kb.db")
DEFAULT_RULEBOOKS = (Path("rulebooks"),)


class BuildError(Exception):
    """The build failed; the previous database is untouched. `diagnostics` for rulebooks."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = (),
                 sources: dict[str, str] | None = None,
                 loads: Sequence[LoadReport] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)
        self.sources = sources or {}
        self.loads = list(loads)  # the input files read before the build failed


@dataclass
class BuildReport:
    db: Path
    rulebook_version: str
    counts: dict[str, int] = field(default_factory=dict)
    loads: list[LoadReport] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


def build(
    db_path: Path = DEFAULT_DB,
    rulebooks: Sequence[Path] = DEFAULT_RULEBOOKS,
    declarations: str | Path | None = None,
    licences: str | Path | None = None,
    parties: str | Path | None = None,
    unit_values: str | Path | None = None,
    allow_rejected: str | None = None,
    force: bool = False,
    reject_future: bool = False,
    strict: bool = False,
) -> BuildReport:
    """Build the knowledge base at `db_path` from rulebooks and input files. `unit_values`:
    a published unit-value table (code, low, high, unit, source) that takes precedence over
    the rulebooks' indicative value ranges. `strict`: a column of an input file that excon
    does not read fails the build (else it is a warning). A licences file with no row fails it.

    `allow_rejected` (a count or a percentage, as `--allow-rejected` takes it): more rejected
    rows in a file fail the build, and the previous database stays. None: no limit (the
    Python API's default; the command line's is 0). Unless `force`, a build whose input table
    is empty where the previous database had rows fails too: a file whose every row was
    rejected, or an empty file, never replaces the data."""
    result = dsl.load(rulebooks, declaration_schema())
    if not result.ok or result.rulebook is None:
        n = len(result.errors)
        raise BuildError(f"the rulebooks have {n} error(s); nothing was built",
                         result.errors, result.sources)
    rb = result.rulebook
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.building-{os.getpid()}")
    for leftover in (tmp, Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    remove_abandoned(db_path)
    report = BuildReport(db_path, rb.version,
                         warnings=[d for d in result.diagnostics if not d.is_error])
    try:
        db = Database(tmp)
        try:
            _fill(db, rb, report, rulebooks, {
                "unit_values": unit_values, "trade_parties": parties, "licences": licences,
                "declarations": declarations}, reject_future, previous=db_path,
                  compiled=result.compiled)
        finally:
            db.close()
        _refuse_losses(report, db_path, allow_rejected, force, strict)
        fsync(tmp)
        tmp.replace(db_path)
        fsync_dir(db_path.parent)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}-journal").unlink(missing_ok=True)
        if isinstance(e, LoadError):
            raise BuildError(f"{e}; nothing was built", loads=report.loads) from e
        if isinstance(e, sqlite3.Error | OSError):
            raise BuildError(f"the build failed ({e}); {db_path} is unchanged") from e
        raise
    return report


def _fill(db: Database, rb: dsl.CheckedRulebook, report: BuildReport,
          rulebooks: Sequence[Path], sources: dict[str, str | Path | None],
          reject_future: bool = False, previous: Path | None = None,
          compiled: CompiledRulebook | None = None) -> None:
    db.execute("PRAGMA journal_mode = DELETE")  # a served file has no -wal/-shm side files
    db.execute("PRAGMA foreign_keys = ON")
    tune_connection(db.conn)
    MIGRATIONS.apply(db)
    when = build_time()
    counts = load_reference(db)
    counts |= load_rulebook(db, rb, hs_subheadings(), rulebooks)
    compiled, _ = install(db, rb, compiled)
    run_id = 1
    db.table("runs").insert({"id": run_id, "started_at": when, "kind": "build",
                             "rulebook_version": rb.version,
                             "software_version": software_version()})
    inputs = []
    for table, source in sources.items():
        if source is None:
            continue
        load = load_csv(db, table, source, run_id=run_id, today=when[:10],
                        reject_future=reject_future)
        report.loads.append(load)
        inputs.append({"table": table, "file": load.file, "sha256": load.sha256})
        counts[table] = load.loaded
        counts[f"{table}_rejected"] = load.rejected_rows
    refresh_inputs(db)
    publish(db, rb, compiled, when, previous)
    db.table("runs").update(run_id, {"inputs": json.dumps(inputs),
                                     "counts": json.dumps(counts, sort_keys=True)})
    # Migrations record when they were applied; the build's own time keeps the file reproducible.
    db.execute("UPDATE _sqlite_migrations SET applied_at = ?", [when])
    db.conn.commit()
    problems = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise BuildError(f"integrity check failed: {'; '.join(problems[:5])}")
    fk = db.execute("PRAGMA foreign_key_check").fetchall()
    if fk:
        raise BuildError(f"{len(fk)} foreign key violation(s), first: {fk[0]}")
    db.execute("ANALYZE")
    db.conn.commit()
    report.counts = counts


def _refuse_losses(report: BuildReport, db_path: Path, allow_rejected: str | None,
                   force: bool, strict: bool = False) -> None:
    """Fail the build (before the swap) when a file lost more rows than allowed, or when an
    input table the previous database had rows in is now empty."""
    for load in report.loads:
        for problem in load.errors(strict):
            raise BuildError(f"{problem}; {db_path} is unchanged", loads=report.loads)
    if allow_rejected is not None:
        for load in report.loads:
            wrong = load.too_many_rejected(allow_rejected)
            if wrong:
                raise BuildError(f"{wrong}; {db_path} is unchanged", loads=report.loads)
    if force or not db_path.exists():
        return
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as old:
        for load in report.loads:
            if load.loaded:
                continue
            try:
                had = old.execute(f'SELECT COUNT(*) FROM "{load.table}"').fetchone()[0]
            except sqlite3.Error:  # not a knowledge base of this kind: nothing to lose
                continue
            if had:
                raise BuildError(f"{load.file}: no {load.table} row loaded, where {db_path} "
                                 f"has {had:,}; {db_path} is unchanged (--force builds it "
                                 "anyway)", loads=report.loads)


