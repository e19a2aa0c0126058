"""Links between parties, followed a bounded number of hops (`related to … within N hops`).

Parties are nodes by their normalised name (`dsl.names.party_key`); every spelling of a listed
party (its aliases) is the same node. Two parties are linked by:
- `address`: the same address, after case, punctuation and spacing are folded;
- `phone`: the same telephone number, digits only (at least 7 of them);
- `parent`: one controls the other (`parent` in parties.csv, `owned by` in a rulebook). A
  company's owners hold shares of it (`Alpha Ltd 30 %; Beta AG 25 %`; an owner without a share
  is a controlling one). An owner controls a company when its share, added up over what it
  holds directly and through the companies it controls, meets the ownership threshold: "50 %
  or more" unless a rule names a parameter (`via owner reaching NAME`) with another one, such
  as "more than 50 %". A company controlled through a company its owner controls is one hop
  further up (C —owner— S —owner— O), as before; when the owner's share only meets the
  threshold added up over several of them (30 % directly and 30 % through S, which holds too
  little to control C on its own), the link goes from C to the owner directly and its label
  says how the share is made up. A `parent` link goes both ways, so two subsidiaries of one
  parent are 2 hops apart;
- `owner`: the same control followed upwards only, from a company to its owner (`A related
  to party listed on L via owner`: A is a subsidiary of a listed party).
Address and phone links go both ways. Shares held by different owners are not added together
(docs/language.md, "Known limits").

The knowledge base builds its reach from this module; the reference interpreter follows the
same links one hop at a time on its own (`dsl.naive.Links`), so the differential tests and
tests/test_naive.py check these searches.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise

from dsl.names import party_key

LINKS = ("address", "owner", "parent", "phone")
Threshold = tuple[str, float]  # an ownership threshold: (">=" or ">", percent)
OWNERSHIP: Threshold = (">=", 50.0)  # "50 % or more", unless a rule names a parameter
RING_ENTRIES = 2_000_000  # the neighbours a graph keeps for its searches (`PartyGraph.ring`)
_FOLD = re.compile(r"[^\w]+", re.UNICODE)
_OWNER = re.compile(r"^(?P<name>.*?\S)\s*(?P<share>\d+(?:\.\d+)?)\s*%$")


def via_key(links: Iterable[str], threshold: Threshold = OWNERSHIP) -> str:
    """The canonical name of a set of link kinds, as stored in `party_reach.via`: 'owner' or,
    under another ownership threshold than 50 % or more, 'owner;>50'."""
    chosen = sorted(set(links)) or list(LINKS)
    key = ",".join(chosen)
    return key if threshold == OWNERSHIP else f"{key};{threshold[0]}{threshold[1]:g}"


def parse_via(key: str) -> tuple[list[str], Threshold]:
    """`via_key`'s links and threshold back."""
    links, _, t = key.partition(";")
    if not t:
        return links.split(","), OWNERSHIP
    op = ">=" if t.startswith(">=") else ">"
    return links.split(","), (op, float(t[len(op):]))


def owners_of(text: str | None) -> list[tuple[str, float | None]]:
    """A company's owners as parties.csv's `parent` states them: `Alpha Ltd 30 %; Beta AG`
    gives [("Alpha Ltd", 30.0), ("Beta AG", None)] (no share: a controlling owner)."""
    out: list[tuple[str, float | None]] = []
    for part in (text or "").split(";"):
        part = part.strip()
        if part:
            m = _OWNER.match(part)
            out.append((m["name"], float(m["share"])) if m else (part, None))
    return out


def meets(share: float, threshold: Threshold) -> bool:
    return share >= threshold[1] if threshold[0] == ">=" else share > threshold[1]


