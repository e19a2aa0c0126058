"""Trying other values of a rulebook's parameters without editing it (`excon screen --set
NAME=VALUE`, `dsl.load(…, parameters={…})`): how a policy officer asks "what would the
indicator flag at 300 kg?", and how the benchmark sweeps a threshold.

A setting replaces every value of the parameter by one value on every day, with the
parameter's comparator (or the one the setting gives: `at least 300 kg`) and unit kind, and
marks the parameter unverified, naming the setting and the values it replaced: findings that
rest on it say so in their caveat. The rulebook's version changes with the setting (it is a hash
of the declarations), so a finding made under a setting never passes for one of the rulebook
as written, and nothing cached for the rulebook is used for it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from dsl import ast
from dsl.diagnostics import did_you_mean
from dsl.rulebook import COMPARATOR_WORDS
from dsl.schema import UNIT_DIMENSIONS

_OPS = {words: op for op, words in COMPARATOR_WORDS.items() if op}
_UNITS = "|".join(re.escape(u) for u in sorted(UNIT_DIMENSIONS, key=len, reverse=True))
_VALUE = re.compile(rf"^\s*(?:(?P<op>{'|'.join(_OPS)})\s+)?(?P<number>\d+(?:\.\d+)?)\s*"
                    rf"(?P<unit>{_UNITS})?\s*$")


# how the `unverified` note of a parameter set for a run begins
SET_NOTE = "set for this run"


class SettingError(ValueError):
    """A setting names no parameter of the rulebooks, or its value cannot be read."""


def parse_setting(text: str) -> tuple[str, str]:
    """`NAME=VALUE` (the command line's form) as (name, value)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise SettingError(f"'{text}': a setting is NAME=VALUE, for example "
                           "split-total-minor-metals=300kg")
    return name.strip(), value.strip()


def apply_settings(files: list[ast.SourceFile],
                   settings: Mapping[str, str]) -> list[ast.SourceFile]:
    """The files with each set parameter's values replaced (see the module's docstring)."""
    if not settings:
        return files
    found = {d.name.name: d for f in files for d in f.declarations
             if isinstance(d, ast.Parameter)}
    for name in settings:
        if name not in found:
            hint = did_you_mean(name, sorted(found))
            raise SettingError(f"--set {name}: the rulebooks have no parameter '{name}'"
                               + (f"; {hint}" if hint else "")
                               + (f" (they have {', '.join(sorted(found))})" if not hint
                                  and found else ""))
    replaced = {name: _set(found[name], value) for name, value in settings.items()}
    return [replace(f, declarations=tuple(
        replaced.get(d.name.name, d) if isinstance(d, ast.Parameter) else d
        for d in f.declarations)) for f in files]


def _set(p: ast.Parameter, text: str) -> ast.Parameter:
    name = p.name.name
    m = _VALUE.match(text)
    if m is None:
        raise SettingError(f"--set {name}={text}: a value is a number with its unit, for "
                           "example 300kg, 45days, 60%, or 2")
    old = ast.attrs_of(p, ast.ParameterValue)
    ops = {v.op for v in old}
    if m["op"] and ops == {""}:
        raise SettingError(f"--set {name}={text}: '{name}' is a length (a number of days), "
                           "not a threshold: give the number of days alone")
    op = _OPS[m["op"]] if m["op"] else (ops.pop() if len(ops) == 1 else None)
    if op is None:
        raise SettingError(f"--set {name}={text}: its values have different comparators; "
                           "give one (at least, more than, at most, less than)")
    unit = m["unit"]
    units = {v.unit for v in old}
    if unit is None and len(units) == 1 and (only := next(iter(units))) is not None:
        raise SettingError(f"--set {name}={text}: give the unit ({only}), as the "
                           f"parameter's values have it")
    if unit is not None and {UNIT_DIMENSIONS.get(u or "") for u in units} != \
            {UNIT_DIMENSIONS[unit]}:
        kinds = ", ".join(sorted(u or "no unit" for u in units))
        raise SettingError(f"--set {name}={text}: '{name}' is in {kinds}, not {unit}")
    was = "; ".join(" ".join(x for x in (COMPARATOR_WORDS[v.op], _number(v.value),
                                         v.unit or "") if x) for v in old)
    value = ast.ParameterValue(op, Decimal(m["number"]), unit, span=p.span)
    note = ast.Unverified(ast.Text(f"{SET_NOTE} (--set {name}={text}) in place of the "
                                   f"rulebook's {was}", p.span), p.span)
    keep = [a for a in p.attrs if not isinstance(a, ast.ParameterValue | ast.Unverified)]
    return replace(p, attrs=(value, *keep, note))


def _number(d: Decimal) -> str:
    return format(d.normalize(), "f")
