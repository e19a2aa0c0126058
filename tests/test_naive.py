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


def test_parties_are_linked_the_same_way() -> None:
    """A random web of shared addresses, telephones and owners (some below 50 %), with
    aliases: who reaches whom within one to three hops, by each kind of link."""
    rng = random.Random(5)
    names = [f"Company {n} Ltd" for n in range(300)]
    facts = [PartyFacts(name, address=f"{rng.randrange(60)} Harbour Road" if rng.random() < .5
                        else None,
                        phone=f"+852 5550 {rng.randrange(80):04d}" if rng.random() < .4 else None,
                        parent=rng.choice(names) if rng.random() < .5 else None,
                        share_pct=rng.choice((None, 20.0, 50.0, 75.0)))
             for name in names]
    same = {"COMPANY 7 LIMITED (HK)": "Company 7 Ltd", "Co 9 Holdings": "Company 9 Ltd"}
    graph, links = PartyGraph(facts, same), Links(facts, same)
    kinds = (["address"], ["phone"], ["parent"], ["owner"], ["address", "phone", "parent"], [])
    listed = [*rng.sample(names, 8), "COMPANY 7 LIMITED (HK)"]
    reached = 0
    for via in kinds:
        for hops in (1, 2, 3):
            near = graph.reach_to(listed, via, hops)
            for a in [*rng.sample(names, 40), "Co 9 Holdings"]:
                targets = {links.node(t) for t in listed} & links.reach(a, via, hops)
                assert targets == set(near.get(graph.node(a) or "", {})), (a, via, hops)
                for b in rng.sample(names, 10):
                    assert (links.node(b) in links.reach(a, via, hops)) == \
                        (graph.related(a, b, via, hops) is not None), (a, b, via, hops)
                reached += bool(targets)
    assert reached > 50