def held_share(share: float | None) -> float:
    """An owner's share in percent; a controlling owner with no share stated holds it all."""
    return 100.0 if share is None else share


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
    parent: str | None = None     # one owner, or several: `Alpha Ltd 30 %; Beta AG`
    share_pct: float | None = None  # the owner's share, when `parent` names one without it


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
        self.held: dict[str, dict[str, float]] = defaultdict(dict)  # company -> owner -> %
        self.holds: dict[str, set[str]] = defaultdict(set)  # owner -> companies
        self.node_groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._control: dict[Threshold, Control] = {}
        self._components: dict[tuple[frozenset[str], Threshold], dict[str, str]] = {}
        self._near: dict[tuple[tuple[str, ...], frozenset[str], int, Threshold],
                         dict[str, dict[str, Reach]]] = {}
        self._rings: dict[tuple[str, frozenset[str], bool, Threshold], dict[str, str]] = {}
        self._ring_entries = 0
        for f in facts:
            node = self.node(f.name)
            if node is None:
                continue
            for kind, value in (("address", address_key(f.address)),
                                ("phone", phone_key(f.phone))):
                if value and node not in self.groups[(kind, value)]:
                    self.groups[(kind, value)].append(node)
                    self.node_groups[node].append((kind, value))
            stated = owners_of(f.parent)
            if len(stated) == 1 and stated[0][1] is None and f.share_pct is not None:
                stated = [(stated[0][0], f.share_pct)]
            for name, share in stated:
                owner = self.node(name)
                if owner is not None and owner != node:
                    held = self.held[node]
                    held[owner] = min(100.0, held.get(owner, 0.0) + held_share(share))
                    self.holds[owner].add(node)

    def node(self, name: str) -> str | None:
        key = party_key(name)
        if not key:
            return None
        key = self.same.get(key, key)
        self.label.setdefault(key, name)
        return key

    def control(self, threshold: Threshold) -> Control:
        """The ownership links under a threshold (computed once for each)."""
        if threshold not in self._control:
            self._control[threshold] = Control(self.held, self.holds, threshold, self.label)
        return self._control[threshold]

    def neighbours(self, node: str, links: frozenset[str], reverse: bool = False,
                   threshold: Threshold = OWNERSHIP) -> Iterable[tuple[str, str]]:
        """Linked nodes; `reverse` follows directed links (owner) backwards."""
        for kind, value in self.node_groups.get(node, ()):
            if kind in links:
                for other in self.groups[(kind, value)]:
                    if other != node:
                        yield other, kind
        if links & {"parent", "owner"}:
            ctl = self.control(threshold)
            up = sorted(ctl.owners.get(node, ()))
            down = sorted(ctl.children.get(node, ()))
            if "parent" in links:
                for other in sorted({*up, *down}):
                    yield other, "parent"
            else:
                for other in down if reverse else up:
                    yield other, "owner"

    def ring(self, node: str, links: frozenset[str], reverse: bool = False,
             threshold: Threshold = OWNERSHIP) -> dict[str, str]:
        """The node's neighbours under these links, each with the kind of its first link
        (`neighbours`' order), kept: a search expands the same parties again and again (at
        1,000,000 declarations, 11,000 pairs of parties of which many name one parent of 2,500
        companies). At most RING_ENTRIES neighbours are kept in all."""
        key = (node, links, reverse, threshold)
        found = self._rings.get(key)
        if found is None:
            found = {}
            for other, kind in self.neighbours(node, links, reverse, threshold):
                found.setdefault(other, kind)
            if self._ring_entries + len(found) > RING_ENTRIES:
                self._rings.clear()
                self._ring_entries = 0
            self._rings[key] = found
            self._ring_entries += len(found)
        return found

    def _bfs(self, start: str, links: frozenset[str], hops: int, reverse: bool = False,
             threshold: Threshold = OWNERSHIP
             ) -> dict[str, tuple[int, str | None, str | None]]:
        """Breadth-first search: node → (depth, previous node, link kind)."""
        tree: dict[str, tuple[int, str | None, str | None]] = {start: (0, None, None)}
        frontier = [start]
        for depth in range(1, hops + 1):
            nxt = []
            for here in frontier:
                for other, kind in self.ring(here, links, reverse, threshold).items():
                    if other not in tree:
                        tree[other] = (depth, here, kind)
                        nxt.append(other)
            frontier = nxt
        return tree

    def _text(self, steps: list[tuple[str, str | None]], threshold: Threshold) -> str:
        """'A —address— B —owner 60 %— C' from (node, kind of the link to the next node)."""
        text = self.label[steps[0][0]]
        for (here, kind), (node, _) in pairwise(steps):
            if kind in ("owner", "parent"):
                ctl = self.control(threshold)
                kind = f"{kind}{ctl.share_text(here, node) or ctl.share_text(node, here)}"
            text += f" —{kind}— {self.label[node]}"
        return text

    def component(self, node: str, links: frozenset[str],
                  threshold: Threshold = OWNERSHIP) -> str:
        """A name for the node's connected component under these links (direction ignored)."""
        if (links, threshold) not in self._components:
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
                for child, owners in self.control(threshold).owners.items():
                    for owner in owners:
                        union(child, owner)
            self._components[(links, threshold)] = {x: find(x) for x in list(root)}
        return self._components[(links, threshold)].get(node, "=" + node)  # "=": no links

    def related(self, a: str, b: str, links: Iterable[str], hops: int,
                threshold: Threshold = OWNERSHIP) -> Reach | None:
        """The shortest path of at most `hops` links from a to b (searched from both ends, so a
        company with thousands of subsidiaries costs no more than its links)."""
        start, goal = self.node(a), self.node(b)
        if start is None or goal is None or start == goal:
            return None
        allowed = frozenset(links) or frozenset(LINKS)
        if self.component(start, allowed, threshold) != self.component(goal, allowed,
                                                                          threshold):
            return None
        ta, tb = _Tree(start), _Tree(goal)
        fa: Collection[str] = [start]
        fb: Collection[str] = [goal]
        da = db = 0
        while da + db < hops and fa and fb:
            forward = len(fa) <= len(fb)
            tree, frontier = (ta, fa) if forward else (tb, fb)
            depth = (da if forward else db) + 1
            nxt: Collection[str]
            if depth == 1 and tree.root not in (
                    ring := self.ring(tree.root, allowed, not forward, threshold)):
                tree.first = nxt = ring  # the root's neighbours, not copied
            else:
                nxt = []
                for here in frontier:
                    for other, kind in self.ring(here, allowed, not forward, threshold).items():
                        if other not in tree:
                            tree.deeper[other] = (depth, here, kind)
                            nxt.append(other)
            if forward:
                fa, da = nxt, depth
            else:
                fb, db = nxt, depth
            # where the two searches meet, looked up from the smaller side
            there = tb if forward else ta
            if len(nxt) <= len(there):
                met = [n for n in nxt if n in there]
            else:
                found = nxt if isinstance(nxt, dict) else set(nxt)
                met = [n for n in there if n in found]
            meets = sorted((ta[n][0] + tb[n][0], n) for n in met)
            if meets:
                total, node = meets[0]
                steps = _from_root(ta, node)[:-1] + _towards_root(tb, node)
                return Reach(goal, total, self._text(steps, threshold))
        return None

    def reach_to(self, targets: Iterable[str], links: Iterable[str], hops: int,
                 threshold: Threshold = OWNERSHIP) -> dict[str, dict[str, Reach]]:
        """For each party within `hops` links of one of the `targets` (names): the targets it
        reaches, with the path from it. Searched from the targets, which are few."""
        allowed = frozenset(links) or frozenset(LINKS)
        key = (tuple(sorted(set(targets))), allowed, hops, threshold)
        if key in self._near:
            return self._near[key]
        out: dict[str, dict[str, Reach]] = defaultdict(dict)
        self._near[key] = out
        for name in key[0]:
            goal = self.node(name)
            if goal is None:
                continue
            tree = self._bfs(goal, allowed, hops, True, threshold)
            for node, (depth, _, _) in tree.items():
                if node != goal:
                    out[node][goal] = Reach(goal, depth, self._text(_towards_root(tree, node),
                                                                    threshold))
        return out


