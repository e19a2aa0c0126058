"""The law over time: items controlled by acts with their own periods, listings with their
measures and amendments, the act a finding cites, and parameters a declaration states."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from sqlite_utils import Database

from dsl import LoadResult, load
from dsl.interpret import Interpreter
from dsl.periods import item_controls
from kb.inputs.load import load_csv
from kb.screen import Screener
from kb.store.schema import declaration_schema
from kb.store.tables import MIGRATIONS
from tests.conftest import RULEBOOKS

HEAD = """
instrument OLD-1
  title "An announcement"
  issued 2023-07-03
  in force 2023-08-01
  annex 1 "Widgets"

instrument NEW-1
  title "The unified list"
  issued 2024-09-30
  in force 2024-12-01
  annex 1 "Widgets"

instrument PAUSE-1
  title "Suspends the unified list"
  issued 2025-11-07
  in force 2025-11-07

group widgets "Widgets"
  per OLD-1 annex 1
  per NEW-1 annex 1 from 2024-12-01

item widget "A widget"
  member of widgets
  customs 8112929010
"""


def checked(tmp_path: Path, text: str) -> LoadResult:
    (tmp_path / "r.excon").write_text(HEAD + text, encoding="utf-8")
    return load([tmp_path], declaration_schema())


def test_a_later_act_takes_over_and_a_suspension_of_it_cuts_the_control(tmp_path: Path) -> None:
    result = checked(tmp_path, """
suspend NEW-1
  per PAUSE-1
  from 2025-11-07 until 2026-11-10
""")
    assert result.ok, result.diagnostics
    controls = item_controls(result.rulebook)["widget"]
    assert [(c.start, c.end, c.instrument, c.provision) for c in controls] == [
        (dt.date(2023, 8, 1), dt.date(2024, 11, 30), "OLD-1", "annex 1"),
        # the older act is still in force while the newer one is suspended
        (dt.date(2024, 12, 1), dt.date(2025, 11, 6), "NEW-1", "annex 1"),
        (dt.date(2025, 11, 7), dt.date(2026, 11, 10), "OLD-1", "annex 1"),
        (dt.date(2026, 11, 11), None, "NEW-1", "annex 1"),
    ]


def codes(result: LoadResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def test_overlapping_and_contradictory_amendments_are_warned(tmp_path: Path) -> None:
    result = checked(tmp_path, """
suspend OLD-1
  per PAUSE-1
  from 2025-11-07 until 2025-12-31

suspend OLD-1
  per PAUSE-1
  from 2025-12-01 until 2026-01-31

lift NEW-1
  per PAUSE-1
  from 2025-11-07

suspend NEW-1
  per PAUSE-1
  from 2025-12-01 until 2026-01-31
""")
    assert "W301" in codes(result) and "W302" in codes(result)
    assert result.ok  # warnings, not errors


def test_a_rule_in_force_before_its_items_are_controlled_is_warned(tmp_path: Path) -> None:
    result = checked(tmp_path, """
rule early "Widgets before any act controls them"
  per OLD-1
  from 2023-08-01
  when item in gizmos
  then licence required

group gizmos "Gizmos"
  per NEW-1 annex 1

item gizmo "A gizmo"
  member of gizmos
  customs 2825800010
""")
    [w] = [d for d in result.diagnostics if d.code == "W303"]
    assert "not controlled before 2024-12-01" in w.message or "2024-12-01" in w.message


def test_a_measure_the_list_does_not_declare_is_an_error(tmp_path: Path) -> None:
    result = checked(tmp_path, """
list the-list "A list"
  per OLD-1
  measures export-ban

party acme "Acme"
  listed on the-list per OLD-1 from 2024-01-01 with export-bam

rule banned "Exports to parties listed with an export ban"
  per OLD-1
  when consignee listed on the-list with investment-ban
  then prohibited
