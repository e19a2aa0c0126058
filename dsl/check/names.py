"""Name resolution, the checker's first stage: the names every file declares (pass 1), the
references to them, citations of instruments and provisions, customs and country codes,
and how a diagnostic is reported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

from dsl import ast
from dsl.diagnostics import Diagnostic, did_you_mean
from dsl.rulebook import (
    CheckedRulebook,
    Interval,
    fact_type_words,
    normalise_customs_code,
    parse_date,
)
from dsl.schema import Schema

# Facts an `explain` template may name besides the schema's fields.
EXPLAIN_FACTS = frozenset({
    "item", "item_title", "group", "control_code", "rule", "rule_title", "instrument",
    "provision", "listed_party", "list", "missing", "licence", "licence_problem", "outcome",
    "severity", "unit_value", "count", "sum", "matched_term", "related_party",
})
RESTRICTIVE = frozenset({"prohibited", "licence required", "presumption of denial",
                         "case-by-case review"})
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")

D = TypeVar("D")
Type = tuple[str, str | None]  # ("number", dimension) | ("date", None) | ("text", None)


def iter_conditions(c: ast.Condition) -> Iterator[ast.Condition]:
    stack: list[ast.Condition] = [c]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.AllOf | ast.AnyOf):
            stack.extend(node.parts)
        elif isinstance(node, ast.Negation | ast.Parenthesised):
            stack.append(node.part)


def _fact_type(f: ast.Fact) -> str:
    t = ast.first_attr(f, ast.FactType)
    return fact_type_words(t) if t else "no type"


class NameResolver:
    """Collects names (pass 1), resolves references, citations and codes, reports diagnostics."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        # the schema without the rulebooks' declared facts (the checker adds them to `schema`)
        self.base_schema = schema
        self.diags: list[Diagnostic] = []
        self.rb = CheckedRulebook(files=[])
        self._seen: dict[str, tuple[str, ast.Span]] = {}
        self.broken: set[str] = set()

    # ------------------------------------------------------------ reporting helpers
    def error(self, code: str, message: str, span: ast.Span, hint: str | None = None,
              related: tuple[tuple[ast.Span, str], ...] = ()) -> None:
        self.diags.append(Diagnostic(code, message, span, hint, related))

    def _kind_of(self, name: str) -> str | None:
        rb = self.rb
        for kind, table in (
            ("an instrument", rb.instruments), ("an item", rb.items), ("an item group", rb.groups),
            ("a country group", rb.country_groups), ("a list of terms", rb.terms),
            ("a value range", rb.value_ranges),
            ("a party list", rb.lists), ("a party", rb.parties), ("a rule", rb.rules),
            ("an exception", rb.exceptions),
        ):
            if name in table:
                return kind
        return None

    def resolve(self, ref: ast.Ref, wanted: str, *tables: Mapping[str, object]) -> bool:
        """Report E202/E203 unless `ref` names an entry of one of `tables`."""
        if any(ref.name in t for t in tables):
            return True
        if ref.name in self.broken:
            return False
        other = self._kind_of(ref.name)
        if other:
            article = "an" if wanted[0] in "aeiou" else "a"
            self.error("E203", f"'{ref.name}' is {other}, not {article} {wanted}", ref.span)
        else:
            candidates = [n for t in tables for n in t]
            self.error("E202", f"there is no {wanted} called '{ref.name}'", ref.span,
                       did_you_mean(ref.name, candidates))
        return False

    def date(self, dv: ast.DateValue | None) -> dt.date | None:
        if dv is None:
            return None
        d = parse_date(dv.text)
        if d is None:
            self.error("E301", f"'{dv.text}' is not a real date", dv.span,
                       "dates are written YYYY-MM-DD and must exist in the calendar")
        return d

    def interval(self, decl: object, default_start: dt.date | None) -> Interval:
        froms = ast.attrs_of(decl, ast.ValidFrom)
        untils = ast.attrs_of(decl, ast.ValidUntil)
        self.at_most_one(froms, "from")
        self.at_most_one(untils, "until")
        start = self.date(froms[0].date) if froms else default_start
        end = self.date(untils[0].date) if untils else None
        if start and end and end < start:
            self.error("E302", f"this ends on {end} before it starts on {start}", untils[0].span)
        return Interval(start, end)

    def at_most_one(self, attrs: Sequence[object], what: str) -> None:
        for extra in attrs[1:]:
            span = getattr(extra, "span", ast.NO_SPAN)
            first = getattr(attrs[0], "span", ast.NO_SPAN)
            self.error("E206", f"'{what}' is given more than once", span,
                       related=((first, "first given here"),))

    def required(self, decl: object, attrs: Sequence[object], what: str, name: ast.Ref | None,
                 span: ast.Span) -> None:
        if not attrs:
            label = f" '{name.name}'" if name else ""
            self.error("E205", f"{type(decl).__name__.rstrip('_').lower()}{label} needs {what}",
                       span)

    # ------------------------------------------------------------ pass 1: collect names
    def declare(self, table: dict[str, D], ref: ast.Ref, decl: D,
                namespace: str) -> None:
        key = f"{namespace}:{ref.name}"
        if key in self._seen:
            _, first = self._seen[key]
            self.error("E201", f"'{ref.name}' is declared twice", ref.span,
                       related=((first, "first declared here"),))
            return
        self._seen[key] = (ref.name, ref.span)
        table[ref.name] = decl

    def declare_fact(self, f: ast.Fact) -> None:
        """A fact is declared once; two rulebooks may each declare the same fact, of the same
        type (one column of the declarations serves both)."""
        first = self.rb.facts.get(f.name.name)
        self.rb.fact_declarations.setdefault(f.name.name, []).append(f)
        if first is not None and _fact_type(first) == _fact_type(f) and \
                self.rb.rulebook_of(first.span.file) != self.rb.rulebook_of(f.span.file):
            return
        if first is not None and _fact_type(first) != _fact_type(f):
            self.error("E201", f"fact '{f.name.name}' is declared twice, of different types "
                       f"({_fact_type(first)}; {_fact_type(f)})", f.name.span,
                       related=((first.name.span, "first declared here"),))
            return
        self.declare(self.rb.facts, f.name, f, "fact")

    def collect(self, files: list[ast.SourceFile]) -> None:
        rb = self.rb
        for sf in files:
            for d in sf.declarations:
                if isinstance(d, ast.RulebookDecl):
                    self.declare(rb.rulebooks, d.name, d, "rulebook")
                elif isinstance(d, ast.Instrument):
                    self.declare(rb.instruments, d.name, d, "instrument")
                elif isinstance(d, ast.Item):
                    self.declare(rb.items, d.name, d, "item")
                elif isinstance(d, ast.Group):
                    self.declare(rb.groups, d.name, d, "item")
                elif isinstance(d, ast.CountryGroup):
                    self.declare(rb.country_groups, d.name, d, "countries")
                elif isinstance(d, ast.Terms):
                    self.declare(rb.terms, d.name, d, "terms")
                elif isinstance(d, ast.ValueRange):
                    self.declare(rb.value_ranges, d.name, d, "value range")
                elif isinstance(d, ast.PartyList):
                    self.declare(rb.lists, d.name, d, "list")
                elif isinstance(d, ast.Party):
                    self.declare(rb.parties, d.name, d, "party")
                elif isinstance(d, ast.Rule):
                    self.declare(rb.rules, d.name, d, "rule")
                elif isinstance(d, ast.Exception_):
                    self.declare(rb.exceptions, d.name, d, "rule")
                elif isinstance(d, ast.Conclusion):
                    self.declare(rb.conclusions, d.name, d, "rule")
                elif isinstance(d, ast.Parameter):
                    self.declare(rb.parameters, d.name, d, "parameter")
                elif isinstance(d, ast.Fact):
                    self.declare_fact(d)
                elif isinstance(d, ast.Amendment):
                    rb.amendments.append(d)
                elif isinstance(d, ast.Example):
                    rb.examples.append(d)
        # which rulebook a file belongs to was asked while the rulebooks were still being
        # collected (by the facts): asked again now, from all of them
        for key in [k for k in rb.derived if k.startswith(("rulebook_of:", "rulebook_item"))]:
            del rb.derived[key]
        for name in rb.rules:
            if name in rb.instruments:
                self.error("E201", f"'{name}' names both a rule and an instrument",
                           rb.rules[name].name.span, "give the rule a different name")

    def _annotations(self, decl: object, kind: str, name: str) -> None:
        for u in ast.attrs_of(decl, ast.Unverified):
            self.rb.unverified.append((kind, name, u.text.value, u.span))

    def check_citations(self, decl: object) -> list[ast.Citation]:
        cites = ast.attrs_of(decl, ast.Citation)
        for c in cites:
            self.citation(c)
        return cites

    def citation(self, c: ast.Citation) -> ast.Instrument | None:
        if not self.resolve(c.instrument, "instrument", self.rb.instruments):
            return None
        ins = self.rb.instruments[c.instrument.name]
        if c.provision is not None:
            self.provision(ins, c.provision)
        return ins

    def provision(self, ins: ast.Instrument, ref: ast.ProvisionRef) -> None:
        provisions = ast.attrs_of(ins, ast.Provision)
        if not any(p.kind == ref.kind and p.label == ref.label for p in provisions):
            have = [f"{p.kind} {p.label}" for p in provisions]
            listed = ", ".join(have) if have else "no provisions"
            self.error("E204", f"{ins.name.name} has no {ref}", ref.span,
                       did_you_mean(str(ref), have) or f"it declares {listed}")

    def instrument_start(self, name: str) -> dt.date | None:
        return self.rb.in_force_date(name)

    def customs_code(self, c: ast.Code, allow_hs6: bool = False) -> str | None:
        digits = normalise_customs_code(c.text)
        lengths = (6, 8, 10) if allow_hs6 else (8, 10)
        if not digits.isdigit() or len(digits) not in lengths:
            self.error("E405", f"'{c.text}' is not a customs code of "
                       f"{' or '.join(map(str, lengths))} digits", c.span)
            return None
        hs6 = self.schema.hs_subheadings
        if hs6 is not None and digits[:6] not in hs6:
            self.error("W101", f"HS 2022 has no subheading {digits[:4]}.{digits[4:6]} "
                       f"(from customs code {c.text})", c.span,
                       "check the code against the HS 2022 nomenclature")
        return digits

    def country_code(self, ref: ast.Ref, groups_allowed: bool = False) -> None:
        name = ref.name
        if groups_allowed and name in self.rb.country_groups:
            return
        known = self.schema.countries
        if _COUNTRY_CODE.fullmatch(name) and (known is None or name in known):
            return
        candidates = list(known or ()) + (list(self.rb.country_groups) if groups_allowed else [])
        what = "an ISO 3166 country code" + (" or country group" if groups_allowed else "")
        self.error("E405", f"'{name}' is not {what}", ref.span,
                   country_hint(name) or did_you_mean(name, candidates))

    def measures_of(self, refs: Sequence[ast.Ref], lists: Sequence[str]) -> None:
        """E202 for a measure none of `lists` declares."""
        declared = sorted({m for lst in lists for m in self.rb.list_measures(lst)})
        for ref in refs:
            if ref.name not in declared:
                where = f"'{lists[0]}'" if len(lists) == 1 else "these lists"
                self.error("E202", f"{where} declares no measure '{ref.name}'", ref.span,
                           did_you_mean(ref.name, declared) or
                           (f"its measures are: {', '.join(declared)}" if declared else
                            "declare the list's measures first (measures NAME, …)"))


# Country codes people write that ISO 3166 gives otherwise.
_COUNTRY_SLIPS = {"UK": "GB", "EL": "GR", "EN": "GB", "KO": "KR", "JA": "JP", "CN-HK": "HK"}


def country_code_of(name: str) -> str | None:
    """The ISO 3166 alpha-2 code a name stands for: a common slip (UK), an alpha-2 or alpha-3
    code (USA), an English name (Germany, United Kingdom); None if it is not a country."""
    import pycountry

    code = _COUNTRY_SLIPS.get(name.upper())
    if code is None:
        try:
            found = pycountry.countries.lookup(name.replace("-", " "))
        except LookupError:
            return None
        code = found.alpha_2
    return str(code)


def country_hint(name: str) -> str | None:
    """`did you mean 'GB'?` for a country written by a common slip (UK), by its alpha-3 code
    (USA) or by its English name (Germany, United Kingdom)."""
    import pycountry

    code = country_code_of(name)
    if code is None:
        return None
    country = pycountry.countries.get(alpha_2=code)
    label = f" ({country.name})" if country is not None else ""
    return f"did you mean '{code}'{label}? Countries are written as ISO 3166 alpha-2 codes"
