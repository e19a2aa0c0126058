"""The law as every stage after the checker reads it: instruments with their provisions, items
with their codes and control periods, groups, country groups, lists with their measures,
parties with their listings, value ranges, rules, amendments and examples — plain records,
resolved once from a checked rulebook (`law(rb)`).

The syntax tree (`dsl.ast`) stays with the parser, the checker and the formatter; the knowledge
base's rows, `excon docs`, `excon explain`, the examples runner and the demo read these records.
The only syntax they carry is opaque: a rule's condition parts, handed back to the interpreter
to evaluate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dsl import ast
from dsl.format import attribute, condition, format_file, header
from dsl.ir import plain
from dsl.periods import Control, item_controls
from dsl.rulebook import CheckedRulebook, normalise_customs_code
from dsl.schema import UNIT_FACTORS


@dataclass(frozen=True)
class Where:
    """Where a declaration (or one of its lines) is written."""

    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Rulebook:
    name: str
    title: str
    jurisdiction: tuple[str, ...]
    sources: tuple[str, ...]
    where: Where
    # the last day its sources were checked through (`sources checked through`), if stated
    sources_checked: str | None = None


@dataclass(frozen=True)
class Provision:
    instrument: str
    provision: str  # "clause 2"
    kind: str  # "clause"
    label: str  # "2"
    text: str
    text_zh: str | None


@dataclass(frozen=True)
class Instrument:
    id: str
    title: str | None
    title_zh: str | None
    issuer: str | None
    number: str | None
    issued: str | None
    in_force: str | None
    url: str | None
    confidence: str | None
    notes: str | None
    unverified: str | None
    where: Where
    provisions: tuple[Provision, ...]


@dataclass(frozen=True)
class Code:
    digits: str
    written: str


@dataclass(frozen=True)
class Item:
    name: str
    title: str
    title_zh: str | None
    control_code: str | None
    instrument: str | None  # the act it was first written under (its own, else its group's)
    provision: str | None
    controlled_if: str | None
    confidence: str | None
    notes: str | None
    unverified: str | None
    where: Where
    codes: tuple[Code, ...]
    groups: tuple[str, ...]  # the groups it names itself (`member of`)
    controls: tuple[Control, ...]  # when it is controlled, and by which act


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    instrument: str | None
    provision: str | None
    members: tuple[str, ...]  # every item, through nested groups too


@dataclass(frozen=True)
class CountryGroup:
    name: str
    title: str
    valid_from: str | None
    valid_until: str | None
    instrument: str | None
    source: str | None
    unverified: str | None
    members: tuple[str, ...]


@dataclass(frozen=True)
class PartyList:
    name: str
    title: str
    title_zh: str | None
    issuer: str | None
    instrument: str | None
    match_threshold: float | None
    measures: tuple[str, ...]


@dataclass(frozen=True)
class Listing:
    """One `listed on` line, as written (its periods once amended: `dsl.periods`)."""

    party: str
    list: str
    instrument: str
    provision: str | None
    listed_from: str
    listed_until: str | None
    measures: tuple[str, ...]


@dataclass(frozen=True)
class Party:
    name: str
    legal_name: str
    country: str | None
    address: str | None
    phone: str | None
    owner: str | None
    owner_share_pct: float | None
    unverified: str | None
    aliases: tuple[str, ...]  # other spellings than the legal name, each once
    listings: tuple[Listing, ...]

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.legal_name, *self.aliases)


@dataclass(frozen=True)
class ValueRange:
    name: str
    title: str
    codes: tuple[Code, ...]
    low_usd_per_kg: float | None
    high_usd_per_kg: float | None
    instrument: str | None
    source: str | None
    unverified: str | None
    rulebook: str | None


@dataclass(frozen=True)
class Part:
    """One top-level part of a rule's condition: its text, and the node the interpreter
    evaluates (opaque here)."""

    text: str
    node: ast.Condition


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str  # "rule" | "exception"
    title: str | None
    outcome: str | None  # "prohibited", "licence required", "risk", … ("exception")
    severity: str | None
    instrument: str | None
    provision: str | None
    valid_from: str | None
    valid_until: str | None
    condition: str | None
    when: ast.Condition | None  # the whole condition, for the interpreter (None: always)
    parts: tuple[Part, ...]
    joiner: str  # "all of" | "any of"
    if_missing: tuple[tuple[str, str | None], ...]  # (field, outcome; None: no finding)
    window_days: int  # the longest window its condition looks back over (0: none)
    excepts: tuple[str, ...]
    overrides: tuple[str, ...]
    explain: str | None
    unverified: str | None
    where: Where
    source_text: str
    rulebook: str | None
    # the Chinese wording, where the rulebook gives it (`zh`, `then … zh`, `explain zh`)
    title_zh: str | None = None
    outcome_zh: str | None = None
    explain_zh: str | None = None


@dataclass(frozen=True)
class Amendment:
    id: int
    action: str
    target: str
    target_kind: str  # rule | instrument | listings | listing
    target_name: str
    target_provision: str | None
    target_list: str | None
    instrument: str | None
    provision: str | None
    valid_from: str | None
    valid_until: str | None
    where: Where
    rulebook: str | None = None  # the rulebook whose file declares it


@dataclass(frozen=True)
class Expectation:
    """One `expect` line of an example."""

    text: str
    outcome: str  # an outcome, or "findings" for any
    present: bool
    rule: str | None
    declaration: str | None
    missing: str | None
    citing: tuple[str, str | None] | None
    where: Where
    basis: str | None = None  # `resting on BASIS`


@dataclass(frozen=True)
class Example:
    id: int
    title: str
    rules: tuple[str, ...]  # the rules it is an example of
    expectations: tuple[Expectation, ...]
    declarations: tuple[dict[str, Any], ...]  # the facts each declaration states
    licences: tuple[dict[str, Any], ...]
    companies: tuple[dict[str, Any], ...]
    as_of: str | None
    where: Where
    source_text: str


@dataclass(frozen=True)
class Unverified:
    kind: str
    entry: str
    note: str
    where: Where


@dataclass(frozen=True)
class Lapse:
    """A suspension that ended by its own text (after its last extension): what it suspended
    applies again from the next day, unless a later decision, not in the rulebook, extended it."""

    target: str  # "MOFCOM-2024-46 clause 2", "listings under MOFCOM-2025-21"
    by: tuple[str, ...]  # the instruments that suspended and extended it, in order
    ended: str  # its last day
    resumes: str  # the day the target applies again
    kind: str = "instrument"  # what it suspended: rule | instrument | listings | listing
    name: str = ""  # the rule, instrument or party
    provision: str | None = None
    list: str | None = None
    rulebook: str | None = None  # the rulebook that encodes the suspension

    @property
    def key(self) -> str:
        """The amended target as `dsl.periods.target_key` names it."""
        if self.kind == "listings":
            return f"listings:{self.name}"
        if self.kind == "listing":
            return f"listing:{self.name}:{self.list or ''}"
        if self.kind == "rule":
            return f"rule:{self.name}"
        return f"instrument:{self.name}:{self.provision}" if self.provision else \
            f"instrument:{self.name}"


@dataclass(frozen=True)
class Law:
    version: str
    rulebooks: dict[str, Rulebook]
    instruments: dict[str, Instrument]
    items: dict[str, Item]
    groups: dict[str, Group]
    country_groups: dict[str, CountryGroup]
    lists: dict[str, PartyList]
    parties: dict[str, Party]
    value_ranges: dict[str, ValueRange]
    rules: dict[str, Rule]  # rules and exceptions, by name
    amendments: tuple[Amendment, ...]
    examples: tuple[Example, ...]
    unverified: tuple[Unverified, ...]

    def lapsed_suspensions(self, today: dt.date) -> list[Lapse]:
        """Suspensions whose last day (after every extension) is before `today`, of targets
        not lifted or repealed since: the questions to check against later decisions."""
        chains: dict[tuple[Any, ...], list[Amendment]] = {}
        for a in self.amendments:
            key = (a.target_kind, a.target_name, a.target_provision, a.target_list)
            chains.setdefault(key, []).append(a)
        out = []
        for (kind, name, provision, lst), chain in chains.items():
            suspensions = [a for a in chain if a.action in ("suspend", "extend")]
            ends = [a.valid_until for a in suspensions if a.action == "extend"] or [
                a.valid_until for a in suspensions if a.action == "suspend"]
            if not suspensions or not ends or None in ends:
                continue
            ended = max(e for e in ends if e is not None)
            if dt.date.fromisoformat(ended) >= today or any(
                    a.action in ("lift", "repeal") for a in chain):
                continue
            label = {"listings": f"listings under {name}",
                     "listing": f"listing of {name} on {lst}"}.get(
                kind, f"{name} {provision}" if provision else name)
            resumes = (dt.date.fromisoformat(ended) + dt.timedelta(days=1)).isoformat()
            out.append(Lapse(label, tuple(dict.fromkeys(a.instrument or "" for a in suspensions)),
                             ended, resumes, kind, name, provision, lst,
                             suspensions[0].rulebook))
        return sorted(out, key=lambda x: (x.ended, x.target))


def law(rb: CheckedRulebook) -> Law:
    """The resolved model of a checked rulebook (built once, kept with it)."""
    if "law" not in rb.derived:
        rb.derived["law"] = _Builder(rb).build()
    return rb.derived["law"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- building


def _join(values: Iterable[str]) -> str | None:
    text = "; ".join(v for v in values if v)
    return text or None


def _texts(decl: object, kind: type[Any]) -> str | None:
    """The texts of one kind of attribute (notes, sources, …), joined."""
    return _join(str(a.text.value) for a in ast.attrs_of(decl, kind))


def _cite(decl: object) -> tuple[str | None, str | None]:
    act = ast.first_attr(decl, ast.ControlAct)
    c = act.citation if act is not None else ast.first_attr(decl, ast.Citation)
    if c is None:
        return None, None
    return c.instrument.name, str(c.provision) if c.provision else None


def _date(decl: object, kind: type) -> str | None:
    a = ast.first_attr(decl, kind)
    return a.date.text if a is not None else None


def _where(span: ast.Span) -> Where:
    return Where(span.file, span.line, span.column)


def _source_text(decl: ast.Declaration) -> str:
    return format_file(ast.SourceFile("", (decl,)))


def _codes(decl: object) -> tuple[Code, ...]:
    out: dict[str, Code] = {}
    for a in ast.attrs_of(decl, ast.Customs):
        for c in a.codes:
            digits = normalise_customs_code(c.text)
            out.setdefault(digits, Code(digits, c.text))
    return tuple(out.values())


def _issuer(decl: object) -> str | None:
    return _join(r.name for a in ast.attrs_of(decl, ast.Issuer) for r in a.names)


def _window_days(c: ast.Condition | None, rb: CheckedRulebook) -> int:
    days = 0
    stack: list[object] = [c] if c is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, ast.CountOf | ast.SumOf):
            w = node.window
            days = max([days, w.days] + ([int(v.value) for v in ast.attrs_of(
                rb.parameters[w.parameter.name], ast.ParameterValue)] if w.parameter else []))
        for name in ("parts", "part", "left", "right", "subject", "of"):
            child = getattr(node, name, None)
            if isinstance(child, tuple):
                stack.extend(child)
            elif child is not None:
                stack.append(child)
    return days


def _value(v: object) -> Any:
    """A fact an example states, as the loader would read it from a file."""
    if isinstance(v, ast.Text):
        return v.value
    if isinstance(v, ast.Ref):
        return v.name
    if isinstance(v, ast.DateValue | ast.Code):
        return v.text
    if isinstance(v, ast.Quantity):
        return float(v.value * Decimal(str(UNIT_FACTORS.get(v.unit or "", 1.0))))
    if isinstance(v, ast.ItemList):
        return ";".join(e.name if isinstance(e, ast.Ref) else e.digits for e in v.entries)
    return v


class _Builder:
    def __init__(self, rb: CheckedRulebook) -> None:
        self.rb = rb

    def build(self) -> Law:
        rb = self.rb
        return Law(
            version=rb.version,
            rulebooks={n: self.rulebook(d) for n, d in rb.rulebooks.items()},
            instruments={n: self.instrument(n, d) for n, d in rb.instruments.items()},
            items=self.items(),
            groups={n: Group(n, g.title.value, *_cite(g), tuple(sorted(rb.group_items.get(n, ()))))
                    for n, g in rb.groups.items()},
            country_groups={n: self.country_group(n, g) for n, g in rb.country_groups.items()},
            lists={n: PartyList(n, pl.title.value, _join(t.text.value for t in ast.attrs_of(
                pl, ast.Title) if t.lang == "zh"), _issuer(pl), _cite(pl)[0],
                float(th.value) if (th := ast.first_attr(pl, ast.MatchThreshold)) else None,
                rb.list_measures(n)) for n, pl in rb.lists.items()},
            parties={n: self.party(n, p) for n, p in rb.parties.items()},
            value_ranges={n: self.value_range(n, v) for n, v in rb.value_ranges.items()},
            rules={n: self.rule(n, kind, r) for kind, table in (
                ("rule", rb.rules), ("exception", rb.exceptions)) for n, r in table.items()},
            amendments=self.amendments(),
            examples=tuple(self.example(n, ex) for n, ex in enumerate(rb.examples, 1)),
            unverified=tuple(Unverified(k, n, t, _where(s)) for k, n, t, s in rb.unverified),
        )

    def rulebook(self, d: ast.RulebookDecl) -> Rulebook:
        return Rulebook(d.name.name, d.title.value,
                        tuple(j.country.name for j in ast.attrs_of(d, ast.Jurisdiction)),
                        tuple(s.text.value for s in ast.attrs_of(d, ast.Source)), _where(d.span),
                        _date(d, ast.SourcesChecked))

    def instrument(self, name: str, ins: ast.Instrument) -> Instrument:
        titles = ast.attrs_of(ins, ast.Title)
        conf = ast.first_attr(ins, ast.Confidence)
        return Instrument(
            id=name, title=_join(t.text.value for t in titles if t.lang is None),
            title_zh=_join(t.text.value for t in titles if t.lang == "zh"),
            issuer=_issuer(ins), number=_texts(ins, ast.Number),
            issued=_date(ins, ast.Issued), in_force=_date(ins, ast.InForce),
            url=_texts(ins, ast.Url), confidence=conf.level if conf else None,
            notes=_texts(ins, ast.Note), unverified=_texts(ins, ast.Unverified),
            where=_where(ins.span),
            provisions=tuple(Provision(name, f"{p.kind} {p.label}", p.kind, p.label,
                                       p.text.value, p.text_zh.value if p.text_zh else None)
                             for p in ast.attrs_of(ins, ast.Provision)))

    def items(self) -> dict[str, Item]:
        rb = self.rb
        controls = item_controls(rb)
        out = {}
        for name, it in rb.items.items():
            groups = tuple(g.name for m in ast.attrs_of(it, ast.MemberOf) for g in m.groups)
            ins, prov = _cite(it)
            if ins is None:  # the item rests on its group's citation
                ins, prov = next((_cite(rb.groups[g]) for g in groups if g in rb.groups),
                                 (None, None))
            control = ast.first_attr(it, ast.Control)
            conf = ast.first_attr(it, ast.Confidence)
            cond = ast.first_attr(it, ast.ControlledIf)
            out[name] = Item(
                name=name, title=it.title.value, title_zh=_texts(it, ast.NameZh),
                control_code=control.code.text if control else None,
                instrument=ins, provision=prov,
                controlled_if=condition(cond.condition) if cond else None,
                confidence=conf.level if conf else None, notes=_texts(it, ast.Note),
                unverified=_texts(it, ast.Unverified), where=_where(it.span),
                codes=_codes(it), groups=groups, controls=tuple(controls.get(name, ())))
        return out

    def country_group(self, name: str, cg: ast.CountryGroup) -> CountryGroup:
        return CountryGroup(name, cg.title.value, _date(cg, ast.ValidFrom),
                            _date(cg, ast.ValidUntil), _cite(cg)[0], _texts(cg, ast.Source),
                            _texts(cg, ast.Unverified),
                            tuple(sorted(self.rb.country_members.get(name, ()))))

    def party(self, name: str, p: ast.Party) -> Party:
        country = ast.first_attr(p, ast.Country)
        owner = ast.first_attr(p, ast.OwnedBy)
        aliases: list[str] = []
        for a in ast.attrs_of(p, ast.Alias):
            for n in a.names:
                if n.value != p.title.value and n.value not in aliases:
                    aliases.append(n.value)
        listings = tuple(Listing(
            name, lst.list.name, lst.citation.instrument.name,
            str(lst.citation.provision) if lst.citation.provision else None,
            lst.valid_from.date.text, lst.valid_until.date.text if lst.valid_until else None,
            self.rb.listing_measures(lst)) for lst in ast.attrs_of(p, ast.Listing))
        return Party(name, p.title.value, country.code.name if country else None,
                     _texts(p, ast.Address), _texts(p, ast.Phone),
                     owner.owner.name if owner else None,
                     float(owner.share_pct) if owner and owner.share_pct else None,
                     _texts(p, ast.Unverified), tuple(aliases), listings)

    def value_range(self, name: str, vr: ast.ValueRange) -> ValueRange:
        pr = ast.first_attr(vr, ast.PriceRange)
        return ValueRange(name, vr.title.value, _codes(vr), float(pr.low) if pr else None,
                          float(pr.high) if pr else None, _cite(vr)[0], _texts(vr, ast.Source),
                          _texts(vr, ast.Unverified), self.rb.rulebook_of(vr.span.file))

    def rule(self, name: str, kind: str, r: ast.Rule | ast.Exception_) -> Rule:
        then = ast.first_attr(r, ast.Then)
        when = ast.first_attr(r, ast.When)
        iv = self.rb.validity.get(name)
        cite = _cite(r)
        c = when.condition if when else None
        parts = c.parts if isinstance(c, ast.AllOf | ast.AnyOf) else ((c,) if c else ())
        return Rule(
            name=name, kind=kind, title=r.title.value if r.title else None,
            outcome=then.outcome.kind if then else ("exception" if kind == "exception"
                                                   else None),
            severity=then.outcome.severity if then else None,
            instrument=cite[0], provision=cite[1],
            valid_from=iv.start.isoformat() if iv and iv.start else None,
            valid_until=iv.end.isoformat() if iv and iv.end else None,
            condition=condition(c) if c else None, when=c,
            parts=tuple(Part(condition(p), p) for p in parts),
            joiner="any of" if isinstance(c, ast.AnyOf) else "all of",
            if_missing=tuple((p.field.name, str(p.outcome) if p.outcome else None)
                             for p in ast.attrs_of(r, ast.IfMissing)),
            window_days=_window_days(c, self.rb),
            excepts=tuple(x.name for a in ast.attrs_of(r, ast.Excepts) for x in a.rules),
            overrides=tuple(x.name for a in ast.attrs_of(r, ast.Overrides) for x in a.rules),
            explain=_join(a.template.value for a in ast.attrs_of(r, ast.Explain)),
            unverified=_texts(r, ast.Unverified), where=_where(r.span),
            source_text=_source_text(r), rulebook=self.rb.rulebook_of(r.span.file),
            title_zh=_texts(r, ast.TitleZh),
            outcome_zh=then.zh.value if then and then.zh else None,
            explain_zh=_join(a.template.value for a in ast.attrs_of(r, ast.ExplainZh)))

    def amendments(self) -> tuple[Amendment, ...]:
        rb = self.rb
        out: list[Amendment] = []
        for am in rb.amendments:
            ins, prov = _cite(am)
            for t in am.targets:
                kind = {"ref": "rule" if t.name.name in rb.rules or t.name.name in rb.exceptions
                        else "instrument", "listings": "listings", "listing": "listing"}[t.kind]
                out.append(Amendment(
                    len(out) + 1, am.action, header(am).split(" ", 1)[1], kind, t.name.name,
                    str(t.provision) if t.provision else None, t.list.name if t.list else None,
                    ins, prov, _date(am, ast.ValidFrom), _date(am, ast.ValidUntil),
                    _where(am.span), rb.rulebook_of(am.span.file)))
        return tuple(out)

    def example(self, n: int, ex: ast.Example) -> Example:
        rb = self.rb
        expects = ast.attrs_of(ex, ast.Expect)
        named = {x.rule.name for x in expects if x.rule}
        # "RULE: …" titles an example of that rule even when it expects no finding at all
        prefix = ex.title.value.split(":", 1)[0].strip()
        if ":" in ex.title.value and (prefix in rb.rules or prefix in rb.exceptions):
            named.add(prefix)
        declarations = []
        declared = {n: f for f in rb.declared_fields() for n in (f.name, *f.aliases)}
        for i, d in enumerate(ast.attrs_of(ex, ast.ExampleDeclaration), 1):
            row: dict[str, Any] = {"id": d.id.name if d.id else f"d{i}"}
            for f in d.fields:
                fact = declared.get(f.name)
                if fact is not None:  # under its own name, a number in its own unit
                    value = _value(f.value)
                    if isinstance(f.value, ast.Quantity):
                        value /= UNIT_FACTORS.get(fact.unit or "", 1.0)
                    row[fact.name] = value
                    continue
                row[f.name] = _value(f.value)
                if f.country is not None:
                    row[f"{f.name}_country"] = f.country.name
            declarations.append(row)
        licences = []
        for lic in ast.attrs_of(ex, ast.ExampleLicence):
            row = {"licence_no": lic.number.name}
            for part in lic.fields:
                if isinstance(part, ast.ValidFrom):
                    row["valid_from"] = part.date.text
                elif isinstance(part, ast.ValidUntil):
                    row["valid_to"] = part.date.text
                elif part.name == "agents":
                    row["agents"] = ";".join(filter(None, (row.get("agents"),
                                                           _value(part.value))))
                else:
                    row[part.name] = _value(part.value)
            licences.append(row)
        as_of = ast.first_attr(ex, ast.AsOf)
        return Example(
            id=n, title=ex.title.value, rules=tuple(sorted(named)),
            expectations=tuple(Expectation(
                attribute(x)[0], x.outcome, x.present, x.rule.name if x.rule else None,
                x.declaration.name if x.declaration else None,
                x.missing.name if x.missing else None,
                (x.citing.instrument.name, str(x.citing.provision) if x.citing.provision
                 else None) if x.citing else None, _where(x.span),
                x.basis.name if x.basis else None) for x in expects),
            declarations=tuple(declarations), licences=tuple(licences),
            companies=tuple({"name": c.name.value, **{f.name: _value(f.value) for f in c.fields}}
                            for c in ast.attrs_of(ex, ast.Company)),
            as_of=as_of.date.text if as_of else None, where=_where(ex.span),
            source_text=_source_text(ex))


def declarations_json(rb: CheckedRulebook) -> dict[str, Any]:
    """Every declaration of the rulebook as written, by kind, for the JSON form of the rules;
    rules and exceptions as (name, attributes, title) for the exporter to annotate."""
    return {
        "rulebooks": [plain(r) for r in rb.rulebooks.values()],
        "instruments": [plain(i) for i in rb.instruments.values()],
        "items": [plain(i) for i in rb.items.values()],
        "lists": [plain(x) for x in rb.lists.values()],
        "parties": [plain(p) for p in rb.parties.values()],
        "amendments": [plain(a) for a in rb.amendments],
        "examples": [plain(e) for e in rb.examples],
        "rule_attributes": {d.name.name: plain(d.attrs) for table in (rb.rules, rb.exceptions)
                            for d in table.values()},
    }