""")
    messages = [d.message for d in result.diagnostics if d.code == "E202"]
    assert any("export-bam" in m for m in messages)
    assert any("investment-ban" in m for m in messages)
    hints = [d.hint for d in result.diagnostics if d.code == "E202"]
    assert any(h and "export-ban" in h for h in hints)


def test_stated_parameters_are_converted_and_malformed_ones_rejected_with_the_pair(
        tmp_path: Path) -> None:
    db = Database(tmp_path / "kb.db")
    MIGRATIONS.apply(db)
    header = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
              "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
              "licence_no,parameters\n")
    rows = [
        "ok,2026-12-01,E,C,DE,,,DE,8507600000,cells,10,100,,,energy_density=150 Wh/kg; "
        "particle_size=500 nm",
        "unit,2026-12-01,E,C,DE,,,DE,8507600000,cells,10,100,,,particle_size=40 kg",
        "name,2026-12-01,E,C,DE,,,DE,8507600000,cells,10,100,,,energy_densty=150 Wh/kg",
        "pair,2026-12-01,E,C,DE,,,DE,8507600000,cells,10,100,,,energy_density 150 Wh/kg",
        "kind,2026-12-01,E,C,DE,,,DE,3801909010,graphite,10,100,,,graphite_type=synthetic",
        "code,2026-12-01,E,C,DE,,,DE,8479899990,machine,10,100,,,dual_use_code=yes",
        "text,2026-12-01,E,C,DE,,,DE,8479899990,machine,10,100,,,"
        "dual_use_code=3B901.a; graphite_type=natural",
    ]
    report = load_csv(db, "declarations", io.BytesIO((header + "\n".join(rows)).encode()),
                      name="declarations.csv")
    assert report.loaded == 2 and report.rejected_rows == 5
    row = db.execute("select energy_density, particle_size, parameters from declarations"
                     " where id = 'ok'").fetchone()
    assert row == (150.0, 0.5, "energy_density=150 Wh/kg; particle_size=0.5 µm")
    row = db.execute("select dual_use_code, graphite_type, parameters from declarations"
                     " where id = 'text'").fetchone()
    assert row == ("3B901.a", "natural", "dual_use_code=3B901.a; graphite_type=natural")
    problems = {p.line: (p.column, p.expected) for p in report.problems}
    assert problems[3][0] == "parameters" and "unit of length" in problems[3][1]
    assert "a known parameter in pair 1 'energy_densty=150 Wh/kg'" in problems[4][1]
    assert "no '='" in problems[5][1]
    assert "'natural' or 'artificial' after 'graphite_type='" in problems[6][1]
    assert "a control code such as '2B005.b' or 'none'" in problems[7][1]


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener([RULEBOOKS])


def test_a_stated_parameter_decides_and_a_missing_one_is_undetermined(
        screener: Screener) -> None:
    base = {"id": "d1", "declared_on": "2026-12-01", "exporter": "E", "consignee": "C",
            "consignee_country": "DE", "destination_country": "DE", "hs_code": "8507600000",
            "description": "cells", "quantity_kg": 10, "value_usd": 100}
    missing = screener.screen([base])
    assert [(f.rule, f.outcome) for f in missing] == [("batteries-licence", "undetermined")]
    assert "missing: energy_density" in missing[0].explanation
    assert screener.screen([{**base, "parameters": "energy_density=150 Wh/kg"}]) == []
    [f] = screener.screen([{**base, "parameters": "energy_density=320 Wh/kg"}])
    assert (f.outcome, f.instrument) == ("unlicensed", "MOFCOM-2025-58")


def test_a_listed_party_finding_cites_its_listing_and_names_only_its_own_list(
        screener: Screener) -> None:
    row = {"id": "d1", "declared_on": "2025-03-01", "exporter": "E",
           "consignee": "Lockheed Martin Corporation", "consignee_country": "US",
           "destination_country": "US", "hs_code": "2504101000", "description": "graphite",
           "quantity_kg": 10, "value_usd": 100}
    found = {f.rule: f for f in screener.screen([row])}
    listed = found["control-list-consignee"]
    assert (listed.instrument, listed.provision) == ("MOFCOM-2025-1", None)
    assert "on control-list (listed by MOFCOM-2025-1" in listed.explanation
    assert "unreliable-entity-list" not in listed.explanation
    assert "(ECL-2020)" in listed.explanation  # the enabling law stays in the explanation
    uel = found["unreliable-entity-party"]
    assert uel.instrument == "UEL-2023-0216" and "control-list" not in uel.explanation


def test_a_plain_name_after_listings_under_is_warned_as_the_whole_instrument(
        tmp_path: Path) -> None:
    listings = """
list the-list "A list"
  per OLD-1

party acme "Acme"
  listed on the-list per OLD-1 from 2024-01-01

party apex "Apex"
  listed on the-list per NEW-1 from 2025-01-01
"""
    result = checked(tmp_path, listings + """
suspend listings under OLD-1, NEW-1
  per PAUSE-1
  from 2025-11-07
""")
    [w] = [d for d in result.diagnostics if d.code == "W304"]
    assert "'NEW-1'" in w.message and w.hint == "write 'listings under NEW-1' for its listings"
    spelled = checked(tmp_path, listings + """
suspend listings under OLD-1, listings under NEW-1
  per PAUSE-1
  from 2025-11-07
""")
    assert not [d for d in spelled.diagnostics if d.code == "W304"]


def test_suspensions_that_ended_by_their_own_text_are_listed_to_check(tmp_path: Path) -> None:
    from dsl import law

    result = checked(tmp_path, """
suspend NEW-1
  per PAUSE-1
  from 2025-11-07 until 2026-11-10
""")
    model = law(result.rulebook)
    assert model.lapsed_suspensions(dt.date(2026, 11, 10)) == []
    [lapse] = model.lapsed_suspensions(dt.date(2026, 11, 11))
    assert (lapse.target, lapse.by, lapse.ended, lapse.resumes) == (
        "NEW-1", ("PAUSE-1",), "2026-11-10", "2026-11-11")


def test_the_most_precise_reference_code_decides_the_item(tmp_path: Path) -> None:
    (tmp_path / "r.excon").write_text(HEAD + """
