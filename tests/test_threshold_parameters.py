# ruff: noqa: E501 (the rulebook text is laid out as `excon fmt` lays it out)
"""Thresholds as named parameters, everywhere a rule has a number: `X reaches P` for any number
(a count or sum over earlier declarations, a fact, arithmetic), `X reaches P of Y` for a share,
`within P` for a window's or a first-seen test's length in days (one length per period, the one
in force on the judged date), each parameter with its act, source or `unverified` reason; and
`excon screen --set P=VALUE` to try another value without editing the rulebook. The examples
run on the compiled checks and in the interpreter (`excon test`)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

import dsl
from dsl.overrides import SettingError
from kb.cli import cli
from kb.screen import Screener
from kb.store.schema import declaration_schema

RULEBOOK = """rulebook watch "Thresholds as parameters"
  jurisdiction CN

instrument LAW-1
  title "An export control law"
  issued 2020-01-01
  in force 2020-01-01
  article 1 "Exports of controlled items without a licence are penalised"

item gallium "Gallium metal"
  customs 8112929010
  per LAW-1 article 1

group metals "Metals"
  members gallium

parameter window "Days the parts of one order are counted together"
  10 days until 2024-12-31
  30 days from 2025-01-01
  unverified "A working value: ten days until 2024, thirty from 2025."

parameter parts "Consignments from which an order counts as split"
  at least 2
  source "Two parts is the least a split can have."

parameter total "Total from which an order is large"
  at least 400 kg
  unverified "A working value for a large order."

parameter largest "Share of the total above which one consignment is most of the order"
  at most 60 %
  unverified "A working value for 'most of it'."

parameter new-period "Days within which an exporter first seen is new"
  30 days
  unverified "A working value for 'new'."

rule split "Parts of one order of gallium"
  per LAW-1 article 1
  when item in gallium
   and count of declarations within window with same exporter, group reaches parts
   and sum of quantity_kg over declarations within window with same exporter, group reaches total
   and quantity_kg reaches largest of sum of quantity_kg over declarations within window with same exporter, group
  then risk medium

rule new-exporter "A new exporter shipping a large quantity"
  per LAW-1 article 1
  when item in gallium
   and exporter first seen within new-period
   and quantity_kg reaches total
  then risk low

example "in 2024 the window is 10 days: parts 15 days apart are two orders"
  declaration d1 on 2024-03-01 code 8112929010 to DE 250 kg exporter "Old Co."
  declaration d2 on 2024-03-16 code 8112929010 to DE 250 kg exporter "Old Co."
  expect no risk by split for d2

example "in 2024, parts 9 days apart are one order"
  declaration d1 on 2024-03-01 code 8112929010 to DE 250 kg exporter "Old Co."
  declaration d2 on 2024-03-10 code 8112929010 to DE 250 kg exporter "Old Co."
  expect no risk by split for d1
  expect risk by split for d2

example "from 2025 the window is 30 days, judged by the date of the later part"
  declaration d1 on 2024-12-20 code 8112929010 to DE 250 kg exporter "Old Co."
  declaration d2 on 2025-01-05 code 8112929010 to DE 250 kg exporter "Old Co."
  expect risk by split for d2

example "a part of exactly 60 % of the total is not most of it"
  declaration d1 on 2025-03-01 code 8112929010 to DE 200 kg exporter "Old Co."
  declaration d2 on 2025-03-02 code 8112929010 to DE 300 kg exporter "Old Co."
  expect risk by split for d2

example "a part of 80 % of the total is most of it"
  declaration d1 on 2025-03-01 code 8112929010 to DE 100 kg exporter "Old Co."
  declaration d2 on 2025-03-02 code 8112929010 to DE 400 kg exporter "Old Co."
  expect no risk by split for d2

example "399 kg in all is not a large order"
  declaration d1 on 2025-03-01 code 8112929010 to DE 199 kg exporter "Old Co."
  declaration d2 on 2025-03-02 code 8112929010 to DE 200 kg exporter "Old Co."
  expect no risk by split for d2

