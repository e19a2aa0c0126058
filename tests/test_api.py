"""The Python API as another tool uses it: a Screener made from rulebooks or from a knowledge
base, with licences and parties loaded once, screening one declaration at a time against the
knowledge base's history."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from kb.screen import Screener, ScreeningError, screen
from tests.conftest import RULEBOOKS

# rules whose findings depend on earlier declarations (windows, first-seen dates)
LOOKING_BACK = {"split-consignments", "split-bulk-consignments", "surge-on-route",
                "new-consignee-volume", "new-exporter-volume"}


def rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [{k: v or None for k, v in r.items()} for r in csv.DictReader(f)]


def test_a_screener_needs_rulebooks_or_a_knowledge_base(tmp_path: Path) -> None:
    with pytest.raises(ScreeningError, match=r"rulebooks=.* or a knowledge base"):
        Screener()
    with pytest.raises(ScreeningError, match="does not exist"):
        Screener(db=tmp_path / "missing.db")


def test_one_declaration_at_a_time_against_the_knowledge_base_is_judged_as_in_it(
        demo_kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each declaration screened alone, with the knowledge base as history, gets the findings
    the whole file gets: windows and first-seen dates see the earlier declarations, and
    licences are drawn down after their earlier uses. From a folder without rulebooks: the
    knowledge base keeps the rulebooks it was built from."""
    demo = demo_kb.parent / "demo"
    whole, _ = Screener([RULEBOOKS]).screen_files(
        demo / "declarations.csv", demo / "licences.csv", demo / "parties.csv")
    by_id: dict[str, list[dict[str, Any]]] = {}
    for f in whole:
        by_id.setdefault(f.declaration_id, []).append(f.as_dict())
    monkeypatch.chdir(tmp_path)
    screener = Screener(db=demo_kb)
    assert screener.version == Screener([RULEBOOKS]).version
    declared = rows(demo / "declarations.csv")
    looking_back = [d for d in declared
                    if {f["rule"] for f in by_id.get(d["id"], [])} & LOOKING_BACK]
    drawing = [d for d in declared if d["licence_no"]][-10:]
    chosen = looking_back[:20] + drawing + declared[-10:]
    assert len(looking_back) >= 20
    for d in chosen:
        got = [f.as_dict() for f in screener.screen([d])]
        assert got == by_id.get(d["id"], []), d["id"]
    # without the history the window findings are not there (first-seen ones are: a
    # declaration alone is its parties' first)
    alone = Screener([RULEBOOKS], licences=demo / "licences.csv",
                     parties=demo / "parties.csv")
    lost = [d["id"] for d in looking_back[:20]
            if not {f.rule for f in alone.screen([d])} & LOOKING_BACK]
    assert len(lost) >= 5


def test_licences_and_parties_given_to_the_screener_stay(demo_kb: Path) -> None:
    demo = demo_kb.parent / "demo"
    screener = Screener([RULEBOOKS], licences=demo / "licences.csv")
    licensed = next(d for d in rows(demo / "declarations.csv") if d["licence_no"]
                    and d["hs_code"].startswith("8112929"))
    for engine in ("sqlite", "duckdb", "sqlite"):
        # the licence covers it every time, without being given again (its items are split
        # once, when it is loaded, and kept through screenings on any engine)
        assert not [f for f in screener.screen([licensed], engine=engine)
                    if f.outcome == "unlicensed"], engine
    without = Screener([RULEBOOKS]).screen([licensed])
    assert [f for f in without if f.outcome == "unlicensed"]
    with pytest.raises(ScreeningError, match="keeps its licences"):
        screener.screen([licensed], licences=[{"licence_no": "L"}])


def test_the_module_function_takes_rulebooks_or_a_knowledge_base(demo_kb: Path) -> None:
    d = {"id": "x1", "declared_on": "2025-03-01", "exporter": "Hunan Co.",
         "consignee": "Acme Inc.", "consignee_country": "US", "destination_country": "US",
         "hs_code": "8112929010", "description": "gallium", "quantity_kg": 10,
         "value_usd": 5000}
    on_rulebooks = screen([d], rulebooks=[RULEBOOKS])
    assert any(f.rule == "us-critical-minerals-ban" for f in on_rulebooks)
    assert [f.as_dict() for f in screen([d], db=demo_kb)] == \
        [f.as_dict() for f in on_rulebooks]
    with pytest.raises(ScreeningError):
        screen([d])


def test_a_screeners_last_screening_keeps_its_rows_and_ends_it(tmp_path: Path) -> None:
    """`last=True` (a command about to exit) skips emptying the screener; it then refuses
    another screening instead of mixing two sets of declarations."""
    path = tmp_path / "declarations.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "declared_on", "exporter", "consignee", "consignee_country",
                         "end_user", "end_user_country", "destination_country", "hs_code",
                         "description", "quantity_kg", "value_usd", "purity_pct",
                         "licence_no"])
        writer.writerow(["D1", "2024-03-01", "Exporter Co", "Buyer GmbH", "DE", "", "", "DE",
                         "8112929010", "gallium", "50", "20000", "", ""])
    screener = Screener([RULEBOOKS])
    first, _ = screener.screen_files(path)
    again, _ = screener.screen_files(path, last=True)
    assert [f.rule for f in again] == [f.rule for f in first] and first
    assert screener.db.conn.execute("SELECT COUNT(*) FROM declarations").fetchone()[0] == 1
    with pytest.raises(ScreeningError, match="last screening is done"):
        screener.screen_files(path)
