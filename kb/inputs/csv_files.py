"""Reading an input file: bytes hashed as they are read, rows in batches with their line
numbers, the header checked against its contract, progress; then what a load keeps of a
rejected row, and the SQLite settings of a bulk load.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dsl.diagnostics import did_you_mean
from kb.inputs.contracts import Col, Contract
from kb.inputs.report import BATCH, LoadError, LoadReport, Problem


class HashingReader(io.RawIOBase):
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


# The longest field a row may have, in characters; a longer one rejects its row.
MAX_FIELD = 2_000
# What the CSV parser takes into one field before it gives up on the row (bytes): beyond
# MAX_FIELD, so that a long field is rejected with its length rather than a parser error.
CSV_FIELD_LIMIT = 1 << 16
# Invalid UTF-8 bytes, decoded with surrogateescape: lone surrogates U+DC80-U+DCFF.
NOT_UTF8 = re.compile("[\udc80-\udcff]")


@dataclass
class Broken:
    """A record the CSV parser could not read (a stray quote, a field over the limit)."""
    line: int
    message: str


class Batches:
    """CSV rows in batches read at C speed; line numbers are worked out only when needed.

    A record the parser cannot read is set aside (`Broken`, with the line it starts on) and
    reading goes on at the next line; invalid UTF-8 is decoded with surrogateescape, so the
    row it is in can be rejected alone (see `unsafe_cells`). Only a quote that is never
    closed, which leaves the rest of the file without rows, fails the file."""

    def __init__(self, stream: io.RawIOBase, name: str) -> None:
        text = io.TextIOWrapper(io.BufferedReader(stream, 1 << 20), encoding="utf-8-sig",
                                errors="surrogateescape", newline="")
        if csv.field_size_limit() < CSV_FIELD_LIMIT:
            csv.field_size_limit(CSV_FIELD_LIMIT)
        self.reader = csv.reader(text, strict=True)
        self.name = name

    def header(self) -> list[str] | None:
        try:
            row = next(self.reader, None)
        except csv.Error as e:
            raise LoadError(f"{self.name}:1: the header is not a CSV row: {e}") from None
        if row is not None and any(NOT_UTF8.search(h) for h in row):
            raise LoadError(f"{self.name}:1: the header is not UTF-8 text")
        return row

    def __iter__(self) -> Iterator[tuple[list[list[str]], Callable[[int], int], list[Broken]]]:
        while True:
            batch: list[list[str]] = []
            broken: list[Broken] = []
            segments: list[tuple[int, int, int]] = []  # (first row, start line, end line)
            while len(batch) < BATCH:
                first, start = len(batch), self.reader.line_num
                try:
                    batch.extend(itertools.islice(self.reader, BATCH - len(batch)))
                except csv.Error as e:
                    # the rows before the bad record are in the batch (list.extend keeps
                    # them); the record began on the line after the last of them
                    line = start + 1 + sum(1 + sum(f.count("\n") for f in row)
                                           for row in batch[first:])
                    segments.append((first, start, line - 1))
                    if "unexpected end of data" in str(e):
                        raise LoadError(
                            f"{self.name}:{line}: the row that starts on line {line} opens a "
                            "quote that is never closed, so the rest of the file cannot be "
                            "split into rows; close the quote (a quote inside a field is "
                            "written twice: \"\")") from None
                    broken.append(Broken(line, f"a CSV row ({e})"))
                    continue
                segments.append((first, start, self.reader.line_num))
                if len(batch) - first < BATCH - first:
                    break  # the end of the file
            if not batch and not broken:
                return
            yield batch, _segment_lines(batch, segments), broken
            if len(batch) < BATCH:
                return


def _line_numbers(batch: list[list[str]], start: int, end: int) -> Callable[[int], int]:
    """Row index -> line number. Rows with quoted line breaks take more than one line."""
    if end - start == len(batch):
        return lambda i: start + 1 + i
    first = []
    line = start + 1
    for row in batch:
        first.append(line)
        line += 1 + sum(f.count("\n") for f in row)
    return first.__getitem__


def _segment_lines(batch: list[list[str]], segments: list[tuple[int, int, int]]
                   ) -> Callable[[int], int]:
    """Row index -> line number, over the runs of rows read between broken records."""
    if len(segments) == 1:
        return _line_numbers(batch, segments[0][1], segments[0][2])
    firsts: list[int] = []
    for k, (first, start, end) in enumerate(segments):
        last = segments[k + 1][0] if k + 1 < len(segments) else len(batch)
        of = _line_numbers(batch[first:last], start, end)
        firsts.extend(of(i) for i in range(last - first))
    return firsts.__getitem__


def checked_header(contract: Contract, first_row: list[str] | None, name: str
            ) -> tuple[list[str], list[str], list[int | None]]:
    """The header's column names, the contract's fields, and where each field is in a row
    (None: an optional column the file leaves out)."""
    if first_row is None:
        raise LoadError(f"{name}: the file is empty; expected a header row")
    header = [contract.aliases.get(h.strip(), h.strip()) for h in first_row]
    wanted = [f for f, _ in contract.fields]
    for f in wanted:
        given = [first_row[i].strip() for i, h in enumerate(header) if h == f]
        if len(given) > 1:
            raise LoadError(f"{name}:1: the column {f} is given more than once "
                            f"({', '.join(given)}); keep one")
    missing = [f for f in wanted if f not in header and f not in contract.optional_columns]
    if missing:
        raise LoadError(f"{name}:1: the header lacks the column(s) {', '.join(missing)}; "
                        f"expected {','.join(wanted)}")
    return header, wanted, [header.index(f) if f in header else None for f in wanted]


def unknown_columns(contract: Contract, header: list[str]) -> list[tuple[str, str | None]]:
    """The header's columns that no field of the contract reads, each with a did-you-mean
    when a field's name is close (`parameter` for `parameters`)."""
    wanted = [f for f, _ in contract.fields]
    derived = {name: of for name, of, _ in contract.derived}
    return [(h, f"state it in the {derived[h]} column, as {h}=…" if h in derived
             else did_you_mean(h, wanted)) for h in header if h and h not in wanted]