example "an exporter first seen 29 days before is new; 30 days before, not"
  declaration d1 on 2024-01-01 code 8112929010 to DE 10 kg exporter "New Co."
  declaration d2 on 2024-01-30 code 8112929010 to DE 500 kg exporter "New Co."
  declaration d3 on 2024-01-31 code 8112929010 to DE 500 kg exporter "New Co."
  expect risk by new-exporter for d2
  expect no risk by new-exporter for d3
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("thresholds")
    (path / "watch.excon").write_text(RULEBOOK, encoding="utf-8")
    return path


def rows(*parts: tuple[str, str, float, str]) -> list[dict[str, object]]:
    return [{"id": f"d{n}", "declared_on": day, "exporter": exporter, "consignee": "C",
             "consignee_country": "DE", "destination_country": "DE", "hs_code": "8112929010",
             "description": "gallium", "quantity_kg": kg, "value_usd": kg * 300}
            for n, (day, exporter, kg, _) in enumerate(parts, 1)]


ORDERS = rows(("2024-03-01", "Old Co.", 250, ""), ("2024-03-10", "Old Co.", 250, ""),
              ("2024-12-20", "Two Co.", 250, ""), ("2025-01-05", "Two Co.", 250, ""),
              ("2025-03-01", "Big Co.", 100, ""), ("2025-03-02", "Big Co.", 400, ""),
              ("2024-01-01", "New Co.", 10, ""), ("2024-01-30", "New Co.", 500, ""),
              ("2024-01-31", "New Co.", 500, ""))


def test_the_examples_hold_on_the_checks_and_in_the_interpreter(folder: Path) -> None:
    result = CliRunner().invoke(cli, ["test", str(folder)])
    assert result.exit_code == 0, result.output
    assert "7 passed, 0 failed" in result.output
    assert CliRunner().invoke(cli, ["fmt", "--check", str(folder)]).exit_code == 0


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_every_engine_judges_windows_of_a_parameter_alike(
        folder: Path, engine: str, request: pytest.FixtureRequest) -> None:
    on = request.getfixturevalue("postgres_dsn") if engine == "postgres" else engine
    screener = Screener([folder])
    expected = {(f.declaration_id, f.rule) for f in screener.screen(ORDERS)}
    assert expected == {("d2", "split"), ("d4", "split"), ("d9", "split"),
                        ("d6", "new-exporter"), ("d8", "new-exporter")}
    assert {(f.declaration_id, f.rule) for f in screener.screen(ORDERS, engine=on)} == expected


def test_a_finding_states_the_values_held_and_rests_on_the_unverified_parameters(
        folder: Path) -> None:
    by_id = {f.declaration_id: f for f in Screener([folder]).screen(ORDERS)}
    split = by_id["d4"]
    # the 2025 length (30 days) judged d4: d3 is 16 days before it
    assert "count of declarations within 30 days with same exporter, group: 2; reaching " \
        "parts (at least 2)" in split.explanation
    assert "sum of quantity_kg over declarations within 30 days with same exporter, group: " \
        "500 kg; reaching total (at least 400 kg)" in split.explanation
    assert "quantity kg reaches largest of it (at most 60 %)" in split.explanation
    # `parts` has a source; the other three are working values
    assert split.basis == "unverified"
    assert split.caveat.startswith("parameters total, largest and window are marked "
                                   "unverified")
    assert by_id["d8"].caveat.startswith("parameters new-period and total are marked")


