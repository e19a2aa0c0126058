"""Load `declarations.csv`, `licences.csv` and `parties.csv` (the contracts in docs/inputs.md).

Every field is validated. A bad row is reported with file, line, column, value and what was
expected, and kept in `rejected_rows`; good rows load. A load is one transaction: if it fails
or is interrupted, the database is as it was. Loading the same file again changes nothing
(rows are upserted by their id). Files are streamed, so memory stays flat however large they are.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import hashlib
import io
import itertools
import json
import math
import re
import sqlite3
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

from dsl.schema import UNIT_DIMENSIONS, UNIT_FACTORS
from kb.store.schema import DECLARATION_FIELDS, country_codes
from kb.store.tables import SPECS

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
    future_rows: int = 0  # loaded, dated after the day of the load
    first_future_line: int | None = None
    today: str = ""

    def summary(self) -> str:
        return (f"{self.file}: {self.loaded:,} {self.table} rows loaded, "
                f"{self.rejected_rows:,} rejected")

    def warnings(self) -> list[str]:
        if not self.future_rows:
            return []
        return [f"{self.file}:{self.first_future_line}: warning: {self.future_rows:,} "
                f"{self.table} rows are dated after today ({self.today}); check the dates, "
                "or reject such rows with --reject-future"]

    def too_many_rejected(self, allowed: str) -> str | None:
        """Against `--allow-rejected` (a count such as `5`, or a share of the file's rows such
        as `1%`): what is wrong when more rows were rejected, else None."""
        rows = self.loaded + self.rejected_rows
        limit = (rows * float(allowed[:-1]) / 100 if allowed.endswith("%")
                 else float(allowed))
        if self.rejected_rows <= limit:
            return None
        return (f"{self.file}: {self.rejected_rows:,} of {rows:,} {self.table} rows rejected, "
                f"more than --allow-rejected {allowed} allows")


def parse_allowance(text: str) -> str:
    """`--allow-rejected`: a whole number of rows, or a percentage such as `0.5%`."""
    value = text.strip()
    number = value[:-1] if value.endswith("%") else value
    try:
        x = float(number)
    except ValueError:
        raise ValueError(f"a number of rows or a percentage such as 1%, not {text!r}") from None
    if not math.isfinite(x) or x < 0 or (not value.endswith("%") and x != int(x)) or \
            (value.endswith("%") and x > 100):
        raise ValueError(f"a number of rows or a percentage such as 1%, not {text!r}")
    return value


# ---------------------------------------------------------------- field validators
# Each returns the value to store, or raises ValueError with what was expected.


# Control characters other than tab, line feed and carriage return: NUL and the like are never
# part of a name or a description, and they break what reads the value later.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _plain_text(v: str) -> str:
    found = _CONTROL.search(v)
    if found:
        raise ValueError(f"text without control characters (U+{ord(found.group()):04X} at "
                         f"character {found.start() + 1})")
    return v


def _required(v: str) -> str:
    v = _plain_text(v.strip())
    if not v:
        raise ValueError("a value (it may not be empty)")
    return v


def _optional(v: str) -> str | None:
    v = _plain_text(v.strip())
    return v or None


# Net quantities: more than nothing, and not beyond the largest bulk carrier's cargo.
MAX_QUANTITY_KG = 500_000_000.0  # 500,000 t


def _quantity(v: str) -> float:
    x = _number(v)
    if x == 0:
        raise ValueError("a quantity above 0 kg")
    if x > MAX_QUANTITY_KG:
        raise ValueError(f"a quantity of at most {MAX_QUANTITY_KG:,.0f} kg (500,000 t, more "
                         "than any ship carries)")
    return x


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
    if math.isnan(x):
        raise ValueError("a number, not NaN")
    if math.isinf(x):
        raise ValueError("a finite number, not infinity")
    if x < 0:
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


ITEMS_EXPECTED = ("item names, item groups, control codes or customs codes (4, 6, 8 or 10 "
                  "digits) separated by ';'")
_ITEM_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _items(v: str) -> str:
    parts = [p.strip() for p in v.split(";") if p.strip()]
    if not parts:
        raise ValueError(ITEMS_EXPECTED)
    return ";".join(map(_item_entry, parts))


@functools.lru_cache(maxsize=1 << 16)
def _item_entry(p: str) -> str:
    """One entry of a licence's items, canonical (licences name the same codes and items
    over and over: each is checked once)."""
    digits = p.replace(".", "").replace(" ", "")
    if digits.isdigit():
        if len(digits) not in (4, 6, 8, 10):
            raise ValueError(f"{ITEMS_EXPECTED}; {p!r} has {len(digits)} digits")
        return digits
    if _ITEM_WORD.match(p):
        return p
    raise ValueError(f"{ITEMS_EXPECTED}; {p!r} is none of them")


def _unknown_entries(entries: str | None, vocabulary: frozenset[str]) -> str | None:
    """What was expected of a licence's items (validated: `;`-separated, canonical) that
    name words no rulebook knows; None when every entry is a code or a known word."""
    unknown = [e for e in (entries or "").split(";")
               if e and not e.isdigit() and e not in vocabulary]
    if not unknown:
        return None
    return f"{ITEMS_EXPECTED}; no rulebook names {', '.join(map(repr, unknown))}"


def item_vocabulary(conn: sqlite3.Connection) -> frozenset[str]:
    """What a licence's items may name besides customs codes: the rulebooks' item names,
    control codes and item groups (empty when no rulebook is loaded)."""
    return frozenset(r[0] for r in conn.execute(
        "SELECT name FROM items UNION SELECT control_code FROM items "
        "WHERE control_code IS NOT NULL UNION SELECT name FROM item_groups"))


def _names(v: str) -> str | None:
    """`;`-separated names, stripped, empty ones dropped; None when there are none."""
    names = [_plain_text(n.strip()) for n in v.split(";") if n.strip()]
    return ";".join(names) or None


PRICE_UNITS = {"USD/kg": 1.0, "USD/t": 0.001}


def _code_prefix(v: str) -> str:
    """A customs code or prefix of it: 4, 6, 8 or 10 digits (dots and spaces are ignored)."""
    digits = v.replace(".", "").replace(" ", "").strip()
    if not digits.isdigit() or len(digits) not in (4, 6, 8, 10):
        raise ValueError("a customs code or prefix of 4, 6, 8 or 10 digits")
    return digits


def _price_unit(v: str) -> str:
    unit = v.strip()
    if unit not in PRICE_UNITS:
        raise ValueError(f"a unit value unit: {' or '.join(PRICE_UNITS)}")
    return unit


PARAMETERS = {f.name: f for f in DECLARATION_FIELDS if f.is_parameter}


def parse_parameters(v: str) -> dict[str, float | str]:
    """`energy_density=150 Wh/kg; graphite_type=natural` → numbers in each parameter's own
    unit, texts as stated. Raises ValueError naming the pair that is wrong and what was
    expected."""
    out: dict[str, float | str] = {}
    for n, pair in enumerate((p.strip() for p in v.split(";")), start=1):
        if not pair:
            continue
        where = f"pair {n} '{pair}'"
        name, eq, rest = pair.partition("=")
        name = name.strip()
        if not eq:
            raise ValueError(f"name=value unit pairs separated by ';' ({where} has no '=')")
        spec = PARAMETERS.get(name)
        if spec is None:
            raise ValueError(f"a known parameter in {where}: one of "
                             f"{', '.join(sorted(PARAMETERS))}")
        if name in out:
            raise ValueError(f"each parameter once ({where} repeats {name})")
        if spec.parameter_values is not None:
            text = rest.strip()
            if not re.fullmatch(spec.parameter_values, text):
                raise ValueError(f"{_values_text(spec.parameter_values)} after '{name}=' "
                                 f"in {where}")
            out[name] = text
            continue
        number, _, unit = rest.strip().partition(" ")
        unit = unit.strip()
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"a number after '{name}=' in {where}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a number that is not negative in {where}")
        units = sorted(u for u, d in UNIT_DIMENSIONS.items() if d == spec.dimension)
        if unit not in units:
            raise ValueError(f"a unit of {spec.dimension} ({', '.join(units)}) after "
                             f"the number in {where}")
        to_base = UNIT_FACTORS.get(unit, 1.0) / UNIT_FACTORS.get(spec.parameter_unit or "", 1.0)
        out[name] = value * to_base
    return out


def _values_text(pattern: str) -> str:
    """What a text parameter accepts, for messages: `natural|artificial` → 'natural or
    artificial'; a pattern that is not a plain choice is described by its example."""
    choices = pattern.split("|")
    plain = [c for c in choices if re.fullmatch(r"[a-z_]+", c)]
    if len(plain) == len(choices):
        return " or ".join(repr(c) for c in choices)
    return "a control code such as '2B005.b'" + (
        f" or {' or '.join(repr(c) for c in plain)}" if plain else "")