def progress_bar(total: int | None, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A progress bar on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return (lambda _n: None), (lambda: None)
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(TextColumn(label), BarColumn(), TransferSpeedColumn(),
                        transient=True)
    task = progress.add_task(label, total=total)
    progress.start()
    return (lambda n: progress.update(task, completed=n)), progress.stop


@contextlib.contextmanager
def bulk_cache(conn: sqlite3.Connection, mebibytes: int = 128) -> Iterator[None]:
    """A larger page cache while loading (inserts and index builds spill less); restored after."""
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{mebibytes * 1024}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(before)}")


@contextlib.contextmanager
def deferred_indexes(conn: sqlite3.Connection, table: str, bulk: bool = True
                     ) -> Iterator[None]:
    """Into an empty table, load first and index afterwards: building an index once from
    sorted data is far cheaper than keeping it up to date row by row. Runs inside the
    caller's transaction, so a failure rolls the dropped indexes back too."""
    empty = bulk and conn.execute(
        f'SELECT NOT EXISTS (SELECT 1 FROM "{table}")').fetchone()[0]
    indexes = [] if not empty else conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL", [table]).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        conn.execute(sql)


def unsafe_cells(col: Col) -> list[tuple[int, tuple[str, str]]]:
    """Cells no column may hold: invalid UTF-8, or more than MAX_FIELD characters; as (row,
    (value shown, what was expected)). One scan of the column when there are none."""
    out: list[tuple[int, tuple[str, str]]] = []
    if max(map(len, col), default=0) > MAX_FIELD:
        out += [(i, (f"{_shown(v[:60])}… ({len(v):,} characters)",
                     f"at most {MAX_FIELD:,} characters"))
                for i, v in enumerate(col) if len(v) > MAX_FIELD]
    try:  # undecodable bytes (surrogate escapes) do not encode: a C-speed test of the column
        "".join(col).encode("utf-8")
    except UnicodeEncodeError:
        out += [(i, (_shown(v), "UTF-8 text (this field has bytes that are not UTF-8)"))
                for i, v in enumerate(col) if NOT_UTF8.search(v)]
    return out


def _shown(text: str) -> str:
    """A text as it can be stored and printed: invalid UTF-8 bytes as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def keep_problem(report: LoadReport, problem: Problem, limit: int) -> None:
    if len(report.problems) < limit:
        report.problems.append(problem)


REJECT_SQL = ('INSERT INTO rejected_rows (run_id, file, line, "column", value, expected, row, '
              "end_line, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def rejection(run_id: int | None, file: str, p: Problem, header: list[str],
               raw: list[str]) -> tuple[Any, ...]:
    """A `rejected_rows` row: where, why, the fields by column (JSON), the last line the row
    runs to and the row as CSV text (written as the parser read it: every line of it)."""
    raw = [_shown(v) for v in raw]
    row = dict(zip(header, raw, strict=False)) if len(raw) == len(header) else {"fields": raw}
    text = io.StringIO()
    if raw:
        csv.writer(text, lineterminator="").writerow(raw)
    end = p.line + sum(v.count("\n") for v in raw)
    return (run_id, file, p.line, p.column, _shown(p.value), p.expected,
            json.dumps(row, ensure_ascii=False), end, text.getvalue() or None)


def swallowed_rows(batch: list[list[str]], width: int,
                   line_of: Callable[[int], int]) -> list[tuple[int, Problem]]:
    """Rows of the right width that hold another row, as a quote left open in one row and
    closed in the next leaves them: the quoted field's last line holds the next row's fields
    up to the quote (as many commas as there are columns before the field), and the fields
    after it are the next row's rest, so the next row vanished into this one and was reported
    nowhere."""
    out = []
    for i, raw in enumerate(batch):
        for column, value in enumerate(raw):
            if "\n" in value and column >= 2 and \
                    value.rsplit("\n", 1)[1].count(",") == column:
                out.append((i, Problem(line_of(i), f"(column {column + 1})", value[:60],
                                       "one row per line" + spans_lines(line_of(i), raw))))
                break
    return out


def spans_lines(line: int, raw: list[str]) -> str:
    """What to say of a row of the wrong width that runs over line breaks: most likely a quote
    opened on its first line closes on a later one, and the rows between are part of it."""
    end = line + sum(v.count("\n") for v in raw)
    if end == line:
        return ""
    return (f"; the row runs from line {line} to line {end}: a quoted field goes over a line "
            f"break, so line{'s' if end > line + 1 else ''} {line + 1}"
            f"{f'–{end}' if end > line + 1 else ''} {'are' if end > line + 1 else 'is'} part "
            f"of it; if {'they are rows' if end > line + 1 else 'it is a row'} of "
            f"{'their' if end > line + 1 else 'its'} own, close the quote on line {line}")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
