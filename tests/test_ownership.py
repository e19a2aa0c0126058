"""Ownership thresholds: `related to party listed on L via owner reaching NAME` counts an owner
when its share of a company, added up over what it holds directly and through the companies
it controls, meets the parameter's value in force on the judged date, with that value's
comparator (a 50/50 joint venture is a subsidiary under "50 % or more", not under "more than
50 %"). The same on the interpreter (`excon test` runs each example on both), DuckDB and
PostgreSQL; parties.csv states several owners with their shares and rejects impossible ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import dsl
from kb.cli import cli
from kb.screen import Screener, ScreeningError
from kb.store.schema import declaration_schema

RULEBOOK = """rulebook demo "A rulebook whose ownership threshold changes"
  jurisdiction DE

instrument REG-1
  title "A regulation"
  issued 2020-01-01
  in force 2020-01-01
  article 4 "Exports to listed parties and the companies they own more than 50 % of are prohibited"

instrument REG-2
  title "An amending regulation"
  issued 2024-12-01
  in force 2025-01-01
  article 1 "Article 4 reads: owned 50 % or more"

list sanctioned "Sanctioned parties"
  per REG-1 article 4

party big-corp "Big Corp"
  listed on sanctioned per REG-1 article 4 from 2020-01-01

parameter ownership "Share of a company held by a listed party from which it counts as owned"
  more than 50 % until 2024-12-31 per REG-1 article 4
  at least 50 % from 2025-01-01 per REG-2 article 1

rule owned-by-sanctioned "Exports to a company a sanctioned party owns are prohibited"
  per REG-1 article 4
  when consignee related to party listed on sanctioned within 2 hops via owner
       reaching ownership
  then prohibited

example "before 2025 a 50/50 joint venture is not owned more than 50 %"
  declaration on 2024-06-01 code 8505111000 to DE 10 kg consignee "JV GmbH" in DE
  company "JV GmbH" country DE parent "Big Corp 50 %; Other AG 50 %"
  expect no findings

example "from 2025 it is: 50 % or more"
  declaration on 2025-01-01 code 8505111000 to DE 10 kg consignee "JV GmbH" in DE
  company "JV GmbH" country DE parent "Big Corp 50 %; Other AG 50 %"
  expect prohibited by owned-by-sanctioned

example "30 % directly and 30 % through a wholly owned company add up to 60 %"
  declaration on 2024-06-01 code 8505111000 to DE 10 kg consignee "Sum GmbH" in DE
  company "Sum GmbH" country DE parent "Big Corp 30 %; Bigco Nederland BV 30 %; Other AG 40 %"
  company "Bigco Nederland BV" country NL parent "Big Corp"
  expect prohibited by owned-by-sanctioned

example "a company owned through a subsidiary is two hops up"
  declaration on 2024-06-01 code 8505111000 to DE 10 kg consignee "Grandchild GmbH" in DE
  company "Grandchild GmbH" country DE parent "Bigco Nederland BV 60 %"
  company "Bigco Nederland BV" country NL parent "Big Corp"
  expect prohibited by owned-by-sanctioned

example "30 % through a company Big Corp holds 40 % of does not count"
  declaration on 2025-02-01 code 8505111000 to DE 10 kg consignee "Sum GmbH" in DE
  company "Sum GmbH" country DE parent "Big Corp 30 %; Minority BV 30 %; Other AG 40 %"
  company "Minority BV" country NL parent "Big Corp 40 %; Other AG 60 %"
  expect no findings
"""

PARTIES = [{"name": "JV GmbH", "country": "DE", "parent": "Big Corp 50 %; Other AG 50 %"},
           {"name": "Sum GmbH", "country": "DE",
            "parent": "Big Corp 30 %; Bigco Nederland BV 30 %; Other AG 40 %"},
           {"name": "Bigco Nederland BV", "country": "NL", "parent": "Big Corp"}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ownership")
    (path / "demo.excon").write_text(RULEBOOK, encoding="utf-8")
    return path


def test_the_threshold_in_force_decides_with_shares_added_up(folder: Path) -> None:
    result = CliRunner().invoke(cli, ["test", str(folder)])
    assert result.exit_code == 0, result.output
    assert "5 passed, 0 failed" in result.output


@pytest.mark.parametrize("engine", ["sqlite", "duckdb", "postgres"])
def test_every_engine_finds_the_same_subsidiaries(folder: Path, engine: str,
                                                   request: pytest.FixtureRequest) -> None:
    on = request.getfixturevalue("postgres_dsn") if engine == "postgres" else engine
    rows = [{"id": f"d{n}", "declared_on": day, "exporter": "E", "consignee": who,
             "consignee_country": "DE", "destination_country": "DE", "hs_code": "8505111000",
             "description": "magnets", "quantity_kg": 10, "value_usd": 1000}
            for n, (day, who) in enumerate([("2024-06-01", "JV GmbH"), ("2025-01-01", "JV GmbH"),
                                            ("2024-06-01", "Sum GmbH")])]
    findings = Screener([folder]).screen(rows, parties=PARTIES, engine=on)
    assert {f.declaration_id for f in findings} == {"d1", "d2"}
    [summed] = [f for f in findings if f.declaration_id == "d2"]
    assert "Sum GmbH —owner 60 % (30 % directly, 30 % through Bigco Nederland BV)— Big Corp" \
        in summed.explanation
    assert "owners counted from ownership (more than 50 % from 2020-01-01 until 2024-12-31, " \
        "REG-1 article 4)" in summed.explanation


def test_parties_csv_states_owners_with_shares_and_refuses_impossible_ones(
        folder: Path) -> None:
    screener = Screener([folder])
    row = {"id": "d1", "declared_on": "2025-01-01", "exporter": "E", "consignee": "JV GmbH",
           "consignee_country": "DE", "destination_country": "DE", "hs_code": "8505111000",
           "description": "magnets", "quantity_kg": 10, "value_usd": 1000}
    for parent, reason in [("Big Corp 60 %; Other AG 50 %", "add up to 100 % at most, not 110 %"),
                           ("Big Corp 120 %", "above 0 and up to 100 %, not 120 %"),
                           ("JV GmbH 50 %", "a parent other than the party itself")]:
        with pytest.raises(ScreeningError, match=reason):
            screener.screen([row], parties=[{"name": "JV GmbH", "parent": parent}])


def test_a_threshold_must_be_an_ownership_share(tmp_path: Path) -> None:
    def errors(text: str) -> set[tuple[str, str]]:
        (tmp_path / "demo.excon").write_text(text, encoding="utf-8")
        return {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema())
                .diagnostics if d.severity == "error"}

    assert errors(RULEBOOK.replace("reaching ownership", "reaching ownershp")) == {
        ("E202", "there is no parameter called 'ownershp'")}
    (tmp_path / "demo.excon").write_text(RULEBOOK.replace("reaching ownership",
                                                          "reaching ownershp"))
    [typo] = dsl.load([tmp_path], declaration_schema()).diagnostics
    assert "ownership" in str(typo.hint)
    assert errors(RULEBOOK.replace("via owner\n", "via address\n")) == {
        ("E401", "'reaching ownership' sets an ownership threshold, but the search follows no "
                 "ownership links")}
    assert errors(RULEBOOK.replace("at least 50 % from", "at most 50 % from")) == {
        ("E401", "an ownership threshold is `at least` or `more than` a share, not `at most`")}
    assert errors(RULEBOOK.replace("more than 50 % until", "more than 50 kg until")) >= {
        ("E402", "an ownership threshold is a percentage; parameter 'ownership' has 50 kg")}
