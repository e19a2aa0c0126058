"""The reference interpreter: the checked rulebook evaluated on Python rows.

It is the oracle the compiled SQL is tested against, so it is written for clarity, one rule at
a time, following the language's semantics rather than the SQL's shape: three-valued
conditions (True, False, None for "a needed fact is missing"), in-force periods with
suspensions, items matched by customs code, licences drawn down in date order, listed parties
matched by normalised name, exceptions and overrides.

What is in force on a day, which listed party a name matches and which parties are linked are
its own plain answers (`dsl.naive`), not the compiler's helpers, so the comparison checks those
too. A `mentions` test looks for each of a word's forms (`dsl.names.mention_forms`) in the text
with its ASCII letters lower-cased, as SQLite's LOWER does; explanations are not reproduced
(findings are compared on declaration, rule, outcome, severity and citation).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsl import ast
from dsl.basis import basis_of, basis_plan
from dsl.compile import LICENSABLE, OUTCOME_OF
from dsl.graph import OWNERSHIP, PartyFacts, Threshold
from dsl.model import law
from dsl.naive import Act, Calendar, Links, Listing, Names
from dsl.names import mention_forms, party_key
from dsl.periods import parameter_in_force
from dsl.rulebook import (
    CheckedRulebook,
    Interval,
    listing_nodes,
    normalise_customs_code,
    parameter_test,
    required_items,
)
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
    basis: str = "settled"  # what it rests on, and why in words (`dsl.basis`)
    caveat: str | None = None


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


class Interpreter:
    def __init__(self, rb: CheckedRulebook, schema: Schema) -> None:
        self.rb = rb
        self.schema = rb.schema(schema)
        self.calendar = Calendar(rb)
        self.codes_by_rulebook: dict[str, dict[str, set[str]]] = defaultdict(
            lambda: defaultdict(set))
        for name, item in rb.items.items():
            rulebook = rb.rulebook_of(item.span.file) or ""
            for a in ast.attrs_of(item, ast.Customs):
                for c in a.codes:
                    self.codes_by_rulebook[rulebook][normalise_customs_code(c.text)].add(name)
        self.key_parties: dict[str, set[str]] = defaultdict(set)  # key -> parties
        spellings = []
        self.party_facts = []
        self.same: dict[str, str] = {}
        for name, party in rb.parties.items():
            names = [party.title.value, *(n.value for a in ast.attrs_of(party, ast.Alias)
                                          for n in a.names)]
            for n in names:
                self.key_parties[party_key(n)].add(name)
                spellings.append((name, n))
                self.same[n] = party.title.value
            owner = ast.first_attr(party, ast.OwnedBy)
            self.party_facts.append(PartyFacts(
                party.title.value,
                "; ".join(a.text.value for a in ast.attrs_of(party, ast.Address)) or None,
                "; ".join(a.text.value for a in ast.attrs_of(party, ast.Phone)) or None,
                rb.parties[owner.owner.name].title.value
                if owner and owner.owner.name in rb.parties else None,
                float(owner.share_pct) if owner and owner.share_pct is not None else None))
        self.names = Names(spellings)
        self.thresholds = {
            name: float(t.value) if (t := ast.first_attr(lst, ast.MatchThreshold)) else 100.0
            for name, lst in rb.lists.items()}
        self.licences: dict[str, Row] = {}
        self.prepare([], [])
        self.listings: dict[str, list[Listing]] = self.calendar.listings

    def control(self, item: str, day: str) -> Act | None:
        """The act that controls `item` on `day`, if any."""
        return self.calendar.control(item, _day(day))

    # ------------------------------------------------------------ history and parties
    def prepare(self, declarations: Sequence[Row], parties: Sequence[Row],
                published: Sequence[tuple[str, float, float]] = ()) -> None:
        """The declarations windows and first-seen dates look back on, the party links, and
        published unit values (code or prefix, low, high in USD/kg)."""
        self.history = list(declarations)
        self.published = list(published)
        self.days = {d["id"]: _day(d["declared_on"]).toordinal() for d in self.history}
        self.windows: dict[Any, dict[tuple[Any, ...], tuple[list[int], list[Row]]]] = {}
        self.minerals = {(d["id"], r): min((m for i in self.items_of(d)
                                            if (m := self.rb.mineral_of(i, r)) is not None),
                                           default=None)
                         for d in self.history for r in self.rb.rulebooks}
        self.first_day: dict[str, int] = {}
        for d in self.history:
            for role in ("exporter", "consignee", "end_user"):
                if d.get(role) is not None:
                    key = party_key(str(d[role]))
                    day = self.days[d["id"]]
                    self.first_day[key] = min(self.first_day.get(key, day), day)
        self.code_ranges = self.typical_unit_values()
        self.links = Links([
            *self.party_facts,
            *(PartyFacts(str(p["name"]), p.get("address"), p.get("phone"), p.get("parent"))
              for p in parties)], self.same)

    def typical_unit_values(self) -> dict[str, tuple[float | None, float | None]]:
        """Per declared code, the first of: the published unit value (`self.published`,
        USD/kg) of the longest code it begins with; the rulebook's value range of the longest
        such code; the 5th–95th percentile of the unit values under the longest of its 10-,
        8-, 6- and 4-digit prefixes with at least 30 declarations."""
        values: dict[str, list[float]] = defaultdict(list)
        codes: set[str] = set()
        for d in self.history:
            codes.add(d["hs_code"])
            q, v = d.get("quantity_kg"), d.get("value_usd")
            if q is not None and q > 0 and v is not None:
                values[d["hs_code"]].append(v / q)
        published = [(c, lo, hi) for c, lo, hi in self.published]
        ranges = [(c, lo, hi) for _, c, lo, hi in sorted(self.rb.value_range_rows())]
        populations: dict[str, list[float]] = {}

        def population(prefix: str) -> list[float]:
            if prefix not in populations:
                populations[prefix] = sorted(x for c, xs in values.items()
                                             if c[:len(prefix)] == prefix for x in xs)
            return populations[prefix]

        out: dict[str, tuple[float | None, float | None]] = {}
        for code in codes:
            found: tuple[float | None, float | None] = (None, None)
            for table in (published, ranges):
                best = max((r for r in table if code.startswith(r[0])),
                           key=lambda r: len(r[0]), default=None)
                if best is not None:
                    found = (best[1], best[2])
                    break
            else:
                for n in sorted({min(k, len(code)) for k in (10, 8, 6, 4)}, reverse=True):
                    sample = population(code[:n])
                    if len(sample) >= 30:
                        q, r = divmod(len(sample), 20)
                        found = (sample[q + (1 if r else 0) - 1], sample[len(sample) - q])
                        break
            out[code] = found
        return out

    def length(self, days: int, parameter: ast.Ref | None, day: str) -> int:
        """N of `within N days`, or the length parameter's value in force on the judged day
        (0 on a day it has none)."""
        if parameter is None:
            return days
        found = parameter_in_force(self.rb, parameter.name, _day(day))
        return int(found[1].value) if found else 0

    def window(self, e: ast.CountOf | ast.SumOf, d: Row, item: str | None, on: str) -> float:
        """The declarations of the N days ending on d's date that share the `same` facts with
        it, counted or summed (looked up by those facts, then by day); N as of `on`, the
        judged date."""
        w = e.window
        length = self.length(w.days, w.parameter, on)
        rulebook = self.rb.rulebook_of(e.span.file) or ""
        names = tuple(k.name for k in w.same)
        index = self.window_index(names, rulebook)
        mine = self.keys_of(d, names, rulebook, item)
        if mine is None:
            return 0.0
        days, rows = index.get(mine[0], ([], []))
        day = self.days[d["id"]]
        total = 0.0
        for other in rows[bisect.bisect_left(days, day - length + 1):
                          bisect.bisect_right(days, day)]:
            if isinstance(e, ast.CountOf):
                total += 1
            elif (v := self.value(other, e.field.name)) is not None:
                total += v
        return total

    def keys_of(self, d: Row, names: tuple[str, ...], rulebook: str, item: str | None = None,
                every_item: bool = False) -> list[tuple[Any, ...]] | None:
        """The values d shares by: for `item`, the one being judged, or with `every_item` each
        of d's items (None: d has no value for one of them, and shares nothing)."""
        choices: list[list[Any]] = []
        for name in names:
            if name == "group":
                value = self.minerals.get((d["id"], rulebook))
                choices.append([value] if value is not None else [])
            elif name == "item":
                choices.append(self.items_of(d) if every_item else
                               [item] if item is not None else [])
            else:
                value = self.value(d, name)
                choices.append([value] if value is not None else [])
        if any(not c for c in choices):
            return None
        return [tuple(x) for x in itertools.product(*choices)]

    def window_index(self, names: tuple[str, ...], rulebook: str
                     ) -> dict[tuple[Any, ...], tuple[list[int], list[Row]]]:
        key = (names, rulebook)
        if key not in self.windows:
            found: dict[tuple[Any, ...], list[tuple[int, int, Row]]] = defaultdict(list)
            for n, row in enumerate(self.history):
                for values in self.keys_of(row, names, rulebook, every_item=True) or ():
                    found[values].append((self.days[row["id"]], n, row))
            self.windows[key] = {
                k: ([day for day, _, _ in v], [r for _, _, r in v])
                for k, v in ((k, sorted(v, key=lambda x: (x[0], x[1])))
                             for k, v in found.items())}
        return self.windows[key]

    # ------------------------------------------------------------ facts
    def items_of(self, d: Row) -> list[str]:
        """The items a declaration's code matches: those of its most precise match (the code
        itself, else its 8-digit line, else its 6-digit subheading)."""
        code = d["hs_code"]
        found: set[str] = set()
        for items in self.codes_by_rulebook.values():  # most precise within each rulebook
            for prefix in (code, code[:8], code[:6]):
                if len(prefix) >= 6 and items.get(prefix):
                    found |= items[prefix]
                    break
        return sorted(found)

    def value(self, d: Row, name: str) -> Any:
        spec = self.schema.field(name)
        assert spec is not None
        if spec.name == "unit_value":
            q, v = d.get("quantity_kg"), d.get("value_usd")
            return None if q in (None, 0) or v is None else v / q
        if spec.name in ("code_value_low", "code_value_high"):
            if spec.name in d:  # given with the row (`excon explain` reads the knowledge base)
                return d[spec.name]
            found = self.code_ranges.get(d["hs_code"])
            return None if found is None else found[spec.name == "code_value_high"]
        if spec.name == "exporter_on_licence":
            if spec.name in d:
                return d[spec.name]
            lic = self.licences.get(d.get("licence_no") or "")
            return None if lic is None else self.exporter_role(lic, d)
        value = d.get(spec.name)
        if spec.declared and value is not None and (
                factor := UNIT_FACTORS.get(spec.unit or "", 1.0)) != 1.0:
            return float(value) * factor  # a declared number in t or g, in the base unit
        return value

    # ------------------------------------------------------------ conditions
    def truth(self, c: ast.Condition, d: Row, item: str | None, day: str) -> Truth:
        if isinstance(c, ast.Parenthesised):
            return self.truth(c.part, d, item, day)
        if isinstance(c, ast.Reaches):  # the value in force on the day, by its comparator
            found = parameter_in_force(self.rb, c.parameter.name, _day(day))
            return self.truth(parameter_test(c, found[1]), d, item, day) if found else False
        if isinstance(c, ast.ConclusionRef):  # as written (explain's steps): its condition
            inner = self.rb.condition_of(self.rb.conclusions[c.name.name])
            return None if inner is None else self.truth(inner, d, item, day)
        if isinstance(c, ast.AllOf):
            return _and(self.truth(p, d, item, day) for p in c.parts)
        if isinstance(c, ast.AnyOf):
            return _or(self.truth(p, d, item, day) for p in c.parts)
        if isinstance(c, ast.Negation):
            return _not(self.truth(c.part, d, item, day))
        if isinstance(c, ast.DualUse):  # as `excon explain` asks of the written condition
            items = sorted(self.rb.rulebook_items(c.span.file))
            return self.truth(ast.ItemIn(tuple(ast.Ref(n) for n in items), c.negated, c.span),
                              d, item, day)
        if isinstance(c, ast.ItemIn):
            members = self.rb.items_in(r.name for r in c.members)
            result: Truth
            if item is None or item not in members or self.control(item, day) is None:
                result = False
            else:
                it = ast.first_attr(self.rb.items[item], ast.ControlledIf)
                result = True if it is None else self.truth(it.condition, d, item, day)
            return _not(result) if c.negated else result
        if isinstance(c, ast.CodeUnder):
            code = str(self.value(d, c.subject.name) or "")
            return any(code.startswith(x.digits) for x in c.codes)
        if isinstance(c, ast.InSet) and self.schema.field(c.subject.name).type == "code":  # type: ignore[union-attr]
            inside = any(c.any_time or self.control(i, day) is not None for i in
                         set(self.items_of(d)) & self.rb.items_in(r.name for r in c.members))
            return (not inside) if c.negated else inside
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
                    continue
                decl = self.rb.terms[t.name]
                stands = self.rb.stands_for(decl)  # such words count while one is controlled
                if stands is None or any(self.control(i, day) is not None for i in stands):
                    words += [w.value for a in ast.attrs_of(decl, ast.Words) for w in a.words]
            text = ascii_lower(str(v))
            return any(form in text for w in words for form in mention_forms(w))
        if isinstance(c, ast.Listed):
            v = self.value(d, c.subject.name)
            if v is None:
                return None
            return self.best_listing(c, v, day) is not None
        if isinstance(c, ast.Related):
            return self.related(c, d, day)
        if isinstance(c, ast.InRange):
            v = self.value(d, c.subject.name)
            if v is None:
                return None
            return any(low <= v <= high and (gate is None or any(
                self.control(i, day) is not None for i in gate))
                for _, low, high, gate in self.rb.value_ranges_for(r.name for r in c.members))
        if isinstance(c, ast.FirstSeen):
            v = self.value(d, c.subject.name)
            if v is None:
                return None
            return (self.days[d["id"]] - self.first_day[party_key(str(v))]
                    < self.length(c.days, c.parameter, day))
        if isinstance(c, ast.Comparison):
            left, right = (self.expression(c.left, d, item, day),
                           self.expression(c.right, d, item, day))
            if left is None or right is None:
                return None
            result = {">=": left >= right, "<=": left <= right, ">": left > right,
                      "<": left < right, "=": left == right, "!=": left != right}[c.op]
            return bool(result)
        raise NotImplementedError(type(c).__name__)

    def related(self, c: ast.Related, d: Row, day: str) -> Truth:
        a = self.value(d, c.subject.name)
        links = [v.name for v in c.via]
        hops = self.length(c.hops or 1, c.hops_parameter, day)
        when = _day(day)
        threshold: Threshold = OWNERSHIP
        if c.ownership is not None:  # the value in force on the day
            found = parameter_in_force(self.rb, c.ownership.name, when)
            if found is None:
                return False  # as `FACT reaches P` on a day no value applies
            threshold = (found[1].op, float(found[1].value))
        if isinstance(c.other, ast.Ref):
            b = self.value(d, c.other.name)
            if a is None or b is None:
                return None
            return self.links.node(str(b)) in self.links.reach(str(a), links, hops, threshold)
        if a is None:
            return None
        lists = {r.name for r in c.other.lists} or set(self.rb.lists)
        return any(lp.list in lists and self.calendar.listing_in_force(lp, when)
                   for target in self.links.reach(str(a), links, hops, threshold)
                   for party in self.key_parties.get(target, ())
                   for lp in self.listings[party])

    def best_listing(self, c: ast.Listed, name: Any, day: str) -> Listing | None:
        """The listing in force on `day`, on one of the lists and imposing one of the measures
        `c` names, of the party `name` matches best (the order of the knowledge base's
        `listed_matches`: score, legal name, list, instrument, entry, measure)."""
        lists = {r.name for r in c.lists} or set(self.rb.lists)
        measures = {m.name for m in c.measures}
        when = _day(day)
        found = [(-m.score, self.rb.parties[m.party].title.value, lp.list, lp.instrument,
                  lp.provision or "", lp)
                 for m in self.names.hits(str(name), min(self.thresholds.values(),
                                                         default=100.0))
                 for lp in self.listings[m.party]
                 if lp.list in lists and m.score >= self.thresholds[lp.list]
                 and self.calendar.listing_in_force(lp, when)
                 and (not measures or measures & set(lp.measures))]
        return min(found, key=lambda f: f[:5])[5] if found else None

    def expression(self, e: ast.Expression, d: Row, item: str | None = None,
                   day: str = "") -> Any:
        if isinstance(e, ast.Field):
            return self.value(d, e.name.name)
        if isinstance(e, ast.Quantity):
            return float(e.value) * UNIT_FACTORS.get(e.unit or "", 1.0)
        if isinstance(e, ast.DateLiteral):
            return e.date.text
        if isinstance(e, ast.TextLiteral):
            return e.text.value
        if isinstance(e, ast.CountOf | ast.SumOf):
            return self.window(e, d, item, day)
        if isinstance(e, ast.Arithmetic):
            a, b = self.expression(e.left, d, item, day), self.expression(e.right, d, item, day)
            if a is None or b is None or (e.op == "/" and b == 0):
                return None
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[e.op]
        raise NotImplementedError(type(e).__name__)

    # ------------------------------------------------------------ licences
    def licence_cover(self, declarations: Sequence[Row],
                      licences: Sequence[Row]) -> dict[str, bool]:
        by_no = self.licences = {lic["licence_no"]: lic for lic in licences}
        uses: dict[str, list[Row]] = defaultdict(list)
        for d in declarations:
            if d.get("licence_no"):
                uses[d["licence_no"]].append(d)
        covered: dict[str, bool] = {}
        for number, rows in uses.items():
            lic = by_no.get(number)
            kg = usd = 0.0  # drawn by the uses accepted so far
            for d in sorted(rows, key=lambda r: (r["declared_on"], r["id"])):
                if lic is None or not self.fits(lic, d):
                    covered[d["id"]] = False
                    continue
                # a use beyond what is left is refused and draws nothing (half a gram or
                # half a cent of slack, as the checks allow)
                limit_kg, limit_usd = lic.get("quantity_kg"), lic.get("value_usd")
                value = d.get("value_usd") or 0.0
                ok = (limit_kg is None or kg + d["quantity_kg"] <= limit_kg + 0.0005) and \
                    (limit_usd is None or usd + value <= limit_usd + 0.005)
                if ok:
                    kg, usd = kg + d["quantity_kg"], usd + value
                covered[d["id"]] = ok
        return covered

    @staticmethod
    def exporter_role(lic: Row, d: Row) -> str:
        """How the licence names the declaration's exporter: holder, agent or not named (names
        compared by their normalised key, as the lists are)."""
        exporter = party_key(str(d["exporter"]))
        if party_key(str(lic["holder"])) == exporter:
            return "holder"
        agents = [a for a in str(lic.get("agents") or "").split(";") if a]
        return "agent" if any(party_key(a) == exporter for a in agents) else "not named"

    def fits(self, lic: Row, d: Row) -> bool:
        if not lic["valid_from"] <= d["declared_on"] <= lic["valid_to"]:
            return False
        if self.exporter_role(lic, d) == "not named":
            return False
        if lic.get("destination_country") not in (None, d["destination_country"]):
            return False
        if lic.get("end_user") is not None and (
                d.get("end_user") is None or party_key(str(lic["end_user"])) != party_key(
                    str(d["end_user"]))):
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
    def rule_uses_items(self, name: str) -> bool:
        """Whether the rule (or exception) names items, so their control periods matter."""
        decl = self.rb.rules.get(name) or self.rb.exceptions.get(name)
        return decl is not None and uses_items(self.rb.condition_of(decl))

    def suppressors(self, name: str) -> list[ast.Rule | ast.Exception_]:
        return self.rb.suppressors(name)

    def judge(self, declarations: Sequence[Row], licences: Sequence[Row] = (),
              as_of: str | None = None, parties: Sequence[Row] = ()) -> list[Judgement]:
        self.prepare(declarations, parties)
        cover = self.licence_cover(declarations, licences)
        out = []
        for name, rule in self.rb.rules.items():
            then = ast.first_attr(rule, ast.Then)
            if then is None or ast.first_attr(rule, ast.When) is None or \
                    then.outcome.kind == "permitted":
                continue
            cite = ast.first_attr(rule, ast.Citation)
            word = OUTCOME_OF.get(then.outcome.kind, then.outcome.kind)
            licence = then.outcome.kind in LICENSABLE
            suppressors = self.suppressors(name)
            condition = self.rb.condition_of(rule)
            assert condition is not None
            exceptions = [(s, self.rb.condition_of(s)) for s in suppressors]
            with_items = uses_items(condition) or any(uses_items(w) for _, w in exceptions)
            plan = basis_plan(self.rb, law(self.rb), name)
            for d in declarations:
                day = as_of or d["declared_on"]
                if not self.calendar.rule_in_force(name, _day(day)):
                    continue
                candidates: list[str | None] = [None]
                if with_items:
                    candidates = [*self.items_of(d)] or [None]
                best: tuple[int, str, str] | None = None
                for item in candidates:
                    t = self.truth(condition, d, item, day)
                    if licence and cover.get(d["id"], False):
                        continue
                    if t is False:
                        continue
                    if t is None and not self.report_unknown(rule, d):
                        continue
                    applying = [True if w is None else self.truth(w, d, item, day)
                                for s, w in exceptions
                                if self.calendar.rule_in_force(s.name.name, _day(day))]
                    if any(x is True for x in applying):
                        continue
                    # an exception that may apply (a fact it needs is missing): undetermined
                    maybe = any(x is None for x in applying)
                    outcome = "undetermined" if t and maybe else \
                        word if t else self.unknown_outcome(rule, d)
                    candidate = (0 if t and not maybe else 1, item or "", outcome)
                    if best is None or candidate[:2] < best[:2]:
                        best = candidate
                if best is not None:
                    item = best[1] or None
                    act = self.attribution(condition, then.outcome.kind == "licence required",
                                           cite, d, item, day)
                    out.append(Judgement(d["id"], name, best[2], then.outcome.severity, *act,
                                         *basis_of(plan, day, *act, item)))
        return sorted(out, key=lambda j: (j.declaration_id, j.rule, j.outcome))

    def attribution(self, condition: ast.Condition, licence: bool, cite: ast.Citation | None,
                    d: Row, item: str | None, day: str) -> tuple[str | None, str | None]:
        """The act a finding cites (see `Compiler.attribution`): the announcement that listed
        the matched party, the act controlling the item, or the rule's own `per`."""
        own = (cite.instrument.name if cite else None,
               str(cite.provision) if cite and cite.provision else None)
        nodes = listing_nodes(condition)
        if nodes:
            for node in nodes:
                v = self.value(d, node.subject.name)
                lp = self.best_listing(node, v, day) if v is not None else None
                if lp is not None:
                    return lp.instrument, lp.provision
            return own
        required = required_items(condition, self.rb)
        if licence and item is not None and (required is None or item in required):
            act = self.control(item, day)
            if act is not None:
                return act.instrument, act.provision
        return own

    def report_unknown(self, rule: ast.Rule, d: Row) -> bool:
        return all(self.value(d, m.field.name) is not None
                   for m in ast.attrs_of(rule, ast.IfMissing) if m.outcome is None)

    def unknown_outcome(self, rule: ast.Rule, d: Row) -> str:
        outcome = "undetermined"
        for m in ast.attrs_of(rule, ast.IfMissing):
            if m.outcome is not None and self.value(d, m.field.name) is None:
                outcome = OUTCOME_OF.get(m.outcome.kind, m.outcome.kind)
        return outcome


def uses_items(c: ast.Condition | None) -> bool:
    """Whether a condition names items (an item test, or a window by item), so that a rule
    judges each item a declaration's code matches and its findings take one of them."""
    if c is None:
        return False
    stack = [c]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ItemIn | ast.DualUse):
            return True
        if isinstance(node, ast.Comparison | ast.Reaches) and any(
                isinstance(e, ast.CountOf | ast.SumOf) and
                any(k.name == "item" for k in e.window.same)
                for e in _expressions(node)):
            return True
        if isinstance(node, ast.AllOf | ast.AnyOf):
            stack.extend(node.parts)
        elif isinstance(node, ast.Negation | ast.Parenthesised):
            stack.append(node.part)
    return False


def _expressions(c: ast.Comparison | ast.Reaches) -> list[ast.Expression]:
    out: list[ast.Expression] = []
    stack: list[ast.Expression] = ([c.left, c.right] if isinstance(c, ast.Comparison) else
                                   [c.subject] + ([c.of] if c.of is not None else []))
    while stack:
        e = stack.pop()
        out.append(e)
        if isinstance(e, ast.Arithmetic):
            stack += [e.left, e.right]
    return out
