"""Chinese as well as English: the rulebook's Chinese wording (`title zh`, `then … zh`,
`explain zh`), findings' explanations in Chinese (`excon screen --lang zh`, `kb.i18n`), and
the catalogue of the pages' phrases."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import dsl
from kb.cli import cli
from kb.i18n import ChineseWords, explanation_zh
from kb.i18n.explain import NOTES
from kb.store.schema import declaration_schema
from tests.conftest import ROOT

RULEBOOK = '''rulebook zt "Chinese wording"
  jurisdiction CN

countries usa "United States"
  members US

instrument A-1
  title "An act"
  title zh "一号公告"
  issuer MOFCOM
  issued 2024-01-01
  in force 2024-01-01
  clause 1 "Gallium needs a licence" zh "镓须许可"

item gallium "Gallium"
  zh "镓"
  customs 8112929010
  per A-1 clause 1

rule ga-licence "Gallium needs a licence"
  title zh "镓出口须经许可"
  per A-1 clause 1
  when item in gallium
  then licence required zh "须申请许可证"

rule ga-us "Gallium to the US"
  title zh "对美出口镓"
  per A-1 clause 1
  when item in gallium
   and destination in usa
  then prohibited
  overrides ga-licence
  explain "{item_title} to {destination_country}: banned"
  explain zh "{item_title}不得出口至{destination_country}"
'''


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "zt.excon"
    path.write_text(RULEBOOK, encoding="utf-8")
    return path


def test_the_chinese_wording_is_checked_formatted_and_kept(book: Path, tmp_path: Path) -> None:
    result = dsl.load([book], declaration_schema())
    assert result.ok, result.errors
    runner = CliRunner()
    assert runner.invoke(cli, ["fmt", "--check", str(book)]).exit_code == 0  # canonical as is
    once = '  title zh "对美出口镓"\n'
    twice = RULEBOOK.replace(once, once + '  title zh "又一个"\n')
    (tmp_path / "twice.excon").write_text(twice, encoding="utf-8")
    done = runner.invoke(cli, ["check", str(tmp_path / "twice.excon")])
    assert done.exit_code == 1 and "title zh" in done.output
    bad = RULEBOOK.replace("不得出口至{destination_country}", "不得出口至{where_to}")
    (tmp_path / "twice.excon").write_text(bad, encoding="utf-8")
    done = runner.invoke(cli, ["check", str(tmp_path / "twice.excon")])
    assert done.exit_code == 1 and "E407" in done.output  # a placeholder checked as in English
    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["build", str(book), "--db", str(db)]).exit_code == 0
    rows = {r[0]: r[1:] for r in sqlite3.connect(db).execute(
        "SELECT name, title_zh, outcome_zh, explain_zh FROM rules")}
    assert rows["ga-licence"] == ("镓出口须经许可", "须申请许可证", None)
    assert rows["ga-us"] == ("对美出口镓", None, "{item_title}不得出口至{destination_country}")


def test_screen_lang_zh_writes_the_explanations_in_chinese(book: Path, tmp_path: Path) -> None:
    declarations = tmp_path / "d.csv"
    declarations.write_text(
        "id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
        "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,licence_no\n"
        "d1,2024-03-01,A Co,B Co,JP,,,JP,8112929010,gallium,10,100,,\n"
        "d2,2024-03-01,A Co,C Co,US,,,US,8112929010,gallium,10,100,,\n", encoding="utf-8")
    runner = CliRunner()
    english = runner.invoke(cli, ["screen", str(declarations), "--rulebooks", str(book),
                                  "--format", "json"])
    chinese = runner.invoke(cli, ["screen", str(declarations), "--rulebooks", str(book),
                                  "--format", "json", "--lang", "zh"])
    assert english.exit_code == chinese.exit_code == 0, chinese.output
    en = {f["declaration_id"]: f for f in json.loads(english.stdout)}
    zh = {f["declaration_id"]: f for f in json.loads(chinese.stdout)}
    assert en["d1"]["explanation"].startswith("Gallium (code 8112929010) to JP on 2024-03-01")
    # the standard sentence from the item's Chinese name, the title and the outcome's wording,
    # the act's provision in Chinese, the licence note in its Chinese form
    assert zh["d1"]["explanation"] == (
        "镓（海关编码 8112929010）于 2024-03-01 出口至 JP：镓出口须经许可，须申请许可证"
        "（A-1 第1款）；许可证：未申报")
    assert zh["d2"]["explanation"].startswith("镓不得出口至US")  # the rule's explain zh
    # everything but the explanation is the same
    assert {k: v for k, v in zh["d1"].items() if k != "explanation"} == \
        {k: v for k, v in en["d1"].items() if k != "explanation"}


def test_screen_stdin_lang_zh_answers_each_line_in_chinese(book: Path) -> None:
    line = json.dumps({"id": "d1", "declared_on": "2024-03-01", "hs_code": "8112929010",
                       "description": "gallium", "quantity_kg": "10", "value_usd": "100",
                       "exporter": "A Co", "consignee": "B Co", "consignee_country": "JP",
                       "destination_country": "JP"})
    done = CliRunner().invoke(cli, ["screen", "--stdin", "--rulebooks", str(book), "--lang",
                                    "zh"], input=line + "\n")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert [f["explanation"] for f in answer["findings"]] == [
        "镓（海关编码 8112929010）于 2024-03-01 出口至 JP：镓出口须经许可，须申请许可证"
        "（A-1 第1款）；许可证：未申报"]


def test_every_note_of_the_demo_findings_has_its_chinese_form(demo_kb: Path) -> None:
    """Each '; …' note the compiler wrote on 3,000 demo declarations' findings is in one of
    the standard forms `kb.i18n` puts in Chinese; every rule's sentence is read back."""
    con = sqlite3.connect(demo_kb)
    con.row_factory = sqlite3.Row
    words = ChineseWords.from_rows([dict(r) for r in con.execute("SELECT * FROM rules")],
                                   [dict(r) for r in con.execute("SELECT * FROM items")])
    findings = con.execute("SELECT rule, explanation FROM findings").fetchall()
    assert len(findings) > 100
    kinds = set()
    for f in findings:
        zh = explanation_zh(words, f["rule"], f["explanation"])
        assert zh != f["explanation"] and not re.search(r"; |\bcannot be judged\b|"
                                                        r"\bwithin \d+ days\b", zh), zh
        for pattern, _ in NOTES:
            if pattern.search(f["explanation"]):
                kinds.add(pattern.pattern[:20])
    assert len(kinds) >= 6  # licence, windows, listed parties, first seen, mentions, links


