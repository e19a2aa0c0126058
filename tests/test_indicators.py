"""Anti-smuggling indicators and party matching: the labelled name pairs, the normalisation,
the blocking, the links between parties, and the indicators' precision and recall on the
demo data's planted cases."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import dsl
from dsl import ast
from dsl.graph import PartyFacts, PartyGraph
from dsl.names import PartyMatcher, party_key
from kb.inputs import demo
from kb.screen import Screener
from kb.screen.quality import (
    PRECISION_TARGET,
    RECALL_TARGET,
    TARGETS,
    indicator_quality,
    matching_quality,
    read_name_pairs,
    read_truth,
    rulebook_matcher,
    wilson,
)
from kb.store.schema import declaration_schema
from tests.conftest import DATA, RULEBOOKS

CN = RULEBOOKS / "cn-strategic-minerals"


@pytest.fixture(scope="module")
def rulebook() -> dsl.CheckedRulebook:
    result = dsl.load([CN], declaration_schema())
    assert result.rulebook is not None and result.ok
    return result.rulebook


def test_labelled_name_pairs_meet_precision_and_recall_at_the_rulebook_threshold(
        rulebook: dsl.CheckedRulebook) -> None:
    pairs = read_name_pairs(DATA / "name_pairs.csv")
    assert len(pairs) >= 200
    assert sum(p["match"] == "0" for p in pairs) >= 80  # hard negatives, not only variants
    threshold = ast.first_attr(rulebook.lists["control-list"], ast.MatchThreshold)
    assert threshold is not None
    matcher, party_of = rulebook_matcher(rulebook)
    q = matching_quality(pairs, matcher, float(threshold.value), party_of)
    assert q.precision >= 0.95, q
    assert q.recall >= 0.9, q


@pytest.mark.parametrize(("a", "b"), [
    ("LOCKHEED MARTIN CORP.", "Lockheed Martin Corporation"),
    ("Ｌｏｃｋｈｅｅｄ　Ｍａｒｔｉｎ", "lockheed martin"),
    ("Société Générale S.A.", "societe generale"),
    ("Boeing Defense, Space & Security", "boeing defense space and security"),
    ("洛克希德·马丁公司", "Luokexide Mading"),
    ("Grupo México S.A. de C.V.", "grupo mexico"),
    ("Apex Intl Mfg Co., Ltd.", "Apex International Manufacturing"),
])
def test_spellings_of_one_company_share_a_key(a: str, b: str) -> None:
    assert party_key(a) == party_key(b)


def test_different_companies_keep_different_keys() -> None:
    assert party_key("General Dynamics") != party_key("General Dynamics Land Systems")
    assert party_key("Group W") != party_key("W")


def test_a_match_names_the_alias_and_the_score() -> None:
    matcher = PartyMatcher([("lm", "Lockheed Martin Corp."), ("lm", "洛克希德·马丁公司"),
                            ("gd", "General Dynamics")])
    [m] = matcher.match("洛克希德马丁", 90)
    assert (m.party, m.alias, m.score) == ("lm", "洛克希德·马丁公司", 100.0)
    [typo] = matcher.match("Lockhead Martin", 90)
    assert typo.party == "lm" and 90 <= typo.score < 100
    assert matcher.match("General Motors", 90) == []


def test_blocking_scores_only_names_that_share_a_block() -> None:
    rng = random.Random(3)
    words = [f"{a}{b}" for a in ("al", "be", "co", "de", "ex", "fo", "gu", "hy", "io", "ju")
             for b in ("ran", "tor", "vex", "lum", "dyn", "gal", "pho", "syn", "tek", "mar")]
    names = [(f"p{i}", f"{rng.choice(words)} {rng.choice(words)} {rng.choice(words)} {i}")
             for i in range(20_000)]
    matcher = PartyMatcher([*names, ("lm", "Lockheed Martin Corp.")])
    assert len(matcher.candidates(party_key("Lockheed Martin Corporation"))) < 50
    scored = [len(matcher.candidates(party_key(n))) for _, n in names[:200]]
    assert sum(scored) / len(scored) < 0.05 * len(names)
    assert matcher.match("LOCKHEED MARTIN", 90)[0].party == "lm"


def test_links_follow_addresses_phones_and_owners_within_the_hops() -> None:
    graph = PartyGraph([
        PartyFacts("Exporter Co.", address="No. 8 Jiefang Road, Ganzhou",
                   phone="+86 797 1234 5678"),
        PartyFacts("Front Ltd", address="NO. 8 JIEFANG ROAD GANZHOU"),
        PartyFacts("Sister Ltd", parent="Front Limited"),
        PartyFacts("Caller Inc", phone="86-797-12345678"),
        PartyFacts("Minority KK", parent="Exporter Co.", share_pct=20),
    ])
    assert graph.related("Front Ltd", "Exporter Co", ["address"], 1) is not None
    assert graph.related("Caller Inc", "Exporter Co.", ["phone"], 1) is not None
    assert graph.related("Caller Inc", "Exporter Co.", ["address"], 1) is None
    far = graph.related("Sister Ltd", "Exporter Co.", ["address", "parent"], 2)
    assert far is not None and far.hops == 2 and "—parent—" in far.path
    assert graph.related("Sister Ltd", "Exporter Co.", ["address", "parent"], 1) is None
    # ownership upwards only, and a 20 % share is not a parent
    assert graph.related("Sister Ltd", "Front Ltd", ["owner"], 1) is not None
    assert graph.related("Front Ltd", "Sister Ltd", ["owner"], 1) is None
    assert graph.related("Minority KK", "Exporter Co.", ["parent"], 3) is None


def test_searches_through_a_parent_of_many_companies_find_the_shortest_paths(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent of many companies (the demo's 1M declarations have one of 2,500): each
    search reuses the neighbours the graph keeps (`PartyGraph.ring`), and finds what the
    reference interpreter's walk, one hop at a time, finds, in every direction and under
    every kind of link; a graph that keeps almost nothing gives the same paths."""
    from dsl.naive import Links

    facts = [PartyFacts("Hub Holdings Ltd"), PartyFacts("Lone Trader"),
             PartyFacts("Second Parent AG", address="1 Harbour Road")]
    for i in range(30):
        owners = "Hub Holdings Ltd 50 %; Second Parent AG 50 %" if i % 4 == 0 \
            else "Hub Holdings Ltd"
        facts.append(PartyFacts(f"Daughter {i} GmbH", parent=owners,
                                address=f"{i % 7} Harbour Road",
                                phone=f"+49 30 5555 {i % 5:04d}"))
        facts.append(PartyFacts(f"Grandchild {i} SARL", parent=f"Daughter {i} GmbH"))
    names = [f.name for f in facts]
    asked = [(a, b, links, hops) for a in names for b in names if a != b
             for links in (("parent",), ("owner",), ("address", "parent", "phone"))
             for hops in (1, 2, 3)]

    def answers(graph: PartyGraph) -> list[tuple[int, str] | None]:
        return [(r.hops, r.path) if (r := graph.related(*q)) else None for q in asked]

    kept = answers(PartyGraph(facts))
    walk = Links(facts, {})
    for (a, b, links, hops), found in zip(asked, kept, strict=True):
        near = [h for h in range(1, hops + 1) if walk.node(b) in walk.reach(a, links, h)]
        assert (found[0] if found else None) == (near[0] if near else None), (a, b, links)
    import dsl.graph
    monkeypatch.setattr(dsl.graph, "RING_ENTRIES", 1)  # nothing kept past one party
    assert answers(PartyGraph(facts)) == kept
    found = dict(zip(asked, kept, strict=True))
    assert found["Grandchild 3 SARL", "Hub Holdings Ltd", ("owner",), 2] == (
        2, "Grandchild 3 SARL —owner— Daughter 3 GmbH —owner— Hub Holdings Ltd")
    assert found["Hub Holdings Ltd", "Grandchild 3 SARL", ("owner",), 3] is None
    assert found["Daughter 0 GmbH", "Daughter 21 GmbH", ("address", "parent", "phone"),
                 1] == (1, "Daughter 0 GmbH —address— Daughter 21 GmbH")
    assert all(r is None for q, r in found.items() if "Lone Trader" in q[:2])


