"""Screening: run the compiled checks on declarations and return findings.

A `Screener` holds a private in-memory knowledge base built from the rulebooks (the law, the
support relations and the check views, no inputs). Each screening loads its declarations,
licences and parties into it inside a transaction, reads `findings`, and rolls back — so it
never touches a served database, and one Screener serves many screenings fast.
"""

from __future__ import annotations

import csv
import io
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

import dsl
from dsl.compile import FINDING_COLUMNS, CompiledRulebook
from kb.checks import install, materialise, refresh_inputs
from kb.engines import close_engines
from kb.load import CONTRACTS, LoadReport, load_csv, with_parameters
from kb.rulebook_rows import load_rulebook
from kb.schema import declaration_schema
from kb.tables import MIGRATIONS

DEFAULT_RULEBOOKS = (Path("rulebooks"),)


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

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in FINDING_COLUMNS}


class ScreeningError(Exception):
    """The rulebooks have errors, or an input file cannot be read."""


class Screener:
    """Screens declarations against one set of rulebooks (one screening at a time)."""

    def __init__(self, rulebooks: Sequence[Path] = DEFAULT_RULEBOOKS) -> None:
        result = dsl.load(rulebooks, declaration_schema())
        if not result.ok or result.rulebook is None:
            first = "\n".join(dsl.render(d, result.sources) for d in result.errors[:5])
            raise ScreeningError(f"the rulebooks have {len(result.errors)} error(s):\n{first}")
        self.rulebook = result.rulebook
        self.db = Database(memory=True)
        MIGRATIONS.apply(self.db)
        load_rulebook(self.db, self.rulebook, frozenset(), rulebooks)
        self.compiled: CompiledRulebook
        self.compiled, _ = install(self.db, self.rulebook)
        self.engines: dict[str, Any] = {}  # other engines' copies of the rulebook tables
        weakref.finalize(self, close_engines, self.engines)
        # turn the input-derived views into (empty) tables now, so that each screening
        # refills them without DDL and the compiled statements stay prepared
        materialise(self.db)
        self.db.conn.commit()

    def close(self) -> None:
        """Drop what this screener keeps on other engines (PostgreSQL schemas)."""
        close_engines(self.engines)

    @property
    def version(self) -> str:
        return self.rulebook.version

    @contextmanager
    def loaded(self, declarations: str | Path | IO[bytes] | None,
               licences: str | Path | IO[bytes] | None = None,
               parties: str | Path | IO[bytes] | None = None,
               as_of: str | None = None,
               unit_values: str | Path | IO[bytes] | None = None,
               reject_future: bool = False) -> Iterator[list[LoadReport]]:
        """Inputs loaded into the screener's knowledge base, with every relation derived from
        them, for the time of the `with` block; then the screener is empty again."""
        conn = self.db.conn
        reports: list[LoadReport] = []
        try:
            for table, source in (("unit_values", unit_values), ("trade_parties", parties),
                                  ("licences", licences), ("declarations", declarations)):
                if source is not None:
                    reports.append(load_csv(self.db, table, source,
                                            reject_future=reject_future))
            refresh_inputs(self.db)
            conn.execute("DELETE FROM excon_settings")
            if as_of is not None:
                conn.execute("INSERT INTO excon_settings (as_of) VALUES (?)", [as_of])
            yield reports
        finally:
            if conn.in_transaction:
                conn.rollback()
            for table in ("declarations", "licences", "trade_parties", "rejected_rows",
                          "party_name_keys", "licence_items", "excon_settings",
                          "listed_names", "party_reach", "unit_values"):
                conn.execute(f'DELETE FROM "{table}"')  # names are ours, not the user's
            conn.commit()

    def screen_files(self, declarations: str | Path | IO[bytes],
                     licences: str | Path | IO[bytes] | None = None,
                     parties: str | Path | IO[bytes] | None = None,
                     as_of: str | None = None,
                     engine: str = "sqlite",
                     unit_values: str | Path | IO[bytes] | None = None,
                     reject_future: bool = False,
                     ) -> tuple[list[Finding], list[LoadReport]]:
        """Screen input files (paths, '-' or binary streams); returns findings and the loads.
        `unit_values`: a published unit-value table that takes precedence over the rulebooks'
        indicative ranges (as `excon build --unit-values`).

        `engine="duckdb"` runs the same checks, printed in DuckDB's dialect, on a copy of the
        data in DuckDB (moved over from Python; no DuckDB extension is needed)."""
        conn = self.db.conn
        with self.loaded(declarations, licences, parties, as_of, unit_values,
                         reject_future) as reports:
            if engine == "duckdb":
                from kb.engines import duckdb_findings

                rows = duckdb_findings(conn, self.compiled, self.engines)
            elif engine.startswith("postgresql://"):
                from kb.engines import postgres_findings

                rows = postgres_findings(conn, self.compiled, engine, self.engines)
            else:
                rows = conn.execute(
                    "SELECT * FROM findings ORDER BY declaration_id, rule, outcome").fetchall()
            findings = [Finding(*row) for row in rows]
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
        findings, reports = self.screen_files(
            io.BytesIO(_csv_bytes("declarations", declarations)),
            # no licences or parties: nothing to load (the screener's tables are empty)
            io.BytesIO(_csv_bytes("licences", licences)) if licences else None,
            io.BytesIO(_csv_bytes("trade_parties", parties)) if parties else None,
            as_of, engine)
        for r in reports:
            if r.problems:
                p = r.problems[0]
                raise ScreeningError(f"{r.table} row {p.line - 1}: {p.column}: {p.value!r}: "
                                     f"expected {p.expected}")
        return findings


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


def _csv_bytes(table: str, rows: Iterable[Mapping[str, Any]]) -> bytes:
    columns = [f for f, _ in CONTRACTS[table].fields]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        if table == "declarations":
            row = with_parameters(row)
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue().encode("utf-8")


@cache
def _default_screener(rulebooks: tuple[Path, ...]) -> Screener:
    return Screener(rulebooks)


def screen(rows: Iterable[Mapping[str, Any]], as_of: str | None = None,
           licences: Iterable[Mapping[str, Any]] = (),
           parties: Iterable[Mapping[str, Any]] = (),
           rulebooks: Sequence[Path] = DEFAULT_RULEBOOKS) -> list[Finding]:
    """Findings for in-memory declarations, for tools that embed excon."""
    return _default_screener(tuple(Path(p) for p in rulebooks)).screen(rows, licences, parties,
                                                                       as_of)