def test_rules_json_and_the_documents_carry_the_parameters(folder: Path,
                                                          tmp_path: Path) -> None:
    import json

    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["export", "--format", "json", "--rulebooks", str(folder),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(next(out.rglob("rules.json")).read_text(encoding="utf-8"))
    params = {p["name"]: p for p in doc["parameters"]}
    assert [(v["comparator"], v["value"], v["unit"], v["until"])
            for v in params["window"]["values"]] == [(None, 10.0, "days", "2024-12-31"),
                                                     (None, 30.0, "days", None)]
    assert params["parts"]["sources"] == ["Two parts is the least a split can have."]
    assert params["total"]["unverified"] == ["A working value for a large order."]
    [split] = [r for r in doc["rules"] if r["name"] == "split"]
    count, _, share = split["evaluation"]["condition"]["parts"][1:]
    assert count["node"] == "Reaches" and count["parameter"]["name"] == "parts"
    assert count["subject"]["window"]["parameter"]["name"] == "window"
    assert share["subject"]["name"]["name"] == "quantity_kg" and share["of"]["node"] == "SumOf"


@pytest.mark.parametrize(("text", "code", "message"), [
    ("count of declarations within total with same exporter, group reaches parts",
     "E402", "a window's length is a whole number of days (45 days); parameter 'total' has "
             "at least 400 kg"),
    ("count of declarations within window with same exporter, group reaches window",
     "E401", "parameter 'window' has plain values, not thresholds: `reaches` needs at least, "
             "more than, at most or less than"),
    ("quantity_kg reaches total of value_usd",
     "E402", "`reaches total of …` takes a share of a number: parameter 'total' must be a "
             "percentage"),
    ("quantity_kg reaches largest of value_usd",
     "E402", "a mass (kg) cannot reach a share of an amount of money (USD)"),
    ("value_usd reaches total",
     "E402", "'value_usd' is an amount of money (USD) and cannot reach parameter 'total', a "
             "mass (kg)"),
    ("exporter reaches total",
     "E401", "a text cannot reach a parameter: a parameter is a threshold for a number"),
])
def test_a_parameter_used_where_it_does_not_fit_is_an_error(
        tmp_path: Path, text: str, code: str, message: str) -> None:
    broken = RULEBOOK.split("example ")[0].replace(
        "   and exporter first seen within new-period\n", f"   and {text}\n")
    (tmp_path / "watch.excon").write_text(broken, encoding="utf-8")
    found = {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema()).errors}
    assert (code, message) in found


@pytest.mark.parametrize(("values", "code", "message"), [
    ("  at least 2\n  3 days\n", "E401",
     "the values of parameter 'window' mix thresholds (at least, more than, …) and plain values"),
    ("  10 days until 2024-12-31\n  30 days from 2025-02-01\n", "E302",
     "a window's length must apply on every day; parameter 'window' has days without a value"),
    ("  10.5 days\n", "E402",
     "a window's length is a whole number of days (45 days); parameter 'window' has 10.5 days"),
])
def test_a_length_must_be_whole_days_on_every_day(tmp_path: Path, values: str, code: str,
                                                  message: str) -> None:
    head, rest = RULEBOOK.split('parameter window "Days the parts of one order are counted '
                                'together"\n')
    rest = rest[rest.index("  unverified"):]
    broken = (head + 'parameter window "Days the parts of one order are counted together"\n'
              + values + rest).split("example ")[0]
    (tmp_path / "watch.excon").write_text(broken, encoding="utf-8")
    found = {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema()).errors}
    assert (code, message) in found


def test_a_working_value_needs_no_act_but_says_so(tmp_path: Path) -> None:
    """A value without `per` is an error unless the parameter gives a source or an
    `unverified` reason."""
    bare = RULEBOOK.split("example ")[0].replace(
        '  unverified "A working value for a large order."\n', "")
    (tmp_path / "watch.excon").write_text(bare, encoding="utf-8")
    found = {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema()).errors}
    assert found == {("E205", "a value of parameter 'total' needs the act that sets it")}


