"""Resolve names and check a rulebook: references, dates and intervals, types and units,
precedence, exceptions and examples. The result is a `CheckedRulebook` (the IR later stages use)
and a list of diagnostics; the checker never stops at the first problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import PurePath
from typing import Any, TypeVar

from dsl import ast
from dsl.diagnostics import Diagnostic, did_you_mean
from dsl.names import is_web_url
from dsl.schema import UNIT_DIMENSIONS, FieldSpec, Schema

# Facts an `explain` template may name besides the schema's fields.
EXPLAIN_FACTS = frozenset({
    "item", "item_title", "group", "control_code", "rule", "rule_title", "instrument",
    "provision", "listed_party", "list", "missing", "licence", "licence_problem", "outcome",
    "severity", "unit_value", "count", "sum", "matched_term", "related_party",
})
RESTRICTIVE = frozenset({"prohibited", "licence required"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")

D = TypeVar("D")
Type = tuple[str, str | None]  # ("number", dimension) | ("date", None) | ("text", None)


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval of days; `end=None` is open-ended. Both ends are inclusive."""

    start: dt.date | None
    end: dt.date | None

    def overlaps(self, other: Interval) -> bool:
        lo = max((d for d in (self.start, other.start) if d), default=None)
        hi = min((d for d in (self.end, other.end) if d), default=None)
        return lo is None or hi is None or lo <= hi


@dataclass
class CheckedRulebook:
    """Everything declared in a set of rulebook files, resolved and indexed by name."""

    files: list[ast.SourceFile]
    rulebooks: dict[str, ast.RulebookDecl] = field(default_factory=dict)
    instruments: dict[str, ast.Instrument] = field(default_factory=dict)
    items: dict[str, ast.Item] = field(default_factory=dict)
    groups: dict[str, ast.Group] = field(default_factory=dict)
    country_groups: dict[str, ast.CountryGroup] = field(default_factory=dict)
    terms: dict[str, ast.Terms] = field(default_factory=dict)
    value_ranges: dict[str, ast.ValueRange] = field(default_factory=dict)
    # compile_rulebook's result per schema (compiling is the slow step of loading)
    compiled: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)
    # what `dsl.periods` resolves from it once (item controls), kept with it
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    lists: dict[str, ast.PartyList] = field(default_factory=dict)
    parties: dict[str, ast.Party] = field(default_factory=dict)
    rules: dict[str, ast.Rule] = field(default_factory=dict)
    exceptions: dict[str, ast.Exception_] = field(default_factory=dict)
    amendments: list[ast.Amendment] = field(default_factory=list)
    examples: list[ast.Example] = field(default_factory=list)
    group_items: dict[str, frozenset[str]] = field(default_factory=dict)
    country_members: dict[str, frozenset[str]] = field(default_factory=dict)
    validity: dict[str, Interval] = field(default_factory=dict)
    unverified: list[tuple[str, str, str, ast.Span]] = field(default_factory=list)
    version: str = ""

    def items_in(self, names: Iterable[str]) -> frozenset[str]:
        """Expand item and group names to item names."""
        out: set[str] = set()
        for n in names:
            out |= self.group_items.get(n, frozenset({n}) if n in self.items else frozenset())
        return frozenset(out)

    def in_force_date(self, instrument: str) -> dt.date | None:
        """The `in force` date of an instrument, if it is declared with one."""
        ins = self.instruments.get(instrument)
        f = ast.first_attr(ins, ast.InForce) if ins is not None else None
        return parse_date(f.date.text) if f else None

    def control_acts(self, item: str) -> list[ast.ControlAct]:
        """The acts that control an item: its own `per` lines, else those of every group it
        belongs to (directly or through nested groups) that has some."""
        it = self.items.get(item)
        own = ast.attrs_of(it, ast.ControlAct) if it is not None else []
        if own:
            return own
        return [a for g, members in self.group_items.items() if item in members
                for a in ast.attrs_of(self.groups[g], ast.ControlAct)]

    def list_measures(self, name: str) -> tuple[str, ...]:
        """The measures a party list declares its listings can impose."""
        lst = self.lists.get(name)
        return tuple(r.name for m in ast.attrs_of(lst, ast.Measures) for r in m.names) \
            if lst is not None else ()

    def listing_measures(self, listing: ast.Listing) -> tuple[str, ...]:
        """The measures a listing imposes: those it names, else every measure of its list."""
        if listing.measures is not None:
            return tuple(r.name for r in listing.measures)
        return self.list_measures(listing.list.name)

    def rulebook_items(self, file: str) -> frozenset[str]:
        """The items declared in the rulebook that `file` belongs to."""
        mine = self.rulebook_of(file)
        return frozenset(n for n, it in self.items.items()
                         if self.rulebook_of(it.span.file) == mine)

    def condition_of(self, decl: ast.Rule | ast.Exception_) -> ast.Condition | None:
        """A rule's or exception's condition as the later stages evaluate it: `item is
        dual-use` becomes `item in` every item of the rulebook it belongs to (whose control
        periods and thresholds then apply as to any item)."""
        when = ast.first_attr(decl, ast.When)
        if when is None:
            return None
        key = f"condition:{id(decl)}"
        if key not in self.derived:
            items = tuple(ast.Ref(n) for n in sorted(self.rulebook_items(decl.span.file)))
            self.derived[key] = _expand_dual_use(when.condition, items)
        return self.derived[key]  # type: ignore[no-any-return]

    def suppressors(self, rule: str) -> list[ast.Rule | ast.Exception_]:
        """Exceptions that except `rule`, and permissions that override it."""
        out: list[ast.Rule | ast.Exception_] = [
            e for e in self.exceptions.values()
            if any(r.name == rule for x in ast.attrs_of(e, ast.Excepts) for r in x.rules)]
        for r in self.rules.values():
            then = ast.first_attr(r, ast.Then)
            if then and then.outcome.kind == "permitted" and any(
                    o.name == rule for x in ast.attrs_of(r, ast.Overrides) for o in x.rules):
                out.append(r)
        return out

    def value_range_rows(self) -> list[tuple[str, str, float, float]]:
        """(value range, customs code, low, high) in USD/kg, for every code of every range."""
        out = []
        for name, vr in sorted(self.value_ranges.items()):
            pr = ast.first_attr(vr, ast.PriceRange)
            if pr is None:
                continue
            for a in ast.attrs_of(vr, ast.Customs):
                for c in a.codes:
                    out.append((name, normalise_customs_code(c.text), float(pr.low),
                                float(pr.high)))
        return out

    def item_value_ranges(self, names: Iterable[str]) -> list[tuple[float, float]]:
        """The reference unit-value ranges that apply to these items (or groups' items): those
        of a value range whose customs code and one of the item's codes are the same line at
        different precision (one is a prefix of the other)."""
        names = list(names)
        codes = [normalise_customs_code(c.text) for i in sorted(self.items_in(names))
                 for a in ast.attrs_of(self.items[i], ast.Customs) for c in a.codes]
        found = {(low, high) for vr, code, low, high in self.value_range_rows()
                 if vr in names or any(code.startswith(c) or c.startswith(code)
                                       for c in codes)}
        return sorted(found)

    def rulebook_of(self, file: str) -> str | None:
        """The rulebook a file belongs to: the one declared in its folder (or a parent folder)."""
        best: tuple[int, str] | None = None
        for name, decl in self.rulebooks.items():
            folder = PurePath(decl.span.file).parent
            if PurePath(file).is_relative_to(folder):
                depth = len(folder.parts)
                if best is None or depth > best[0]:
                    best = (depth, name)
        if best is None and len(self.rulebooks) == 1:
            return next(iter(self.rulebooks))
        return best[1] if best else None

    def mineral_of(self, item: str, rulebook: str | None) -> str | None:
        """The item's smallest group in that rulebook (its mineral, not a union such as
        `dual-use-minerals`); windows `with same group` compare declarations by it."""
        found = [(len(members), g) for g, members in self.group_items.items()
                 if item in members and self.rulebook_of(self.groups[g].span.file) == rulebook]
        return min(found)[1] if found else None

    def mineral_rows(self) -> list[tuple[str, str, str]]:
        """(item, rulebook, mineral) for every rulebook that groups the item."""
        return [(item, r, m) for r in sorted(self.rulebooks) for item in sorted(self.items)
                if (m := self.mineral_of(item, r)) is not None]

    def countries_in(self, names: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for n in names:
            out |= self.country_members.get(n, frozenset({n}))
        return frozenset(out)


def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def normalise_customs_code(text: str) -> str:
    """Digits only: `8112.92.90.10` and `8112 92 90 10` both become `8112929010`."""
    return re.sub(r"[.\s]", "", text)


def _expand_dual_use(c: ast.Condition, items: tuple[ast.Ref, ...]) -> ast.Condition:
    if isinstance(c, ast.DualUse):
        return ast.ItemIn(items, c.negated, c.span)
    if isinstance(c, ast.AllOf | ast.AnyOf):
        return replace(c, parts=tuple(_expand_dual_use(p, items) for p in c.parts))
    if isinstance(c, ast.Negation | ast.Parenthesised):
        return replace(c, part=_expand_dual_use(c.part, items))
    return c


def _iter_conditions(c: ast.Condition) -> Iterator[ast.Condition]:
    stack: list[ast.Condition] = [c]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.AllOf | ast.AnyOf):
            stack.extend(node.parts)
        elif isinstance(node, ast.Negation | ast.Parenthesised):
            stack.append(node.part)


