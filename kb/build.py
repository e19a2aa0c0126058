"""Build the whole knowledge base into a new file and swap it in atomically.

The build writes `.<name>.building-<pid>` next to the target, checks it (`PRAGMA
integrity_check`, foreign keys), runs ANALYZE, and only then replaces the target with
`os.replace`. A failed build — a bad rulebook, an unreadable input, a full disk, Ctrl-C — removes
its temporary file and leaves the previous database untouched. The result is deterministic: the
same inputs give the same content (and, with SOURCE_DATE_EPOCH set, the same bytes).

`add` adds a day's declarations to a knowledge base instead: it screens them against its
history and writes them, their derived rows and their findings into it in one transaction —
all, or nothing.

The declarations are screened by a `Screener(db=…)` (`kb.screen.history`): with the knowledge
base's rulebooks, licences and parties, windows and first-seen dates continuing from its
declarations and each licence drawn down after its earlier uses. Their findings are those a
build from every declaration would give them. They must come after the history: an id the
knowledge base has, or a declaration dated on or before its latest, is refused (an earlier
declaration would change the windows and draw-downs of later ones: rebuild with `excon build`).

What the knowledge base gets, in one transaction on a writer connection (a failure or Ctrl-C
rolls it back, and a concurrent add waits for it):
- the declarations, and their rejected rows, under a new `runs` row (`kind = 'add'`);
- the rows of every derived relation for them (items, days, groups, licence uses and walk,
  windows, text matches, links), first-seen dates of new parties, fuzzy matches of new names;
  the unit-value ranges of the codes under their customs headings, made again;
- their findings in `finding_details`, and the balances of the licences they draw on.
Findings of earlier declarations are not revisited: no window, first-seen date or draw-down of
an earlier declaration depends on a later one. The one exception is a unit-value range learnt
from history, which every new declaration under its code moves a little: the earlier
declarations' value findings keep the range of their build until the next `excon build`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlglot
from sqlglot import exp
from sqlite_utils import Database

import dsl
from dsl.compile import CompiledRulebook
from dsl.diagnostics import Diagnostic
from kb.inputs.load import load_csv
from kb.inputs.reference import load_reference
from kb.inputs.report import LoadError, LoadReport
from kb.publish.metadata import FINDING_DETAILS_SQL, LICENCE_BALANCES_SQL, publish
from kb.screen.checks import refresh_inputs, tune_connection
from kb.screen.history import Windows, add_group_keys, history_indexes
from kb.screen.screener import Finding, Screener
from kb.screen.statements import install
from kb.screen.support import MATERIALISED
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
    history_indexes(db.conn, Windows(compiled))
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


class AddError(Exception):
    """Nothing was added; the knowledge base is unchanged."""


@dataclass
class AddReport:
    db: Path
    run_id: int
    findings: list[Finding]
    loads: list[LoadReport] = field(default_factory=list)
    added: int = 0
    rulebook_version: str = ""


def add(db_path: Path, declarations: str | Path | IO[bytes], engine: str = "sqlite",
        allow_rejected: str | None = None, reject_future: bool = False,
        strict: bool = False) -> AddReport:
    """Screen `declarations` against the knowledge base at `db_path` and add them to it, with
    their findings (see the module's description). `allow_rejected` as `excon build` takes it
    (None: no limit); more rejected rows, or a problem `strict` makes an error, add nothing."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise AddError(f"{db_path} does not exist; build it with `excon build`")
    out: dict[str, Any] = {}

    def write(conn: sqlite3.Connection, findings: list[Finding],
              reports: list[LoadReport]) -> None:
        for report in reports:
            for problem in report.errors(strict):
                raise AddError(f"{problem}; nothing was added")
            wrong = allow_rejected is not None and report.too_many_rejected(allow_rejected)
            if wrong:
                raise AddError(f"{wrong}; nothing was added")
        conn.commit()
        conn.execute("DETACH DATABASE history")  # its shared lock would keep the writer out
        out["run_id"], out["added"] = _write_added(db_path, conn, findings, reports,
                                                   out["version"])

    with _one_add_at_a_time(db_path):  # the history read is the one written after
        screener = Screener(db=db_path, every_range=True)
        out["version"] = screener.version
        try:
            findings, reports = screener.screen_files(
                declarations, engine=engine, reject_future=reject_future, last=True,
                then=write)
        finally:
            screener.close()
    return AddReport(db_path, out["run_id"], findings, reports, out["added"], out["version"])


@contextlib.contextmanager
def _one_add_at_a_time(db_path: Path) -> Iterator[None]:
    """Adds to one knowledge base wait for each other (a lock file beside it): each screens
    against the history the one before it left, and writes after it."""
    import fcntl

    with db_path.with_name(f".{db_path.name}.add-lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _file_to_change(db_path: Path) -> Iterator[Path]:
    """The file an add writes: the knowledge base itself, or, while `excon serve` serves a
    snapshot of it (a hard link to the same file, kb.publish.serve), a copy swapped in
    afterwards as a build's file is, so that the served snapshot never changes under its
    readers (send the server SIGHUP to serve the new file)."""
    if db_path.stat().st_nlink == 1:
        yield db_path
        return
    tmp = db_path.with_name(f".{db_path.name}.adding-{os.getpid()}")
    try:
        shutil.copyfile(db_path, tmp)
        yield tmp
        fsync(tmp)
        tmp.replace(db_path)
        fsync_dir(db_path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _write_added(db_path: Path, screened: sqlite3.Connection, findings: Sequence[Finding],
                 reports: Sequence[LoadReport], version: str) -> tuple[int, int]:
    """The screener's rows into the knowledge base, in one transaction: its in-memory
    database is copied whole into the writer's connection (`screened`), and every row goes
    over in SQL."""
    groups = screened.execute("SELECT prefix FROM temp.excon_code_groups").fetchall()
    with _file_to_change(db_path) as target:
        return _write_into(target, screened, findings, reports, version, groups)


def _write_into(db_path: Path, screened: sqlite3.Connection, findings: Sequence[Finding],
                reports: Sequence[LoadReport], version: str,
                groups: list[tuple[str]]) -> tuple[int, int]:
    kb = sqlite3.connect(db_path, timeout=60, isolation_level=None)
    # the new declarations go into every index of the knowledge base's declarations, most of
    # them keyed by party, code or unit value: 20,000 of them dirty about 470 MB of pages at
    # 1,000,000 declarations. With SQLite's default page cache (2 MB) those pages were spilt to
    # the file and read again during the transaction (the copy 9.6 s, 4.6 s with this); they
    # now stay in memory, up to 1 GiB, until the commit writes them
    kb.execute("PRAGMA cache_size = -1048576")
    kb.execute("PRAGMA mmap_size = 4294967296")
    try:
        kb.execute("ATTACH DATABASE ':memory:' AS screened")
        kb.deserialize(screened.serialize(), name="screened")
        kb.execute("PRAGMA foreign_keys = ON")
        kb.execute("BEGIN IMMEDIATE")  # one writer: a concurrent add waits, then sees these
        try:
            result = _fill_added(kb, findings, reports, version, groups)
            kb.execute("COMMIT")
            return result
        except BaseException:
            kb.execute("ROLLBACK")
            raise
    finally:
        kb.close()


def _copy_rows(kb: sqlite3.Connection, table: str, where: str = "", verb: str = "INSERT",
               skip: tuple[str, ...] = ()) -> None:
    """The screener's rows of `table` (those `where` selects) into the knowledge base's,
    but for the columns `skip` (the knowledge base numbers them)."""
    def columns(schema: str) -> list[str]:
        return [c[1] for c in kb.execute(f'PRAGMA {schema}.table_info("{table}")')]  # ours

    theirs = set(columns("main")) - set(skip)
    names = ", ".join(f'"{c}"' for c in columns("screened") if c in theirs)
    kb.execute(f'{verb} INTO main."{table}" ({names}) '  # names are ours, not the user's
               f'SELECT {names} FROM screened."{table}" {where}')


def _fill_added(kb: sqlite3.Connection, findings: Sequence[Finding],
                reports: Sequence[LoadReport], version: str,
                groups: list[tuple[str]]) -> tuple[int, int]:
    built = kb.execute("SELECT rulebook_version FROM runs WHERE kind = 'build' "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    if built is None or built[0] != version:
        raise AddError("the knowledge base's build record names another rulebook version "
                       f"({built[0] if built else 'none'}) than the rulebooks it keeps "
                       f"({version}); build it again")
    new = kb.execute("SELECT COUNT(*), MIN(declared_on) FROM screened.declarations").fetchone()
    if not new[0]:
        raise AddError("no declaration to add (every row was rejected, or the file is empty)")
    known = [i for (i,) in kb.execute("SELECT n.id FROM screened.declarations AS n JOIN "
                                      "main.declarations AS d ON d.id = n.id ORDER BY n.id")]
    if known:
        raise AddError(f"{len(known):,} declaration id(s) are in the knowledge base already "
                       f"({', '.join(known[:5])}{', …' if len(known) > 5 else ''}): a "
                       "declaration is added once; to correct one, build again")
    latest = kb.execute("SELECT MAX(declared_on) FROM main.declarations").fetchone()[0]
    if latest is not None and new[1] <= latest:
        first = kb.execute("SELECT id FROM screened.declarations WHERE declared_on <= ? "
                           "ORDER BY declared_on, id LIMIT 1", [latest]).fetchone()[0]
        raise AddError(f"declaration {first} is dated {new[1]}, not after the knowledge base's "
                       f"latest declaration ({latest}): added declarations come after the "
                       "history (an earlier one changes the windows and licence draw-downs of "
                       "those after it); build again with every declaration instead")
    when = build_time()
    run_id = (kb.execute("SELECT COALESCE(MAX(id), 0) FROM main.runs").fetchone()[0]) + 1
    counts = {"declarations": int(new[0]),
              "declarations_rejected": sum(r.rejected_rows for r in reports),
              "findings": len(findings)}
    kb.execute("INSERT INTO main.runs (id, started_at, kind, rulebook_version, "
               "software_version, inputs, counts) VALUES (?, ?, 'add', ?, ?, ?, ?)",
               [run_id, when, version, software_version(),
                json.dumps([{"table": r.table, "file": r.file, "sha256": r.sha256}
                            for r in reports]), json.dumps(counts, sort_keys=True)])
    _copy_rows(kb, "declarations")
    kb.execute("UPDATE screened.rejected_rows SET run_id = ?", [run_id])
    _copy_rows(kb, "rejected_rows", skip=("id",))
    # the derived relations: by declaration, those of the new ones; by party or name, the new
    # keys and names (the knowledge base's own are earlier, or the same)
    windows = [n for (n,) in kb.execute("SELECT name FROM screened.excon_windows")]
    for table in [*MATERIALISED, *sorted(windows)]:
        if table == "code_value_ranges":
            # made again under the headings where a range learnt from history moves; a new
            # code elsewhere has a published or rulebook range, the same whatever the history
            kb.executemany("DELETE FROM main.code_value_ranges "
                           "WHERE SUBSTR(hs_code, 1, 4) = ?", groups)
            _copy_rows(kb, table, verb="INSERT OR IGNORE")
        elif table == "party_first_seen":
            _copy_rows(kb, table, verb="INSERT OR IGNORE")
        elif table == "listed_matches":  # all of a name's matches, or none
            _copy_rows(kb, table, "WHERE name NOT IN (SELECT name FROM main.listed_matches)")
        else:
            _copy_rows(kb, table)
    for table in ("party_name_keys", "listed_names", "party_reach"):
        _copy_rows(kb, table, verb="INSERT OR IGNORE")
    add_group_keys(kb, "screened")  # the windows' keys of the new declarations
    _publish_added(kb, findings, [n for (n,) in kb.execute(
        "SELECT DISTINCT licence_no FROM screened.declarations WHERE licence_no IS NOT NULL")])
    return run_id, int(new[0])


def _publish_added(kb: sqlite3.Connection, findings: Sequence[Finding],
             licences: Sequence[str]) -> None:
    """The new findings in `finding_details`, and the balances of the licences drawn on."""
    from dsl.findings import FINDING_COLUMNS

    kb.execute(f"CREATE TEMP TABLE excon_new_findings ({', '.join(FINDING_COLUMNS)})")
    marks = ", ".join("?" * len(FINDING_COLUMNS))
    kb.executemany(f"INSERT INTO excon_new_findings VALUES ({marks})",
                   [tuple(getattr(f, c) for c in FINDING_COLUMNS) for f in findings])
    create = sqlglot.parse_one(FINDING_DETAILS_SQL, read="sqlite")
    select = create.expression.transform(
        lambda n: exp.to_table("temp.excon_new_findings", alias=n.alias)
        if isinstance(n, exp.Table) and n.name == "findings" else n)
    kb.execute(exp.insert(select, "finding_details").sql(dialect="sqlite"))
    kb.execute("DROP TABLE temp.excon_new_findings")
    kb.execute("CREATE TEMP TABLE excon_drawn (licence_no TEXT PRIMARY KEY)")
    kb.executemany("INSERT INTO excon_drawn VALUES (?)", [(n,) for n in licences])
    drawn = exp.select("licence_no").from_("temp.excon_drawn")
    balances = sqlglot.parse_one(LICENCE_BALANCES_SQL, read="sqlite")
    assert isinstance(balances, exp.Select)
    kb.execute(exp.delete("licence_balances", where=exp.column("licence_no").isin(
        query=drawn.copy())).sql(dialect="sqlite"))
    kb.execute(exp.insert(balances.where(exp.column("licence_no", "l").isin(query=drawn)),
                          "licence_balances").sql(dialect="sqlite"))
    kb.execute("DROP TABLE temp.excon_drawn")