def _parameter_text(name: str, value: float | str) -> str:
    spec = PARAMETERS[name]
    if isinstance(value, str):
        return f"{name}={value}"
    return f"{name}={_number_text(value)} {spec.parameter_unit}"


def with_parameters(row: Mapping[str, Any]) -> dict[str, Any]:
    """A declaration given as a mapping (an example, the Python API) may state its parameters
    as their own keys (`energy_density`: 150, in the parameter's unit; `graphite_type`:
    "natural"): folded into the `parameters` column the contract reads."""
    stated = {k: row[k] for k in PARAMETERS if row.get(k) is not None}
    out = {k: v for k, v in row.items() if k not in PARAMETERS}
    if stated:
        parts = [str(row["parameters"])] if row.get("parameters") else []
        parts += [_parameter_text(k, v if isinstance(v, str) else float(v))
                  for k, v in stated.items()]
        out["parameters"] = "; ".join(parts)
    return out


def _parameters(v: str) -> str | None:
    """The `parameters` column, validated; stored as written in canonical form."""
    found = parse_parameters(v)
    if not found:
        return None
    return "; ".join(_parameter_text(k, x) for k, x in sorted(found.items()))


def _number_text(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


@functools.lru_cache(maxsize=1 << 16)
def _canonical_parameters(v: str) -> str | None:
    """`_parameters` of a text seen before: declarations of one product line repeat theirs
    (a ValueError is not cached: a wrong text is validated again, for its message)."""
    return _parameters(v)


@functools.lru_cache(maxsize=1 << 16)
def _parsed_parameters(canonical: str) -> Mapping[str, float | str]:
    return types.MappingProxyType(parse_parameters(canonical))


def _parameter_value(name: str) -> Callable[[Any], Any]:
    def value(canonical: str | None) -> float | str | None:
        return _parsed_parameters(canonical).get(name) if canonical else None

    return value


# ---------------------------------------------------------------- column checks
# The loader validates a batch of rows a column at a time: each check returns the converted
# column and the positions it could not accept; only those cells go through the per-cell
# validator above, which is the authority and writes the message. No Python call per cell on
# the happy path: comprehensions, set lookups and C conversions.

Col = tuple[str, ...]
ColumnCheck = Callable[[Col], tuple[list[Any], list[int]]]
_VALID_DATES: set[str] = set()
_INF = math.inf


def _date_ok(v: str) -> bool:
    try:
        _date(v)
    except ValueError:
        return False
    _VALID_DATES.add(v)
    return True


def _controlled_cells(col: Col) -> list[int]:
    """The cells holding a control character (one scan of the batch when none does)."""
    if not _CONTROL.search("".join(col)):
        return []
    return [i for i, v in enumerate(col) if _CONTROL.search(v)]


def _c_required(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.strip() for v in col]
    return vals, sorted({*(i for i, v in enumerate(vals) if not v), *_controlled_cells(col)})


def _c_optional(col: Col) -> tuple[list[Any], list[int]]:
    return [v.strip() or None for v in col], _controlled_cells(col)


def _c_quantity(col: Col) -> tuple[list[Any], list[int]]:
    vals = _floats(col, False)
    top = MAX_QUANTITY_KG
    return vals, [i for i, x in enumerate(vals) if not 0 < x <= top]  # type: ignore[operator]


def _c_date(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.strip() for v in col]
    ok = _VALID_DATES
    return vals, [i for i, v in enumerate(vals) if v not in ok and not _date_ok(v)]


_KNOWN_COUNTRIES = country_codes()


def _c_country(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.strip() for v in col]
    known = _KNOWN_COUNTRIES
    return vals, [i for i, v in enumerate(vals) if v not in known]


def _c_optional_country(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.strip() or None for v in col]
    known = _KNOWN_COUNTRIES
    return vals, [i for i, v in enumerate(vals) if v is not None and v not in known]


def _c_hs_code(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.replace(".", "").replace(" ", "").strip() for v in col]
    return vals, [i for i, v in enumerate(vals) if len(v) not in (8, 10) or not v.isdigit()]


def _floats(col: Col, optional: bool) -> list[float | None]:
    try:
        if optional:
            return [float(v) if v.strip() else None for v in col]
        return [float(v) for v in col]
    except ValueError:
        out: list[float | None] = []
        for v in col:
            try:
                out.append(float(v) if v.strip() or not optional else None)
            except ValueError:
                out.append(math.nan)  # rejected below, with the per-cell message
        return out


def _c_number(col: Col) -> tuple[list[Any], list[int]]:
    vals = _floats(col, False)
    return vals, [i for i, x in enumerate(vals) if not 0 <= x < _INF]  # type: ignore[operator]


def _c_optional_number(col: Col) -> tuple[list[Any], list[int]]:
    vals = _floats(col, True)
    return vals, [i for i, x in enumerate(vals) if x is not None and not 0 <= x < _INF]


def _c_percent(col: Col) -> tuple[list[Any], list[int]]:
    vals = _floats(col, True)
    return vals, [i for i, x in enumerate(vals) if x is not None and not 0 <= x <= 100]


def _c_parameters(col: Col) -> tuple[list[Any], list[int]]:
    if not any(col):  # an absent or empty column: no call per cell
        return [None] * len(col), []
    return _c_each(_canonical_parameters, empty_is_none=True)(col)


def _c_each(check: Callable[[str], Any], empty_is_none: bool = False) -> ColumnCheck:
    """For rarely used fields: the per-cell validator on every cell (but empty ones, with
    `empty_is_none`)."""

    def column(col: Col) -> tuple[list[Any], list[int]]:
        vals: list[Any] = []
        bad = []
        for i, v in enumerate(col):
            if empty_is_none and not v:
                vals.append(None)
                continue
            try:
                vals.append(check(v))
            except ValueError:
                vals.append(None)
                bad.append(i)
        return vals, bad

    return column


COLUMN_CHECKS: dict[Callable[[str], Any], ColumnCheck] = {
    _required: _c_required, _optional: _c_optional, _date: _c_date, _country: _c_country,
    _optional_country: _c_optional_country, _hs_code: _c_hs_code, _number: _c_number,
    _optional_number: _c_optional_number, _percent: _c_percent, _parameters: _c_parameters,
    _quantity: _c_quantity,
}


# Where a load's validated rows go instead of its table: given the stored columns' names and
# a batch of good rows as columns (one list of values per column).
RowSink = Callable[[list[str], list[list[Any]]], None]


@dataclass(frozen=True)
class Contract:
    """One input file's columns, each with its validator, and its key column."""

    table: str
    key: str
    fields: tuple[tuple[str, Callable[[str], Any]], ...]
    # columns a file may leave out entirely (added to the contract later; empty when absent)
    optional_columns: frozenset[str] = frozenset()
    # stored columns computed from a validated field: (column, field, function of its value)
    derived: tuple[tuple[str, str, Callable[[Any], Any]], ...] = ()
    # a check across the fields of a row whose fields are each valid: (column, what was
    # expected) when the row is wrong, else None
    row_check: Callable[[Mapping[str, Any]], tuple[str, str] | None] | None = None
    # a date field that may not lie after the day of the load (warned, or rejected)
    not_future: str | None = None
    # a field of ';'-separated entries that must be customs codes or words of this vocabulary
    # (read from the knowledge base being loaded; no check when it is empty)
    vocabulary: tuple[str, Callable[[sqlite3.Connection], frozenset[str]]] | None = None


CONTRACTS = {
    "declarations": Contract("declarations", "id", (
        ("id", _required), ("declared_on", _date), ("exporter", _required),
        ("consignee", _required), ("consignee_country", _country), ("end_user", _optional),
        ("end_user_country", _optional_country), ("destination_country", _country),
        ("hs_code", _hs_code), ("description", _required), ("quantity_kg", _quantity),
        ("value_usd", _number), ("purity_pct", _percent), ("licence_no", _optional),
        ("end_use", _optional), ("re_content_pct", _percent),
        ("export_country", _optional_country), ("parameters", _parameters),
    ), optional_columns=frozenset({"end_use", "re_content_pct", "export_country", "parameters"}),
        derived=tuple((name, "parameters", _parameter_value(name)) for name in PARAMETERS),
        not_future="declared_on"),
    "licences": Contract("licences", "licence_no", (
        ("licence_no", _required), ("kind", _kind), ("holder", _required), ("items", _items),
        ("destination_country", _optional_country), ("end_user", _optional),
        ("quantity_kg", _optional_number), ("valid_from", _date), ("valid_to", _date),
        ("agents", _names),
    ), optional_columns=frozenset({"agents"}),
        row_check=lambda r: ("valid_to", f"a date on or after valid_from ({r['valid_from']})")
        if r["valid_to"] < r["valid_from"] else None,
        vocabulary=("items", item_vocabulary)),
    "unit_values": Contract("unit_values", "code", (
        ("code", _code_prefix), ("low", _number), ("high", _number), ("unit", _price_unit),
        ("source", _required),
    ), row_check=lambda r: ("high", "a high end not below the low end "
                                    f"({r['low']:g})") if r["high"] < r["low"] else None),
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


# The longest field a row may have, in characters; a longer one rejects its row.
MAX_FIELD = 2_000
# What the CSV parser takes into one field before it gives up on the row (bytes): beyond
# MAX_FIELD, so that a long field is rejected with its length rather than a parser error.
CSV_FIELD_LIMIT = 1 << 16
# Invalid UTF-8 bytes, decoded with surrogateescape: lone surrogates U+DC80-U+DCFF.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


@dataclass
class Broken:
    """A record the CSV parser could not read (a stray quote, a field over the limit)."""
    line: int
    message: str


class _Batches:
    """CSV rows in batches read at C speed; line numbers are worked out only when needed.

    A record the parser cannot read is set aside (`Broken`, with the line it starts on) and
    reading goes on at the next line; invalid UTF-8 is decoded with surrogateescape, so the
    row it is in can be rejected alone (see `_unsafe_cells`). Only a quote that is never
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
        if row is not None and any(_NOT_UTF8.search(h) for h in row):
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


def _header(contract: Contract, first_row: list[str] | None, name: str
            ) -> tuple[list[str], list[str], list[int | None]]:
    """The header's column names, the contract's fields, and where each field is in a row
    (None: an optional column the file leaves out)."""
    if first_row is None:
        raise LoadError(f"{name}: the file is empty; expected a header row")
    header = [h.strip() for h in first_row]
    wanted = [f for f, _ in contract.fields]
    missing = [f for f in wanted if f not in header and f not in contract.optional_columns]
    if missing:
        raise LoadError(f"{name}:1: the header lacks the column(s) {', '.join(missing)}; "
                        f"expected {','.join(wanted)}")
    return header, wanted, [header.index(f) if f in header else None for f in wanted]


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
             name: str | None = None, keep_problems: int = 20, today: str | None = None,
             reject_future: bool = False, rows_to: RowSink | None = None) -> LoadReport:
    """Load one CSV file (a path, '-' for stdin, or a binary stream) into `table`, atomically.
    Rows dated after `today` (default: today, UTC) are counted in the report's warnings, or
    rejected with `reject_future`. `rows_to`: where the validated rows go instead of `table`
    (screening on another engine: `kb.screen.engines.DuckRows`), given the stored columns' names and
    each batch's good rows column by column; rejected rows are kept in `rejected_rows` as
    always."""
    contract = CONTRACTS[table]
    today = today or dt.datetime.now(dt.UTC).date().isoformat()
    vocabulary = contract.vocabulary[1](db.conn) if contract.vocabulary else frozenset()
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
        total = stream.getbuffer().nbytes if isinstance(stream, io.BytesIO) else None
    hashing = _HashingReader(stream)
    report = LoadReport(table, name, today=today)
    conn = db.conn
    try:
        batches = _Batches(hashing, name)
        header, wanted, positions = _header(contract, batches.header(), name)
        validators = [v for _, v in contract.fields]
        checks = [COLUMN_CHECKS.get(v) or _c_each(v) for v in validators]
        width = len(header)
        stored = wanted + [name for name, _, _ in contract.derived]
        cols = ", ".join(f'"{f}"' for f in stored)
        marks = ", ".join("?" for _ in stored)
        # table and column names come from the contract, never from the file
        insert = f'INSERT OR REPLACE INTO "{table}" ({cols}) VALUES ({marks})'
        reject = ('INSERT INTO rejected_rows (run_id, file, line, "column", value, expected, row)'
                  " VALUES (?, ?, ?, ?, ?, ?, ?)")
        first_line_of: dict[str, int] = {}
        rejected: list[tuple[Any, ...]] = []

        def col_of(raw: list[str], column: str) -> str:
            pos = positions[wanted.index(column)]
            return raw[pos] if pos is not None else ""

        def set_aside(broken: list[Broken]) -> None:
            for b in broken:
                p = Problem(b.line, "(row)", "", b.message)
                report.rejected_rows += 1
                rejected.append(_rejection(run_id, name, p, header, []))
                _keep(report, p, keep_problems)

        def flush(batch: list[list[str]], line_of: Callable[[int], int]) -> None:
            """Validate a batch column by column; insert the good rows, keep the bad ones."""
            bad: dict[int, list[Problem]] = {}
            odd = [i for i, raw in enumerate(batch) if len(raw) != width]
            for i in odd:
                if batch[i]:
                    bad[i] = [Problem(line_of(i), "(row)", f"{len(batch[i])} fields",
                                      f"{width} fields, as in the header")]
            if odd:  # set aside rows of the wrong width (and blank lines) before transposing
                odd_set = set(odd)
                keep = [i for i in range(len(batch)) if i not in odd_set]
                rows_in = [batch[i] for i in keep]
                report.rejected_rows += len(bad)
                for i, problems in bad.items():
                    for p in problems:
                        rejected.append(_rejection(run_id, name, p, header, batch[i]))
                        _keep(report, p, keep_problems)
                if not rows_in:
                    return
                flush(rows_in, lambda j: line_of(keep[j]))
                return
            columns = list(zip(*batch, strict=True))
            for at, column in enumerate(header):
                for i, problem in _unsafe_cells(columns[at]):
                    bad.setdefault(i, []).append(Problem(line_of(i), column, *problem))
            values = []
            for field_name, pos, check, validator in zip(wanted, positions, checks, validators,
                                                         strict=True):
                col = columns[pos] if pos is not None else ("",) * len(batch)
                vals, suspects = check(col)
                for i in suspects:
                    try:
                        vals[i] = validator(col[i])
                    except ValueError as e:
                        bad.setdefault(i, []).append(Problem(line_of(i), field_name, col[i],
                                                             str(e)))
                values.append(vals)
            for _, source, derive in contract.derived:
                of = values[wanted.index(source)]
                values.append([derive(v) if v is not None else None for v in of])
            if contract.row_check is not None:
                for i in range(len(batch)):
                    if i in bad:
                        continue
                    wrong = contract.row_check(dict(zip(stored, (v[i] for v in values),
                                                        strict=True)))
                    if wrong is not None:
                        column, expected = wrong
                        bad[i] = [Problem(line_of(i), column, col_of(batch[i], column),
                                          expected)]
            if contract.not_future:
                dates = values[wanted.index(contract.not_future)]
                if max(filter(None, dates), default="") > today:
                    for i, d in enumerate(dates):
                        if i in bad or d is None or d <= today:
                            continue
                        if reject_future:
                            bad[i] = [Problem(line_of(i), contract.not_future, d,
                                              f"a date not after today ({today})")]
                        else:
                            report.future_rows += 1
                            report.first_future_line = report.first_future_line or line_of(i)
            if vocabulary and contract.vocabulary:
                column = contract.vocabulary[0]
                for i, entries in enumerate(values[wanted.index(column)]):
                    unknown = _unknown_entries(entries, vocabulary)
                    if unknown and i not in bad:
                        bad[i] = [Problem(line_of(i), column, col_of(batch[i], column),
                                          unknown)]
            keys = values[0]
            if bad or len(set(keys)) != len(keys) or not first_line_of.keys().isdisjoint(keys):
                for i, key in enumerate(keys):  # the slow path names the first line of a key
                    if i in bad:
                        continue
                    first = first_line_of.setdefault(key, line_of(i))
                    if first != line_of(i):
                        bad[i] = [Problem(line_of(i), contract.key, key,
                                          f"a unique {contract.key}; line {first} has it")]
            else:
                first_line_of.update(zip(keys, map(line_of, range(len(keys))), strict=True))
            if bad:
                for i in sorted(bad):
                    report.rejected_rows += 1
                    for p in bad[i]:
                        rejected.append(_rejection(run_id, name, p, header, batch[i]))
                        _keep(report, p, keep_problems)
                conn.executemany(reject, rejected)
                rejected.clear()
            if rows_to is not None:
                if bad:
                    keep = [i for i in range(len(batch)) if i not in bad]
                    values = [[v[i] for i in keep] for v in values]
                rows_to(stored, values)
                report.loaded += len(values[0])
            else:
                good = list(zip(*values, strict=True))
                if bad:
                    good = [row for i, row in enumerate(good) if i not in bad]
                conn.executemany(insert, good)
                report.loaded += len(good)
            update(hashing.count)

        update, stop = _progress(total, f"loading {name}")
        if conn.in_transaction:
            conn.commit()
        cache = bulk_cache(conn)
        cache.__enter__()
        conn.execute("BEGIN")
        try:
            # deferring index builds pays off for big loads; a small one keeps its indexes
            # (and the schema, so prepared statements stay valid)
            defer = deferred_indexes(conn, table, bulk=rows_to is None and (
                total is None or total >= 1 << 20))
            defer.__enter__()
            for batch, line_of, broken in batches:
                set_aside(broken)
                if batch:
                    flush(batch, line_of)
            if rejected:
                conn.executemany(reject, rejected)
            defer.__exit__(None, None, None)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            stop()
            cache.__exit__(None, None, None)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    report.sha256 = hashing.sha.hexdigest()
    return report


# ---------------------------------------------------------------- DuckDB's reader
# A screening on DuckDB reads its declarations and licences files with DuckDB's CSV reader
# and validates them there, column by column, in SQL. Each SQL test accepts only a plain
# form of what the field's validator accepts and gives the same value for it (a text with
# printable ends and no control character, a date YYYY-MM-DD, digits with a decimal point, a
# known country code); a cell it does not accept goes through the validator, which is the
# authority, as on the row-by-row path. Fields with few distinct values and no SQL test
# (parameters, licence kinds, items and agents) go through the validator once per distinct
# value. A file DuckDB's reader would read differently from Python's (quoted line breaks,
# blank lines, a byte order mark, bytes that are not UTF-8, a row of the wrong width, a field
# over MAX_FIELD) returns None: the caller then loads it row by row, which names each
# problem's line.

_ENDS = r"[\p{L}\p{M}\p{N}\p{P}\p{S}]"  # never whitespace to Python's str.strip
_TEXT = (f"regexp_full_match(@v, '{_ENDS}("
         r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*"  # no control character (_CONTROL)
         f"{_ENDS})?')")
_DECIMAL = "regexp_full_match(@v, '[0-9]{1,15}([.][0-9]{1,15})?')"
_DOUBLE = "TRY_CAST(@v AS DOUBLE)"
_COUNTRY = f"@v IN ({', '.join(repr(c) for c in sorted(_KNOWN_COUNTRIES))})"
_OR_EMPTY = "(@v = '' OR {})"

# validator -> (its value, whether the SQL test accepts it), of a cell `@v` ('' when empty)
SQL_CHECKS: dict[Callable[[str], Any], tuple[str, str]] = {
    _required: ("@v", _TEXT),
    _optional: ("NULLIF(@v, '')", _OR_EMPTY.format(_TEXT)),
    _date: ("@v", "regexp_full_match(@v, '[0-9]{4}-[0-9]{2}-[0-9]{2}') AND "
                  "@v >= '0001-01-01' AND TRY_CAST(@v AS DATE) IS NOT NULL"),
    _country: ("@v", _COUNTRY),
    _optional_country: ("NULLIF(@v, '')", _OR_EMPTY.format(_COUNTRY)),
    _hs_code: ("@v", "regexp_full_match(@v, '[0-9]{8}([0-9]{2})?')"),
    _number: (_DOUBLE, _DECIMAL),
    _optional_number: (f"CASE WHEN @v <> '' THEN {_DOUBLE} END", _OR_EMPTY.format(_DECIMAL)),
    _percent: (f"CASE WHEN @v <> '' THEN {_DOUBLE} END",
               _OR_EMPTY.format(f"{_DECIMAL} AND {_DOUBLE} <= 100")),
    _quantity: (_DOUBLE, f"{_DECIMAL} AND {_DOUBLE} > 0 AND {_DOUBLE} <= {MAX_QUANTITY_KG!r}"),
}


def load_csv_duckdb(db: Database, duck: Any, table: str, source: str | Path,
                    name: str | None = None, run_id: int | None = None,
                    keep_problems: int = 20, today: str | None = None,
                    reject_future: bool = False) -> LoadReport | None:
    """`load_csv` into the DuckDB connection `duck`'s `table` (typed as the knowledge base's
    table), with DuckDB's reader: the same rows, values, rejections (kept in `rejected_rows`
    with their line and reason) and report. None when the file needs the row-by-row path
    (see above); nothing is then changed."""
    import duckdb
    import pyarrow as pa

    from kb.store.arrow import arrow_schema

    contract = CONTRACTS[table]
    path = Path(source)
    name = name or str(source)
    today = today or dt.datetime.now(dt.UTC).date().isoformat()
    sha, lines, last = hashlib.sha256(), 0, b""
    try:
        with path.open("rb") as f:
            start = f.read(3)
            if start == b"\xef\xbb\xbf":
                return None
            f.seek(0)
            for chunk in iter(lambda: f.read(1 << 22), b""):
                sha.update(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            f.seek(0)
            reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape",
                                                 newline=""), strict=True)
            try:
                first_row = next(reader, None)
            except csv.Error:
                return None
            if reader.line_num > 1 or any(_NOT_UTF8.search(h) for h in first_row or []):
                return None
    except OSError:
        return None
    header, wanted, positions = _header(contract, first_row, name)
    width = len(header)
    raw = [f"c{i}" for i in range(width)]  # the file's columns, under names of ours
    kinds = [SQL_CHECKS.get(v) for _, v in contract.fields]
    derived_from = {of for _, of, _ in contract.derived}
    if any(kinds[wanted.index(f)] is not None for f in derived_from):
        return None  # a derived column is computed in Python, from a field validated there
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in raw)
    try:
        duck.execute("CREATE OR REPLACE TEMP TABLE excon_raw AS SELECT * FROM read_csv(?, "
                     f"columns = {{{columns}}}, "
                     "header = false, skip = 1, auto_detect = false, delim = ',', "
                     "quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
                     f"max_line_size = {CSV_FIELD_LIMIT * max(width, 1)})", [str(path)])
    except duckdb.Error:
        return None
    rows, longest = duck.execute(
        "SELECT COUNT(*), MAX(GREATEST(" + ", ".join(f"LENGTH(COALESCE({c}, ''))" for c in raw)
        + ")) FROM excon_raw").fetchone()
    if rows + 1 != lines + (last not in (b"\n", b"")) or (longest or 0) > MAX_FIELD:
        duck.execute("DROP TABLE excon_raw")
        return None

    def cell(pos: int | None) -> str:
        return "''" if pos is None else f"COALESCE(r.c{pos}, '')"

    types = {f.name: f.type for f in arrow_schema(db.conn, table)}
    stored = wanted + [n for n, _, _ in contract.derived]
    values, tests, joins = [], [], []
    for k, ((field_name, validator), pos, kind) in enumerate(
            zip(contract.fields, positions, kinds, strict=True)):
        if kind is not None:
            values.append(kind[0].replace("@v", cell(pos)))
            tests.append(kind[1].replace("@v", cell(pos)))
            continue
        # the validator on each distinct text (and what is derived from its value)
        texts = [t for (t,) in duck.execute(f"SELECT DISTINCT {cell(pos)} FROM excon_raw AS r")
                 .fetchall()]
        mapped: dict[str, list[Any]] = {"text": [], "ok": [], field_name: []}
        for n, _, _ in contract.derived:
            mapped[n] = []
        for t in texts:
            try:
                value, ok = validator(t), True
            except ValueError:
                value, ok = None, False
            mapped["text"].append(t)
            mapped["ok"].append(ok)
            mapped[field_name].append(value)
            for n, of, derive in contract.derived:
                if of == field_name:
                    mapped[n].append(derive(value) if value is not None else None)
        duck.register(f"excon_map_{k}", pa.table(
            {c: pa.array(v, type=pa.string() if c == "text" else pa.bool_() if c == "ok"
                         else types[c]) for c, v in mapped.items()}))
        joins.append(f"LEFT JOIN excon_map_{k} AS m{k} ON m{k}.text = {cell(pos)}")
        values.append(f"m{k}.{field_name}")
        tests.append(f"m{k}.ok")
    for n, of, _ in contract.derived:
        values.append(f"m{wanted.index(of)}.{n}")
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE excon_checked AS SELECT r.rowid AS row, "
        + ", ".join(f"{v} AS {c}" for v, c in zip(values, stored, strict=True))
        + f", ({' AND '.join(f'COALESCE({t}, false)' for t in tests)}) AS ok "
        f"FROM excon_raw AS r {' '.join(joins)}")
    for k in range(len(kinds)):
        if kinds[k] is None:
            duck.unregister(f"excon_map_{k}")

    report = LoadReport(table, name, today=today, sha256=sha.hexdigest())
    bad: dict[int, list[Problem]] = {}
    fixed: list[list[Any]] = []
    # the cells a SQL test did not accept, through the validators as on the row-by-row path
    for row, *cells in duck.execute(
            f"SELECT c.row, {', '.join(f'r.{c}' for c in raw)} FROM excon_checked AS c "
            "JOIN excon_raw AS r ON r.rowid = c.row WHERE NOT c.ok ORDER BY c.row").fetchall():
        line = row + 2
        got: list[Any] = []
        for (field_name, validator), pos in zip(contract.fields, positions, strict=True):
            text = (cells[pos] or "") if pos is not None else ""
            try:
                got.append(validator(text))
            except ValueError as e:
                bad.setdefault(row, []).append(Problem(line, field_name, text, str(e)))
        if row not in bad:
            got += [derive(got[wanted.index(of)]) if got[wanted.index(of)] is not None
                    else None for _, of, derive in contract.derived]
            fixed.append([row, *got])
    duck.register("excon_fixed", pa.table(
        {c: pa.array([f[k] for f in fixed], type=pa.int64() if c == "row" else types[c])
         for k, c in enumerate(["row", *stored])}))
    duck.execute("CREATE OR REPLACE TEMP TABLE excon_good AS SELECT * FROM (SELECT "
                 f"{', '.join(['row', *stored])} FROM excon_checked WHERE ok UNION ALL "
                 "SELECT * FROM excon_fixed)")
    duck.unregister("excon_fixed")
    # Checks across the fields of rows valid field by field, in the row-by-row load's order:
    # the contract's row check, dates after today, the vocabulary, then repeated keys. Each
    # (row, column, its value or None: the file's cell, expected) joins `excon_rejected`.
    later: list[tuple[int, str, str | None, str]] = []
    duck.execute("CREATE OR REPLACE TEMP TABLE excon_rejected (row BIGINT)")

    def exclude(rows: list[int]) -> None:
        if rows:
            duck.register("excon_rows", pa.table({"row": pa.array(rows, type=pa.int64())}))
            duck.execute("INSERT INTO excon_rejected SELECT row FROM excon_rows")
            duck.unregister("excon_rows")

    def reject(found: Sequence[tuple[int, str, str | None, str]]) -> None:
        later.extend(found)
        exclude([f[0] for f in found])

    exclude(sorted(bad))  # rejected field by field

    kept = "FROM excon_good WHERE row NOT IN (SELECT row FROM excon_rejected)"
    if contract.row_check is not None:
        found = []
        for row, *vals in duck.execute(f"SELECT row, {', '.join(stored)} FROM excon_good "
                                       "ORDER BY row").fetchall():
            wrong = contract.row_check(dict(zip(stored, vals, strict=True)))
            if wrong is not None:
                found.append((row, wrong[0], None, wrong[1]))
        reject(found)
    if contract.not_future:
        date = contract.not_future  # a field name of the contract's, not the file's
        future = duck.execute(f"SELECT row, {date} {kept} AND {date} > ? ORDER BY row",
                              [today]).fetchall()
        if reject_future:
            reject([(row, date, d, f"a date not after today ({today})") for row, d in future])
        elif future:
            report.future_rows, report.first_future_line = len(future), future[0][0] + 2
    vocabulary = contract.vocabulary[1](db.conn) if contract.vocabulary else frozenset()
    if vocabulary and contract.vocabulary:
        column = contract.vocabulary[0]
        unknown = {entries: why for (entries,) in duck.execute(
            f"SELECT DISTINCT {column} {kept}").fetchall()
            if (why := _unknown_entries(entries, vocabulary))}
        if unknown:
            reject([(row, column, None, unknown[v]) for row, v in duck.execute(
                f"SELECT row, {column} {kept} ORDER BY row").fetchall() if v in unknown])
    key = contract.key
    reject([(row, key, k, f"a unique {key}; line {first + 2} has it")
            for row, k, first in duck.execute(
                f"SELECT row, {key}, first FROM (SELECT row, {key}, MIN(row) OVER "
                f"(PARTITION BY {key}) AS first {kept}) WHERE row > first "
                "ORDER BY row").fetchall()])
    duck.execute(f'DELETE FROM "{table}"')  # names are ours
    duck.execute(f'INSERT INTO "{table}" ({", ".join(stored)}) SELECT {", ".join(stored)} '
                 f"{kept} ORDER BY row")
    report.loaded = duck.execute(f"SELECT COUNT(*) {kept}").fetchone()[0]
    rejected = []
    if bad or later:
        raws = {row: cells for row, *cells in duck.execute(
            f"SELECT rowid, {', '.join(cell(k) for k in range(width))} FROM excon_raw AS r "
            "WHERE rowid IN (SELECT row FROM excon_rejected)").fetchall()}
        for row, column, value, expected in later:
            if value is None:
                pos = positions[wanted.index(column)]
                value = raws[row][pos] if pos is not None else ""
            bad[row] = [Problem(row + 2, column, value, expected)]
        for row in sorted(bad):
            report.rejected_rows += 1
            for p in bad[row]:
                rejected.append(_rejection(run_id, name, p, header, raws[row]))
                _keep(report, p, keep_problems)
    for temp in ("excon_raw", "excon_checked", "excon_good", "excon_rejected"):
        duck.execute(f"DROP TABLE {temp}")
    conn = db.conn
    if conn.in_transaction:
        conn.commit()
    with conn:
        conn.executemany(
            'INSERT INTO rejected_rows (run_id, file, line, "column", value, expected, row)'
            " VALUES (?, ?, ?, ?, ?, ?, ?)", rejected)
    return report


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


def _unsafe_cells(col: Col) -> list[tuple[int, tuple[str, str]]]:
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
                for i, v in enumerate(col) if _NOT_UTF8.search(v)]
    return out


def _shown(text: str) -> str:
    """A text as it can be stored and printed: invalid UTF-8 bytes as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _keep(report: LoadReport, problem: Problem, limit: int) -> None:
    if len(report.problems) < limit:
        report.problems.append(problem)


def _rejection(run_id: int | None, file: str, p: Problem, header: list[str],
               raw: list[str]) -> tuple[Any, ...]:
    raw = [_shown(v) for v in raw]
    row = dict(zip(header, raw, strict=False)) if len(raw) == len(header) else {"fields": raw}
    return (run_id, file, p.line, p.column, _shown(p.value), p.expected,
            json.dumps(row, ensure_ascii=False))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["CONTRACTS", "FILE_CONTRACTS", "SPECS", "LoadError", "LoadReport", "load_csv"]