class Checker:
    """One pass to collect names, one to check every declaration against them and the schema."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
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
                elif isinstance(d, ast.Amendment):
                    rb.amendments.append(d)
                elif isinstance(d, ast.Example):
                    rb.examples.append(d)
        for name in rb.rules:
            if name in rb.instruments:
                self.error("E201", f"'{name}' names both a rule and an instrument",
                           rb.rules[name].name.span, "give the rule a different name")

    # ------------------------------------------------------------ pass 2: check
    def check(self, files: list[ast.SourceFile]) -> CheckedRulebook:
        self.rb.files = files
        # declarations the parser could not read (their syntax error is reported): a reference
        # to one is not an error of its own, and must not suggest another name
        self.broken = {name for f in files for _, name, _ in f.broken}
        self.collect(files)
        self._expand_groups()
        self._expand_countries()
        for d in self.rb.rulebooks.values():
            self._annotations(d, "rulebook", d.name.name)
            for j in ast.attrs_of(d, ast.Jurisdiction):
                self.country_code(j.country)
        for ins in self.rb.instruments.values():
            self.check_instrument(ins)
        for it in self.rb.items.values():
            self.check_item(it)
        for g in self.rb.groups.values():
            self.control_acts(g)
            self._annotations(g, "group", g.name.name)
        for cg in self.rb.country_groups.values():
            self.check_country_group(cg)
        for t in self.rb.terms.values():
            self.required(t, ast.attrs_of(t, ast.Words), "some words", t.name, t.name.span)
        for vr in self.rb.value_ranges.values():
            self.check_value_range(vr)
        for pl in self.rb.lists.values():
            self.check_party_list(pl)
        for p in self.rb.parties.values():
            self.check_party(p)
        for r in self.rb.rules.values():
            self.check_rule(r)
        for e in self.rb.exceptions.values():
            self.check_exception(e)
        self.check_amendments()
        self.check_item_periods()
        self.check_conflicts()
        for ex in self.rb.examples:
            self.check_example(ex)
        self.rb.version = _version(files)
        return self.rb

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

    # ------------------------------------------------------------ instruments and items
    def check_instrument(self, ins: ast.Instrument) -> None:
        self._annotations(ins, "instrument", ins.name.name)
        titles = [t for t in ast.attrs_of(ins, ast.Title) if t.lang is None]
        self.required(ins, titles, "a title", ins.name, ins.name.span)
        self.at_most_one(titles, "title")
        issued = ast.attrs_of(ins, ast.Issued)
        in_force = ast.attrs_of(ins, ast.InForce)
        self.required(ins, issued, "an 'issued' date", ins.name, ins.name.span)
        self.required(ins, in_force, "an 'in force' date", ins.name, ins.name.span)
        self.at_most_one(issued, "issued")
        self.at_most_one(in_force, "in force")
        d_issued = self.date(issued[0].date) if issued else None
        d_force = self.date(in_force[0].date) if in_force else None
        if d_issued and d_force and d_force < d_issued:
            self.error("E302", f"it comes into force on {d_force}, before it was issued on "
                       f"{d_issued}", in_force[0].span)
        seen: dict[str, ast.Span] = {}
        for p in ast.attrs_of(ins, ast.Provision):
            key = f"{p.kind} {p.label}"
            if key in seen:
                self.error("E201", f"{ins.name.name} declares {key} twice", p.span,
                           related=((seen[key], "first declared here"),))
            seen[key] = p.span
        for u in ast.attrs_of(ins, ast.Url):
            if not is_web_url(u.text.value):
                self.error("E408", f"'{u.text.value}' is not an absolute http or https URL",
                           u.span, "write the address as it starts in a browser, such as "
                           "https://www.mofcom.gov.cn/…")
        self.rb.validity[ins.name.name] = Interval(d_force, None)

    def control_acts(self, decl: ast.Item | ast.Group) -> list[ast.ControlAct]:
        """Check the `per … [from …] [until …]` lines of an item or a group."""
        acts = ast.attrs_of(decl, ast.ControlAct)
        for act in acts:
            if self.citation(act.citation) is None:
                continue
            start = self.date(act.valid_from.date) if act.valid_from else None
            end = self.date(act.valid_until.date) if act.valid_until else None
            in_force = self.instrument_start(act.citation.instrument.name)
            if start and in_force and start < in_force:
                self.error("E304", f"this control applies from {start}, before "
                           f"{act.citation.instrument.name} came into force on {in_force}",
                           act.valid_from.span if act.valid_from else act.span)
            if end and (start or in_force) and end < (start or in_force):  # type: ignore[operator]
                self.error("E302", f"this control ends on {end} before it starts on "
                           f"{start or in_force}",
                           act.valid_until.span if act.valid_until else act.span)
        return acts

    def check_item(self, it: ast.Item) -> None:
        self._annotations(it, "item", it.name.name)
        cites = self.control_acts(it)
        if not cites and not self.rb.control_acts(it.name.name):
            self.error("E205", f"item '{it.name.name}' needs a citation (per INSTRUMENT)",
                       it.name.span, "add a line such as: per MOFCOM-2023-23")
        controls = ast.attrs_of(it, ast.Control)
        self.at_most_one(controls, "control")
        customs = [c for a in ast.attrs_of(it, ast.Customs) for c in a.codes]
        if not customs and not controls and not ast.attrs_of(it, ast.Unverified):
            self.error("E205", f"item '{it.name.name}' needs a control code or customs codes",
                       it.name.span, "if they are not known, say so with: unverified \"…\"")
        seen: set[str] = set()
        for c in customs:
            digits = self.customs_code(c, allow_hs6=True)
            if digits and digits in seen:
                self.error("E201", f"customs code {c.text} is listed twice", c.span)
            seen.add(digits or "")
        for m in ast.attrs_of(it, ast.MemberOf):
            for g in m.groups:
                self.resolve(g, "item group", self.rb.groups)
        for ci in ast.attrs_of(it, ast.ControlledIf):
            self.condition(ci.condition, context="item")

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

    def _expand_groups(self) -> None:
        rb = self.rb
        direct: dict[str, set[str]] = {g: set() for g in rb.groups}
        for name, it in rb.items.items():
            for m in ast.attrs_of(it, ast.MemberOf):
                for g in m.groups:
                    if g.name in direct:
                        direct[g.name].add(name)
        for name, grp in rb.groups.items():
            for mem in ast.attrs_of(grp, ast.Members):
                for ref in mem.names:
                    if self.resolve(ref, "item or item group", rb.items, rb.groups):
                        direct[name].add(ref.name)
        rb.group_items = self._closure(direct, rb.groups, rb.items)

    def _expand_countries(self) -> None:
        rb = self.rb
        direct: dict[str, set[str]] = {g: set() for g in rb.country_groups}
        for name, cg in rb.country_groups.items():
            for m in ast.attrs_of(cg, ast.Members):
                for ref in m.names:
                    self.country_code(ref, groups_allowed=True)
                    direct[name].add(ref.name)
        rb.country_members = self._closure(direct, rb.country_groups, None)

    def _closure(self, direct: dict[str, set[str]],
                 decls: Mapping[str, ast.Group | ast.CountryGroup],
                 leaves: Mapping[str, object] | None) -> dict[str, frozenset[str]]:
        """Expand nested groups to their leaves; a group that contains itself is E208."""
        out: dict[str, frozenset[str]] = {}

        def visit(name: str, path: list[str]) -> frozenset[str]:
            if name in out:
                return out[name]
            if name in path:
                cycle = " → ".join([*path[path.index(name):], name])
                self.error("E208", f"group '{name}' contains itself ({cycle})",
                           decls[name].name.span)
                return frozenset()
            acc: set[str] = set()
            for m in direct.get(name, ()):
                if m in direct:
                    acc |= visit(m, [*path, name])
                elif leaves is None or m in leaves:
                    acc.add(m)
            out[name] = frozenset(acc)
            return out[name]

        for g in direct:
            visit(g, [])
        return out

    # ------------------------------------------------------------ countries, lists, parties
    def check_country_group(self, cg: ast.CountryGroup) -> None:
        self._annotations(cg, "countries", cg.name.name)
        self.check_citations(cg)
        self.required(cg, ast.attrs_of(cg, ast.Members), "members", cg.name, cg.name.span)
        self.rb.validity[cg.name.name] = self.interval(cg, None)

    def check_value_range(self, vr: ast.ValueRange) -> None:
        self._annotations(vr, "value range", vr.name.name)
        self.check_citations(vr)
        codes = ast.attrs_of(vr, ast.Customs)
        self.required(vr, codes, "customs codes (customs CODE, …)", vr.name, vr.name.span)
        for a in codes:
            for c in a.codes:
                self.customs_code(c, allow_hs6=True)
        ranges = ast.attrs_of(vr, ast.PriceRange)
        self.required(vr, ranges, "a range (range 0.3 USD/kg to 0.7 USD/kg)", vr.name,
                      vr.name.span)
        for r in ranges:
            for unit in (r.low_unit, r.high_unit):
                if unit != "USD/kg":
                    self.error("E402", f"a value range is in USD/kg, not {unit}", r.span)
            if r.high < r.low:
                self.error("E403", f"the range ends at {r.high} below its start {r.low}",
                           r.span)

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

    def check_party_list(self, pl: ast.PartyList) -> None:
        self._annotations(pl, "list", pl.name.name)
        self.check_citations(pl)
        seen: set[str] = set()
        for measures in ast.attrs_of(pl, ast.Measures):
            for ref in measures.names:
                if ref.name in seen:
                    self.error("E201", f"measure '{ref.name}' is declared twice", ref.span)
                seen.add(ref.name)
        for m in ast.attrs_of(pl, ast.MatchThreshold):
            if not 0 <= m.value <= 100:
                self.error("E403", f"a match threshold is a score from 0 to 100, not {m.value}",
                           m.span)

    def check_party(self, p: ast.Party) -> None:
        self._annotations(p, "party", p.name.name)
        for c in ast.attrs_of(p, ast.Country):
            self.country_code(c.code)
        for lst in ast.attrs_of(p, ast.Listing):
            if self.resolve(lst.list, "party list", self.rb.lists):
                self.measures_of(lst.measures or (), [lst.list.name])
            self.citation(lst.citation)
            start = self.date(lst.valid_from.date)
            end = self.date(lst.valid_until.date) if lst.valid_until else None
            if start and end and end < start:
                self.error("E302", f"this listing ends on {end} before it starts on {start}",
                           lst.valid_until.span if lst.valid_until else lst.span)
        for o in ast.attrs_of(p, ast.OwnedBy):
            self.resolve(o.owner, "party", self.rb.parties)
            if o.owner.name == p.name.name:
                self.error("E208", f"'{p.name.name}' cannot own itself", o.owner.span)
            if o.share_pct is not None and not 0 <= o.share_pct <= 100:
                self.error("E403", f"an ownership share is 0–100 %, not {o.share_pct} %", o.span)

    # ------------------------------------------------------------ rules and exceptions
    def rule_interval(self, decl: ast.Rule | ast.Exception_) -> Interval:
        cites = ast.attrs_of(decl, ast.Citation)
        start = self.instrument_start(cites[0].instrument.name) if cites else None
        iv = self.interval(decl, start)
        froms = ast.attrs_of(decl, ast.ValidFrom)
        if cites and froms and iv.start and start and iv.start < start:
            ins = cites[0].instrument.name
            self.error("E304", f"this applies from {iv.start}, before {ins} came into force on "
                       f"{start}", froms[0].span)
        return iv

    def check_rule(self, r: ast.Rule) -> None:
        self._annotations(r, "rule", r.name.name)
        cites = self.check_citations(r)
        self.required(r, cites, "a citation (per INSTRUMENT …)", r.name, r.name.span)
        whens = ast.attrs_of(r, ast.When)
        thens = ast.attrs_of(r, ast.Then)
        self.required(r, whens, "a condition (when …)", r.name, r.name.span)
        self.required(r, thens, "an outcome (then …)", r.name, r.name.span)
        for attrs, what in ((whens, "when"), (thens, "then"), (ast.attrs_of(r, ast.Explain),
                                                               "explain")):
            self.at_most_one(attrs, what)
        for w in whens:
            self.condition(w.condition, context="rule")
        for e in ast.attrs_of(r, ast.Explain):
            self.explanation(e)
        for o in ast.attrs_of(r, ast.Overrides):
            for ref in o.rules:
                if ref.name == r.name.name:
                    self.error("E503", f"rule '{ref.name}' cannot override itself", ref.span)
                else:
                    self.resolve(ref, "rule", self.rb.rules)
        for al in ast.attrs_of(r, ast.Alongside):
            for ref in al.rules:
                if ref.name == r.name.name:
                    self.error("E503", f"rule '{ref.name}' cannot stand alongside itself",
                               ref.span)
                else:
                    self.resolve(ref, "rule", self.rb.rules)
        for m in ast.attrs_of(r, ast.IfMissing):
            self.field_ref(m.field)
        self.rb.validity[r.name.name] = self.rule_interval(r)

    def check_exception(self, e: ast.Exception_) -> None:
        self._annotations(e, "exception", e.name.name)
        cites = self.check_citations(e)
        self.required(e, cites, "a citation (per INSTRUMENT …)", e.name, e.name.span)
        excepts = ast.attrs_of(e, ast.Excepts)
        self.required(e, excepts, "the rules it excepts (excepts RULE, …)", e.name, e.name.span)
        whens = ast.attrs_of(e, ast.When)
        self.at_most_one(whens, "when")
        for w in whens:
            self.condition(w.condition, context="rule")
        iv = self.rule_interval(e)
        self.rb.validity[e.name.name] = iv
        for x in excepts:
            for ref in x.rules:
                if not self.resolve(ref, "rule", self.rb.rules):
                    continue
                self._reachable(e, iv, self.rb.rules[ref.name], ref)

    def _reachable(self, e: ast.Exception_, iv: Interval, rule: ast.Rule, ref: ast.Ref) -> None:
        """E502 when the exception cannot apply to a declaration the rule applies to."""
        rule_iv = self.rb.validity.get(rule.name.name) or self.rule_interval(rule)
        if not iv.overlaps(rule_iv):
            self.error("E502", f"exception '{e.name.name}' is never in force while rule "
                       f"'{rule.name.name}' is", ref.span,
                       related=((rule.name.span, "the rule is declared here"),))
            return
        ex_scope = self.scope(e)
        r_scope = self.scope(rule)
        for (mine, theirs), what in zip(zip(ex_scope, r_scope, strict=True),
                                        ("items", "destinations"), strict=True):
            if mine is not None and theirs is not None and not (mine & theirs):
                self.error("E502", f"exception '{e.name.name}' covers none of the {what} that "
                           f"rule '{rule.name.name}' covers", ref.span,
                           related=((rule.name.span, "the rule is declared here"),))
                return
        when = ast.first_attr(e, ast.When)
        for other in self.rb.exceptions.values():
            if other is e:
                break
            other_when = ast.first_attr(other, ast.When)
            excepted = {r.name for x in ast.attrs_of(other, ast.Excepts) for r in x.rules}
            if rule.name.name in excepted and when and other_when and \
                    other_when.condition == when.condition and \
                    self.rb.validity.get(other.name.name) == iv:
                self.error("E502", f"exception '{e.name.name}' repeats exception "
                           f"'{other.name.name}', which already applies first", e.name.span,
                           related=((other.name.span, "the earlier exception"),))

    def scope(self, decl: object) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """Which items and destinations a rule can possibly apply to (None: any)."""
        when = ast.first_attr(decl, ast.When)
        if when is None:
            return None, None
        return self._scope(when.condition)

    def _scope(self, c: ast.Condition) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        if isinstance(c, ast.Parenthesised):
            return self._scope(c.part)
        if isinstance(c, ast.ItemIn) and not c.negated:
            return self.rb.items_in(r.name for r in c.members), None
        if isinstance(c, ast.InSet) and not c.negated:
            spec = self.schema.field(c.subject.name)
            if spec is not None and spec.name == "destination_country":
                return None, self.rb.countries_in(r.name for r in c.members)
            return None, None
        if isinstance(c, ast.AllOf):
            items: frozenset[str] | None = None
            dests: frozenset[str] | None = None
            for p in c.parts:
                i, d = self._scope(p)
                if i is not None:
                    items = i if items is None else items & i
                if d is not None:
                    dests = d if dests is None else dests & d
            return items, dests
        if isinstance(c, ast.AnyOf):
            scopes = [self._scope(p) for p in c.parts]
            i_all = [s[0] for s in scopes]
            d_all = [s[1] for s in scopes]
            return _union(i_all), _union(d_all)
        return None, None

    def check_item_periods(self) -> None:
        """W303: a rule in force on days when none of the items it names is controlled yet."""
        from dsl.periods import item_controls, rule_periods

        if any(d.severity == "error" for d in self.diags):
            return  # periods are resolved from a rulebook without errors
        controls = item_controls(self.rb)
        periods = rule_periods(self.rb)
        for name, rule in self.rb.rules.items():
            when = ast.first_attr(rule, ast.When)
            first = periods[name].intervals[0].start if periods[name].intervals else None
            if when is None or first is None:
                continue
            named = [n for n in _iter_conditions(when.condition)
                     if isinstance(n, ast.ItemIn | ast.InSet) and not n.negated and
                     not getattr(n, "any_time", False) and
                     (isinstance(n, ast.ItemIn) or
                      getattr(self.schema.field(n.subject.name), "type", None) == "code")]
            items = self.rb.items_in(r.name for n in named for r in n.members)
            starts = [c.start for i in items for c in controls.get(i, ())]
            if not named or not items or any(s is None or s <= first for s in starts):
                continue
            since = min((s for s in starts if s is not None), default=None)
            self.error("W303", f"rule '{name}' applies from {first}, but none of the items it "
                       "names is controlled before " + (str(since) if since else
                                                         "any date (no act controls them)"),
                       named[0].span, "start the rule when its items are controlled, or check "
                       "the items' and groups' `per` lines")

    def check_conflicts(self) -> None:
        """E501: a `permitted` rule and a restrictive rule that can meet, with no precedence.
        W501: a prohibition and a licence requirement on the same items that can meet, with
        no relation stated (`overrides`, or `alongside` when both findings are meant)."""
        order = {name: i for i, name in enumerate(self.rb.rules)}
        outcomes = {name: o for name, r in self.rb.rules.items() if (o := _outcome(r))}

        def pairs(first: set[str], second: set[str]) -> list[tuple[str, str]]:
            names = [n for n, o in outcomes.items() if o.kind in first]
            others = [n for n, o in outcomes.items() if o.kind in second]
            return sorted({(min(a, b, key=order.__getitem__), max(a, b, key=order.__getitem__))
                           for a in names for b in others if a != b},
                          key=lambda x: (order[x[0]], order[x[1]]))

        for a_name, b_name in pairs({"permitted"}, set(RESTRICTIVE)):
            a, b = self.rb.rules[a_name], self.rb.rules[b_name]
            if _related(a, b, ast.Overrides) or not self._can_meet(a, b):
                continue
            self.error(
                "E501", f"rules '{a.name.name}' ({outcomes[a_name]}) and '{b.name.name}' "
                f"({outcomes[b_name]}) can apply to the same declaration and neither states "
                "precedence", b.name.span,
                f"add 'overrides {a.name.name}' to one of them, or an exception",
                related=((a.name.span, f"'{a.name.name}' is declared here"),),
            )
        for a_name, b_name in pairs({"prohibited"}, {"licence required"}):
            a, b = self.rb.rules[a_name], self.rb.rules[b_name]
            if _related(a, b, ast.Overrides) or _related(a, b, ast.Alongside) or \
                    not self._can_meet(a, b, same_items=True):
                continue
            ban, licence = (a, b) if outcomes[a_name].kind == "prohibited" else (b, a)
            self.error(
                "W501", f"rules '{ban.name.name}' (prohibited) and '{licence.name.name}' "
                "(licence required) cover the same items and can apply to the same "
                "declaration, with no relation stated", ban.name.span,
                f"add 'alongside {licence.name.name}' to '{ban.name.name}' if both findings "
                f"are meant, or 'overrides {licence.name.name}' if the prohibition alone is",
                related=((licence.name.span, f"'{licence.name.name}' is declared here"),),
            )

    def _can_meet(self, a: ast.Rule, b: ast.Rule, same_items: bool = False) -> bool:
        """Whether two rules can apply to one declaration: in force together, and their item
        and destination scopes overlap (with `same_items`, both name items, and some of the
        same)."""
        ia, ib = self.rb.validity.get(a.name.name), self.rb.validity.get(b.name.name)
        if ia and ib and not ia.overlaps(ib):
            return False
        sa, sb = self.scope(a), self.scope(b)
        if same_items and (sa[0] is None or sb[0] is None):
            return False
        return not any(x is not None and y is not None and not (x & y)
                       for x, y in zip(sa, sb, strict=True))

    # ------------------------------------------------------------ amendments
    def check_amendments(self) -> None:
        suspensions: dict[str, list[tuple[Interval, ast.Amendment]]] = {}
        ended: dict[str, list[tuple[Interval, ast.Amendment, ast.Target]]] = {}
        for am in self.rb.amendments:
            self._annotations(am, am.action, ", ".join(t.name.name for t in am.targets))
            cites = self.check_citations(am)
            self.required(am, cites, "the instrument that makes it (per INSTRUMENT)", None,
                          am.span)
            iv = self.interval(am, None)
            froms = ast.attrs_of(am, ast.ValidFrom)
            untils = ast.attrs_of(am, ast.ValidUntil)
            if am.action in ("suspend", "repeal", "lift") and not froms:
                self.error("E205", f"'{am.action}' needs the date it takes effect (from DATE)",
                           am.span)
            if am.action == "extend" and not untils:
                self.error("E205", "'extend suspension' needs its new end date (until DATE)",
                           am.span)
            if cites and froms and iv.start:
                start = self.instrument_start(cites[0].instrument.name)
                if start and iv.start < start:
                    self.error("E304", f"this takes effect on {iv.start}, before "
                               f"{cites[0].instrument.name} came into force on {start}",
                               froms[0].span)
            listed_by = {lst.citation.instrument.name for p in self.rb.parties.values()
                         for lst in ast.attrs_of(p, ast.Listing)}
            for before, t in zip(am.targets, am.targets[1:], strict=False):
                if before.kind == "listings" and t.kind == "ref" and t.provision is None \
                        and t.name.name in listed_by:
                    self.error("W304", f"'{t.name.name}' after 'listings under "
                               f"{before.name.name}' is the whole instrument, not its "
                               "listings", t.span,
                               hint=f"write 'listings under {t.name.name}' for its listings")
            for t in am.targets:
                target_iv = self.target(t)
                key = _target_key(t)
                if am.action == "suspend":
                    if target_iv is not None and not iv.overlaps(target_iv):
                        self.error("E303", f"this suspension ({_fmt(iv)}) lies outside the "
                                   f"validity of {key} ({_fmt(target_iv)})", t.span)
                    suspensions.setdefault(key, []).append((iv, am))
                elif am.action == "extend":
                    self._extension(am, t, key, iv, suspensions)
                else:
                    ended.setdefault(key, []).append((iv, am, t))
        self._contradictions(suspensions, ended)

    def _contradictions(self, suspensions: dict[str, list[tuple[Interval, ast.Amendment]]],
                        ended: dict[str, list[tuple[Interval, ast.Amendment, ast.Target]]]
                        ) -> None:
        """W301: two suspensions of one target overlap (an extension is not another
        suspension); W302: an amendment of a target that a repeal or lift has already ended."""
        for key, found in suspensions.items():
            own = [(iv, am) for iv, am in found if am.action == "suspend"]
            for i, (iv, am) in enumerate(own):
                for other_iv, other in own[:i]:
                    if other is not am and iv.overlaps(other_iv):
                        self.error("W301", f"this suspension of {key} ({_fmt(iv)}) overlaps "
                                   f"an earlier one ({_fmt(other_iv)})", am.span,
                                   "extend the earlier suspension (extend suspension of …) "
                                   "or correct the dates",
                                   related=((other.span, "the earlier suspension"),))
                        break
        for key, ends in ended.items():
            first_iv, first, _ = min(ends, key=lambda e: e[0].start or dt.date.min)
            if first_iv.start is None:
                continue
            later = [(iv, am) for iv, am, _ in ends if am is not first] + [
                (iv, am) for iv, am in suspensions.get(key, ())
                if iv.start is not None and iv.start > first_iv.start]
            for iv, am in later:
                self.error("W302", f"{key} was already {first.action}ed from "
                           f"{first_iv.start}; this {am.action} from {iv.start or '…'} "
                           "has nothing left to act on", am.span,
                           "remove it, or correct the earlier amendment's date",
                           related=((first.span, f"the {first.action}"),))

    def _extension(self, am: ast.Amendment, t: ast.Target, key: str, iv: Interval,
                   suspensions: dict[str, list[tuple[Interval, ast.Amendment]]]) -> None:
        earlier = suspensions.get(key)
        if not earlier:
            self.error("E305", f"there is no earlier suspension of {key} to extend", t.span,
                       "write the suspension first (suspend …), then extend it")
            return
        last_iv, _ = earlier[-1]
        if iv.end and last_iv.end and iv.end <= last_iv.end:
            self.error("E305", f"the suspension of {key} already runs until {last_iv.end}; "
                       f"extending it until {iv.end} does not extend it", t.span)
        earlier.append((Interval(last_iv.start, iv.end), am))

    def target(self, t: ast.Target) -> Interval | None:
        """Resolve an amendment's target; return its validity where one is known."""
        rb = self.rb
        if t.kind == "listing":
            if not self.resolve(t.name, "party", rb.parties):
                return None
            assert t.list is not None
            if not self.resolve(t.list, "party list", rb.lists):
                return None
            listings = [lst for lst in ast.attrs_of(rb.parties[t.name.name], ast.Listing)
                        if lst.list.name == t.list.name]
            if not listings:
                self.error("E202", f"'{t.name.name}' is not listed on '{t.list.name}'", t.span)
                return None
            lst = listings[0]
            return Interval(parse_date(lst.valid_from.date.text),
                            parse_date(lst.valid_until.date.text) if lst.valid_until else None)
        if t.kind == "listings":
            self.resolve(t.name, "instrument", rb.instruments)
            return None
        if t.name.name in rb.rules or t.name.name in rb.exceptions:
            if t.provision is not None:
                self.error("E203", f"'{t.name.name}' is a rule; only instruments have "
                           f"provisions", t.provision.span)
            return rb.validity.get(t.name.name)
        if not self.resolve(t.name, "rule or instrument", rb.rules, rb.exceptions,
                            rb.instruments):
            return None
        if t.provision is not None:
            self.provision(rb.instruments[t.name.name], t.provision)
        return rb.validity.get(t.name.name)

    # ------------------------------------------------------------ conditions and expressions
    def field_ref(self, ref: ast.Ref) -> FieldSpec | None:
        spec = self.schema.field(ref.name)
        if spec is None:
            hint = did_you_mean(ref.name, self.schema.names())
            if hint is None and (code := country_code_of(ref.name)) is not None:
                hint = (f"'{ref.name}' is a country: a declaration's country is tested with "
                        f"'in', as in `destination in {code}`")
            self.error("E404", f"a declaration has no fact called '{ref.name}'", ref.span,
                       hint)
        return spec

    def party_role(self, ref: ast.Ref) -> None:
        spec = self.field_ref(ref)
        if spec is not None and spec.type != "party":
            roles = ", ".join(self.schema.party_roles())
            self.error("E401", f"'{ref.name}' is not a party of the declaration", ref.span,
                       f"use one of: {roles}")

    def condition(self, c: ast.Condition, context: str) -> None:
        for node in _iter_conditions(c):
            if isinstance(node, ast.ItemIn):
                if context == "item":
                    self.error("E401", "an item's own condition cannot test which item it is",
                               node.span)
                for ref in node.members:
                    self.resolve(ref, "item or item group", self.rb.items, self.rb.groups)
            elif isinstance(node, ast.DualUse):
                if context == "item":
                    self.error("E401", "an item's own condition cannot test whether it is "
                               "dual-use", node.span)
            elif isinstance(node, ast.InSet):
                spec = self.field_ref(node.subject)
                if node.any_time and spec is not None and spec.type != "code":
                    self.error("E401", f"'{node.subject.name}' is not a customs code; "
                               "'in codes of' tests customs codes", node.subject.span)
                    continue
                if spec is not None and spec.type == "code":
                    # `hs_code in gallium`: the code is one of the items' reference codes
                    for ref in node.members:
                        self.resolve(ref, "item or item group", self.rb.items, self.rb.groups)
                    continue
                if spec is not None and spec.type != "country":
                    self.error("E401", f"'{node.subject.name}' is not a country; 'in' lists "
                               "countries (use 'item in …' for items)", node.subject.span)
                for ref in node.members:
                    self.country_code(ref, groups_allowed=True)
            elif isinstance(node, ast.IsMissing):
                self.field_ref(node.subject)
            elif isinstance(node, ast.Mentions):
                spec = self.field_ref(node.subject)
                if spec is not None and spec.type not in ("text", "party"):
                    self.error("E401", f"'{node.subject.name}' is not text", node.subject.span)
                for term in node.terms:
                    if isinstance(term, ast.Ref):
                        self.resolve(term, "list of terms", self.rb.terms)
                    elif not term.value.strip():
                        self.error("E205", "an empty text matches everything", term.span)
            elif isinstance(node, ast.Listed):
                self.party_role(node.subject)
                lists = [ref.name for ref in node.lists
                         if self.resolve(ref, "party list", self.rb.lists)]
                self.measures_of(node.measures, lists if node.lists else list(self.rb.lists))
            elif isinstance(node, ast.Related):
                self.related(node)
            elif isinstance(node, ast.FirstSeen):
                self.party_role(node.subject)
            elif isinstance(node, ast.InRange):
                spec = self.field_ref(node.subject)
                if spec is not None and spec.dimension != "money per mass":
                    self.error("E402", f"'{node.subject.name}' is not a unit value (USD/kg)",
                               node.subject.span)
                for ref in node.members:
                    self.resolve(ref, "item, item group or value range", self.rb.items,
                                 self.rb.groups, self.rb.value_ranges)
                if not self.rb.item_value_ranges(r.name for r in node.members):
                    self.error("E205", "no value range applies to these items' customs codes",
                               node.span, "add a `value range` with one of their codes")
            elif isinstance(node, ast.Comparison):
                self.comparison(node)

    def related(self, node: ast.Related) -> None:
        self.party_role(node.subject)
        if isinstance(node.other, ast.Ref):
            self.party_role(node.other)
        else:
            for ref in node.other.lists:
                self.resolve(ref, "party list", self.rb.lists)
        if node.hops is not None and not 1 <= node.hops <= 6:
            self.error("E406", f"links are followed 1 to 6 hops, not {node.hops}", node.span)
        for v in node.via:
            if v.name not in self.schema.party_links:
                self.error("E404", f"parties are not linked by '{v.name}'", v.span,
                           did_you_mean(v.name, self.schema.party_links) or
                           f"links are: {', '.join(self.schema.party_links)}")

    def comparison(self, node: ast.Comparison) -> None:
        left = self.expression(node.left)
        right = self.expression(node.right)
        if left is None or right is None:
            return
        if left[0] != right[0]:
            self.error("E401", f"cannot compare {_describe(left)} with {_describe(right)}",
                       node.span)
            return
        if left[0] == "text" and node.op not in ("=", "!="):
            self.error("E401", f"texts can only be compared with = or !=, not {node.op}",
                       node.span)
        if left[0] == "number" and left[1] != right[1]:
            if left[1] is None or right[1] is None:
                known = left[1] or right[1]
                self.error("E402", f"a number without a unit is compared with "
                           f"{_describe(('number', known))}",
                           node.span, f"write the unit, for example {_example_unit(known)}")
            else:
                self.error("E402", f"cannot compare {_describe(left)} with {_describe(right)}",
                           node.span)
        for side, other in ((node.left, left), (node.right, right)):
            if isinstance(side, ast.Quantity) and other[1] == "percent" and \
                    not Decimal(0) <= side.value <= Decimal(100):
                self.error("E403", f"{side.value} % is not a percentage between 0 and 100",
                           side.span)

    def expression(self, e: ast.Expression) -> Type | None:
        if isinstance(e, ast.Field):
            spec = self.field_ref(e.name)
            if spec is None:
                return None
            if spec.type == "number":
                return ("number", spec.dimension)
            if spec.type == "date":
                return ("date", None)
            return ("text", None)
        if isinstance(e, ast.Quantity):
            return ("number", UNIT_DIMENSIONS.get(e.unit) if e.unit else None)
        if isinstance(e, ast.DateLiteral):
            self.date(e.date)
            return ("date", None)
        if isinstance(e, ast.TextLiteral):
            return ("text", None)
        if isinstance(e, ast.CountOf):
            self.window(e.window)
            return ("number", None)
        if isinstance(e, ast.SumOf):
            self.window(e.window)
            spec = self.field_ref(e.field)
            if spec is not None and spec.type != "number":
                self.error("E401", f"cannot add up '{e.field.name}': it is not a number",
                           e.field.span)
                return None
            return ("number", spec.dimension if spec else None)
        if isinstance(e, ast.Arithmetic):
            return self.arithmetic(e)
        return None  # pragma: no cover

    def arithmetic(self, e: ast.Arithmetic) -> Type | None:
        left, right = self.expression(e.left), self.expression(e.right)
        if left is None or right is None:
            return None
        if left[0] != "number" or right[0] != "number":
            self.error("E401", f"cannot calculate with {_describe(left)} and "
                       f"{_describe(right)}", e.span)
            return None
        if e.op in "+-":
            if left[1] != right[1]:
                self.error("E402", f"cannot add or subtract a {left[1] or 'plain number'} and a "
                           f"{right[1] or 'plain number'}", e.span)
                return None
            return left
        if e.op == "*":
            if left[1] and right[1]:
                self.error("E402", f"cannot multiply a {left[1]} by a {right[1]}", e.span)
                return None
            return ("number", left[1] or right[1])
        if left[1] == right[1]:
            return ("number", None)
        if right[1] is None:
            return left
        return ("number", f"{left[1] or '1'} per {right[1]}")

    def window(self, w: ast.Window) -> None:
        if w.days < 1:
            self.error("E406", "a window must be at least 1 day", w.span)
        for key in w.same:
            if key.name not in self.schema.window_keys:
                self.field_ref(key)

    def explanation(self, e: ast.Explain) -> None:
        for m in _PLACEHOLDER.finditer(e.template.value):
            name = m.group(1).strip()
            if name not in EXPLAIN_FACTS and self.schema.field(name) is None:
                self.error("E407", f"the explanation names '{{{name}}}', which is not a fact "
                           "of a finding", e.template.span,
                           did_you_mean(name, sorted(EXPLAIN_FACTS) + self.schema.names()))

    # ------------------------------------------------------------ examples
    def check_example(self, ex: ast.Example) -> None:
        decls = ast.attrs_of(ex, ast.ExampleDeclaration)
        expects = ast.attrs_of(ex, ast.Expect)
        if not decls:
            self.error("E602", f"example \"{ex.title.value}\" has no declaration", ex.title.span)
        if not expects:
            self.error("E602", f"example \"{ex.title.value}\" expects nothing", ex.title.span,
                       "add a line such as: expect prohibited by RULE")
        for a in ast.attrs_of(ex, ast.AsOf):
            self.date(a.date)
        ids: dict[str, ast.Span] = {}
        for d in decls:
            if d.id is not None:
                if d.id.name in ids:
                    self.error("E201", f"declaration '{d.id.name}' appears twice in this example",
                               d.id.span)
                ids[d.id.name] = d.id.span
            self.example_fields(d.fields, d.span)
            have = {f.name for f in d.fields}
            for needed, words in (("declared_on", "a date (on DATE)"),
                                  ("hs_code", "a customs code (code …)"),
                                  ("destination_country", "a destination (to XX)")):
                if needed not in have:
                    self.error("E205", f"this example declaration needs {words}", d.span)
        licences = {lic.number.name for lic in ast.attrs_of(ex, ast.ExampleLicence)}
        for lic in ast.attrs_of(ex, ast.ExampleLicence):
            self.example_fields(tuple(f for f in lic.fields
                                      if isinstance(f, ast.DeclarationField)), lic.span)
            iv = self.interval(lic, None)
            del iv
        for d in decls:
            for f in d.fields:
                if f.name == "licence_no" and isinstance(f.value, ast.Ref) and \
                        f.value.name not in licences:
                    self.error("E601", f"this example has no licence '{f.value.name}'",
                               f.value.span, did_you_mean(f.value.name, licences))
        for c in ast.attrs_of(ex, ast.Company):
            self.example_fields(c.fields, c.span)
        for x in expects:
            if x.rule is not None and x.rule.name not in self.rb.rules and \
                    x.rule.name not in self.broken:
                self.error("E601", f"the expectation names rule '{x.rule.name}', which is not "
                           "declared", x.rule.span, did_you_mean(x.rule.name, self.rb.rules))
            if x.declaration is not None and x.declaration.name not in ids:
                self.error("E601", f"this example has no declaration '{x.declaration.name}'",
                           x.declaration.span, did_you_mean(x.declaration.name, ids))
            if x.missing is not None:
                self.field_ref(x.missing)
            if x.citing is not None:
                self.citation(x.citing)
            if x.outcome == "findings" and x.present:
                self.error("E205", "write 'expect no findings', or name the outcome expected",
                           x.span)

    def example_fields(self, fields: tuple[ast.DeclarationField, ...], span: ast.Span) -> None:
        for f in fields:
            v = f.value
            if f.country is not None:
                self.country_code(f.country)
            if f.name in ("destination_country", "country") and isinstance(v, ast.Ref):
                self.country_code(v)
            elif isinstance(v, ast.DateValue):
                self.date(v)
            elif isinstance(v, ast.Code) and f.name == "hs_code":
                self.customs_code(v)
            elif isinstance(v, ast.ItemList):
                for entry in v.entries:
                    if isinstance(entry, ast.Ref):
                        self.resolve(entry, "item or item group", self.rb.items, self.rb.groups)
                    elif not re.fullmatch(r"\d[A-E]\d{3}.*", entry.text):
                        self.customs_code(entry)
            elif isinstance(v, ast.Quantity):
                spec = self.schema.field(f.name)
                if spec is None and f.name not in ("amount",):
                    self.field_ref(ast.Ref(f.name, f.span))
                dim = UNIT_DIMENSIONS.get(v.unit) if v.unit else None
                if spec is not None and spec.dimension and dim != spec.dimension:
                    self.error("E402", f"'{f.name}' is a {spec.dimension}, not a "
                               f"{dim or 'plain number'}", f.span,
                               f"write the unit, for example {_example_unit(spec.dimension)}")
                if dim == "percent" and not Decimal(0) <= v.value <= Decimal(100):
                    self.error("E403", f"{v.value} % is not a percentage between 0 and 100",
                               f.span)
                if f.name == "amount":
                    self.error("E402", f"'{v.unit}' is neither a quantity (kg, t, g) nor a "
                               "value (USD)", f.span)
            elif f.name not in ("kind", "licence_no", "holder", "agents", "consignee", "end_user",
                                "exporter", "description", "address", "phone", "parent",
                                "items") and self.schema.field(f.name) is None:
                self.field_ref(ast.Ref(f.name, f.span))