class Control:
    """Who controls whom under one ownership threshold: `owners` (company → the owners linked
    to it) and `children` (the other way), with how each link's share is made up."""

    def __init__(self, held: Mapping[str, Mapping[str, float]],
                 holds: Mapping[str, set[str]], threshold: Threshold,
                 label: Mapping[str, str]) -> None:
        self.label = label
        # controlled[o]: the companies o controls, directly or through companies it controls
        # (grown until nothing more is added: a company can become controlled once another
        # one holding part of it is)
        controlled: dict[str, set[str]] = {}
        for o in sorted(holds):
            ctl: set[str] = set()
            grown = True
            while grown:
                grown = False
                for c in sorted({c for x in ({o} | ctl) for c in holds.get(x, ())} - ctl - {o}):
                    if meets(sum(s for x, s in held[c].items() if x == o or x in ctl),
                             threshold):
                        ctl.add(c)
                        grown = True
            controlled[o] = ctl
        self.owners: dict[str, set[str]] = defaultdict(set)
        self.children: dict[str, set[str]] = defaultdict(set)
        self.parts: dict[tuple[str, str], list[tuple[str, float]]] = {}
        for o, ctl in controlled.items():
            for c in ctl:
                # a link to an owner that controls c through a company that controls c on its
                # own is that company's (c —owner— s —owner— o, one hop more)
                if any(x != o and c in controlled.get(x, ()) and x in ctl for x in held[c]):
                    continue
                self.owners[c].add(o)
                self.children[o].add(c)
                parts = sorted((x, s) for x, s in held[c].items() if x in ctl)
                self.parts[(c, o)] = ([(o, held[c][o])] if o in held[c] else []) + parts

    def share_text(self, company: str, owner: str) -> str:
        """' 60 % (30 % directly, 30 % through S Ltd)', ' 30 %' or '' (a controlling owner with
        no share stated)."""
        parts = self.parts.get((company, owner))
        if not parts:
            return ""
        total = min(100.0, sum(s for _, s in parts))
        if len(parts) == 1 and parts[0][0] == owner:
            return "" if total == 100.0 else f" {total:g} %"
        words = ", ".join(f"{s:g} % " + ("directly" if x == owner else
                                          f"through {self.label.get(x, x)}")
                          for x, s in parts)
        return f" {total:g} % ({words})"


