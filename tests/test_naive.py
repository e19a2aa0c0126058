"""The compiler's helpers against the reference interpreter's own answers (`dsl.naive`): what is
in force on each day, which listed party a name matches, and which parties are linked. The
helpers are fast (intervals, blocking, searches from both ends); the interpreter's answers are
plain; wherever they differ one of them is wrong."""

from __future__ import annotations

import csv
import datetime as dt
import random

import pytest

import dsl
from dsl.graph import PartyFacts, PartyGraph
from dsl.naive import Calendar, Links, Names
from dsl.names import PartyMatcher
from dsl.periods import control_on, item_controls, listing_periods, rule_periods
from dsl.rulebook import CheckedRulebook
from kb.store.schema import declaration_schema
from tests.conftest import ROOT, RULEBOOKS

FIRST, LAST = dt.date(2023, 1, 1), dt.date(2027, 6, 30)


@pytest.fixture(scope="module")
def repository() -> CheckedRulebook:
    result = dsl.load([RULEBOOKS], declaration_schema())
    assert result.ok and result.rulebook is not None
    return result.rulebook


def _days() -> list[dt.date]:
    return [FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)]


def test_every_rule_item_and_listing_is_in_force_on_the_same_days(
        repository: CheckedRulebook) -> None:
    """Day by day from 2023 to mid-2027, over both repository rulebooks: rules and exceptions,
    the act controlling each item, and each listing."""
    calendar = Calendar(repository)
    periods, controls = rule_periods(repository), item_controls(repository)
    listings = {(lp.party, lp.list, lp.instrument, lp.provision): lp
                for lp in listing_periods(repository)}
    naive = {(lp.party, lp.list, lp.instrument, lp.provision): lp
             for lps in calendar.listings.values() for lp in lps}
    assert naive.keys() == listings.keys()
    changes, before = 0, None
    for day in _days():
        today = []
        for name, p in periods.items():
            assert calendar.rule_in_force(name, day) == p.in_force(day), (name, day)
            today.append(p.in_force(day))
        for item, stretches in controls.items():
            act, expected = calendar.control(item, day), control_on(stretches, day)
            assert (act and (act.instrument, act.provision)) == \
                (expected and (expected.instrument, expected.provision)), (item, day)
            today.append(expected and expected.instrument)
        for key, lp in listings.items():
            assert calendar.listing_in_force(naive[key], day) == lp.periods.in_force(day), \
                (key, day)
            today.append(lp.periods.in_force(day))
        changes += sum(a != b for a, b in zip(today, before or today, strict=True))
        before = today
    assert changes > 100  # the rulebooks' controls, suspensions, lifts and lapses were crossed


def test_names_match_the_same_parties_with_the_same_scores() -> None:
    """Every labelled name, and every listed name with one typing error, at the thresholds the
    lists use: the matcher's blocking loses no match that scoring every spelling finds. (Two
    errors in a short name can fall outside every block: the blocking promises one.)"""
    with (ROOT / "tests" / "data" / "name_pairs.csv").open(encoding="utf-8") as f:
        pairs = list(csv.DictReader(f))
    spellings = sorted({(r["listed"], r["listed"]) for r in pairs})
    names = [r["name"] for r in pairs]
    for name in sorted({r["listed"] for r in pairs}):  # a dropped, doubled and swapped letter
        for i in range(len(name)):
            names += [name[:i] + name[i + 1:], name[:i] + name[i:i + 1] * 2 + name[i + 1:],
                      name[:i] + name[i + 1:i + 2] + name[i:i + 1] + name[i + 2:]]
    matcher, naive = PartyMatcher(spellings), Names(spellings)
    found = 0
    for threshold in (85.0, 90.0, 95.0):
        for name in names:
            expected = {(m.party, m.score) for m in matcher.match(name, threshold)}
            assert {(h.party, h.score) for h in naive.hits(name, threshold)} == expected, \
                (name, threshold)
            found += bool(expected)
    assert found > len(names)


def _owners(rng: random.Random, names: list[str], me: str) -> str | None:
    """None, one controlling owner, or up to three owners with shares (adding up to 100 % at
    most), as parties.csv states them."""
    kind = rng.random()
    if kind < .4:
        return None
    if kind < .6 or len(names) < 2:
        return rng.choice([n for n in names if n != me]) if len(names) > 1 else None
    owners = rng.sample([n for n in names if n != me], min(len(names) - 1, rng.randint(1, 3)))
    shares = rng.sample((10, 20, 25, 30, 40, 50, 51), len(owners))
    while sum(shares) > 100:
        shares[shares.index(max(shares))] //= 2
    return "; ".join(f"{o} {s} %" for o, s in zip(owners, shares, strict=True))


