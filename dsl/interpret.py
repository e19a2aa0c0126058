"""The reference interpreter: the checked rulebook evaluated on Python rows.

It is the oracle the compiled SQL is tested against, so it is written for clarity, one rule at
a time, following the language's semantics rather than the SQL's shape: three-valued
conditions (True, False, None for "a needed fact is missing"), in-force periods with
suspensions, items matched by customs code, licences drawn down in date order, listed parties
matched by normalised name, exceptions and overrides.

Case folding in `mentions` is ASCII-only, as SQLite's LOWER is; explanations are not
reproduced (findings are compared on declaration, rule, outcome, severity and citation).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsl import ast
from dsl.check import CheckedRulebook, Interval, normalise_customs_code
from dsl.compile import OUTCOME_OF
from dsl.names import party_key
from dsl.periods import Periods, listing_periods, rule_periods
from dsl.schema import UNIT_FACTORS, Schema

Row = Mapping[str, Any]
Truth = bool | None

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _and(values: Iterable[Truth]) -> Truth:
    result: Truth = True
    for v in values:
        if v is False:
            return False
        if v is None:
            result = None
    return result


def _or(values: Iterable[Truth]) -> Truth:
    result: Truth = False
    for v in values:
        if v is True:
            return True
        if v is None:
            result = None
    return result


def _not(v: Truth) -> Truth:
    return None if v is None else not v


@dataclass(frozen=True)
class Judgement:
    """A finding of the interpreter (the contract's columns but the explanation)."""

    declaration_id: str
    rule: str
    outcome: str
    severity: str | None
    instrument: str | None
    provision: str | None


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


class Interpreter:
    def __init__(self, rb: CheckedRulebook, schema: Schema) -> None:
        self.rb = rb
        self.schema = schema
        self.periods = rule_periods(rb)
        self.codes: dict[str, set[str]] = defaultdict(set)
        for name, item in rb.items.items():
            for a in ast.attrs_of(item, ast.Customs):
                for c in a.codes:
                    self.codes[normalise_customs_code(c.text)].add(name)
        self.listed: dict[str, set[str]] = defaultdict(set)  # key -> parties
        for name, party in rb.parties.items():
            names = {party.title.value} | {n.value for a in ast.attrs_of(party, ast.Alias)
                                           for n in a.names}
            for n in names:
                self.listed[party_key(n)].add(name)
        self.listings: dict[str, list[tuple[str, Periods]]] = defaultdict(list)
        for lp in listing_periods(rb):
            self.listings[lp.party].append((lp.list, lp.periods))

    # ------------------------------------------------------------ facts
    def items_of(self, d: Row) -> list[str]:
        code = d["hs_code"]
        found = set(self.codes.get(code, ()))
        for n in (8, 6):
            for item in self.codes.get(code[:n], ()):
                if len(code[:n]) == n:
                    found.add(item)
        return sorted(found)

    def value(self, d: Row, name: str) -> Any:
        spec = self.schema.field(name)
        assert spec is not None
        if spec.name == "unit_value":
            q, v = d.get("quantity_kg"), d.get("value_usd")
            return None if q in (None, 0) or v is None else v / q
        return d.get(spec.name)

    # ------------------------------------------------------------ conditions
    def truth(self, c: ast.Condition, d: Row, item: str | None, day: str) -> Truth:
        if isinstance(c, ast.Parenthesised):
            return self.truth(c.part, d, item, day)
        if isinstance(c, ast.AllOf):
            return _and(self.truth(p, d, item, day) for p in c.parts)
        if isinstance(c, ast.AnyOf):
            return _or(self.truth(p, d, item, day) for p in c.parts)
        if isinstance(c, ast.Negation):
            return _not(self.truth(c.part, d, item, day))
        if isinstance(c, ast.ItemIn):
            members = self.rb.items_in(r.name for r in c.members)
            result: Truth
            if item is None or item not in members:
                result = False
            else:
                it = ast.first_attr(self.rb.items[item], ast.ControlledIf)
                result = True if it is None else self.truth(it.condition, d, item, day)
            return _not(result) if c.negated else result
        if isinstance(c, ast.InSet):
            v = self.value(d, c.subject.name)
            if v is None:
                return None
            inside = False
            for ref in c.members:
                if ref.name in self.rb.country_groups:
                    iv = self.rb.validity.get(ref.name, Interval(None, None))
                    valid = (iv.start is None or iv.start.isoformat() <= day) and (
                        iv.end is None or day <= iv.end.isoformat())
                    inside |= valid and v in self.rb.country_members.get(ref.name, ())
                else:
                    inside |= v == ref.name
            return (not inside) if c.negated else inside
        if isinstance(c, ast.IsMissing):
            missing = self.value(d, c.subject.name) is None
            return (not missing) if c.negated else missing
        if isinstance(c, ast.Mentions):
            v = self.value(d, c.subject.name)
            if v is None:
                return None
            words = []
            for t in c.terms:
                if isinstance(t, ast.Text):
                    words.append(t.value)
                else:
                    words += [w.value for a in ast.attrs_of(self.rb.terms[t.name], ast.Words)
                              for w in a.words]
            text = ascii_lower(str(v))
            return any(w.lower() in text for w in words)
        if isinstance(c, ast.Listed):
            v = self.value(d, c.subject.name)
            if v is None:
                return None
            lists = {r.name for r in c.lists} or set(self.rb.lists)
            when = _day(day)
            return any(lst in lists and periods.in_force(when)
                       for party in self.listed.get(party_key(str(v)), ())
                       for lst, periods in self.listings[party])
        if isinstance(c, ast.Comparison):
            left, right = self.expression(c.left, d), self.expression(c.right, d)
            if left is None or right is None:
                return None
            result = {">=": left >= right, "<=": left <= right, ">": left > right,
                      "<": left < right, "=": left == right, "!=": left != right}[c.op]
            return bool(result)
        raise NotImplementedError(type(c).__name__)

    def expression(self, e: ast.Expression, d: Row) -> Any:
        if isinstance(e, ast.Field):
            return self.value(d, e.name.name)
        if isinstance(e, ast.Quantity):
            return float(e.value) * UNIT_FACTORS.get(e.unit or "", 1.0)
        if isinstance(e, ast.DateLiteral):
            return e.date.text
        if isinstance(e, ast.TextLiteral):
            return e.text.value
        if isinstance(e, ast.Arithmetic):
            a, b = self.expression(e.left, d), self.expression(e.right, d)
            if a is None or b is None or (e.op == "/" and b == 0):
                return None
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[e.op]
        raise NotImplementedError(type(e).__name__)

    # ------------------------------------------------------------ licences
    def licence_cover(self, declarations: Sequence[Row],
                      licences: Sequence[Row]) -> dict[str, bool]:
        by_no = {lic["licence_no"]: lic for lic in licences}
        uses: dict[str, list[Row]] = defaultdict(list)
        for d in declarations:
            if d.get("licence_no"):
                uses[d["licence_no"]].append(d)
        covered: dict[str, bool] = {}
        for number, rows in uses.items():
            lic = by_no.get(number)
            drawn = 0.0
            for d in sorted(rows, key=lambda r: (r["declared_on"], r["id"])):
                fits = lic is not None and self.fits(lic, d)
                if fits:
                    drawn += d["quantity_kg"]
                limit = lic.get("quantity_kg") if lic else None
                covered[d["id"]] = bool(fits and (limit is None or drawn <= limit))
        return covered

    def fits(self, lic: Row, d: Row) -> bool:
        if not lic["valid_from"] <= d["declared_on"] <= lic["valid_to"]:
            return False
        if lic["holder"] != d["exporter"]:
            return False
        if lic.get("destination_country") not in (None, d["destination_country"]):
            return False
        if lic.get("end_user") is not None and lic["end_user"] != d.get("end_user"):
            return False
        entries = [e for e in str(lic["items"]).split(";") if e]
        items = self.items_of(d)
        names = set(items)
        controls = {c.code.text for i in items
                    if (c := ast.first_attr(self.rb.items[i], ast.Control)) is not None}
        groups = {g for g, members in self.rb.group_items.items() if members & names}
        code = d["hs_code"]
        return any(e == code or (len(e) < 10 and code[:len(e)] == e) or e in controls or
                   e in names or e in groups for e in entries)

    # ------------------------------------------------------------ rules
    def uses_items(self, c: ast.Condition | None) -> bool:
        if c is None:
            return False
        stack = [c]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.ItemIn):
                return True
            if isinstance(node, ast.AllOf | ast.AnyOf):
                stack.extend(node.parts)
            elif isinstance(node, ast.Negation | ast.Parenthesised):
                stack.append(node.part)
        return False

    def suppressors(self, name: str) -> list[ast.Rule | ast.Exception_]:
        return self.rb.suppressors(name)

    def judge(self, declarations: Sequence[Row], licences: Sequence[Row] = (),
              as_of: str | None = None) -> list[Judgement]:
        cover = self.licence_cover(declarations, licences)
        out = []
        for name, rule in self.rb.rules.items():
            then = ast.first_attr(rule, ast.Then)
            when = ast.first_attr(rule, ast.When)
            if then is None or when is None or then.outcome.kind == "permitted":
                continue
            cite = ast.first_attr(rule, ast.Citation)
            word = OUTCOME_OF.get(then.outcome.kind, then.outcome.kind)
            licence = then.outcome.kind == "licence required"
            suppressors = self.suppressors(name)
            with_items = self.uses_items(when.condition) or any(
                self.uses_items(w.condition) for s in suppressors
                if (w := ast.first_attr(s, ast.When)) is not None)
            for d in declarations:
                day = as_of or d["declared_on"]
                if not self.periods[name].in_force(_day(day)):
                    continue
                candidates: list[str | None] = [None]
                if with_items:
                    candidates = [*self.items_of(d)] or [None]
                best: tuple[int, str, str] | None = None
                for item in candidates:
                    t = self.truth(when.condition, d, item, day)
                    if licence and cover.get(d["id"], False):
                        continue
                    if t is False:
                        continue
                    if t is None and not self.report_unknown(rule, d):
                        continue
                    if any(self.periods[s.name.name].in_force(_day(day)) and
                           self.truth(w.condition, d, item, day) is True
                           for s in suppressors
                           if (w := ast.first_attr(s, ast.When)) is not None) or any(
                               self.periods[s.name.name].in_force(_day(day))
                               for s in suppressors if ast.first_attr(s, ast.When) is None):
                        continue
                    outcome = word if t else self.unknown_outcome(rule, d)
                    candidate = (0 if t else 1, item or "", outcome)
                    if best is None or candidate[:2] < best[:2]:
                        best = candidate
                if best is not None:
                    out.append(Judgement(
                        d["id"], name, best[2], then.outcome.severity,
                        cite.instrument.name if cite else None,
                        str(cite.provision) if cite and cite.provision else None))
        return sorted(out, key=lambda j: (j.declaration_id, j.rule, j.outcome))

    def report_unknown(self, rule: ast.Rule, d: Row) -> bool:
        return all(self.value(d, m.field.name) is not None
                   for m in ast.attrs_of(rule, ast.IfMissing) if m.outcome is None)

    def unknown_outcome(self, rule: ast.Rule, d: Row) -> str:
        outcome = "undetermined"
        for m in ast.attrs_of(rule, ast.IfMissing):
            if m.outcome is not None and self.value(d, m.field.name) is None:
                outcome = OUTCOME_OF.get(m.outcome.kind, m.outcome.kind)
        return outcome