item wide "Any widget of the tariff line"
  member of widgets
  customs 8112.92.90

rule widgets-licence "Widgets need a licence"
  per OLD-1 annex 1
  when item in widgets
  then licence required
""", encoding="utf-8")
    screener = Screener([tmp_path])

    def item_of(code: str) -> str:
        """The item a finding names (the first of those matched, by name: `wide` would come
        first if it were matched too)."""
        [f] = screener.screen([{"id": "d", "declared_on": "2024-01-01", "exporter": "E",
                                "consignee": "C", "consignee_country": "DE",
                                "destination_country": "DE", "hs_code": code,
                                "description": "x", "quantity_kg": 1, "value_usd": 1}])
        return f.explanation.split(" (code")[0]

    assert item_of("8112929010") == "A widget"  # listed exactly by widget: not also `wide`
    assert item_of("8112929090") == "Any widget of the tariff line"  # only the 8-digit line
    interpreter = Interpreter(screener.rulebook, declaration_schema())
    assert interpreter.items_of({"hs_code": "8112929010"}) == ["widget"]
    assert interpreter.items_of({"hs_code": "8112929090"}) == ["wide"]


def test_a_licence_finding_names_the_act_that_controls_the_item_then(tmp_path: Path) -> None:
    (tmp_path / "r.excon").write_text(HEAD + """
rule widgets-licence "Widgets need a licence"
  per OLD-1 annex 1
  when item in widgets
  then licence required
""", encoding="utf-8")
    findings = Screener([tmp_path]).screen([
        {"id": day, "declared_on": day, "exporter": "E", "consignee": "C",
         "consignee_country": "DE", "destination_country": "DE", "hs_code": "8112929010",
         "description": "x", "quantity_kg": 1, "value_usd": 1}
        for day in ("2024-11-30", "2024-12-01")], [], [])
    said = {f.declaration_id: (f.instrument, f.provision, f.explanation) for f in findings}
    assert said["2024-11-30"][:2] == ("OLD-1", "annex 1")
    assert "widgets need a licence (OLD-1 annex 1)" in said["2024-11-30"][2]
    assert said["2024-12-01"][:2] == ("NEW-1", "annex 1")
    assert "widgets need a licence (NEW-1 annex 1)" in said["2024-12-01"][2]


def _declarations(rows: list[tuple[str, str, float, float]]) -> str:
    head = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
            "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
            "licence_no\n")
    return head + "".join(f"{i},2025-03-01,E,C,DE,,,DE,{code},goods,{kg},{usd},,\n"
                          for i, code, kg, usd in rows)


def test_published_unit_values_come_first_then_ranges_then_history_by_shorter_lines(
        tmp_path: Path) -> None:
    from kb.build import build

    rows = [(f"h{i}", "9403609000", 100.0, 100.0 * (1 + i % 10)) for i in range(40)]
    rows += [("lone", "9403601000", 10.0, 30.0),      # 2 declarations: falls back to 940360
             ("lone2", "9403601000", 10.0, 30.0),
             ("pig", "7201100000", 1000.0, 500.0),    # the rulebook's pig-iron range
             ("zinc", "7901120000", 1000.0, 3000.0)]  # published, in USD/t
    decl = tmp_path / "declarations.csv"
    decl.write_text(_declarations(rows), encoding="utf-8")
    values = tmp_path / "unit-values.csv"
    values.write_text("code,low,high,unit,source\n"
                      "790112,2500,3500,USD/t,GACC statistics 2025\n"
                      "7208,900,400,USD/t,reversed\n"
                      "72011,1,2,USD/kg,five digits\n", encoding="utf-8")
    report = build(tmp_path / "kb.db", [RULEBOOKS], decl, unit_values=values)
    [load] = [x for x in report.loads if x.table == "unit_values"]
    assert (load.loaded, load.rejected_rows) == (1, 2)
    problems = {p.line: (p.column, p.expected) for p in load.problems}
    assert problems[3] == ("high", "a high end not below the low end (900)")
    assert "4, 6, 8 or 10 digits" in problems[4][1]
    db = Database(tmp_path / "kb.db")
    got = {r[0]: r[1:] for r in db.execute(
        "select hs_code, low, high, basis from code_value_ranges")}
    assert got["7901120000"] == (2.5, 3.5, "published unit value 790112 (GACC statistics 2025)")
    assert got["7201100000"][2] == "value range pig-iron"
    assert got["9403609000"][2] == "history of 40 declarations under 9403609000"
    # two declarations of their own: the 6-digit subheading's 42 decide
    assert got["9403601000"][2] == "history of 42 declarations under 940360"
    assert got["9403601000"][:2] == (1.0, 10.0)  # NTILE(20) over 42 unit values of 1-10
