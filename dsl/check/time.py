"""The checks of time and precedence: each rule's and exception's interval, items' control
periods, conflicts between rules that may meet, and amendments (suspensions, extensions,
repeals, lifts) against what they amend.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import pairwise

from dsl import ast
from dsl.check.declarations import DeclarationChecks
from dsl.check.names import RESTRICTIVE, iter_conditions
from dsl.rulebook import Interval, parse_date
from dsl.schema import UNIT_DIMENSIONS


class TimeChecks(DeclarationChecks):
    """Intervals, precedence, conflicts and amendments."""

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

    def cited_once(self, decl: ast.Rule | ast.Exception_ | ast.Conclusion, kind: str) -> None:
        """Its annotations, and exactly one citation (`per INSTRUMENT …`)."""
        self._annotations(decl, kind, decl.name.name)
        cites = self.check_citations(decl)
        self.required(decl, cites, "a citation (per INSTRUMENT …)", decl.name, decl.name.span)
        self.at_most_one(cites, "per")

    def check_rule(self, r: ast.Rule) -> None:
        self.cited_once(r, "rule")
        whens = ast.attrs_of(r, ast.When)
        thens = ast.attrs_of(r, ast.Then)
        self.required(r, whens, "a condition (when …)", r.name, r.name.span)
        self.required(r, thens, "an outcome (then …)", r.name, r.name.span)
        for attrs, what in ((whens, "when"), (thens, "then"),
                            (ast.attrs_of(r, ast.Explain), "explain"),
                            (ast.attrs_of(r, ast.ExplainZh), "explain zh"),
                            (ast.attrs_of(r, ast.TitleZh), "title zh")):
            self.at_most_one(attrs, what)
        for w in whens:
            self.condition(w.condition, context="rule")
        for e in ast.attrs_of(r, ast.Explain):
            self.explanation(e)
        for z in ast.attrs_of(r, ast.ExplainZh):
            self.explanation(z)
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

    def check_parameter(self, p: ast.Parameter) -> None:
        """A parameter has values of one dimension, all thresholds or all plain values, each
        citing the act that sets it (or the parameter its source), whose periods do not
        overlap."""
        self._annotations(p, "parameter", p.name.name)
        values = ast.attrs_of(p, ast.ParameterValue)
        self.required(p, values, "a value (at least 0.1 %, more than 50 %, …)", p.name,
                      p.name.span)
        dimensions = set()
        # a value cites the act that sets it, unless the parameter says where its values come
        # from (`source`) or that no act does (`unverified`: a working value of the rulebook's)
        sourced = bool(ast.attrs_of(p, ast.Source) or ast.attrs_of(p, ast.Unverified))
        if len({bool(v.op) for v in values}) > 1:
            self.error("E401", f"the values of parameter '{p.name.name}' mix thresholds (at "
                       "least, more than, …) and plain values", p.name.span,
                       "a threshold is for `reaches`, a plain value (45 days) for `within`")
        for v in values:
            if v.citation is not None:
                self.citation(v.citation)
            elif not sourced:
                self.error("E205", f"a value of parameter '{p.name.name}' needs the act that "
                           "sets it", v.span, "end the line with per INSTRUMENT [provision], "
                           "or give the parameter a `source` or an `unverified` reason")
            if v.unit is not None and v.unit not in UNIT_DIMENSIONS:
                continue  # the grammar allows the language's units only
            dimensions.add(UNIT_DIMENSIONS.get(v.unit) if v.unit else None)
            if v.unit == "%" and not Decimal(0) <= v.value <= Decimal(100):
                self.error("E403", f"{v.value} % is not a percentage between 0 and 100", v.span)
            if v.valid_from and v.valid_until and \
                    self.date(v.valid_until.date) < self.date(v.valid_from.date):  # type: ignore[operator]
                self.error("E302", f"this ends on {v.valid_until.date.text} before it starts "
                           f"on {v.valid_from.date.text}", v.valid_until.span)
        if len(dimensions) > 1:
            self.error("E402", f"the values of parameter '{p.name.name}' are not of one kind "
                       f"({', '.join(sorted(d or 'no unit' for d in dimensions))})", p.name.span)
        periods = self.rb.parameter_values(p.name.name) if values else []
        for (a, va, _), (b, vb, _) in pairwise(periods):
            if a.end is None or b.start is None or b.start <= a.end:
                self.error("E302", f"two values of parameter '{p.name.name}' apply on the same "
                           f"days (from {b.start or 'the beginning'})", vb.span,
                           "end the earlier value (until DATE) the day before the later starts",
                           related=((va.span, "the earlier value"),))

    def check_conclusion(self, c: ast.Conclusion) -> None:
        """A conclusion has a citation and one condition, and never rests on itself."""
        self.cited_once(c, "conclusion")
        whens = ast.attrs_of(c, ast.When)
        self.required(c, whens, "a condition (when …)", c.name, c.name.span)
        self.at_most_one(whens, "when")
        for w in whens:
            self.condition(w.condition, context="rule")
        path = self._rests_on_itself(c.name.name)
        if path:
            self.error("E208", f"conclusion '{c.name.name}' rests on itself "
                       f"({' → '.join(path)})", c.name.span)

    def _conclusion_refs(self, name: str) -> list[str]:
        decl = self.rb.conclusions.get(name)
        when = ast.first_attr(decl, ast.When) if decl is not None else None
        return [] if when is None else [n.name.name for n in iter_conditions(when.condition)
                                        if isinstance(n, ast.ConclusionRef)]

    def _rests_on_itself(self, start: str) -> list[str] | None:
        """The path by which a conclusion's condition comes back to it, if it does."""
        stack, seen = [(start, [start])], {start}
        while stack:
            name, path = stack.pop()
            for ref in self._conclusion_refs(name):
                if ref == start:
                    return [*path, start]
                if ref not in seen:
                    seen.add(ref)
                    stack.append((ref, [*path, ref]))
        return None

    def check_exception(self, e: ast.Exception_) -> None:
        self.cited_once(e, "exception")
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
        """Which items and destinations a rule can possibly apply to (None: any); worked out
        once per declaration (the conflict checks ask of each pair of rules)."""
        scopes: dict[int, tuple[frozenset[str] | None, frozenset[str] | None]] = \
            self.rb.derived.setdefault("check_scopes", {})
        if id(decl) not in scopes:
            when = ast.first_attr(decl, ast.When)
            scopes[id(decl)] = (None, None) if when is None else self._scope(when.condition)
        return scopes[id(decl)]

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
            named = [n for n in iter_conditions(when.condition)
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
        def sharing_items(first: str, second: str) -> list[tuple[str, str]]:
            """`pairs`, of rules whose item scopes share an item (found through an index of
            the items, not by trying every pair: 10,000 rules made 25 million pairs)."""
            by_item: dict[str, list[str]] = {}
            for n, o in outcomes.items():
                items = self.scope(self.rb.rules[n])[0] if o.kind == second else None
                for item in items or ():
                    by_item.setdefault(item, []).append(n)
            found = set()
            for a, o in outcomes.items():
                items = self.scope(self.rb.rules[a])[0] if o.kind == first else None
                for b in {b for item in items or () for b in by_item.get(item, ())}:
                    if a != b:
                        found.add((min(a, b, key=order.__getitem__),
                                   max(a, b, key=order.__getitem__)))
            return sorted(found, key=lambda x: (order[x[0]], order[x[1]]))

        for a_name, b_name in sharing_items("prohibited", "licence required"):
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
                backwards = iv.start is not None and iv.end is not None and iv.end < iv.start
                if am.action == "suspend":
                    # days that end before they start are E302 already, not also E303
                    if target_iv is not None and not backwards and not iv.overlaps(target_iv):
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
