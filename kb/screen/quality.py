"""How well the indicators find the cases planted in the demo data (`truth.csv`).

Each indicator rule is scored against the planted kinds it is meant to find:
- **recall**: of those cases, the share with at least one declaration the rule flagged (a split
  shipment is found when one of its parts is flagged);
- **precision**: of the declarations the rule flagged, the share that belong to a planted case
  of the same family of smuggling (a transshipment flag on a declaration planted as another
  transshipment pattern points at a real case).
Targets (issue 6): recall ≥ 0.9, precision ≥ 0.8. Each figure comes with its 95 % Wilson
interval: with tens of cases per indicator, the interval says how far the figure can be trusted.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dsl.names import PartyMatcher
from dsl.rulebook import CheckedRulebook

FAMILIES: dict[str, frozenset[str]] = {
    "false declaration": frozenset({"relabelled_name", "relabelled_value"}),
    "concealment": frozenset({"split_minor", "split_bulk"}),
    "transshipment": frozenset({"transshipment", "surge", "new_consignee", "hub_routing",
                                "no_end_user"}),
    "collusion": frozenset({"related_parties", "listed_subsidiary", "listed_party",
                            "licence_borrowing", "new_exporter"}),
}
# indicator rule -> the planted kinds it must find
TARGETS: dict[str, frozenset[str]] = {
    "relabelled-mineral-name": frozenset({"relabelled_name"}),
    "relabelled-unit-value": frozenset({"relabelled_name", "relabelled_value"}),
    "split-consignments": frozenset({"split_minor"}),
    "split-bulk-consignments": frozenset({"split_bulk"}),
    "end-user-elsewhere": frozenset({"transshipment"}),
    "surge-on-route": frozenset({"surge"}),
    "new-consignee-volume": frozenset({"new_consignee"}),
    "hub-routing": frozenset({"hub_routing"}),
    "no-end-user": frozenset({"no_end_user"}),
    "exporter-consignee-linked": frozenset({"related_parties"}),
    "listed-party-affiliate": frozenset({"listed_subsidiary"}),
    "licence-borrowing": frozenset({"licence_borrowing"}),
    "new-exporter-volume": frozenset({"new_exporter"}),
    "control-list-consignee": frozenset({"listed_party"}),  # fuzzy party matching
}
RECALL_TARGET = 0.9
PRECISION_TARGET = 0.8


@dataclass(frozen=True)
class Quality:
    rule: str
    kinds: str
    cases: int
    found: int
    flagged: int
    correct: int
    # the flagged declarations by the planted kind each belongs to (`background`: none), most
    # first: which cases an indicator's precision is made of, and what it mistakes for them
    by_kind: tuple[tuple[str, int], ...] = ()

    @property
    def recall(self) -> float:
        return self.found / self.cases if self.cases else 0.0

    @property
    def precision(self) -> float:
        return self.correct / self.flagged if self.flagged else 0.0

    @property
    def recall_ci(self) -> tuple[float, float]:
        return wilson(self.found, self.cases)

    @property
    def precision_ci(self) -> tuple[float, float]:
        return wilson(self.correct, self.flagged)

    @property
    def met(self) -> bool:
        return self.recall >= RECALL_TARGET and self.precision >= PRECISION_TARGET


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); (0, 1) without trials."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    denominator = 1 + z * z / trials
    return (max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator))


def read_truth(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def family_of(kind: str) -> str | None:
    return next((name for name, kinds in FAMILIES.items() if kind in kinds), None)


def indicator_quality(findings: Iterable[tuple[str, str]],
                      truth: Iterable[Mapping[str, str]]) -> list[Quality]:
    """`findings`: (declaration id, rule) pairs; `truth`: rows of truth.csv."""
    flagged: dict[str, set[str]] = defaultdict(set)
    for declaration, rule in findings:
        if rule in TARGETS:
            flagged[rule].add(declaration)
    cases: dict[tuple[str, str], set[str]] = defaultdict(set)  # (kind, case) -> declarations
    families: dict[str, set[str | None]] = defaultdict(set)     # declaration -> families
    kind_of: dict[str, str] = {}                                 # declaration -> a kind
    for row in truth:
        cases[(row["kind"], row["case_id"])].add(row["declaration_id"])
        families[row["declaration_id"]].add(family_of(row["kind"]))
        kind_of[row["declaration_id"]] = min(row["kind"], kind_of.get(row["declaration_id"],
                                                                      row["kind"]))
    out = []
    for rule, kinds in TARGETS.items():
        wanted = [ids for (kind, _), ids in cases.items() if kind in kinds]
        own = {family_of(k) for k in kinds}
        hits = flagged.get(rule, set())
        by_kind: dict[str, int] = defaultdict(int)
        for d in hits:
            by_kind[kind_of.get(d, "background")] += 1
        out.append(Quality(
            rule, ", ".join(sorted(kinds)), len(wanted),
            sum(1 for ids in wanted if ids & hits), len(hits),
            sum(1 for d in hits if families.get(d, set()) & own),
            tuple(sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0])))))
    return out


@dataclass(frozen=True)
class MatchQuality:
    pairs: int
    positives: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.positives if self.positives else 0.0


def read_name_pairs(path: Path) -> list[dict[str, str]]:
    """Labelled pairs (name, listed legal name, match 1/0, kind of variant)."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def matching_quality(pairs: Iterable[Mapping[str, str]], matcher: PartyMatcher,
                     threshold: float, party_of: Mapping[str, str]) -> MatchQuality:
    """Score the matcher on labelled pairs: a pair is predicted a match when the listed party
    (`party_of` maps its legal name to its id) is among the name's matches."""
    rows = list(pairs)
    tp = fp = fn = 0
    for r in rows:
        hit = any(m.party == party_of[r["listed"]] for m in matcher.match(r["name"], threshold))
        truth = r["match"] == "1"
        tp += hit and truth
        fp += hit and not truth
        fn += truth and not hit
    return MatchQuality(len(rows), sum(r["match"] == "1" for r in rows), tp, fp, fn)


def rulebook_matcher(rb: CheckedRulebook) -> tuple[PartyMatcher, dict[str, str]]:
    """The matcher over every spelling of the rulebook's parties, and legal name → party."""
    from dsl.model import law

    parties = law(rb).parties
    spellings = [(name, n) for name, p in parties.items() for n in p.spellings]
    return PartyMatcher(spellings), {p.legal_name: name for name, p in parties.items()}