Step = tuple[int, str | None, str | None]  # a search tree's node: depth, previous node, link


class _Tree(Mapping[str, Step]):
    """A search tree from `root`: node → (depth, previous node, kind of link). Its first
    layer is the root's ring itself (`PartyGraph.ring`, kept), not a copy of it: a search
    between a parent of 2,500 companies and one of them copied 2,500 entries for each pair."""

    __slots__ = ("deeper", "first", "root")

    def __init__(self, root: str) -> None:
        self.root = root
        self.first: dict[str, str] = {}
        self.deeper: dict[str, Step] = {}

    def __contains__(self, node: object) -> bool:
        return node == self.root or node in self.first or node in self.deeper

    def __getitem__(self, node: str) -> Step:
        if node == self.root:
            return (0, None, None)
        kind = self.first.get(node)
        return (1, self.root, kind) if kind is not None else self.deeper[node]

    def __len__(self) -> int:
        return 1 + len(self.first) + len(self.deeper)

    def __iter__(self) -> Iterator[str]:
        yield self.root
        yield from self.first
        yield from self.deeper


def _from_root(tree: Mapping[str, Step],
               node: str) -> list[tuple[str, str | None]]:
    """(node, kind of the link to the next node) from the tree's root to `node`."""
    nodes = [n for n, _ in reversed(_towards_root(tree, node))]
    return [(n, tree[nodes[i + 1]][2] if i + 1 < len(nodes) else None)
            for i, n in enumerate(nodes)]


def _towards_root(tree: Mapping[str, Step],
                  node: str) -> list[tuple[str, str | None]]:
    """(node, kind of the link to the next node) from `node` back to the tree's root."""
    out: list[tuple[str, str | None]] = []
    here: str | None = node
    while here is not None:
        _, prev, kind = tree[here]
        out.append((here, kind))
        here = prev
    return out
