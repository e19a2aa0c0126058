"""`mentions` is case-insensitive for every cased letter, the same on every engine: SQLite's
LOWER lowers ASCII only, DuckDB's all of Unicode, and "ÉTAIN ingots" once mentioned "étain" on
DuckDB alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dsl.names import mention_forms
from kb.cli import cli
from kb.screen import Screener

RULEBOOK = """rulebook demo "Words with accents"
  jurisdiction DE

instrument LAW-1
  title "A law"
  issued 2024-01-01
  in force 2024-01-01
  article 1 "Tin by any name"

terms tin-terms "Tin in French, German and Greek"
  words "étain", "zinnbrühe", "κασσίτερος"

rule tin-named "Goods described as tin"
  per LAW-1 article 1
  when description mentions tin-terms
  then risk low

example "upper-case accented letters are found"
  declaration on 2024-06-01 code 8001100000 to FR 10 kg description "ÉTAIN ingots"
  expect risk by tin-named

example "mixed case"
  declaration on 2024-06-01 code 8001100000 to DE 10 kg description "ZinnBRÜHE Reste"
  expect risk by tin-named

example "Greek capitals"
  declaration on 2024-06-01 code 8001100000 to GR 10 kg description "ΚΑΣΣΊΤΕΡΟΣ"
  expect risk by tin-named

example "other words are not"
  declaration on 2024-06-01 code 8001100000 to FR 10 kg description "ETAIN ingots"
  expect no findings
"""

DESCRIPTIONS = {"a": "ÉTAIN ingots", "b": "étain", "c": "ZinnBRÜHE Reste", "d": "ΚΑΣΣΊΤΕΡΟΣ",
                "e": "ETAIN ingots", "f": "tin"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mentions")
    (path / "demo.excon").write_text(RULEBOOK, encoding="utf-8")
    return path


def test_forms_cover_each_cased_letter_that_is_not_ascii() -> None:
    assert set(mention_forms("Étain")) == {"étain", "Étain"}
    assert set(mention_forms("κασσίτερος")) == {"κασσίτερος", "ΚΑΣΣΊΤΕΡΟΣ", "κασσίτεροσ",
                                                 "Κασσίτερος"}
    assert mention_forms("gallium") == ["gallium"] and mention_forms("镓") == ["镓"]


def test_the_examples_hold_on_sqlite_and_in_the_interpreter(folder: Path) -> None:
    result = CliRunner().invoke(cli, ["test", str(folder)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("engine", ["sqlite", "duckdb", "postgres"])
def test_every_engine_finds_the_same_texts(folder: Path, engine: str,
                                           request: pytest.FixtureRequest) -> None:
    on = request.getfixturevalue("postgres_dsn") if engine == "postgres" else engine
    rows = [{"id": i, "declared_on": "2024-06-01", "exporter": "E", "consignee": "C",
             "consignee_country": "FR", "destination_country": "FR", "hs_code": "8001100000",
             "description": text, "quantity_kg": 10, "value_usd": 300}
            for i, text in DESCRIPTIONS.items()]
    found = {f.declaration_id for f in Screener([folder]).screen(rows, engine=on)}
    assert found == {"a", "b", "c", "d"}
