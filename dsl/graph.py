"""Links between parties, followed a bounded number of hops (`related to … within N hops`).

Parties are nodes by their normalised name (`dsl.names.party_key`); every spelling of a listed
party (its aliases) is the same node. Two parties are linked by:
- `address`: the same address, after case, punctuation and spacing are folded;
- `phone`: the same telephone number, digits only (at least 7 of them);
- `parent`: one owns the other (`parent` in parties.csv, `owned by` in a rulebook). An `owned
  by` with a share below 50 % is not a parent link: No. 61 of 2025 speaks of subsidiaries
  owned 50 % or more. A `parent` link goes both ways, so two subsidiaries of one parent are
  2 hops apart;
- `owner`: the same ownership followed upwards only, from a company to its owner (`A related
  to party listed on L via owner`: A is a majority-owned subsidiary of a listed party).
Address and phone links go both ways.

The knowledge base and the reference interpreter both build their reach from this module, so
their notion of "related" is the same by construction; what is tested is how each uses it.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dsl.names import party_key

LINKS = ("address", "owner", "parent", "phone")
MAJORITY = 50.0
_FOLD = re.compile(r"[^\w]+", re.UNICODE)


def via_key(links: Iterable[str]) -> str:
    """The canonical name of a set of link kinds, as stored in `party_reach.via`."""
    chosen = sorted(set(links)) or list(LINKS)
    return ",".join(chosen)


def address_key(text: str | None) -> str:
    return _FOLD.sub(" ", (text or "").casefold()).strip()


def phone_key(text: str | None) -> str:
    digits = "".join(c for c in (text or "") if c.isdigit())
    return digits if len(digits) >= 7 else ""


@dataclass(frozen=True, slots=True)
class PartyFacts:
    name: str
    address: str | None = None
    phone: str | None = None
    parent: str | None = None
    share_pct: float | None = None  # of the parent's ownership, when known


@dataclass(frozen=True, slots=True)
class Reach:
    target: str   # the node's key
    hops: int
    path: str     # "A —address— B —parent— C", in the parties' own spellings


class PartyGraph:
    def __init__(self, facts: Iterable[PartyFacts],
                 same: Mapping[str, str] | None = None) -> None:
        """`same`: spelling → canonical name (aliases of one listed party)."""
        self.same = {party_key(k): party_key(v) for k, v in (same or {}).items()}
        self.label: dict[str, str] = {}
        self.groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.parents: dict[str, set[str]] = defaultdict(set)  # both directions
        self.owners: dict[str, set[str]] = defaultdict(set)
        self.node_groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for f in facts:
            node = self.node(f.name)
            if node is None:
                continue
            for kind, value in (("address", address_key(f.address)),
                                ("phone", phone_key(f.phone))):
                if value and node not in self.groups[(kind, value)]:
                    self.groups[(kind, value)].append(node)
                    self.node_groups[node].append((kind, value))
            if f.parent and (f.share_pct is None or f.share_pct >= MAJORITY):
                parent = self.node(f.parent)
                if parent is not None and parent != node:
                    self.parents[node].add(parent)
                    self.parents[parent].add(node)
                    self.owners[node].add(parent)

    def node(self, name: str) -> str | None:
        key = party_key(name)
        if not key:
            return None
        key = self.same.get(key, key)
        self.label.setdefault(key, name)
        return key

    def neighbours(self, node: str, links: frozenset[str]) -> Iterable[tuple[str, str]]:
        for kind, value in self.node_groups.get(node, ()):
            if kind in links:
                for other in self.groups[(kind, value)]:
                    if other != node:
                        yield other, kind
        if "parent" in links:
            for other in sorted(self.parents.get(node, ())):
                yield other, "parent"
        elif "owner" in links:
            for other in sorted(self.owners.get(node, ())):
                yield other, "owner"

    def reach(self, name: str, links: Iterable[str], hops: int) -> dict[str, Reach]:
        """Every party within `hops` links of `name` (shortest path first found)."""
        start = self.node(name)
        if start is None:
            return {}
        allowed = frozenset(links) or frozenset(LINKS)
        seen = {start: (0, self.label[start])}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            depth, path = seen[here]
            if depth >= hops:
                continue
            for other, kind in self.neighbours(here, allowed):
                if other not in seen:
                    seen[other] = (depth + 1, f"{path} —{kind}— {self.label[other]}")
                    queue.append(other)
        return {k: Reach(k, d, p) for k, (d, p) in seen.items() if k != start}

    def related(self, a: str, b: str, links: Iterable[str], hops: int) -> Reach | None:
        target = self.node(b)
        return self.reach(a, links, hops).get(target) if target else None
