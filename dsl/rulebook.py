"""The checked rulebook: every declaration of a set of rulebook files, resolved and indexed by
name (`CheckedRulebook`), with the intervals of days the law is read in. What the checker
produces and every later stage reads (periods, model, compiler, interpreter); it imports no
stage.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any, cast

from dsl import ast
from dsl.schema import UNIT_DIMENSIONS, FieldSpec, Schema

# The outcomes a licence covers: a licence requirement, a presumption of denial (a licence is
# needed and in principle refused) and a case-by-case review (a licence is needed and each
# application is judged on its own). A licence that covers the declaration leaves no finding;
# without one the finding says which of the three the law imposes.
LICENSABLE = frozenset({"licence required", "presumption of denial", "case-by-case review"})


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
    conclusions: dict[str, ast.Conclusion] = field(default_factory=dict)
    parameters: dict[str, ast.Parameter] = field(default_factory=dict)
    facts: dict[str, ast.Fact] = field(default_factory=dict)
    # a fact two rulebooks each declare (of one type): every declaration of it, by name
    fact_declarations: dict[str, list[ast.Fact]] = field(default_factory=dict)
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

    def parameter_values(self, name: str
                         ) -> list[tuple[Interval, ast.ParameterValue, ast.Citation | None]]:
        """A parameter's values, each with the days it applies (both ends inclusive): from its
        `from`, else from the in-force date of the act it cites, until its `until`."""
        decl = self.parameters[name]
        out = []
        for v in ast.attrs_of(decl, ast.ParameterValue):
            cite = v.citation
            start = parse_date(v.valid_from.date.text) if v.valid_from else (
                self.in_force_date(cite.instrument.name) if cite else None)
            end = parse_date(v.valid_until.date.text) if v.valid_until else None
            out.append((Interval(start, end), v, cite))
        return sorted(out, key=lambda x: x[0].start or dt.date.min)

    def stands_for(self, decl: ast.Terms | ast.ValueRange) -> frozenset[str] | None:
        """The items terms or a value range stand for (`for GROUP, …`), None when they name
        none and count on every day."""
        refs = [r.name for b in ast.attrs_of(decl, ast.BelongsTo) for r in b.names]
        return self.items_in(refs) if refs else None

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
        if "groups_of" not in self.derived:  # item -> its groups, in the groups' order
            groups_of: dict[str, list[str]] = {}
            for g, members in self.group_items.items():
                for member in members:
                    groups_of.setdefault(member, []).append(g)
            self.derived["groups_of"] = groups_of
        return [a for g in cast(dict[str, list[str]], self.derived["groups_of"]).get(item, [])
                for a in ast.attrs_of(self.groups[g], ast.ControlAct)]

    def act_provision(self, item: str, act: ast.ControlAct) -> str | None:
        """The provision a finding cites when `act` controls `item`: the one its `per` line
        names, else the item's entry in that list, `entry` and the item's control code (an act
        cited without a provision lists items by their control codes), else none."""
        if act.citation.provision is not None:
            return str(act.citation.provision)
        it = self.items.get(item)
        code = ast.first_attr(it, ast.Control) if it is not None else None
        return f"entry {code.code.text}" if code is not None else None

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
        """The items declared in the rulebook that `file` belongs to (worked out once per
        rulebook: each rule asked again, which made checking grow with rules × items)."""
        mine = self.rulebook_of(file)
        key = f"rulebook_items:{mine}"
        if key not in self.derived:
            self.derived[key] = frozenset(n for n, it in self.items.items()
                                          if self.rulebook_of(it.span.file) == mine)
        return cast(frozenset[str], self.derived[key])

    def rulebook_item_refs(self, file: str) -> tuple[ast.Ref, ...]:
        """`rulebook_items` as references, in name order (what `item is dual-use` stands for),
        made once per rulebook."""
        key = f"rulebook_item_refs:{self.rulebook_of(file)}"
        if key not in self.derived:
            self.derived[key] = tuple(ast.Ref(n) for n in sorted(self.rulebook_items(file)))
        return cast(tuple[ast.Ref, ...], self.derived[key])

    def condition_of(self, decl: ast.Rule | ast.Exception_ | ast.Conclusion
                     ) -> ast.Condition | None:
        """A rule's, exception's or conclusion's condition as the later stages evaluate it:
        `item is dual-use` becomes `item in` every item of the rulebook it belongs to (whose
        control periods and thresholds then apply as to any item), and `NAME holds` the named
        conclusion's own condition (`ast.Concluded`, a parenthesised part with its name)."""
        when = ast.first_attr(decl, ast.When)
        if when is None:
            return None
        key = f"condition:{id(decl)}"
        if key not in self.derived:
            self.derived[key] = None  # a conclusion that holds by itself is E208, not a loop
            items = self.rulebook_item_refs(decl.span.file)
            condition = self._expand_conclusions(_expand_dual_use(when.condition, items))
            scope = self.scope_of(decl) if isinstance(decl, ast.Rule) else None
            if scope is not None:  # a rule judges only what its rulebook (or it) judges
                parts = condition.parts if isinstance(condition, ast.AllOf) else (condition,)
                condition = ast.AllOf((scope, *parts), when.span)
            self.derived[key] = condition
        return self.derived[key]  # type: ignore[no-any-return]

    def judges_of(self, rule: ast.Rule) -> ast.Judges | None:
        """What a rule judges: its own `judges …`, else its rulebook's; None when neither
        says (it judges every declaration)."""
        judges = ast.first_attr(rule, ast.Judges)
        book = self.rulebook_decl(rule.span.file)
        if judges is None and book is not None:
            judges = ast.first_attr(book, ast.Judges)
        return judges

    def scope_of(self, rule: ast.Rule) -> ast.Condition | None:
        """The declarations a rule judges (`judges_of`), as a condition."""
        judges = self.judges_of(rule)
        if judges is None:
            return None
        book = self.rulebook_decl(rule.span.file)
        j = ast.first_attr(book, ast.Jurisdiction) if book is not None else None
        return scope_condition(judges, j.country if j else None)

    def rulebook_decl(self, file: str) -> ast.RulebookDecl | None:
        """The `rulebook` declaration a file belongs to."""
        name = self.rulebook_of(file)
        return self.rulebooks.get(name) if name else None

    def rule_rulebooks(self) -> dict[str, str | None]:
        """Each rule's (and exception's) rulebook, by its name, worked out once."""
        cached: dict[str, str | None] | None = self.derived.get("rule_rulebooks")
        if cached is None:
            cached = {name: self.rulebook_of(r.span.file) for name, r in self.rules.items()}
            cached |= {name: self.rulebook_of(e.span.file) for name, e in self.exceptions.items()}
            self.derived["rule_rulebooks"] = cached
        return cached

    def _expand_conclusions(self, c: ast.Condition) -> ast.Condition:
        if isinstance(c, ast.ConclusionRef):
            decl = self.conclusions.get(c.name.name)
            inner = self.condition_of(decl) if decl is not None else None
            if inner is None:  # unknown (E202) or circular (E208): never true
                return ast.AnyOf((), c.span)
            return ast.Concluded(inner, c.span, c.name.name)
        if isinstance(c, ast.AllOf | ast.AnyOf):
            return replace(c, parts=tuple(self._expand_conclusions(p) for p in c.parts))
        if isinstance(c, ast.Negation | ast.Parenthesised):
            return replace(c, part=self._expand_conclusions(c.part))
        return c

    def suppressors(self, rule: str) -> list[ast.Rule | ast.Exception_]:
        """Exceptions that except `rule`, and permissions that override it (indexed once for
        every rule: each rule looked through every exception and rule again)."""
        if "suppressors" not in self.derived:
            index: dict[str, list[ast.Rule | ast.Exception_]] = {}
            for e in self.exceptions.values():
                for name in dict.fromkeys(r.name for x in ast.attrs_of(e, ast.Excepts)
                                          for r in x.rules):
                    index.setdefault(name, []).append(e)
            for r in self.rules.values():
                then = ast.first_attr(r, ast.Then)
                if then and then.outcome.kind == "permitted":
                    for name in dict.fromkeys(o.name for x in ast.attrs_of(r, ast.Overrides)
                                              for o in x.rules):
                        index.setdefault(name, []).append(r)
            self.derived["suppressors"] = index
        return list(cast(dict[str, list[Any]], self.derived["suppressors"]).get(rule, []))

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
        return sorted({(low, high) for _, low, high, _ in self.value_ranges_for(names)})

    def value_ranges_for(self, names: Iterable[str]
                         ) -> list[tuple[str, float, float, frozenset[str] | None]]:
        """(value range, low, high, items) for each range `within range of NAMES` reads: a
        range named there, or one whose customs code and a code of a named item (or group's
        item) are the same line at different precision (one is a prefix of the other). `items`
        are those the range counts for: the named item's or group's, or those of the range's
        own `for`; None when it counts on every day."""
        out: dict[str, tuple[float, float, set[str] | None]] = {}
        rows = self.value_range_rows()
        for name in names:
            if name in self.value_ranges:
                for vr, _, low, high in rows:
                    if vr == name:
                        gate = self.stands_for(self.value_ranges[vr])
                        out[vr] = (low, high, set(gate) if gate is not None else None)
                continue
            for item in sorted(self.items_in([name])):
                codes = [normalise_customs_code(c.text)
                         for a in ast.attrs_of(self.items[item], ast.Customs) for c in a.codes]
                for vr, code, low, high in rows:
                    if any(code.startswith(c) or c.startswith(code) for c in codes):
                        known = out.get(vr)
                        if known is None:
                            out[vr] = (low, high, {item})
                        elif known[2] is not None:
                            known[2].add(item)
        return [(vr, low, high, frozenset(g) if g is not None else None)
                for vr, (low, high, g) in sorted(out.items())]

    def declared_fields(self) -> tuple[FieldSpec, ...]:
        """The facts the rulebooks declare, as fields of the declarations they judge."""
        cached = self.derived.get("declared_fields")
        if cached is None:
            cached = tuple(fact_field(f, ", ".join(dict.fromkeys(
                self.rulebook_of(d.span.file) or "" for d in self.fact_declarations.get(
                    name, [f]))))
                for name, f in self.facts.items())
            self.derived["declared_fields"] = cached
        return cached

    def schema(self, base: Schema) -> Schema:
        """The schema its conditions are read against: `base` and the declared facts."""
        return base.with_fields(self.declared_fields())

    def rulebook_of(self, file: str) -> str | None:
        """The rulebook a file belongs to: the one declared in its folder (or a parent folder);
        worked out once per file."""
        key = f"rulebook_of:{file}"
        if key not in self.derived:
            self.derived[key] = self._rulebook_of(file)
        return cast(str | None, self.derived[key])

    def _rulebook_of(self, file: str) -> str | None:
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


