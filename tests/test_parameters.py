"""Dated parameters: a threshold with its comparator, one value per period, each citing its
act; `FACT reaches NAME` tests the value in force on the judged date, on every engine and in
the interpreter (`excon test` runs each example on both)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import dsl
from kb.cli import cli
from kb.documents.html import render
from kb.screen import Screener
from kb.store.schema import declaration_schema

RULEBOOK = """rulebook demo "A rulebook with a dated threshold"
  jurisdiction DE

instrument REG-1
  title "A regulation"
  issued 2020-01-01
  in force 2020-01-01
  article 4 "Goods whose rare-earth share is above the threshold need a licence"

instrument REG-2
  title "An amending regulation"
  issued 2024-12-01
  in force 2025-01-01
  article 1 "The threshold becomes 10 %"

instrument REG-3
  title "A suspension"
  issued 2025-05-01
  in force 2025-06-01
  article 1 "The threshold of REG-2 is suspended for three months"

item magnet "Magnets"
  customs 8505111000
  per REG-1 article 4

parameter rare-earth-share "Rare-earth share of value above which a licence is needed"
  more than 25 % until 2024-12-31 per REG-1 article 4
  at least 10 % from 2025-01-01 per REG-2 article 1

rule magnet-licence "Magnets above the rare-earth threshold need a licence"
  per REG-1 article 4
  when item in magnet and re_content_pct reaches rare-earth-share
  then licence required

suspend REG-2 article 1
  per REG-3 article 1
  from 2025-06-01 until 2025-08-31

example "exactly 25 % is not more than 25 %"
  declaration on 2024-06-01 code 8505111000 to DE 10 kg with re_content_pct 25 %
  expect no unlicensed

example "25.5 % is more than 25 %"
  declaration on 2024-06-01 code 8505111000 to DE 10 kg with re_content_pct 25.5 %
  expect unlicensed by magnet-licence

example "from 2025-01-01 the threshold is at least 10 %, inclusive"
  declaration on 2025-01-01 code 8505111000 to DE 10 kg with re_content_pct 10 %
  expect unlicensed by magnet-licence

example "9.9 % is below the new threshold"
  declaration on 2025-01-01 code 8505111000 to DE 10 kg with re_content_pct 9.9 %
  expect no unlicensed

example "while REG-2 article 1 is suspended no value applies"
  declaration on 2025-06-01 code 8505111000 to DE 10 kg with re_content_pct 30 %
  expect no unlicensed

example "the day after the suspension the 10 % value applies again"
  declaration on 2025-09-01 code 8505111000 to DE 10 kg with re_content_pct 10 %
  expect unlicensed by magnet-licence

example "a missing share cannot be judged"
  declaration on 2025-02-01 code 8505111000 to DE 10 kg
  expect undetermined by magnet-licence missing re_content_pct
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parameters")
    (path / "demo.excon").write_text(RULEBOOK, encoding="utf-8")
    return path


def test_each_value_applies_in_its_period_by_its_comparator(folder: Path) -> None:
    result = CliRunner().invoke(cli, ["test", str(folder)])
    assert result.exit_code == 0, result.output
    assert "7 passed, 0 failed" in result.output


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_the_other_engines_judge_the_same(folder: Path, engine: str,
                                          request: pytest.FixtureRequest) -> None:
    on = request.getfixturevalue("postgres_dsn") if engine == "postgres" else engine
    rows = [{"id": f"d{n}", "declared_on": day, "exporter": "E", "consignee": "C",
             "consignee_country": "DE", "destination_country": "DE", "hs_code": "8505111000",
             "description": "magnets", "quantity_kg": 10, "value_usd": 1000,
             "re_content_pct": share}
            for n, (day, share) in enumerate([("2024-06-01", 25), ("2024-06-01", 25.5),
                                              ("2025-01-01", 10), ("2025-06-01", 30),
                                              ("2025-09-01", 10)])]
    screener = Screener([folder])
    expected = {f.declaration_id for f in screener.screen(rows)}
    assert expected == {"d1", "d2", "d4"}
    assert {f.declaration_id for f in screener.screen(rows, engine=on)} == expected
    [finding] = [f for f in screener.screen(rows) if f.declaration_id == "d2"]
    assert "re content pct reaches rare-earth-share (at least 10 % from 2025-01-01 until " \
        "2025-05-31, REG-2 article 1)" in finding.explanation


def test_the_documents_list_each_value_with_its_period_and_act(folder: Path) -> None:
    text, _ = render(folder, None)
    part = text[text.index('id="parameter-rare-earth-share"'):]
    assert "<li>more than 25 % from 2020-01-01 until 2024-12-31, REG-1 article 4</li>" in part
    assert "<li>at least 10 % from 2025-01-01 until 2025-05-31, REG-2 article 1</li>" in part
    assert "<li>at least 10 % from 2025-09-01, REG-2 article 1</li>" in part


def test_values_that_overlap_or_cite_nothing_or_mix_units_are_errors(tmp_path: Path) -> None:
    def errors(text: str) -> set[tuple[str, str]]:
        (tmp_path / "demo.excon").write_text(text, encoding="utf-8")
        return {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema())
                .diagnostics if d.severity == "error"}

    found = errors(RULEBOOK.replace(
        "more than 25 % until 2024-12-31 per REG-1 article 4",
        "more than 25 % until 2025-03-31 per REG-1 article 4\n  at most 40 kg from 2026-01-01"))
    assert ("E302", "two values of parameter 'rare-earth-share' apply on the same days (from "
                    "2025-01-01)") in found
    assert ("E205", "a value of parameter 'rare-earth-share' needs the act that sets it") in found
    assert ("E402", "the values of parameter 'rare-earth-share' are not of one kind (mass, "
                    "percent)") in found
    assert errors(RULEBOOK.replace("re_content_pct reaches", "quantity_kg reaches")) == {
        ("E402", "'quantity_kg' is a mass (kg) and cannot reach parameter 'rare-earth-share', "
                 "a percentage")}