def test_a_listed_name_misspelt_is_prohibited_with_the_alias_and_score_shown() -> None:
    screener = Screener([CN])
    findings = screener.screen([{
        "id": "d1", "declared_on": "2025-03-01", "exporter": "Hunan Metals Co.",
        "consignee": "LOCKHEAD MARTIN CORPORATION", "consignee_country": "US",
        "destination_country": "US", "hs_code": "8112929010", "description": "gallium",
        "quantity_kg": 10, "value_usd": 5000}])
    [f] = [f for f in findings if f.rule == "control-list-consignee"]
    assert f.outcome == "prohibited"
    assert "matches Lockheed Martin Corp. on control-list" in f.explanation
    assert "as 'Lockheed Martin Corp.', score 9" in f.explanation


def test_relabelling_indicators_name_the_mineral_and_count_it_only_while_controlled() -> None:
    screener = Screener([CN])

    def relabelled(day: str, description: str, value: float) -> dict[str, str]:
        return {f.rule: f.explanation for f in screener.screen([{
            "id": "d1", "declared_on": day, "exporter": "Hunan Metals Co.",
            "consignee": "Bangkok Trading Co.", "consignee_country": "TH",
            "destination_country": "TH", "hs_code": "3213100000", "description": description,
            "quantity_kg": 500, "value_usd": value}]) if f.rule.startswith("relabelled")}

    # antimony is controlled from 2024-09-15 (MOFCOM-2024-33): its name and its price count
    # from that day, not before, and the explanation says which mineral matched
    assert relabelled("2024-09-14", "art supplies (antimony)", 15500) == {}
    found = relabelled("2024-09-15", "art supplies (antimony)", 15500)
    assert "description mentions 'antimony' (Antimony, its ores and oxides)" in \
        found["relabelled-mineral-name"]
    assert "inside the range of Antimony metal, oxides and their compounds (5 to 70 USD/kg)" \
        in found["relabelled-unit-value"]
    # gallium, controlled since 2023-08-01, is found on the earlier day
    assert "'gallium' (Gallium and its compounds)" in relabelled(
        "2024-09-14", "art supplies (gallium)", 500)["relabelled-mineral-name"]


