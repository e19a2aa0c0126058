"""Load `declarations.csv`, `licences.csv` and `parties.csv` (DESIGN.md's contracts).

Every field is validated. A bad row is reported with file, line, column, value and what was
expected, and kept in `rejected_rows`; good rows load. A load is one transaction: if it fails
or is interrupted, the database is as it was. Loading the same file again changes nothing
(rows are upserted by their id). Files are streamed, so memory stays flat however large they are.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

from kb.schema import country_codes
from kb.tables import SPECS

BATCH = 5000


class LoadError(Exception):
    """A file that cannot be loaded at all (unreadable, not UTF-8, wrong header)."""


@dataclass
class Problem:
    line: int
    column: str
    value: str
    expected: str


@dataclass
class LoadReport:
    table: str
    file: str
    sha256: str = ""
    loaded: int = 0
    rejected_rows: int = 0
    problems: list[Problem] = field(default_factory=list)  # first few, for display

    def summary(self) -> str:
        return (f"{self.file}: {self.loaded:,} {self.table} rows loaded, "
                f"{self.rejected_rows:,} rejected")


# ---------------------------------------------------------------- field validators
# Each returns the value to store, or raises ValueError with what was expected.


def _required(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("a value (it may not be empty)")
    return v


def _optional(v: str) -> str | None:
    v = v.strip()
    return v or None


def _date(v: str) -> str:
    v = v.strip()
    if len(v) != 10 or v[4] != "-" or v[7] != "-":
        raise ValueError("a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(v)
    except ValueError:
        raise ValueError("a real calendar date YYYY-MM-DD") from None
    return v


def _country_checker() -> tuple[Callable[[str], str], Callable[[str], str | None]]:
    known = country_codes()

    def country(v: str) -> str:
        v = v.strip()
        if v not in known:
            raise ValueError("an ISO 3166 alpha-2 country code (such as US, DE, TH)")
        return v

    def optional_country(v: str) -> str | None:
        return country(v) if v.strip() else None

    return country, optional_country


_country, _optional_country = _country_checker()


def _hs_code(v: str) -> str:
    digits = v.replace(".", "").replace(" ", "").strip()
    if not digits.isdigit() or len(digits) not in (8, 10):
        raise ValueError("a customs code of 8 or 10 digits (dots and spaces allowed)")
    return digits


def _number(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise ValueError("a number (such as 1250.5)") from None
    if not math.isfinite(x) or x < 0:
        raise ValueError("a number that is not negative")
    return x


def _optional_number(v: str) -> float | None:
    return _number(v) if v.strip() else None


def _percent(v: str) -> float | None:
    if not v.strip():
        return None
    x = _number(v)
    if x > 100:
        raise ValueError("a percentage between 0 and 100")
    return x


def _kind(v: str) -> str:
    v = v.strip().lower()
    if v not in ("individual", "general"):
        raise ValueError("individual or general")
    return v


def _items(v: str) -> str:
    parts = [p.strip() for p in v.split(";") if p.strip()]
    if not parts:
        raise ValueError("one or more control or customs codes separated by ';'")
    out = []
    for p in parts:
        digits = p.replace(".", "").replace(" ", "")
        out.append(digits if digits.isdigit() else p)
    return ";".join(out)


@dataclass(frozen=True)
class Contract:
    """One input file's columns, each with its validator, and its key column."""

    table: str
    key: str
    fields: tuple[tuple[str, Callable[[str], Any]], ...]


CONTRACTS = {
    "declarations": Contract("declarations", "id", (
        ("id", _required), ("declared_on", _date), ("exporter", _required),
        ("consignee", _required), ("consignee_country", _country), ("end_user", _optional),
        ("end_user_country", _optional_country), ("destination_country", _country),
        ("hs_code", _hs_code), ("description", _optional), ("quantity_kg", _number),
        ("value_usd", _number), ("purity_pct", _percent), ("licence_no", _optional),
    )),
    "licences": Contract("licences", "licence_no", (
        ("licence_no", _required), ("kind", _kind), ("holder", _required), ("items", _items),
        ("destination_country", _optional_country), ("end_user", _optional),
        ("quantity_kg", _optional_number), ("valid_from", _date), ("valid_to", _date),
    )),
    "trade_parties": Contract("trade_parties", "name", (
        ("name", _required), ("country", _optional_country), ("address", _optional),
        ("phone", _optional), ("parent", _optional),
    )),
}
FILE_CONTRACTS = {"declarations.csv": "declarations", "licences.csv": "licences",
                  "parties.csv": "trade_parties"}