def _union(sets: list[frozenset[str] | None]) -> frozenset[str] | None:
    out: set[str] = set()
    for s in sets:
        if s is None:
            return None
        out |= s
    return frozenset(out)


def _outcome(r: ast.Rule) -> ast.Outcome | None:
    t = ast.first_attr(r, ast.Then)
    return t.outcome if t else None


def _related(a: ast.Rule, b: ast.Rule, kind: type[ast.Overrides] | type[ast.Alongside]) -> bool:
    """Whether either rule names the other in an attribute of `kind` (overrides, alongside)."""
    return any(ref.name == y.name.name for x, y in ((a, b), (b, a))
               for o in ast.attrs_of(x, kind) for ref in o.rules)


def _target_key(t: ast.Target) -> str:
    if t.kind == "listings":
        return f"listings under {t.name.name}"
    if t.kind == "listing":
        return f"listing of {t.name.name} on {t.list.name if t.list else '?'}"
    return f"{t.name.name} {t.provision}" if t.provision else t.name.name


def _fmt(iv: Interval) -> str:
    return f"{iv.start or '…'} to {iv.end or '…'}"


DIMENSION_WORDS = {
    "mass": "a mass (kg)", "money": "an amount of money (USD)", "percent": "a percentage",
    "money per mass": "a unit value (USD/kg)", "density": "a density (g/cm3)",
    "pressure": "a pressure (MPa)", "length": "a length", "duration": "a number of days",
}


def _describe(t: Type) -> str:
    if t[0] == "number":
        return DIMENSION_WORDS.get(t[1], f"a {t[1]}") if t[1] else "a plain number"
    return f"a {t[0]}"


def _example_unit(dimension: str | None) -> str:
    for unit, dim in UNIT_DIMENSIONS.items():
        if dim == dimension:
            return f"99.99 {unit}" if unit == "%" else f"100 {unit}"
    return "a number with its unit"


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


def _version(files: list[ast.SourceFile]) -> str:
    """The rulebook version: a hash of its declarations (comments and layout do not count)."""
    h = hashlib.sha256()
    for sf in sorted(files, key=lambda f: f.path):
        h.update(repr(sf.declarations).encode("utf-8"))
    return h.hexdigest()[:16]


def check(files: list[ast.SourceFile], schema: Schema) -> tuple[CheckedRulebook, list[Diagnostic]]:
    """Check parsed files against a schema; return the resolved rulebook and every diagnostic."""
    checker = Checker(schema)
    rb = checker.check(files)
    return rb, checker.diags
