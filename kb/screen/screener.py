"""Screening: run the compiled checks on declarations and return findings.

A `Screener` holds a private in-memory knowledge base built from the rulebooks (the law, the
support relations and the check views, no inputs). Each screening loads its declarations,
licences and parties into it inside a transaction, reads `findings`, and rolls back — so it
never touches a served database, and one Screener serves many screenings fast.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlite_utils import Database

import dsl
from dsl.findings import BASES, FINDING_COLUMNS
from kb.inputs.contracts import Contract, contract_for
from kb.inputs.duckdb_reader import load_csv_duckdb
from kb.inputs.fields import with_parameters
from kb.inputs.load import load_csv
from kb.inputs.report import LoadReport
from kb.screen.checks import (
    fill_licence_rows,
    materialise,
    refresh_inputs,
    stand_licence_keys,
)
from kb.screen.history import History, HistoryTables, Windows
from kb.screen.start import read_start, start_key, started, write_start
from kb.store.schema import declaration_schema
from kb.store.tables import MIGRATIONS, SOURCES_TABLE

if TYPE_CHECKING:
    from dsl.compile import CompiledRulebook
    from dsl.rulebook import CheckedRulebook


@dataclass(frozen=True)
class Finding:
    """One finding: which declaration, which rule, what outcome, and the legal reason."""

    declaration_id: str
    rule: str
    outcome: str
    severity: str | None
    instrument: str | None
    provision: str | None
    explanation: str
    rulebook_version: str
    # what it rests on (`dsl.basis`): settled, lapsed-by-text or unverified, and why in words
    basis: str = "settled"
    caveat: str | None = None
    # the rulebook whose rule made it, and that rulebook's jurisdiction (a country or a group)
    rulebook: str | None = None
    jurisdiction: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in FINDING_COLUMNS}


class ScreeningError(Exception):
    """The rulebooks have errors, or an input file cannot be read."""


Source = str | Path | IO[bytes]
# the inputs a screening on DuckDB loads into DuckDB, not into the screener's SQLite tables
DUCKDB_INPUTS = ("declarations", "licences")
STATEMENTS_KEPT = 1024  # prepared statements a screener's connection keeps


class Screener:
    """Screens declarations against one set of rulebooks (one screening at a time).

    `Screener(rulebooks=[path, …])` screens against rulebook folders or files;
    `Screener(db=kb.db)` against the rulebooks a knowledge base was built from (it keeps them),
    with its declarations as **history**: a declaration screened then is judged as if it were
    the next one in the knowledge base — windows and first-seen dates see the knowledge base's
    earlier declarations, and a licence is drawn down after its earlier uses there. The
    knowledge base's licences and parties are used unless others are given. `licences` and
    `parties` given here load once and stay for every screening (a screening then gives
    none). `every_range` (with `db=`): the unit-value ranges learnt from history are made for
    every code under the loaded codes' headings where they move, not only for the loaded
    codes (what `kb.build.add` writes into the knowledge base)."""

    def __init__(self, rulebooks: Sequence[Path] | None = None, *, db: Path | None = None,
                 licences: Source | None = None, parties: Source | None = None,
                 every_range: bool = False, parameters: Mapping[str, str] | None = None
                 ) -> None:
        if rulebooks is None and db is None:
            raise ScreeningError("give the rulebooks to screen against (rulebooks=[…]) or a "
                                 "knowledge base built from them (db=…)")
        self.history = Path(db) if db is not None else None
        # with history, make the unit-value ranges that move under the loaded codes'
        # headings, not only those the screening needs (`kb.build.add` writes them)
        self.every_range = every_range
        if self.history is not None and not self.history.is_file():
            raise ScreeningError(f"{self.history} does not exist; build it with `excon build`")
        # parameters set to other values for this screener (`dsl.overrides`: NAME → "300 kg")
        self._settings = dict(parameters or {})
        self._paths = rulebooks
        self._rulebook: CheckedRulebook | None = None
        self._compiled: CompiledRulebook | None = None
        # over a knowledge base's own rulebooks, the start kept in excon's cache when one was
        # made before from the same rulebooks, settings and excon (`kb.screen.start`)
        key = start_key(kept_rulebooks(self.history), self._settings) \
            if rulebooks is None and self.history is not None else None
        start = read_start(key)
        if start is not None:
            self.db = Database(started(start, STATEMENTS_KEPT))
            self.windows = start.windows
            self._version = start.version
        else:
            # (sqlglot, the compiler, the rulebook's rows: not when started from the cache)
            from kb.screen.statements import install
            from kb.store.rulebook_rows import load_rulebook

            self._load_rulebooks()
            # a screening runs about 150 distinct statements: with the default cache of 128
            # each was evicted before its next use and prepared again at every call (the
            # findings query, over every check, 60 ms of a declaration screened alone)
            self.db = Database(sqlite3.connect(":memory:", cached_statements=STATEMENTS_KEPT))
            MIGRATIONS.apply(self.db)
            load_rulebook(self.db, self.rulebook, frozenset(), rulebooks or ())
            self._compiled, _ = install(self.db, self.rulebook, self._compiled)
            self.windows = Windows(self.compiled)  # what a screening with history reads
            self._version = self.rulebook.version
            # turn the input-derived views into (empty) tables now, so that each screening
            # refills them without DDL and the compiled statements stay prepared
            materialise(self.db)
            self.db.conn.commit()
            write_start(key, self.db.conn, self.windows, self._version)
        self.engines: dict[str, Any] = {}  # other engines' copies of the rulebook tables
        # the latest day a declaration of the last `screen_files(…, last=True)` was judged on
        # (not looked up for the screenings before it: one declaration at a time stays fast)
        self.last_judged_day: str | None = None
        self.spent = False  # its last screening is done (kept its rows): see `loaded`
        # the standing licences' items and agents' keys are in their tables (see `loaded`)
        self.licence_rows_ready = False
        weakref.finalize(self, _close_engines, self.engines)
        if self.history is not None:  # read-only, for as long as the screener lives
            self.db.conn.execute("ATTACH DATABASE ? AS history",
                                 [f"file:{self.history.resolve()}?mode=ro"])
            # each screening reads the history's windows by key all over the file: mapped
            # pages and a larger page cache of its own (a schema's is 2 MB by default) took
            # the history's part of a declaration screened alone from 173 to 123 ms at 1M
            self.db.conn.execute("PRAGMA history.mmap_size = 2147483648")
            self.db.conn.execute("PRAGMA history.cache_size = -262144")
        self.history_tables = HistoryTables(self.db.conn, self.windows) \
            if self.history is not None else None
        # licences and parties that stay for every screening
        self.standing: set[str] = set()
        # over a knowledge base, its own licences: a screening copies those its declarations
        # name (`_copy_named_licences`; all 157,708 of them and their 1.9M items copied at the
        # start took 1.6 s of a screener's start at 1,000,000 declarations)
        self.licences_of_history = licences is None and self.history is not None
        for table, source in (("licences", licences), ("trade_parties", parties)):
            if source is not None:
                report = load_csv(self.db, table, source)
                if report.problems:
                    p = report.problems[0]
                    raise ScreeningError(f"{report.file}:{p.line}: {p.column}: {p.value!r}: "
                                         f"expected {p.expected}")
                self.standing.add(table)
            elif self.history is not None:
                if table != "licences":
                    self._copy_from_history(table)
                self.standing.add(table)
        if self.licences_of_history:  # (split by the build: copied with them)
            self.licence_rows_ready = True
        elif "licences" in self.standing:  # split once, kept for every screening
            fill_licence_rows(self.db.conn)
            self.licence_rows_ready = True
        # what is made from the standing licences and trade parties alone, kept from one
        # screening to the next (kb.screen.checks.refresh_inputs)
        self.kept: dict[str, Any] = {"licences": "licences" in self.standing,
                                     "parties": "trade_parties" in self.standing}
        if self.kept["licences"] and not self.licences_of_history:
            stand_licence_keys(self.db.conn, self.kept)
        self.db.conn.commit()

    def _load_rulebooks(self) -> None:
        """Parse, check and compile the rulebooks (from excon's cache where it can)."""
        from dsl.overrides import SettingError

        try:
            if self._paths is None:
                assert self.history is not None
                result = self._rulebooks_of(self.history, self._settings)
            else:
                result = dsl.load(self._paths, declaration_schema(), parameters=self._settings)
        except SettingError as e:
            raise ScreeningError(str(e)) from None
        if not result.ok or result.rulebook is None:
            first = "\n".join(dsl.render(d, result.sources) for d in result.errors[:5])
            raise ScreeningError(f"the rulebooks have {len(result.errors)} error(s):\n{first}")
        self._rulebook, self._compiled = result.rulebook, result.compiled

    @property
    def rulebook(self) -> CheckedRulebook:
        """The checked rulebook (made now, when this screener started from excon's cache)."""
        if self._rulebook is None:
            self._load_rulebooks()
        assert self._rulebook is not None
        return self._rulebook

    @property
    def compiled(self) -> CompiledRulebook:
        """The compiled checks (made now, when this screener started from excon's cache)."""
        if self._compiled is None:
            self._load_rulebooks()  # (`dsl.load` compiles them, or raises)
        assert self._compiled is not None
        return self._compiled

    @staticmethod
    def _rulebooks_of(db: Path, settings: Mapping[str, str]) -> dsl.LoadResult:
        """The rulebooks a knowledge base was built from, as it keeps them: written once into
        excon's cache, in a folder named by their digest (so that their parsed trees are
        cached too, under names that stay the same), else into a temporary folder."""
        import hashlib
        import shutil
        import tempfile

        from dsl.cache import cache_root

        root = cache_root()
        if root is not None:
            with contextlib.suppress(OSError):
                files = kept_rulebooks(db)
                digest = hashlib.sha256(repr(sorted(files)).encode()).hexdigest()[:24]
                folder = root / "kept" / digest
                if not folder.is_dir():
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    made = Path(tempfile.mkdtemp(dir=folder.parent))
                    write_kept_rulebooks(db, made)
                    try:
                        made.rename(folder)  # whole or not at all
                    except OSError:  # made meanwhile by another process
                        shutil.rmtree(made, ignore_errors=True)
                return dsl.load([folder], declaration_schema(), parameters=settings)
        with tempfile.TemporaryDirectory() as tmp:
            write_kept_rulebooks(db, Path(tmp))
            return dsl.load([Path(tmp)], declaration_schema(), parameters=settings)

    def _copy_from_history(self, table: str, where: str = "") -> None:
        conn = self.db.conn
        # the columns both have (a declared fact of one set of rulebooks only stays empty)
        have = {c[1] for c in conn.execute(f'PRAGMA history.table_info("{table}")')}
        columns = ", ".join(f'"{c[1]}"' for c in
                            conn.execute(f'PRAGMA main.table_info("{table}")') if c[1] in have)
        conn.execute(f'INSERT INTO main."{table}" ({columns}) '  # names are ours
                     f'SELECT {columns} FROM history."{table}" {where}')

    def _copy_named_licences(self) -> frozenset[str]:
        """The knowledge base's licences that the loaded declarations name, with their items
        and agents' keys as its build split them, copied for this screening (which removes
        them with its other rows); the names they give (holders, end users)."""
        named = ("WHERE licence_no IN (SELECT licence_no FROM main.declarations "
                 "WHERE licence_no IS NOT NULL)")
        for table in ("licences", "licence_items", "licence_agent_keys"):
            self._copy_from_history(table, named)
        return frozenset(n for row in self.db.conn.execute(
            "SELECT holder, end_user FROM main.licences") for n in row if n)

    def _copy_inputs(self, other: Screener) -> None:
        """The validated input rows another screener holds, copied into this one (each table
        indexed once, after its rows, as a load does)."""
        from kb.inputs.csv_files import bulk_cache, deferred_indexes

        conn = self.db.conn
        with bulk_cache(conn):
            for table in ("unit_values", "trade_parties", "licences", "declarations"):
                if table in self.standing:
                    continue
                # the columns both have (a fact declared by one set of rulebooks only: empty)
                have = {c[1] for c in other.db.conn.execute(f'PRAGMA table_info("{table}")')}
                columns = ", ".join(f'"{c[1]}"' for c in conn.execute(
                    f'PRAGMA table_info("{table}")') if c[1] in have)  # names are ours
                cursor = other.db.conn.execute(f'SELECT {columns} FROM "{table}"')
                marks = ", ".join("?" * len(cursor.description))
                with conn, deferred_indexes(conn, table):
                    while rows := cursor.fetchmany(100_000):
                        conn.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})',
                                         rows)

    def close(self) -> None:
        """Drop what this screener keeps on other engines (PostgreSQL schemas)."""
        _close_engines(self.engines)

    @property
    def version(self) -> str:
        return self._version

    @contextmanager
    def loaded(self, declarations: str | Path | IO[bytes] | None,
               licences: str | Path | IO[bytes] | None = None,
               parties: str | Path | IO[bytes] | None = None,
               as_of: str | None = None,
               unit_values: str | Path | IO[bytes] | None = None,
               reject_future: bool = False, derive: bool = True,
               rows_from: Screener | None = None, last: bool = False,
               to_duckdb: Any = None) -> Iterator[list[LoadReport]]:
        """Inputs loaded into the screener's knowledge base, with every relation derived from
        them (unless `derive` is false: only those Python computes), for the time of the
        `with` block; then the screener is empty again. `rows_from`: another screener inside
        its own `loaded` block, whose validated inputs are copied instead of loading files
        again (what `excon diff` screens under two versions of the rulebooks). `last`: this
        screener's last screening, whose rows need not be removed afterwards (8 s at
        1,000,000 declarations, for a command about to exit); it screens nothing more.
        `to_duckdb`: a DuckDB connection (`kb.screen.engines.duckdb_connection`) that the validated
        declarations and licences go to instead of the screener's SQLite tables, for a
        screening on DuckDB (not with history or `rows_from`, which read them in SQLite)."""
        if self.spent:
            raise ScreeningError("this screener's last screening is done: make another")
        conn = self.db.conn
        reports: list[LoadReport] = []
        given = {t for t, source in (("licences", licences), ("trade_parties", parties))
                 if source is not None}
        if given & self.standing:
            raise ScreeningError(f"this screener keeps its {' and '.join(sorted(given))}: "
                                 "give them when it is made, not to each screening")
        if to_duckdb is not None and (self.history is not None or rows_from is not None):
            raise ScreeningError("inputs go to DuckDB only without history or rows_from")
        try:
            if rows_from is not None:
                self._copy_inputs(rows_from)
            for table, source in (("unit_values", unit_values), ("trade_parties", parties),
                                  ("licences", licences), ("declarations", declarations)):
                if source is not None:
                    with csv_source(source) as (readable, name):
                        reports.append(self._load(table, readable, name, reject_future,
                                                  to_duckdb if table in DUCKDB_INPUTS
                                                  else None))
            if self.licences_of_history:
                self.kept["licence_names"] = self._copy_named_licences()
            # the history each relation that looks at other declarations needs
            history = History(self.history_tables, self.every_range) \
                if self.history_tables is not None else None
            # standing licences' items and agents' keys were split when they were loaded
            refresh_inputs(self.db, derive or history is not None, to_duckdb,
                           licences_kept=self.licence_rows_ready, history=history,
                           kept=self.kept)
            conn.execute("DELETE FROM excon_settings")
            if as_of is not None:
                conn.execute("INSERT INTO excon_settings (as_of) VALUES (?)", [as_of])
            yield reports
        finally:
            if conn.in_transaction:
                conn.rollback()
            self.spent = last
            inputs = ("declarations", "licences", "trade_parties", "rejected_rows",
                      "party_name_keys", "licence_items", "licence_agent_keys",
                      "excon_settings", "listed_names",
                      "party_reach", "unit_values")
            for table in () if last else inputs:
                if table in ("licence_items", "licence_agent_keys") and \
                        self.licence_rows_ready and not self.licences_of_history:
                    continue
                if table == "licences" and self.licences_of_history:
                    conn.execute("DELETE FROM licences")
                    continue
                if table == "party_name_keys" and self.kept.get("licence_keys"):
                    continue  # the licences' names stand; the declared ones were rolled back
                if table not in self.standing:
                    conn.execute(f'DELETE FROM "{table}"')  # names are ours, not the user's
            conn.commit()

    def _load(self, table: str, source: Source, name: str | None, reject_future: bool,
              duck: Any = None) -> LoadReport:
        """One input file into the knowledge base, or (`duck`) into a DuckDB connection: read
        and validated by DuckDB's reader when the file allows it (`load_csv_duckdb`), else
        validated row by row and sent there in batches (`DuckRows`)."""
        if duck is None:
            return load_csv(self.db, table, source, name=name, reject_future=reject_future)
        if isinstance(source, str | Path) and str(source) != "-":
            report = load_csv_duckdb(self.db, duck, table, source, name=name,
                                     reject_future=reject_future)
            if report is not None:
                return report
        from kb.screen.engines import DuckRows

        sink = DuckRows(duck, self.db.conn, table)
        try:
            return load_csv(self.db, table, source, name=name, reject_future=reject_future,
                            rows_to=sink)
        finally:
            sink.close()

    def _latest_day(self, duck: Any) -> str | None:
        """The latest declaration date of the screened declarations (not the history's)."""
        found = (duck or self.db.conn).execute(
            "SELECT MAX(declared_on) FROM declarations").fetchone()
        return str(found[0]) if found and found[0] is not None else None

    def screen_files(self, declarations: str | Path | IO[bytes],
                     licences: str | Path | IO[bytes] | None = None,
                     parties: str | Path | IO[bytes] | None = None,
                     as_of: str | None = None,
                     engine: str = "sqlite",
                     unit_values: str | Path | IO[bytes] | None = None,
                     reject_future: bool = False, last: bool = False,
                     then: Callable[[Any, list[Finding], list[LoadReport]], None] | None = None,
                     ) -> tuple[list[Finding], list[LoadReport]]:
        """Screen input files (paths, '-' or binary streams); returns findings and the loads.
        `unit_values`: a published unit-value table that takes precedence over the rulebooks'
        indicative ranges (as `excon build --unit-values`).

        `engine="duckdb"` runs the same checks, printed in DuckDB's dialect, in DuckDB: the
        declarations are validated straight into it, the other inputs and the rulebook's
        tables are copied over as Arrow batches (no DuckDB extension is needed);
        `engine="spark"` on a local Spark session; a PostgreSQL connection string
        (`postgresql://…`) on that server, in a schema of their own. Each engine derives the
        support relations itself (`kb.screen.statements.derive_statements`). Inputs may be CSV or
        Parquet (a path ending in `.parquet`). `then(connection, findings, loads)`: called
        with the screener's connection while the inputs and every relation derived from them
        are still loaded (what `kb.add` copies into a knowledge base)."""
        conn = self.db.conn
        if engine not in ("sqlite", "duckdb", "spark") and \
                not engine.startswith(("postgresql://", "postgres://")):
            raise ScreeningError(f"unknown engine {engine!r}: sqlite, duckdb, spark or a "
                                 "PostgreSQL connection string (postgresql://…)")
        duck = None
        if engine == "duckdb" and self.history is None:
            # the declarations (and licences) are validated straight into DuckDB
            from kb.screen.engines import duckdb_connection

            duck = duckdb_connection(conn, self.engines)
        with self.loaded(declarations, licences, parties, as_of, unit_values,
                         reject_future, derive=engine == "sqlite", last=last,
                         to_duckdb=duck) as reports:
            if engine == "duckdb":
                from kb.screen.engines import duckdb_findings

                # with the declarations in DuckDB, refresh_inputs left the licences' items
                # for DuckDB to split
                made_here: tuple[str, ...] = (("declarations", "licence_items")
                                              if duck is not None else ())
                if duck is not None and licences is not None:
                    made_here += ("licences",)
                # with history, SQLite made the relations over it: DuckDB takes them
                rows = duckdb_findings(conn, self.compiled, self.engines, made_here=made_here,
                                       derived=self.history is not None)
            elif engine == "spark":
                from kb.screen.engines import spark_findings

                rows = spark_findings(conn, self.compiled, self.engines)
            elif engine.startswith(("postgresql://", "postgres://")):
                from kb.screen.engines import postgres_findings

                rows = postgres_findings(conn, self.compiled, engine, self.engines)
            else:
                rows = conn.execute(
                    "SELECT * FROM findings ORDER BY declaration_id, rule, outcome").fetchall()
            findings = [Finding(*row) for row in rows]
            self.last_judged_day = as_of or (self._latest_day(duck if engine == "duckdb"
                                                              else None) if last else None)
            if then is not None:
                then(conn, findings, reports)
        return findings, reports

    def screen(self, declarations: Iterable[Mapping[str, Any]],
               licences: Iterable[Mapping[str, Any]] = (),
               parties: Iterable[Mapping[str, Any]] = (),
               as_of: str | None = None, engine: str = "sqlite") -> list[Finding]:
        """Screen in-memory rows (dicts with the contract's columns; missing ones are empty).

        Rows are validated exactly as files are; a row that fails validation raises
        ScreeningError naming the field and what was expected.
        """
        licences, parties = list(licences), list(parties)

        def csv_of(table: str, rows: list[Mapping[str, Any]]) -> io.BytesIO:
            return io.BytesIO(_csv_bytes(contract_for(self.db.conn, table), rows))

        findings, reports = self.screen_files(
            csv_of("declarations", list(declarations)),
            # no licences or parties: nothing to load (the screener's tables are empty)
            csv_of("licences", licences) if licences else None,
            csv_of("trade_parties", parties) if parties else None,
            as_of, engine)
        for r in reports:
            if r.problems:
                p = r.problems[0]
                raise ScreeningError(f"{r.table} row {p.line - 1}: {p.column}: {p.value!r}: "
                                     f"expected {p.expected}")
        return findings


