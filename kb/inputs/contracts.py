"""The input contracts (docs/inputs.md): for each file its table, its columns and the check of
each column, run on a whole batch of cells at once (the validators of `fields`, at C speed
where a column's cells are plain).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dsl.graph import owners_of
from dsl.schema import FieldSpec
from kb.inputs.fields import (
    CONTROL,
    MAX_NUMBER,
    MAX_QUANTITY_KG,
    PARAMETERS,
    canonical_parameters,
    code_prefix_field,
    country_field,
    date_field,
    fact_validator,
    hs_code_field,
    item_vocabulary,
    items_field,
    key_field,
    kind_field,
    names_field,
    number_field,
    optional_country_field,
    optional_field,
    optional_number_field,
    owners_field,
    parameter_value,
    parameters_field,
    percent_field,
    price_unit_field,
    quantity_field,
    required_field,
)
from kb.store.schema import country_codes

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
        date_field(v)
    except ValueError:
        return False
    _VALID_DATES.add(v)
    return True


def _controlled_cells(col: Col) -> list[int]:
    """The cells holding a control character (one scan of the batch when none does)."""
    if not CONTROL.search("".join(col)):
        return []
    return [i for i, v in enumerate(col) if CONTROL.search(v)]


def _c_required(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.strip() for v in col]
    return vals, sorted({*(i for i, v in enumerate(vals) if not v), *_controlled_cells(col)})


def _c_key(col: Col) -> tuple[list[Any], list[int]]:
    vals, bad = _c_required(col)
    return vals, sorted({*bad, *(i for i, v in enumerate(vals) if "\n" in v or "\r" in v)})


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


KNOWN_COUNTRIES = country_codes()


def _c_country(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.strip() for v in col]
    known = KNOWN_COUNTRIES
    return vals, [i for i, v in enumerate(vals) if v not in known]


def _c_optional_country(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.strip() or None for v in col]
    known = KNOWN_COUNTRIES
    return vals, [i for i, v in enumerate(vals) if v is not None and v not in known]


def _c_hs_code(col: Col) -> tuple[list[Any], list[int]]:
    vals = [v.replace(".", "").replace(" ", "").strip() for v in col]
    return vals, [i for i, v in enumerate(vals)
                  if len(v) not in (8, 10) or not (v.isascii() and v.isdigit())]


def _floats(col: Col, optional: bool) -> list[float | None]:
    """The cells as floats; NaN (a suspect, judged by its validator) where float() fails or
    reads digits that are not 0-9."""
    if not all(v.isascii() for v in col):
        return [math.nan if not v.isascii() else x
                for v, x in zip(col, _floats(tuple(v if v.isascii() else "0" for v in col),
                                             optional), strict=True)]
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
    return vals, [i for i, x in enumerate(vals)
                  if not 0 <= x <= MAX_NUMBER]  # type: ignore[operator]


def _c_optional_number(col: Col) -> tuple[list[Any], list[int]]:
    vals = _floats(col, True)
    return vals, [i for i, x in enumerate(vals) if x is not None and not 0 <= x <= MAX_NUMBER]


def _c_percent(col: Col) -> tuple[list[Any], list[int]]:
    vals = _floats(col, True)
    return vals, [i for i, x in enumerate(vals) if x is not None and not 0 <= x <= 100]


def _c_parameters(col: Col) -> tuple[list[Any], list[int]]:
    if not any(col):  # an absent or empty column: no call per cell
        return [None] * len(col), []
    return c_each(canonical_parameters, empty_is_none=True)(col)


def c_each(check: Callable[[str], Any], empty_is_none: bool = False) -> ColumnCheck:
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
    required_field: _c_required, key_field: _c_key, optional_field: _c_optional,
    date_field: _c_date,
    country_field: _c_country, optional_country_field: _c_optional_country,
    hs_code_field: _c_hs_code, number_field: _c_number,
    optional_number_field: _c_optional_number, percent_field: _c_percent,
    parameters_field: _c_parameters, quantity_field: _c_quantity,
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
    # other names a header may give a column (a declared fact's aliases): name -> column
    aliases: Mapping[str, str] = field(default_factory=dict)


CONTRACTS = {
    "declarations": Contract("declarations", "id", (
        ("id", key_field), ("declared_on", date_field), ("exporter", required_field),
        ("consignee", required_field), ("consignee_country", country_field),
        ("end_user", optional_field), ("end_user_country", optional_country_field),
        ("destination_country", country_field), ("hs_code", hs_code_field),
        ("description", required_field), ("quantity_kg", quantity_field),
        ("value_usd", number_field), ("purity_pct", percent_field),
        ("licence_no", optional_field),
        ("end_use", optional_field), ("re_content_pct", percent_field),
        ("export_country", optional_country_field), ("parameters", parameters_field),
    ), optional_columns=frozenset({"end_use", "re_content_pct", "export_country", "parameters"}),
        derived=tuple((name, "parameters", parameter_value(name)) for name in PARAMETERS),
        not_future="declared_on"),
    "licences": Contract("licences", "licence_no", (
        ("licence_no", key_field), ("kind", kind_field), ("holder", required_field),
        ("items", items_field), ("destination_country", optional_country_field),
        ("end_user", optional_field), ("quantity_kg", optional_number_field),
        ("valid_from", date_field), ("valid_to", date_field), ("agents", names_field),
        ("value_usd", optional_number_field),
    ), optional_columns=frozenset({"agents", "value_usd"}),
        row_check=lambda r: ("valid_to", f"a date on or after valid_from ({r['valid_from']})")
        if r["valid_to"] < r["valid_from"] else None,
        vocabulary=("items", item_vocabulary)),
    "unit_values": Contract("unit_values", "code", (
        ("code", code_prefix_field), ("low", number_field), ("high", number_field),
        ("unit", price_unit_field),
        ("source", required_field),
    ), row_check=lambda r: ("high", "a high end not below the low end "
                                    f"({r['low']:g})") if r["high"] < r["low"] else None),
    "trade_parties": Contract("trade_parties", "name", (
        ("name", key_field), ("country", optional_country_field), ("address", optional_field),
        ("phone", optional_field), ("parent", owners_field),
    ), row_check=lambda r: ("parent", "a parent other than the party itself")
        if any(name == r["name"] for name, _ in owners_of(r["parent"])) else None),
}
FILE_CONTRACTS = {"declarations.csv": "declarations", "licences.csv": "licences",
                  "parties.csv": "trade_parties"}


def declared_facts(conn: sqlite3.Connection) -> tuple[FieldSpec, ...]:
    """The facts the knowledge base's rulebooks declare (its `declared_facts` table), as
    fields of the declarations."""
    try:
        rows = conn.execute("SELECT name, title, type, unit, choices, aliases, read_from, "
                            "rulebook FROM declared_facts ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:  # a knowledge base from before declared facts
        return ()
    out = []
    for name, title, written, unit, choices, aliases, read_from, rulebook in rows:
        kind = written.split(" ")[0] if written.startswith(("number", "one")) else written
        declared = "one of" if kind == "one" else kind
        out.append(FieldSpec(
            name, {"number": "number", "percentage": "number", "country": "country",
                   "date": "date"}.get(declared, "text"),
            description=title or "", aliases=_split(aliases), declared=declared, unit=unit,
            choices=("yes", "no") if declared == "yes/no" else _split(choices),
            read_from=read_from or "", rulebook=rulebook or ""))
    return tuple(out)


def _split(joined: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in joined.split(";")) if joined else ()


def contract_for(conn: sqlite3.Connection, table: str) -> Contract:
    """A file's contract; the declarations' with a column for each fact the knowledge base's
    rulebooks declare (each optional, under its name or one of its aliases)."""
    return contract_with(table, declared_facts(conn) if table == "declarations" else ())


def contract_with(table: str, facts: tuple[FieldSpec, ...]) -> Contract:
    """A file's contract with a column for each of the declared facts given (declarations)."""
    base = CONTRACTS[table]
    if not facts or table != "declarations":
        return base
    return replace(base, fields=base.fields + tuple((f.name, fact_validator(f)) for f in facts),
                   optional_columns=base.optional_columns | {f.name for f in facts},
                   aliases={a: f.name for f in facts for a in f.aliases})
