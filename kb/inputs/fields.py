"""One field of an input file at a time: each validator takes the cell's text and returns the
stored value or raises ValueError with what was expected (dates, countries, customs codes,
quantities, percentages, licence items, declared parameters with their units).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import sqlite3
import types
from collections.abc import Callable, Mapping
from typing import Any

from dsl.graph import owners_of
from dsl.schema import UNIT_DIMENSIONS, UNIT_FACTORS, FieldSpec
from kb.store.schema import DECLARATION_FIELDS, country_codes

# ---------------------------------------------------------------- field validators
# Each returns the value to store, or raises ValueError with what was expected.


# Control characters other than tab, line feed and carriage return: NUL and the like are never
# part of a name or a description, and they break what reads the value later.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _plain_text(v: str) -> str:
    found = CONTROL.search(v)
    if found:
        raise ValueError(f"text without control characters (U+{ord(found.group()):04X} at "
                         f"character {found.start() + 1})")
    return v


def required_field(v: str) -> str:
    v = _plain_text(v.strip())
    if not v:
        raise ValueError("a value (it may not be empty)")
    return v


def key_field(v: str) -> str:
    """A key (a declaration's id, a licence's number, a party's name): a value on one line."""
    v = required_field(v)
    if "\n" in v or "\r" in v:
        raise ValueError("a value on one line (this one holds a line break)")
    return v


def optional_field(v: str) -> str | None:
    v = _plain_text(v.strip())
    return v or None


# Net quantities: more than nothing, and not beyond the largest bulk carrier's cargo.
MAX_QUANTITY_KG = 500_000_000.0  # 500,000 t


def quantity_field(v: str) -> float:
    x = number_field(v)
    if x == 0:
        raise ValueError("a quantity above 0 kg")
    if x > MAX_QUANTITY_KG:
        raise ValueError(f"a quantity of at most {MAX_QUANTITY_KG:,.0f} kg (500,000 t, more "
                         "than any ship carries)")
    return x


def date_field(v: str) -> str:
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


country_field, optional_country_field = _country_checker()


def hs_code_field(v: str) -> str:
    digits = v.replace(".", "").replace(" ", "").strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (8, 10):
        raise ValueError("a customs code of 8 or 10 digits (dots and spaces allowed)")
    return digits


# No amount, value or limit a declaration or licence states comes near this: a larger number
# is a slip (1e308 USD), not a fact.
MAX_NUMBER = 1e15


def number_field(v: str) -> float:
    if not v.strip().isascii():  # float() reads full-width and other scripts' digits too
        raise ValueError("a number written with the digits 0-9 (such as 1250.5)")
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
    if x > MAX_NUMBER:
        raise ValueError("a number of at most 1,000,000,000,000,000 (1e15)")
    return x


def optional_number_field(v: str) -> float | None:
    return number_field(v) if v.strip() else None


def percent_field(v: str) -> float | None:
    if not v.strip():
        return None
    x = number_field(v)
    if x > 100:
        raise ValueError("a percentage between 0 and 100")
    return x


def optional_date_field(v: str) -> str | None:
    return date_field(v) if v.strip() else None


YES_NO = {"yes": "yes", "y": "yes", "true": "yes", "1": "yes",
          "no": "no", "n": "no", "false": "no", "0": "no"}


def yes_no_field(v: str) -> str | None:
    """yes or no (also y/n, true/false, 1/0, in any case), stored as 'yes' or 'no'."""
    v = v.strip()
    if not v:
        return None
    found = YES_NO.get(v.lower())
    if found is None:
        raise ValueError("yes or no")
    return found


def choice_field(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    """One of the choices, in any case, stored as declared."""
    by_key = {c.casefold(): c for c in choices}
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def field(v: str) -> str | None:
        v = _plain_text(v.strip())
        if not v:
            return None
        found = by_key.get(v.casefold())
        if found is None:
            raise ValueError(expected)
        return found

    return field


def fact_validator(spec: FieldSpec) -> Callable[[str], Any]:
    """The validator of a declared fact's column, by its type (every declared fact may be
    empty: then it is missing, and rules that need it are undetermined)."""
    if spec.choices:
        return yes_no_field if spec.declared == "yes/no" else choice_field(spec.choices)
    if spec.declared == "percentage":
        return percent_field
    return {"number": optional_number_field, "country": optional_country_field,
            "date": optional_date_field}.get(spec.type, optional_field)


def kind_field(v: str) -> str:
    v = v.strip().lower()
    if v not in ("individual", "general"):
        raise ValueError("individual or general")
    return v


ITEMS_EXPECTED = ("item names, item groups, control codes or customs codes (4, 6, 8 or 10 "
                  "digits) separated by ';'")
_ITEM_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def items_field(v: str) -> str:
    parts = [p.strip() for p in v.split(";") if p.strip()]
    if not parts:
        raise ValueError(ITEMS_EXPECTED)
    return ";".join(map(_item_entry, parts))


@functools.lru_cache(maxsize=1 << 16)
def _item_entry(p: str) -> str:
    """One entry of a licence's items, canonical (licences name the same codes and items
    over and over: each is checked once)."""
    digits = p.replace(".", "").replace(" ", "")
    if digits.isascii() and digits.isdigit():
        if len(digits) not in (4, 6, 8, 10):
            raise ValueError(f"{ITEMS_EXPECTED}; {p!r} has {len(digits)} digits")
        return digits
    if _ITEM_WORD.match(p):
        return p
    raise ValueError(f"{ITEMS_EXPECTED}; {p!r} is none of them")


def unknown_entries(entries: str | None, vocabulary: frozenset[str]) -> str | None:
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


def names_field(v: str) -> str | None:
    """`;`-separated names, stripped, empty ones dropped; None when there are none. A name
    that starts as a spreadsheet formula does (`=cmd|…`) is refused: no company is called
    that, and the value would run in a spreadsheet that opens an export."""
    names = [_plain_text(n.strip()) for n in v.split(";") if n.strip()]
    for n in names:
        if n[0] in "=+@":
            raise ValueError(f"names, not a spreadsheet formula ({n[:20]!r} starts with "
                             f"{n[0]!r})")
    return ";".join(names) or None


def owners_field(v: str) -> str | None:
    """A company's owners (parties.csv `parent`): `;`-separated names, each with the share it
    holds (`Alpha Ltd 30 %`) or without one (a controlling owner); a share is above 0 and up
    to 100 %, and the shares stated add up to 100 % at most. Written back as `A 30 %; B`."""
    owners = owners_of(names_field(v))
    for name, share in owners:
        if share is not None and not 0 < share <= 100:
            raise ValueError(f"an owner's share above 0 and up to 100 %, not {share:g} % "
                             f"({name})")
    total = sum(s for _, s in owners if s is not None)
    if total > 100:
        raise ValueError(f"owners' shares that add up to 100 % at most, not {total:g} %")
    return "; ".join(name if share is None else f"{name} {share:g} %"
                     for name, share in owners) or None


PRICE_UNITS = {"USD/kg": 1.0, "USD/t": 0.001}


def code_prefix_field(v: str) -> str:
    """A customs code or prefix of it: 4, 6, 8 or 10 digits (dots and spaces are ignored)."""
    digits = v.replace(".", "").replace(" ", "").strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (4, 6, 8, 10):
        raise ValueError("a customs code or prefix of 4, 6, 8 or 10 digits")
    return digits


def price_unit_field(v: str) -> str:
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


def parameters_field(v: str) -> str | None:
    """The `parameters` column, validated; stored as written in canonical form."""
    found = parse_parameters(v)
    if not found:
        return None
    return "; ".join(_parameter_text(k, x) for k, x in sorted(found.items()))


def _number_text(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


@functools.lru_cache(maxsize=1 << 16)
def canonical_parameters(v: str) -> str | None:
    """`parameters_field` of a text seen before: declarations of one product line repeat theirs
    (a ValueError is not cached: a wrong text is validated again, for its message)."""
    return parameters_field(v)


@functools.lru_cache(maxsize=1 << 16)
def _parsed_parameters(canonical: str) -> Mapping[str, float | str]:
    return types.MappingProxyType(parse_parameters(canonical))


def parameter_value(name: str) -> Callable[[Any], Any]:
    def value(canonical: str | None) -> float | str | None:
        return _parsed_parameters(canonical).get(name) if canonical else None

    return value
