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

The knowledge base builds its reach from this module; the reference interpreter follows the
same links one hop at a time on its own (`dsl.naive.Links`), so the differential tests and
tests/test_naive.py check these searches.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

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
        self.owners: dict[str, set[str]] = defaultdict(set)    # upwards
        self.children: dict[str, set[str]] = defaultdict(set)  # downwards
        self.node_groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._components: dict[frozenset[str], dict[str, str]] = {}
        self._near: dict[tuple[tuple[str, ...], frozenset[str], int],
                         dict[str, dict[str, Reach]]] = {}
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
                    self.children[parent].add(node)

    def node(self, name: str) -> str | None:
        key = party_key(name)
        if not key:
            return None
        key = self.same.get(key, key)
        self.label.setdefault(key, name)
        return key

    def neighbours(self, node: str, links: frozenset[str],
                   reverse: bool = False) -> Iterable[tuple[str, str]]:
        """Linked nodes; `reverse` follows directed links (owner) backwards."""
        for kind, value in self.node_groups.get(node, ()):
            if kind in links:
                for other in self.groups[(kind, value)]:
                    if other != node:
                        yield other, kind
        if "parent" in links:
            for other in sorted(self.parents.get(node, ())):
                yield other, "parent"
        elif "owner" in links:
            for other in sorted((self.children if reverse else self.owners).get(node, ())):
                yield other, "owner"

    def _bfs(self, start: str, links: frozenset[str], hops: int,
             reverse: bool = False) -> dict[str, tuple[int, str | None, str | None]]:
        """Breadth-first search: node → (depth, previous node, link kind)."""
        tree: dict[str, tuple[int, str | None, str | None]] = {start: (0, None, None)}
        frontier = [start]
        for depth in range(1, hops + 1):
            nxt = []
            for here in frontier:
                for other, kind in self.neighbours(here, links, reverse):
                    if other not in tree:
                        tree[other] = (depth, here, kind)
                        nxt.append(other)
            frontier = nxt
        return tree

    def _text(self, steps: list[tuple[str, str | None]]) -> str:
        """'A —address— B —parent— C' from (node, kind of the link to the next node)."""
        text = self.label[steps[0][0]]
        for (_, kind), (node, _) in pairwise(steps):
            text += f" —{kind}— {self.label[node]}"
        return text

    def component(self, node: str, links: frozenset[str]) -> str:
        """A name for the node's connected component under these links (direction ignored)."""
        if links not in self._components:
            root: dict[str, str] = {}

            def find(x: str) -> str:
                root.setdefault(x, x)
                while root[x] != x:
                    root[x] = root[root[x]]
                    x = root[x]
                return x

            def union(x: str, y: str) -> None:
                rx, ry = find(x), find(y)
                if rx != ry:
                    root[max(rx, ry)] = min(rx, ry)

            for (kind, _), members in self.groups.items():
                if kind in links:
                    for m in members[1:]:
                        union(members[0], m)
            if links & {"parent", "owner"}:
                for child, owners in self.owners.items():
                    for owner in owners:
                        union(child, owner)
            self._components[links] = {x: find(x) for x in list(root)}
        return self._components[links].get(node, "=" + node)  # "=": a node with no links

    def related(self, a: str, b: str, links: Iterable[str], hops: int) -> Reach | None:
        """The shortest path of at most `hops` links from a to b (searched from both ends, so a
        company with thousands of subsidiaries costs no more than its links)."""
        start, goal = self.node(a), self.node(b)
        if start is None or goal is None or start == goal:
            return None
        allowed = frozenset(links) or frozenset(LINKS)
        if self.component(start, allowed) != self.component(goal, allowed):
            return None
        Tree = dict[str, tuple[int, str | None, str | None]]
        ta: Tree = {start: (0, None, None)}
        tb: Tree = {goal: (0, None, None)}
        fa, fb = [start], [goal]
        da = db = 0
        while da + db < hops and fa and fb:
            forward = len(fa) <= len(fb)
            tree, frontier = (ta, fa) if forward else (tb, fb)
            depth = (da if forward else db) + 1
            nxt = []
            for here in frontier:
                for other, kind in self.neighbours(here, allowed, reverse=not forward):
                    if other not in tree:
                        tree[other] = (depth, here, kind)
                        nxt.append(other)
            if forward:
                fa, da = nxt, depth
            else:
                fb, db = nxt, depth
            meets = sorted((ta[n][0] + tb[n][0], n) for n in (set(nxt) & (
                tb.keys() if forward else ta.keys())))
            if meets:
                total, node = meets[0]
                steps = _from_root(ta, node)[:-1] + _towards_root(tb, node)
                return Reach(goal, total, self._text(steps))
        return None

    def reach_to(self, targets: Iterable[str], links: Iterable[str],
                 hops: int) -> dict[str, dict[str, Reach]]:
        """For each party within `hops` links of one of the `targets` (names): the targets it
        reaches, with the path from it. Searched from the targets, which are few."""
        allowed = frozenset(links) or frozenset(LINKS)
        key = (tuple(sorted(set(targets))), allowed, hops)
        if key in self._near:
            return self._near[key]
        out: dict[str, dict[str, Reach]] = defaultdict(dict)
        self._near[key] = out
        for name in key[0]:
            goal = self.node(name)
            if goal is None:
                continue
            tree = self._bfs(goal, allowed, hops, reverse=True)
            for node, (depth, _, _) in tree.items():
                if node != goal:
                    out[node][goal] = Reach(goal, depth, self._text(_towards_root(tree, node)))
        return out


def _from_root(tree: dict[str, tuple[int, str | None, str | None]],
               node: str) -> list[tuple[str, str | None]]:
    """(node, kind of the link to the next node) from the tree's root to `node`."""
    nodes = [n for n, _ in reversed(_towards_root(tree, node))]
    return [(n, tree[nodes[i + 1]][2] if i + 1 < len(nodes) else None)
            for i, n in enumerate(nodes)]


def _towards_root(tree: dict[str, tuple[int, str | None, str | None]],
                  node: str) -> list[tuple[str, str | None]]:
    """(node, kind of the link to the next node) from `node` back to the tree's root."""
    out: list[tuple[str, str | None]] = []
    here: str | None = node
    while here is not None:
        _, prev, kind = tree[here]
        out.append((here, kind))
        here = prev
    return out