# The declarations' facts a scope reads (the knowledge base's columns).
EXPORT_COUNTRY, DESTINATION = "export_country", "destination_country"


def movement_words(m: ast.Movement) -> str:
    """A movement as written: 'exports from CN', 're-exports', 'unstated exports'."""
    if m.kind in ("exports", "imports"):
        return f"{m.kind} {'from' if m.kind == 'exports' else 'into'} {m.place.name}"  # type: ignore[union-attr]
    return "re-exports" if m.kind == "re-exports" else "unstated exports"


def scope_condition(judges: ast.Judges, jurisdiction: ast.Ref | None) -> ast.Condition:
    """What `judges …` means as a condition on a declaration, true or false, never unknown:
    exports from J (its export country is stated and in J), re-exports (stated, not in the
    jurisdiction), imports into J (its destination in J), unstated exports (no export
    country)."""
    export, span = ast.Ref(EXPORT_COUNTRY, judges.span), judges.span
    stated = ast.IsMissing(export, True, span)
    parts: list[ast.Condition] = []
    for m in judges.movements:
        if m.kind == "exports" and m.place is not None:
            parts.append(ast.AllOf((stated, ast.InSet(export, (m.place,), False, m.span)), m.span))
        elif m.kind == "re-exports" and jurisdiction is not None:
            parts.append(ast.AllOf((stated, ast.InSet(export, (jurisdiction,), True, m.span)),
                                   m.span))
        elif m.kind == "imports" and m.place is not None:
            parts.append(ast.InSet(ast.Ref(DESTINATION, m.span), (m.place,), False, m.span))
        elif m.kind == "unstated":
            parts.append(ast.IsMissing(export, False, m.span))
    return ast.Parenthesised(ast.AnyOf(tuple(parts), span), span) if len(parts) != 1 \
        else parts[0]


