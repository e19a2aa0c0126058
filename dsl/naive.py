"""The reference interpreter's own answers to three questions the compiler's helpers also
answer: what is in force on a day, which listed party a name matches, and which parties are
linked. They are derived here from the language's definitions, one day, one name and one
party at a time, without the interval arithmetic of `dsl.periods`, the blocking of
`dsl.names.PartyMatcher` or the searches of `dsl.graph`, so that the differential tests check
those helpers instead of sharing their mistakes.

What they do share is the definitions themselves, which are the language's and not an
algorithm: a party name's normalised key (`party_key`), the score of two keys (`similarity`),
and the folded forms of addresses and telephone numbers.

- **In force on a day.** A rule is in force on a day inside its validity unless an amendment
  stops it that day: a suspension from its start to its end (moved by a later `extend` of the
  same target), a repeal or a lift from its start on. An amendment reaches a rule through the
  rule, its instrument or the provision it cites; a listing through its announcement's
  listings, the entry itself or the instrument; an item's act through its instrument or
  provision. Of the acts that control an item on a day, the one that started last decides.
- **Listed names.** A name matches a listed party when one of the party's spellings scores at
  least the threshold against it; every spelling is scored.
- **Links.** Parties are linked by a shared address or telephone number, and by control: an
  owner's share, added up over what it holds directly and through companies it controls,
  meets the threshold (50 % or more unless the rule names a parameter; `parent` both ways,
  `owner` upwards only). Worked out here by recursion over the shares, where the knowledge
  base grows each owner's set of controlled companies; followed breadth first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dsl import ast
from dsl.graph import OWNERSHIP, PartyFacts, Threshold, address_key, owners_of, phone_key
from dsl.names import party_key, similarity
from dsl.rulebook import CheckedRulebook, Interval, parse_date


@dataclass(frozen=True)
class Act:
    """An act that controls an item, or the act that made a listing."""

    instrument: str
    provision: str | None


@dataclass(frozen=True)
class Listing:
    party: str
    list: str
    instrument: str
    provision: str | None
    measures: tuple[str, ...]
    start: dt.date | None
    end: dt.date | None
    keys: tuple[str, ...]


class Calendar:
    """What is in force on a day, asked one day at a time."""

    def __init__(self, rb: CheckedRulebook) -> None:
        self.rb = rb
        # target -> [action, start, end] in the order the amendments are written
        self.stops: dict[str, list[list[object]]] = defaultdict(list)
        for am in rb.amendments:
            start_attr = ast.first_attr(am, ast.ValidFrom)
            end_attr = ast.first_attr(am, ast.ValidUntil)
            start = parse_date(start_attr.date.text) if start_attr else None
            end = parse_date(end_attr.date.text) if end_attr else None
            for t in am.targets:
                key = self.target(t)
                if am.action == "extend":  # moves the end of the target's latest suspension
                    suspensions = [s for s in self.stops[key] if s[0] == "suspend"]
                    if suspensions and end is not None:
                        suspensions[-1][2] = end
                elif start is not None:
                    self.stops[key].append([am.action, start,
                                            end if am.action == "suspend" else None])
        self.listings: dict[str, list[Listing]] = defaultdict(list)
        for name, party in rb.parties.items():
            for lst in ast.attrs_of(party, ast.Listing):
                ins = lst.citation.instrument.name
                self.listings[name].append(Listing(
                    name, lst.list.name, ins,
                    str(lst.citation.provision) if lst.citation.provision else None,
                    rb.listing_measures(lst), parse_date(lst.valid_from.date.text),
                    parse_date(lst.valid_until.date.text) if lst.valid_until else None,
                    (f"listings:{ins}", f"listing:{name}:{lst.list.name}",
                     f"instrument:{ins}")))
        self._rules: dict[tuple[str, dt.date], bool] = {}
        self._controls: dict[tuple[str, dt.date], Act | None] = {}

    def target(self, t: ast.Target) -> str:
        if t.kind == "listings":
            return f"listings:{t.name.name}"
        if t.kind == "listing":
            return f"listing:{t.name.name}:{t.list.name if t.list else ''}"
        if t.name.name in self.rb.rules or t.name.name in self.rb.exceptions:
            return f"rule:{t.name.name}"
        if t.provision is not None:
            return f"instrument:{t.name.name}:{t.provision}"
        return f"instrument:{t.name.name}"

    def stopped(self, keys: Iterable[str], day: dt.date) -> bool:
        for key in keys:
            for action, start, end in self.stops.get(key, ()):
                assert isinstance(start, dt.date)
                if start <= day and (action != "suspend" or end is None or
                                     day <= end):  # type: ignore[operator]
                    return True
        return False

    @staticmethod
    def inside(start: dt.date | None, end: dt.date | None, day: dt.date) -> bool:
        return (start is None or start <= day) and (end is None or day <= end)

    def rule_in_force(self, name: str, day: dt.date) -> bool:
        if (name, day) not in self._rules:
            decl = self.rb.rules.get(name) or self.rb.exceptions[name]
            cite = ast.first_attr(decl, ast.Citation)
            keys = [f"rule:{name}"]
            if cite is not None:
                keys.append(f"instrument:{cite.instrument.name}")
                if cite.provision is not None:
                    keys.append(f"instrument:{cite.instrument.name}:{cite.provision}")
            validity = self.rb.validity.get(name, Interval(None, None))
            self._rules[(name, day)] = self.inside(validity.start, validity.end, day) and \
                not self.stopped(keys, day)
        return self._rules[(name, day)]

    def control(self, item: str, day: dt.date) -> Act | None:
        """The act that controls the item on the day: of those in force, the one that started
        last (the later written when two start the same day)."""
        if (item, day) not in self._controls:
            best: tuple[tuple[dt.date, int], Act] | None = None
            for order, act in enumerate(self.rb.control_acts(item)):
                ins = act.citation.instrument.name
                prov = self.rb.act_provision(item, act)
                start = parse_date(act.valid_from.date.text) if act.valid_from else \
                    self.rb.in_force_date(ins)
                end = parse_date(act.valid_until.date.text) if act.valid_until else None
                keys = [f"instrument:{ins}"] + ([f"instrument:{ins}:{prov}"] if prov else [])
                if self.inside(start, end, day) and not self.stopped(keys, day):
                    rank = (start or dt.date.min, order)
                    if best is None or rank > best[0]:
                        best = (rank, Act(ins, prov))
            self._controls[(item, day)] = best[1] if best else None
        return self._controls[(item, day)]

    def listing_in_force(self, listing: Listing, day: dt.date) -> bool:
        return self.inside(listing.start, listing.end, day) and \
            not self.stopped(listing.keys, day)


@dataclass(frozen=True)
class Hit:
    party: str
    score: float


class Names:
    """Declared names scored against every spelling of every listed party."""

    def __init__(self, spellings: Iterable[tuple[str, str]]) -> None:
        self.spellings = sorted({(party, party_key(alias)) for party, alias in spellings
                                 if party_key(alias)})
        self._hits: dict[str, list[Hit]] = {}

    def hits(self, name: str, threshold: float) -> list[Hit]:
        """Each party's best score, where it reaches `threshold` (rounded to one decimal, as
        findings show it)."""
        if name not in self._hits:
            key = party_key(name)
            best: dict[str, float] = {}
            for party, spelling in self.spellings if key else ():
                best[party] = max(best.get(party, 0.0), similarity(key, spelling))
            self._hits[name] = [Hit(p, s) for p, s in best.items()]
        return [Hit(h.party, round(h.score, 1)) for h in self._hits[name]
                if h.score >= threshold]


class Links:
    """Parties and what links them, followed one hop at a time."""

    def __init__(self, facts: Iterable[PartyFacts], same: Mapping[str, str]) -> None:
        self.same = {party_key(k): party_key(v) for k, v in same.items()}
        self.shared: dict[str, set[tuple[str, str]]] = defaultdict(set)  # node -> facts
        self.holders: dict[tuple[str, str], set[str]] = defaultdict(set)  # fact -> nodes
        self.held: dict[str, dict[str, float]] = defaultdict(dict)  # company -> owner -> %
        for f in facts:
            node = self.node(f.name)
            if node is None:
                continue
            for fact in (("address", address_key(f.address)), ("phone", phone_key(f.phone))):
                if fact[1]:
                    self.shared[node].add(fact)
                    self.holders[fact].add(node)
            stated = owners_of(f.parent)
            for name, share in stated:
                owner = self.node(name)
                if share is None and len(stated) == 1:
                    share = f.share_pct
                if owner is not None and owner != node:
                    self.held[node][owner] = min(100.0, self.held[node].get(owner, 0.0) + (
                        100.0 if share is None else share))
        self._reach: dict[tuple[str, frozenset[str], int, Threshold], set[str]] = {}
        self._up: dict[Threshold, dict[str, set[str]]] = {}

    def node(self, name: str) -> str | None:
        key = party_key(name)
        return self.same.get(key, key) if key else None

    def controls(self, owner: str, company: str, t: Threshold,
                 seen: frozenset[str] = frozenset()) -> bool:
        """`owner` holds a share of `company` that meets t, counting what it holds directly
        and what the companies it controls hold."""
        total = sum(share for holder, share in self.held.get(company, {}).items()
                    if holder == owner or (holder not in seen and self.controls(
                        owner, holder, t, seen | {company})))
        return total >= t[1] if t[0] == ">=" else total > t[1]

    def ancestors(self, company: str) -> set[str]:
        out: set[str] = set()
        todo = [company]
        while todo:
            for holder in self.held.get(todo.pop(), {}):
                if holder not in out:
                    out.add(holder)
                    todo.append(holder)
        return out - {company}

    def up(self, t: Threshold) -> dict[str, set[str]]:
        """Company → the owners it is linked to under t: each that controls it, unless it does
        through a company that controls it on its own (that company is the next hop)."""
        if t not in self._up:
            links: dict[str, set[str]] = defaultdict(set)
            for c in list(self.held):
                for o in self.ancestors(c):
                    if self.controls(o, c, t) and not any(
                            x != o and self.controls(x, c, t) and self.controls(o, x, t)
                            for x in self.held[c]):
                        links[c].add(o)
            self._up[t] = links
        return self._up[t]

    def next_to(self, node: str, links: frozenset[str], t: Threshold) -> set[str]:
        out = {other for fact in self.shared.get(node, ()) if fact[0] in links
               for other in self.holders[fact]}
        if links & {"parent", "owner"}:
            up = self.up(t)
            out |= up.get(node, set())
            if "parent" in links:
                out |= {c for c, owners in up.items() if node in owners}
        return out - {node}

    def reach(self, name: str, links: Iterable[str], hops: int,
              threshold: Threshold = OWNERSHIP) -> set[str]:
        """The nodes within `hops` links of the party (itself excluded)."""
        start = self.node(name)
        if start is None:
            return set()
        allowed = frozenset(links) or frozenset(("address", "owner", "parent", "phone"))
        key = (start, allowed, hops, threshold)
        if key not in self._reach:
            seen, frontier = {start}, {start}
            for _ in range(hops):
                frontier = {n for here in frontier
                            for n in self.next_to(here, allowed, threshold)} - seen
                seen |= frontier
            self._reach[key] = seen - {start}
        return self._reach[key]