def beyond_sources(screener: Screener, day: str | None) -> list[tuple[str, str]]:
    """The rulebooks whose sources were checked through a day before `day` (a declaration
    judged on it may meet a decision they do not know): (rulebook, the day), by name."""
    if not day:
        return []
    return [(name, checked) for name, checked in screener.db.conn.execute(
        "SELECT name, sources_checked FROM rulebooks WHERE sources_checked < ? ORDER BY name",
        [day])]


def basis_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings rest on each basis (settled, lapsed-by-text, unverified)."""
    counts = dict.fromkeys(BASES, 0)
    for f in findings:
        counts[f.basis] = counts.get(f.basis, 0) + 1
    return counts


def kept_rulebooks(db: Path | Any) -> list[tuple[str, str]]:
    """The rulebook files (path, text) a knowledge base (a file, or a connection) keeps
    (ScreeningError when it keeps none)."""
    import sqlite3

    def kept(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        try:
            return conn.execute(f"SELECT path, text FROM {SOURCES_TABLE}").fetchall()
        except sqlite3.OperationalError:
            return []

    if isinstance(db, sqlite3.Connection):
        files = kept(db)
    else:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            files = kept(conn)
    if not files:
        raise ScreeningError(f"{db} keeps no rulebooks (built by an older excon): give "
                             "rulebooks=[…] as well")
    return files


def write_kept_rulebooks(db: Path | Any, folder: Path) -> None:
    """Write the rulebook files a knowledge base (a file, or a connection) keeps into
    `folder` (ScreeningError when it keeps none, or names a path outside the folder)."""
    for path, text in kept_rulebooks(db):
        target = folder / path
        if not target.resolve().is_relative_to(folder.resolve()):
            raise ScreeningError(f"{db}: a rulebook path outside its folder: {path!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


@contextmanager
def csv_source(source: Source) -> Iterator[tuple[Source, str | None]]:
    """An input as CSV: a Parquet file (`.parquet`) is written out as CSV by DuckDB's reader
    first, so that its rows are validated exactly as a CSV file's are (a problem's line is
    then the row number plus one, for the header)."""
    if not (isinstance(source, str | Path) and str(source).lower().endswith(".parquet")):
        yield source, None
        return
    import tempfile

    import duckdb

    if not Path(source).is_file():
        raise ScreeningError(f"{source}: cannot open it: no such file")
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect() as conn:
        converted = Path(tmp) / "rows.csv"
        try:
            conn.read_parquet(str(source)).write_csv(str(converted), header=True)
        except duckdb.Error as e:
            raise ScreeningError(f"{source}: not a readable Parquet file: {e}") from None
        yield converted, f"{source} (Parquet)"


# Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text that a spreadsheet would run as a formula, with a leading apostrophe, which
    spreadsheets display as text and hide; other values as they are. The original is one
    leading apostrophe away: a cell that begins with an apostrophe followed by one of
    FORMULA_START had it added."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _close_engines(held: dict[str, Any]) -> None:
    """The other engines a screener used closed (`kb.screen.engines`, imported by then: a
    screener that used none does not import it, nor it at exit)."""
    if held:
        from kb.screen.engines import close_engines

        close_engines(held)


def _csv_bytes(contract: Contract, rows: Iterable[Mapping[str, Any]]) -> bytes:
    table = contract.table
    columns = [f for f, _ in contract.fields]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        if table == "declarations":
            row = with_parameters(row)
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue().encode("utf-8")


@cache
def _screener_for(rulebooks: tuple[Path, ...] | None, db: Path | None) -> Screener:
    return Screener(rulebooks, db=db)


def screen(rows: Iterable[Mapping[str, Any]], as_of: str | None = None,
           licences: Iterable[Mapping[str, Any]] = (),
           parties: Iterable[Mapping[str, Any]] = (), *,
           rulebooks: Sequence[Path] | None = None, db: Path | None = None) -> list[Finding]:
    """Findings for in-memory declarations, for tools that embed excon: against `rulebooks`,
    or against the knowledge base `db` (its rulebooks, declarations as history, licences and
    parties). The screener is made once per `rulebooks` or `db` and kept."""
    screener = _screener_for(tuple(Path(p).resolve() for p in rulebooks) if rulebooks else None,
                             Path(db).resolve() if db else None)
    return screener.screen(rows, licences, parties, as_of)