COMPARATOR_WORDS = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than",
                    "": ""}  # "": a plain value (a length), no comparator


def fact_type_words(t: ast.FactType) -> str:
    """A declared fact's type as written: 'number in MPa', 'one of "a", "b"', 'yes/no'."""
    if t.kind == "number":
        return f"number in {t.unit}"
    if t.kind == "one of":
        return "one of " + ", ".join(f'"{c.value}"' for c in t.choices)
    return t.kind


def fact_field(f: ast.Fact, rulebook: str) -> FieldSpec:
    """A declared fact as a field of the declarations (its type read from `type`; a fact
    without one, which the checker reports, is text)."""
    t = ast.first_attr(f, ast.FactType) or ast.FactType("text")
    alias = ast.first_attr(f, ast.FactAlias)
    read = ast.first_attr(f, ast.ReadFrom)
    kind = {"number": "number", "percentage": "number", "country": "country",
            "date": "date"}.get(t.kind, "text")
    choices = (("yes", "no") if t.kind == "yes/no"
               else tuple(c.value for c in t.choices))
    return FieldSpec(f.name.name, kind, UNIT_DIMENSIONS.get(t.unit or "") if kind == "number"
                     else None, description=f.title.value,
                     aliases=tuple(a.name for a in alias.names) if alias else (),
                     declared=t.kind, unit=t.unit, choices=choices,
                     read_from=read.text.value if read else "", rulebook=rulebook)