@pytest.mark.parametrize("threshold", [(">=", 50.0), (">", 50.0), (">=", 25.0)])
def test_parties_are_linked_the_same_way(threshold: tuple[str, float]) -> None:
    """A random web of shared addresses, telephones and owners with shares (on the threshold,
    below it, adding up through controlled companies), with aliases: who reaches whom within
    one to three hops, by each kind of link, under each ownership threshold."""
    rng = random.Random(5)
    names = [f"Company {n} Ltd" for n in range(300)]
    # owners are drawn among a few holding companies, which own one another, so that shares
    # add up through controlled companies
    holders = names[:12]
    facts = [PartyFacts(name, address=f"{rng.randrange(60)} Harbour Road" if rng.random() < .5
                        else None,
                        phone=f"+852 5550 {rng.randrange(80):04d}" if rng.random() < .4 else None,
                        parent=_owners(rng, holders if i >= 12 else names[i + 1:12], name),
                        share_pct=rng.choice((None, 20.0, 50.0, 75.0)))
             for i, name in enumerate(names)]
    # and companies that only a holder's own share and its wholly owned company's together
    # control (26 % + 26 %)
    for k, holder in enumerate(holders[:6]):
        facts += [PartyFacts(f"Holdco {k} Ltd", parent=holder),
                  PartyFacts(f"Joint {k} Ltd", parent=f"{holder} 26 %; Holdco {k} Ltd 26 %")]
        names += [f"Holdco {k} Ltd", f"Joint {k} Ltd"]
    same = {"COMPANY 7 LIMITED (HK)": "Company 7 Ltd", "Co 9 Holdings": "Company 9 Ltd"}
    graph, links = PartyGraph(facts, same), Links(facts, same)
    kinds = (["address"], ["phone"], ["parent"], ["owner"], ["address", "phone", "parent"], [])
    listed = [*rng.sample(names, 8), "COMPANY 7 LIMITED (HK)", *holders[:4]]
    reached = 0
    for via in kinds:
        for hops in (1, 2, 3):
            near = graph.reach_to(listed, via, hops, threshold)
            for a in [*rng.sample(names, 40), "Co 9 Holdings"]:
                targets = {links.node(t) for t in listed} & links.reach(a, via, hops, threshold)
                found = near.get(graph.node(a) or "", {})
                assert targets == set(found), (a, via, hops)
                for b in rng.sample(names, 10):
                    assert (links.node(b) in links.reach(a, via, hops, threshold)) == \
                        (graph.related(a, b, via, hops, threshold) is not None), (a, b, via, hops)
                reached += bool(targets)
    assert reached > 50
    # the web has links that hold only with shares added up over several holdings
    assert sum(len(p) > 1 for p in graph.control(threshold).parts.values()) >= 2


def test_ownership_thresholds_and_shares_added_up() -> None:
    """A 50/50 joint venture is a subsidiary under "50 % or more", not under "more than 50
    %"; 30 % held directly and 30 % through a wholly owned company make 60 %; a company held
    through a controlled company is one hop further up; 30 % through a company the owner holds
    40 % of does not count."""
    facts = [PartyFacts("JV K.K.", parent="Listed Corp 50 %; Other K.K. 50 %"),
             PartyFacts("Sum K.K.", parent="Listed Corp 30 %; Holdco Ltd 30 %; Other K.K. 40 %"),
             PartyFacts("Holdco Ltd", parent="Listed Corp"),
             PartyFacts("Chain GmbH", parent="Holdco Ltd 60 %"),
             PartyFacts("Minority Ltd", parent="Listed Corp 30 %; Partly Ltd 30 %"),
             PartyFacts("Partly Ltd", parent="Listed Corp 40 %")]
    graph = PartyGraph(facts)
    at_least, more_than = (">=", 50.0), (">", 50.0)
    assert graph.related("JV K.K.", "Listed Corp", ["owner"], 1, at_least) is not None
    assert graph.related("JV K.K.", "Listed Corp", ["owner"], 1, more_than) is None
    reach = graph.related("Sum K.K.", "Listed Corp", ["owner"], 1, at_least)
    assert reach is not None and reach.path == (
        "Sum K.K. —owner 60 % (30 % directly, 30 % through Holdco Ltd)— Listed Corp")
    assert graph.related("Chain GmbH", "Listed Corp", ["owner"], 1) is None
    chain = graph.related("Chain GmbH", "Listed Corp", ["owner"], 2)
    assert chain is not None and chain.path == (
        "Chain GmbH —owner 60 %— Holdco Ltd —owner— Listed Corp")
    assert graph.related("Minority Ltd", "Listed Corp", ["owner"], 3) is None
    # upwards only: the owner is not its subsidiary's subsidiary
    assert graph.related("Listed Corp", "JV K.K.", ["owner"], 1) is None
    assert graph.related("Listed Corp", "JV K.K.", ["parent"], 1) is not None
    links = Links(facts, {})
    assert links.reach("Sum K.K.", ["owner"], 1) == {links.node("Listed Corp")}
    assert links.reach("JV K.K.", ["owner"], 1, more_than) == set()
