"""The static checks of what a rulebook declares: instruments and their provisions, items and
their control acts, groups and country groups, value ranges, lists and parties.
"""

from __future__ import annotations

from collections.abc import Mapping

from dsl import ast
from dsl.check.conditions import ConditionChecks
from dsl.names import is_web_url
from dsl.rulebook import Interval


class DeclarationChecks(ConditionChecks):
    """Instruments, items, groups, countries, value ranges, lists and parties."""

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
        for attr, what in ((ast.Number, "number"), (ast.Issuer, "issuer"), (ast.Url, "url")):
            self.at_most_one(ast.attrs_of(ins, attr), what)
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

    def belongs_to(self, decl: ast.Terms | ast.ValueRange) -> None:
        """`for GROUP, …` names items or groups."""
        for b in ast.attrs_of(decl, ast.BelongsTo):
            for ref in b.names:
                self.resolve(ref, "item or item group", self.rb.items, self.rb.groups)

    def check_value_range(self, vr: ast.ValueRange) -> None:
        self._annotations(vr, "value range", vr.name.name)
        self.check_citations(vr)
        self.belongs_to(vr)
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

    def check_fact(self, f: ast.Fact) -> None:
        """A declared fact has one type, a name and aliases that no column of the declarations
        (nor another fact) already has, and a choice's values are distinct."""
        self._annotations(f, "fact", f.name.name)
        types = ast.attrs_of(f, ast.FactType)
        self.required(f, types, "a type (type number in UNIT, percentage, country, text, "
                      "yes/no, date, or one of \"…\", \"…\")", f.name, f.name.span)
        self.at_most_one(types, "type")
        self.at_most_one(ast.attrs_of(f, ast.FactAlias), "alias")
        self.at_most_one(ast.attrs_of(f, ast.ReadFrom), "read from")
        self.at_most_one(ast.attrs_of(f, ast.Source), "source")
        own = self.base_schema.field(f.name.name)
        if own is not None:
            self.error("E201", f"'{f.name.name}' is already a column of every declaration "
                       f"({own.name}: {own.description})", f.name.span,
                       "give the fact a name of its own, or use the column")
        earlier = list(self.rb.facts)[:list(self.rb.facts).index(f.name.name)]
        taken = {a.name: n for n in earlier
                 for alias in ast.attrs_of(self.rb.facts[n], ast.FactAlias) for a in alias.names}
        taken |= {n: n for n in self.rb.facts if n != f.name.name}
        for alias in ast.attrs_of(f, ast.FactAlias):
            for a in alias.names:
                if self.base_schema.field(a.name) is not None:
                    self.error("E201", f"'{a.name}' is already a column of every declaration",
                               a.span, "choose another alias")
                elif a.name in taken:
                    self.error("E201", f"'{a.name}' already names fact '{taken[a.name]}'",
                               a.span, "choose another alias")
        for t in types:
            seen: set[str] = set()
            for c in t.choices:
                if c.value in seen:
                    self.error("E206", f"the choice \"{c.value}\" is given twice", c.span)
                if not c.value.strip():
                    self.error("E205", "a choice needs a value", c.span)
                seen.add(c.value)

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
        seen: dict[tuple[str, str], ast.Span] = {}
        for lst in ast.attrs_of(p, ast.Listing):
            if self.resolve(lst.list, "party list", self.rb.lists):
                self.measures_of(lst.measures or (), [lst.list.name])
            ins = self.citation(lst.citation)
            start = self.date(lst.valid_from.date)
            end = self.date(lst.valid_until.date) if lst.valid_until else None
            if start and end and end < start:
                self.error("E302", f"this listing ends on {end} before it starts on {start}",
                           lst.valid_until.span if lst.valid_until else lst.span)
            # one announcement lists a party on a list once: a second line is a slip (the
            # knowledge base keeps one entry per party, list and announcement)
            key = (lst.list.name, lst.citation.instrument.name)
            if key in seen:
                self.error("E201", f"'{p.name.name}' is listed on {key[0]} by {key[1]} twice",
                           lst.span, "keep one line; a change to the listing is an amendment "
                           "(suspend, lift or repeal listing of …)",
                           related=((seen[key], "first listed here"),))
            seen.setdefault(key, lst.span)
            in_force = self.instrument_start(lst.citation.instrument.name) if ins else None
            if start and in_force and start < in_force:
                self.error("E304", f"this listing applies from {start}, before "
                           f"{lst.citation.instrument.name}, which makes it, came into force on "
                           f"{in_force}", lst.valid_from.span)
        for o in ast.attrs_of(p, ast.OwnedBy):
            self.resolve(o.owner, "party", self.rb.parties)
            if o.owner.name == p.name.name:
                self.error("E208", f"'{p.name.name}' cannot own itself", o.owner.span)
            if o.share_pct is not None and not 0 <= o.share_pct <= 100:
                self.error("E403", f"an ownership share is 0–100 %, not {o.share_pct} %", o.span)