def parameter_test(c: ast.Reaches, v: ast.ParameterValue) -> ast.Comparison:
    """`X reaches PARAMETER` on one value of it: the comparison it stands for (`X op value`;
    with `of Y`, a share of Y: `X op value/100 * Y`)."""
    if c.of is None:
        return ast.Comparison(c.subject, v.op, ast.Quantity(v.value, v.unit, v.span), c.span)
    share = ast.Quantity(v.value / 100, None, v.span)
    return ast.Comparison(c.subject, v.op, ast.Arithmetic(share, "*", c.of, True, c.span),
                          c.span)


def parameters_read(c: ast.Condition) -> list[str]:
    """The parameters a condition reads, in the order written: thresholds (`reaches`, an
    ownership's `reaching`) and lengths (`within P` of a window or a first-seen test)."""
    out: list[str] = []
    stack: list[Any] = [c]
    while stack:
        node = stack.pop(0)
        refs = ([node.parameter] if isinstance(node, ast.Reaches | ast.FirstSeen)
                else [node.window.parameter] if isinstance(node, ast.CountOf | ast.SumOf)
                else [node.ownership, node.hops_parameter] if isinstance(node, ast.Related)
                else [])
        out += [r.name for r in refs if r is not None and r.name not in out]
        for name in ("parts", "part", "subject", "of", "left", "right"):
            child = getattr(node, name, None)
            stack.extend(child if isinstance(child, tuple) else
                         [child] if child is not None and not isinstance(child, ast.Ref) else [])
    return out


def parameter_text(iv: Interval, v: ast.ParameterValue, cite: ast.Citation | None) -> str:
    """One value of a parameter in words, with its period and act: 'at least 0.1 % from
    2025-12-01, MOFCOM-2025-61 part 1'."""
    value = format(v.value, "f") + (f" {v.unit}" if v.unit else "")
    days = (f" from {iv.start}" if iv.start else "") + (f" until {iv.end}" if iv.end else "")
    act = (f", {cite.instrument.name}" + (f" {cite.provision}" if cite.provision else "")
           if cite else "")
    return f"{COMPARATOR_WORDS[v.op]} {value}{days}{act}".lstrip()


def listing_nodes(c: ast.Condition) -> list[ast.Listed] | None:
    """The `listed` tests one of which holds whenever the condition does (in the order
    written), or None when the condition can hold without a listing: then a finding rests on
    the listing of the party that matched."""
    if isinstance(c, ast.Parenthesised):
        return listing_nodes(c.part)
    if isinstance(c, ast.Listed):
        return [c]
    if isinstance(c, ast.AnyOf):
        found = [listing_nodes(p) for p in c.parts]
        return None if any(f is None for f in found) else [n for f in found for n in f or ()]
    if isinstance(c, ast.AllOf):
        return next((f for p in c.parts if (f := listing_nodes(p)) is not None), None)
    return None


def required_items(c: ast.Condition, rb: CheckedRulebook) -> frozenset[str] | None:
    """The items one of which a declaration must match for the condition to be true or
    unknown, when the condition says so at its top level (`item in …` and …); else None."""
    if isinstance(c, ast.Parenthesised):
        return required_items(c.part, rb)
    if isinstance(c, ast.ItemIn) and not c.negated:
        return rb.items_in(r.name for r in c.members)
    if isinstance(c, ast.AllOf):
        found = [s for p in c.parts if (s := required_items(p, rb)) is not None]
        if found:
            out = found[0]
            for s in found[1:]:
                out &= s
            return out
    return None