# The indicators that keep the targets on this small sample too. The held-out figures (100,000
# declarations, bench/README.md) meet them for every indicator; here 6,000 declarations have a
# dozen exporters and a few consignees per country, so ordinary trade repeats exporter-consignee
# pairs far more often than it does at scale (the split indicators), and a few cases per kind
# leave the name and end-user figures to chance. Those must still find cases.
MEETS_TARGETS = ("relabelled-unit-value", "end-user-elsewhere", "surge-on-route",
                 "new-consignee-volume", "hub-routing", "exporter-consignee-linked",
                 "listed-party-affiliate", "licence-borrowing", "new-exporter-volume",
                 "control-list-consignee")


def test_indicators_find_the_planted_cases_of_the_demo_data(tmp_path: Path) -> None:
    files = demo.write(demo.generate(6000, seed=5, rulebooks=[RULEBOOKS]), tmp_path)
    screener = Screener([RULEBOOKS])
    findings, _ = screener.screen_files(files["declarations"], files["licences"],
                                        files["parties"])
    by_rule = {(f.declaration_id, f.rule) for f in findings if f.outcome in ("risk",
                                                                              "prohibited")}
    quality = {q.rule: q for q in indicator_quality(by_rule, read_truth(files["truth"]))}
    assert set(quality) == set(TARGETS)
    for q in quality.values():
        assert q.cases > 0 and q.found > 0, q
        assert q.recall_ci[0] <= q.recall <= q.recall_ci[1]
    for rule in MEETS_TARGETS:
        q = quality[rule]
        assert q.recall >= RECALL_TARGET and q.precision >= PRECISION_TARGET, q
    explained = {f.rule: f.explanation for f in findings}
    assert "count of declarations within 45 days with same exporter, consignee, group: " \
        in explained["split-consignments"]
    assert "consignee is linked to exporter within 2 hops: " in \
        explained["exporter-consignee-linked"]
    assert "consignee first seen on " in explained["new-consignee-volume"]
    assert "exporter first seen on " in explained["new-exporter-volume"]


def test_quality_counts_cases_found_and_flags_of_the_same_family() -> None:
    truth = [{"case_id": "1", "declaration_id": "a", "kind": "split_minor"},
             {"case_id": "1", "declaration_id": "b", "kind": "split_minor"},
             {"case_id": "2", "declaration_id": "c", "kind": "split_minor"},
             {"case_id": "3", "declaration_id": "d", "kind": "surge"}]
    # case 1 found through one part; a flag on the surge is of another family; e is ordinary
    flagged = [("b", "split-consignments"), ("d", "split-consignments"),
               ("e", "split-consignments")]
    q = {x.rule: x for x in indicator_quality(flagged, truth)}["split-consignments"]
    assert (q.cases, q.found, q.flagged, q.correct) == (2, 1, 3, 1)
    assert q.recall == 0.5 and q.precision == pytest.approx(1 / 3)
    low, high = q.precision_ci
    assert 0.06 < low < 0.07 and 0.79 < high < 0.80  # Wilson, 1 of 3
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(50, 50)[0] > 0.92
