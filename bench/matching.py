"""Party matching: throughput against lists of 1k, 10k and 100k names, and precision and recall
on the labelled name pairs (tests/data/name_pairs.csv) at the rulebook's threshold.

The lists are synthetic company names (a distinctive word, common trade words, a legal form;
a quarter also share a common stem) plus the rulebook's listed parties; the queries are
variants of listed names (case, legal form, typing errors) and unrelated names, half each.
Names per second is for `PartyMatcher.match` including normalisation; `candidates` is how
many spellings the blocking step leaves to score per query (the cost stays near-linear when
it stays small).
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

import dsl
from dsl import ast
from dsl.names import PartyMatcher, party_key
from kb.screen.quality import matching_quality, read_name_pairs, rulebook_matcher
from kb.store.schema import declaration_schema

STEMS = ("Apex", "Northgate", "Bluewater", "Meridian", "Keystone", "Silverline", "Orion",
         "Crescent", "Summit", "Harbor", "Pioneer", "Atlas", "Vertex", "Lumen", "Granite",
         "Falcon", "Cedar", "Aurora", "Beacon", "Cobalt", "Delta", "Ember", "Frontier", "Helix")
TRADES = ("Metals", "Materials", "Trading", "Electronics", "Semiconductors", "Alloys",
          "Industries", "Resources", "Aerospace", "Defense", "Systems", "Technologies",
          "Photonics", "Logistics", "Engineering", "Dynamics", "Robotics", "Labs")
FORMS = ("Inc.", "Corp.", "GmbH", "B.V.", "Ltd", "Co., Ltd.", "LLC", "S.A.", "K.K.", "AG")


SYLLABLES = ("ka", "lor", "ven", "tri", "mar", "so", "del", "qui", "ra", "nex", "bel", "to",
             "zan", "pe", "ul", "gor", "mi", "sta", "cor", "vo", "lin", "dra", "e", "fa",
             "hal", "ki", "ro", "sen", "ta", "wen")


def synthetic_names(n: int, seed: int = 11) -> list[str]:
    """Company names as lists have them: a distinctive word (three syllables, 27,000 of
    them), common trade words and a legal form; a quarter share a stem with another name."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        word = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
        stem = rng.choice(STEMS) + " " if rng.random() < 0.25 else ""
        out.append(f"{stem}{word} {rng.choice(TRADES)} {rng.choice(FORMS)}")
    return out


def _variant(rng: random.Random, name: str) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return name.upper()
    if kind == 1:
        return f"{name.rstrip('.')} {rng.choice(FORMS)}"
    i = rng.randrange(1, max(2, len(name) - 1))
    return name[:i] + name[i + 1:]


def throughput(size: int, queries: int, rulebook: dsl.CheckedRulebook) -> dict[str, Any]:
    rng = random.Random(size)
    listed = [(p, n) for p, n in rulebook_pairs(rulebook)]
    names = [(f"s{i}", n) for i, n in enumerate(synthetic_names(size - len(listed)))]
    t0 = time.perf_counter()
    matcher = PartyMatcher([*listed, *names])
    index_s = time.perf_counter() - t0
    pool = [*listed, *names[:2000]]
    asked: list[tuple[str | None, str]] = []
    for k in range(queries):
        if k % 2 == 0:
            party, name = rng.choice(pool)
            asked.append((party, _variant(rng, name)))
        else:
            asked.append((None, f"{rng.choice(STEMS)} Unrelated {rng.randint(1, 10**6)} "
                                "Holdings"))
    party_key.cache_clear()
    times, found, wrong = [], 0, 0
    for batch in range(3):
        t0 = time.perf_counter()
        results = [matcher.match(q, 90) for _, q in asked]
        times.append(time.perf_counter() - t0)
        party_key.cache_clear()
        if batch == 0:
            for (party, _), matches in zip(asked, results, strict=True):
                found += party is not None and any(m.party == party for m in matches)
                wrong += party is None and bool(matches)
    candidates = [len(matcher.candidates(party_key(q))) for _, q in asked[:500]]
    seconds = statistics.median(times)
    variants = sum(1 for p, _ in asked if p is not None)
    return {"list_size": size, "queries": queries, "index_s": index_s,
            "names_per_s": queries / seconds, "variant_recall": found / variants,
            "unrelated_matched": wrong,
            "candidates_mean": statistics.fmean(candidates),
            "candidates_max": max(candidates)}


def rulebook_pairs(rulebook: dsl.CheckedRulebook) -> list[tuple[str, str]]:
    return [(name, n) for name, p in rulebook.parties.items()
            for n in [p.title.value, *(x.value for a in ast.attrs_of(p, ast.Alias)
                                       for x in a.names)]]


def run(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), queries: int = 2_000) -> dict[str, Any]:
    result = dsl.load([Path("rulebooks")], declaration_schema())
    assert result.rulebook is not None
    rb = result.rulebook
    threshold = ast.first_attr(rb.lists["control-list"], ast.MatchThreshold)
    matcher, party_of = rulebook_matcher(rb)
    pairs = read_name_pairs(Path("tests/data/name_pairs.csv"))
    q = matching_quality(pairs, matcher, float(threshold.value) if threshold else 100.0,
                         party_of)
    runs = [throughput(n, queries, rb) for n in sizes]
    out: dict[str, Any] = {
        "pairs": q.pairs, "positives": q.positives, "precision": q.precision,
        "recall": q.recall, "threshold": float(threshold.value) if threshold else 100.0,
        "runs": runs}
    if len(runs) > 1:
        out["slowdown_largest_vs_smallest"] = runs[0]["names_per_s"] / runs[-1]["names_per_s"]
        out["size_ratio"] = runs[-1]["list_size"] / runs[0]["list_size"]
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"party matching: {r['pairs']} labelled pairs ({r['positives']} true variants), "
             f"threshold {r['threshold']:.0f}: precision {r['precision']:.3f}, "
             f"recall {r['recall']:.3f}"]
    for x in r["runs"]:
        lines.append(f"  list of {x['list_size']:>7,} names: {x['names_per_s']:8,.0f} names/s, "
                     f"{x['candidates_mean']:6.1f} candidates scored per name "
                     f"(max {x['candidates_max']}), variants found {x['variant_recall']:.3f}, "
                     f"unrelated names matched {x['unrelated_matched']}, index built in "
                     f"{x['index_s']:.2f} s")
    if "slowdown_largest_vs_smallest" in r:
        lines.append(f"  {r['size_ratio']:.0f}x the list: {r['slowdown_largest_vs_smallest']:.1f}x "
                     "slower per name")
    return "\n".join(lines)