def test_screen_set_tries_another_value_without_editing_the_rulebook(folder: Path,
                                                                     tmp_path: Path) -> None:
    decls = tmp_path / "declarations.csv"
    with decls.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=[*ORDERS[0], "end_user", "end_user_country",
                                          "purity_pct", "licence_no"])
        w.writeheader()
        w.writerows(ORDERS)

    def screen(*settings: str) -> tuple[int, str, list[dict[str, str]]]:
        out = tmp_path / "findings.csv"
        result = CliRunner().invoke(cli, ["screen", str(decls), "--rulebooks", str(folder),
                                          "-o", str(out), *settings])
        found = list(csv.DictReader(out.open(encoding="utf-8"))) if result.exit_code == 0 \
            else []
        return result.exit_code, result.output, found

    _, before, written = screen()
    assert {(r["declaration_id"], r["rule"]) for r in written} == {
        ("d2", "split"), ("d4", "split"), ("d9", "split"), ("d6", "new-exporter"),
        ("d8", "new-exporter")}
    # a larger largest share takes in Big Co.'s 400 of 500 kg; a 15-day window on every day
    # leaves out Two Co.'s parts, 16 days apart
    _, after, written = screen("--set", "largest=80%", "--set", "window=15days")
    assert {(r["declaration_id"], r["rule"]) for r in written} == {
        ("d2", "split"), ("d6", "split"), ("d9", "split"), ("d6", "new-exporter"),
        ("d8", "new-exporter")}
    [big] = [r for r in written if r["declaration_id"] == "d6" and r["rule"] == "split"]
    assert "largest is set for this run (--set largest=80%) in place of the rulebook's at " \
        "most 60 %." in big["caveat"]
    assert "window is set for this run (--set window=15days) in place of the rulebook's " \
        "10 days; 30 days." in big["caveat"]
    # the version names the rulebook as run, not as written
    assert before.split("rulebook version ")[1][:16] != after.split("rulebook version ")[1][:16]
    for bad, says in [("nope=3", "the rulebooks have no parameter 'nope'"),
                      ("total=300", "give the unit (kg)"),
                      ("total=300USD", "'total' is in kg, not USD"),
                      ("window=at least 3 days", "'window' is a length"),
                      ("total", "a setting is NAME=VALUE")]:
        code, output, _ = screen("--set", bad)
        assert code != 0 and says in output, (bad, output)


def test_the_api_takes_settings_and_refuses_an_unknown_name(folder: Path) -> None:
    result = dsl.load([folder], declaration_schema(), parameters={"total": "at least 100 kg"})
    assert result.ok and result.rulebook is not None
    with pytest.raises(SettingError, match="no parameter 'totl'; did you mean 'total'"):
        dsl.load([folder], declaration_schema(), parameters={"totl": "100kg"})


def test_a_party_search_follows_as_many_links_as_its_parameter_gives(tmp_path: Path) -> None:
    """`within link-depth hops` (the CN rulebook's exporter-consignee-linked): two subsidiaries
    of one parent are two links apart, found at the rulebook's 2 and not at 1."""
    from tests.conftest import RULEBOOKS

    decls = tmp_path / "declarations.csv"
    decls.write_text(
        "id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
        "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,licence_no\n"
        "d1,2024-06-01,Ganzhou Rare Metals Co. Ltd.,Summit Global Trading Ltd,HK,,,HK,"
        "8112929010,gallium,50,20000,,\n", encoding="utf-8")
    parties = tmp_path / "parties.csv"
    parties.write_text("name,country,address,phone,parent\n"
                       "Ganzhou Rare Metals Co. Ltd.,CN,,,Jiangxi Nonferrous Group\n"
                       "Summit Global Trading Ltd,HK,,,Jiangxi Nonferrous Group\n",
                       encoding="utf-8")

    def linked(*settings: str) -> list[dict[str, str]]:
        out = tmp_path / "findings.csv"
        result = CliRunner().invoke(cli, ["screen", str(decls), "--parties", str(parties),
                                          "--rulebooks", str(RULEBOOKS), "-o", str(out),
                                          *settings])
        assert result.exit_code == 0, result.output
        return [r for r in csv.DictReader(out.open(encoding="utf-8"))
                if r["rule"] == "exporter-consignee-linked"]

    [found] = linked()
    assert "consignee is linked to exporter within 2 hops: " in found["explanation"]
    assert "parameter link-depth is marked unverified" in found["caveat"]
    assert linked("--set", "link-depth=1") == []
    assert len(linked("--set", "link-depth=3")) == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "watch.excon").write_text(RULEBOOK.split("example ")[0].replace(
        "   and exporter first seen within new-period\n",
        "   and exporter related to consignee within total hops\n"), encoding="utf-8")
    assert ("E402", "a number of links followed is a whole number from 1 to 6, without a "
            "unit; parameter 'total' has at least 400 kg") in {
        (d.code, d.message) for d in dsl.load([broken], declaration_schema()).errors}