def test_every_phrase_the_pages_mark_has_its_chinese() -> None:
    """The catalogue has the Chinese of every phrase the templates mark `_("…")`, of every
    stored query's title and description, search section and decision, and nothing else."""
    from kb.publish.datasette.search_page import SECTIONS
    from kb.publish.decisions import LABELS
    from kb.publish.metadata import dashboards, stored_queries

    templates = ROOT / "kb" / "publish" / "datasette" / "templates"
    marked = {m.group(2) for p in templates.glob("*.html")
              for m in re.finditer(r"""_\((["'])(.+?)\1\)""", p.read_text(encoding="utf-8"))}
    compiled = dsl.load([ROOT / "rulebooks"], declaration_schema()).compiled
    assert compiled is not None
    marked |= {q[k] for q in stored_queries(compiled).values() for k in ("title", "description")
               if q.get(k)}
    marked |= {title for title, _, _ in SECTIONS} | set(LABELS.values())  # shown as _(name)
    for board in dashboards("kb").values():  # the findings dashboard's words
        marked |= {board["title"], board["description"]}
        marked |= {c["title"] for c in board["charts"].values()}
        marked |= {f["name"] for f in board["filters"].values()}
    catalogue = json.loads((ROOT / "kb" / "i18n" / "zh.json").read_text(encoding="utf-8"))
    assert len(marked) > 30, "the templates mark no phrase"
    assert sorted(marked - set(catalogue)) == []
    assert sorted(set(catalogue) - marked) == []  # and nothing the pages no longer use
    assert all(re.search(r"[\u4e00-\u9fff]", zh) for zh in catalogue.values())