class _HashingReader(io.RawIOBase):
    """Wraps a binary stream, hashing and counting the bytes read (for the audit and progress)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.sha.update(data)
        self.count += n
        return n


def _rows(stream: io.RawIOBase, name: str) -> Iterator[tuple[int, list[str]]]:
    text = io.TextIOWrapper(io.BufferedReader(stream, 1 << 20), encoding="utf-8-sig",
                            newline="")
    reader = csv.reader(text, strict=True)
    try:
        for row in reader:
            yield reader.line_num, row
    except UnicodeDecodeError as e:
        raise LoadError(
            f"{name}: not UTF-8 text near line {reader.line_num + 1} ({e.reason})") from None
    except csv.Error as e:
        raise LoadError(f"{name}:{reader.line_num}: malformed CSV: {e}") from None


def _progress(total: int | None, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A progress bar on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return (lambda _n: None), (lambda: None)
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(TextColumn(label), BarColumn(), TransferSpeedColumn(),
                        transient=True)
    task = progress.add_task(label, total=total)
    progress.start()
    return (lambda n: progress.update(task, completed=n)), progress.stop


def load_csv(db: Database, table: str, source: str | Path | IO[bytes], run_id: int | None = None,
             name: str | None = None, keep_problems: int = 20) -> LoadReport:
    """Load one CSV file (a path, '-' for stdin, or a binary stream) into `table`, atomically."""
    contract = CONTRACTS[table]
    if isinstance(source, str | Path) and str(source) != "-":
        path = Path(source)
        name = name or str(source)
        try:
            stream: IO[bytes] = path.open("rb")
        except OSError as e:
            raise LoadError(f"{name}: cannot open it: {e.strerror}") from None
        total: int | None = path.stat().st_size
    else:
        stream = sys.stdin.buffer if str(source) == "-" else source  # type: ignore[assignment]
        name = name or "<stdin>"
        total = None
    hashing = _HashingReader(stream)
    report = LoadReport(table, name)
    conn = db.conn
    try:
        rows = _rows(hashing, name)
        try:
            _, header = next(rows)
        except StopIteration:
            raise LoadError(f"{name}: the file is empty; expected a header row") from None
        header = [h.strip() for h in header]
        wanted = [f for f, _ in contract.fields]
        missing = [f for f in wanted if f not in header]
        if missing:
            raise LoadError(f"{name}:1: the header lacks the column(s) {', '.join(missing)}; "
                            f"expected {','.join(wanted)}")
        positions = [header.index(f) for f in wanted]
        validators = [v for _, v in contract.fields]
        width = len(header)
        cols = ", ".join(f'"{f}"' for f in wanted)
        marks = ", ".join("?" for _ in wanted)
        # table and column names come from the contract, never from the file
        insert = f'INSERT OR REPLACE INTO "{table}" ({cols}) VALUES ({marks})'
        reject = ('INSERT INTO rejected_rows (run_id, file, line, "column", value, expected, row)'
                  " VALUES (?, ?, ?, ?, ?, ?, ?)")
        first_line_of: dict[str, int] = {}
        batch: list[tuple[Any, ...]] = []
        rejected: list[tuple[Any, ...]] = []
        update, stop = _progress(total, f"loading {name}")
        conn.execute("BEGIN")
        try:
            for line, raw in rows:
                if len(raw) != width:
                    if not raw:
                        continue
                    problem = Problem(line, "(row)", f"{len(raw)} fields",
                                      f"{width} fields, as in the header")
                    rejected.append(_rejection(run_id, name, problem, header, raw))
                    report.rejected_rows += 1
                    _keep(report, problem, keep_problems)
                    continue
                values = []
                problems = []
                for field_name, pos, check in zip(wanted, positions, validators, strict=True):
                    v = raw[pos]
                    try:
                        values.append(check(v))
                    except ValueError as e:
                        problems.append(Problem(line, field_name, v, str(e)))
                if not problems:
                    key = values[0]
                    first = first_line_of.setdefault(key, line)
                    if first != line:
                        problems.append(Problem(line, contract.key, key,
                                                f"a unique {contract.key}; line {first} has it"))
                if problems:
                    report.rejected_rows += 1
                    for p in problems:
                        rejected.append(_rejection(run_id, name, p, header, raw))
                        _keep(report, p, keep_problems)
                    continue
                batch.append(tuple(values))
                if len(batch) >= BATCH:
                    conn.executemany(insert, batch)
                    report.loaded += len(batch)
                    batch.clear()
                    update(hashing.count)
                if len(rejected) >= BATCH:
                    conn.executemany(reject, rejected)
                    rejected.clear()
            if batch:
                conn.executemany(insert, batch)
                report.loaded += len(batch)
            if rejected:
                conn.executemany(reject, rejected)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            stop()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    report.sha256 = hashing.sha.hexdigest()
    return report


def _keep(report: LoadReport, problem: Problem, limit: int) -> None:
    if len(report.problems) < limit:
        report.problems.append(problem)


def _rejection(run_id: int | None, file: str, p: Problem, header: list[str],
               raw: list[str]) -> tuple[Any, ...]:
    row = dict(zip(header, raw, strict=False)) if len(raw) == len(header) else {"fields": raw}
    return (run_id, file, p.line, p.column, p.value, p.expected,
            json.dumps(row, ensure_ascii=False))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["CONTRACTS", "FILE_CONTRACTS", "SPECS", "LoadError", "LoadReport", "load_csv"]
