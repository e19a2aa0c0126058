"""The licence outcomes: a presumption of denial and a case-by-case review are reported as such,
not as bans, and, like a licence requirement, give no finding when a licence covers the export.
Each example is judged by the compiled SQL and by the reference interpreter (`excon test`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from kb.cli import cli
from kb.screen import Screener
from tests.conftest import RULEBOOKS

EXTRA = '''
rule advanced-chips-review "Germanium for advanced chips: each application judged case by case"
  per ECL-2020 article 12
  from 2025-01-01
  when item in germanium
   and end_use mentions "14 nm"
  then case-by-case review

example "advanced-chips-review: no licence, reviewed case by case"
  declaration on 2025-06-01 code 8112921010 to KR 10 kg exporter "Yunnan Germanium Co."
    with end_use "14 nm logic"
  expect case-by-case by advanced-chips-review citing ECL-2020 article 12
  expect no prohibited by advanced-chips-review

example "advanced-chips-review: a licence granted after review covers it"
  declaration on 2025-06-01 code 8112921010 to KR 10 kg exporter "Yunnan Germanium Co."
    with end_use "14 nm logic" under licence L-KR-1
  licence L-KR-1 individual holder "Yunnan Germanium Co." items germanium to KR 50 kg
    from 2025-01-01 until 2025-12-31
  expect no case-by-case
  expect no unlicensed
'''


def test_case_by_case_and_presumption_of_denial_on_both_engines(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(RULEBOOKS / "cn-strategic-minerals", tmp_path / "cn"))
    (folder / "review.excon").write_text(EXTRA, encoding="utf-8")
    result = CliRunner().invoke(cli, ["test", str(folder)])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output


def test_screen_reports_a_presumption_of_denial_and_fails_on_it(tmp_path: Path) -> None:
    findings = Screener([RULEBOOKS / "cn-strategic-minerals"]).screen([{
        "id": "d1", "declared_on": "2025-01-15", "exporter": "Yunnan Gallium Co.",
        "consignee": "Pioneer Alloys Inc.", "consignee_country": "US",
        "destination_country": "US", "hs_code": "8112929010", "description": "gallium",
        "quantity_kg": 50, "value_usd": 20000}])
    ban = next(f for f in findings if f.rule == "us-critical-minerals-ban")
    assert (ban.outcome, ban.instrument, ban.provision) == (
        "presumption-of-denial", "MOFCOM-2024-46", "clause 2")
    assert "in principle not licensed (a presumption of denial)" in ban.explanation
    csv = tmp_path / "d.csv"
    csv.write_text("id,declared_on,exporter,consignee,consignee_country,end_user,"
                   "end_user_country,destination_country,hs_code,description,quantity_kg,"
                   "value_usd,purity_pct,licence_no,end_use,re_content_pct,export_country,"
                   "parameters\n"
                   "d1,2025-01-15,Yunnan Gallium Co.,Pioneer Alloys Inc.,US,,,US,8112929010,"
                   "gallium,50,20000,,,,,,\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["screen", str(csv), "--rulebooks", str(RULEBOOKS),
                                      "--fail-on", "presumption-of-denial"])
    assert result.exit_code == 1
    assert "presumption-of-denial" in result.output


EXCEPTION = """rulebook demo "An exception that reads an optional fact"
  jurisdiction DE

instrument LAW-1
  title "A law"
  issued 2024-01-01
  in force 2024-01-01
  article 1 "Widgets need a licence"
  article 2 "Except samples for research"

item widget "Widget"
  customs 8112921010
  per LAW-1 article 1

rule widget-licence "Widgets need a licence"
  per LAW-1 article 1
  when item in widget
  then licence required

exception research-samples "Samples for research institutes"
  excepts widget-licence
  per LAW-1 article 2
  when end_use mentions "research"

example "research-samples: stated as research, excepted"
  declaration on 2024-06-01 code 8112921010 to DE 1 kg with end_use "university research"
  expect no findings

example "research-samples: stated as industrial, not excepted"
  declaration on 2024-06-01 code 8112921010 to DE 1 kg with end_use "industrial"
  expect unlicensed by widget-licence

example "research-samples: no end use stated, so the exception may apply: undetermined"
  declaration on 2024-06-01 code 8112921010 to DE 1 kg
  expect undetermined by widget-licence
  expect no unlicensed by widget-licence
"""


def test_an_exception_whose_fact_is_missing_makes_the_finding_undetermined(
        tmp_path: Path) -> None:
    (tmp_path / "demo.excon").write_text(EXCEPTION, encoding="utf-8")
    result = CliRunner().invoke(cli, ["test", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "3 passed, 0 failed" in result.output
    row = {"id": "d1", "declared_on": "2024-06-01", "exporter": "E", "consignee": "C",
           "consignee_country": "DE", "destination_country": "DE", "hs_code": "8112921010",
           "description": "widgets", "quantity_kg": 1, "value_usd": 1500}
    for engine in ("sqlite", "duckdb"):
        [f] = Screener([tmp_path]).screen([row], engine=engine)
        assert f.outcome == "undetermined"
        assert f.explanation.endswith(
            "; cannot be judged: exception research-samples may apply, missing: end_use")
