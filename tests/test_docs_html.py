"""`excon docs`: the generated HTML document of a rulebook."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape

import dsl
from kb.cli import cli
from kb.documents.html import DocsError, render
from kb.store.schema import declaration_schema
from tests.conftest import RULEBOOKS

CN = RULEBOOKS / "cn-strategic-minerals"
TODAY = dt.date(2026, 11, 28)


@pytest.fixture(scope="module")
def html() -> str:
    text, name = render(CN, TODAY)
    assert name == "cn-strategic-minerals"
    return text


def test_every_instrument_rule_and_unverified_note_is_in_the_document(html: str) -> None:
    rb = dsl.load([CN], declaration_schema()).rulebook
    assert rb is not None
    for name in rb.instruments:
        assert f'id="instrument-{name}"' in html, name
    for name in rb.rules:
        assert f'id="rule-{name}"' in html, name
        assert f'href="#rule-{name}"' in html, name  # on the timeline
    for _kind, _entry, note, _span in rb.unverified:
        assert escape(note) in html, note
    for item in rb.items.values():
        assert escape(item.title.value) in html


def test_rules_read_in_plain_words_with_their_validity_and_examples(html: str) -> None:
    rule = html[html.index('id="rule-us-critical-minerals-ban"'):]
    rule = rule[:rule.index("</article>")]
    # in words: names read as their titles, facts as words
    assert ("Exports need a licence, in principle refused (presumption of denial) when the "
            "goods are Items MOFCOM-2024-46 clause 2 names: gallium, germanium, antimony, "
            "superhard, and (either the destination is in United States, or (the end user "
            "country is stated, and the end user country is in United States)).") in rule
    assert 'href="#instrument-MOFCOM-2024-46">MOFCOM-2024-46</a> clause 2' in rule
    assert "suspended</span> 2025-11-09 – 2026-11-27 (by MOFCOM-2025-72)" in rule
    assert "in force</span> 2026-11-28 –" in rule
    assert re.search(r"\d+ examples:", rule)


def test_the_timeline_shows_suspensions_and_what_came_back(html: str) -> None:
    row = html[html.index('href="#rule-us-critical-minerals-ban"'):]
    row = row[:row.index("</div></div>")]
    assert 'class="tl-seg in-force"' in row and 'class="tl-seg suspended"' in row
    changes = html[html.index("Changes, in date order"):html.index('id="rules"')]
    assert "2026-11-28</td><td>us-critical-minerals-ban back in force" in changes
    assert "2025-11-09</td><td>us-critical-minerals-ban suspended" in changes
    assert "2025-08-12</td><td>control-list entries of MOFCOM-2025-22 (12) lifted" in changes
    assert "2023-07" in html and "2026-07" in html  # the axis runs from 2023-07 to today


def test_provisions_list_the_rules_citing_them(html: str) -> None:
    ins = html[html.index('id="instrument-MOFCOM-2024-46"'):]
    ins = ins[:ins.index("</article>")]
    clause2 = ins[ins.index("<td>clause 2</td>"):]
    clause2 = clause2[:clause2.index("</tr>")]
    assert 'href="#rule-us-critical-minerals-ban"' in clause2


def test_the_cli_writes_one_self_contained_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["docs", str(CN), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "cn-strategic-minerals.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.split("<body>")[0]


def test_a_folder_of_several_rulebooks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match="expected one rulebook"):
        render(tmp_path)


def test_suspensions_that_lapsed_by_their_own_text_are_listed_to_check(html: str) -> None:
    section = html[html.index('<section id="to-check">'):html.index('<section id="unverified">')]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>"
                      r"<td>(.*?)</td></tr>", section)
    # each lapsed after the sources were checked (2025-11-30): its findings say so
    assert ("MOFCOM-2024-46 clause 2", "MOFCOM-2025-72", "2026-11-27", "2026-11-28",
            "lapsed-by-text") in rows
    assert ("listings under MOFCOM-2025-21", "MOFCOM-2025-0514, MOFCOM-2025-0812, "
            "MOFCOM-2025-1105", "2026-11-09", "2026-11-10", "lapsed-by-text") in rows
    assert ("MOFCOM-2025-55", "MOFCOM-2025-70", "2026-11-10", "2026-11-11",
            "lapsed-by-text") in rows
    assert "sources checked through 2025-11-30" in html
    # lifted for good, not lapsed: nothing to check
    assert not any(r[0] == "listings under MOFCOM-2025-22" for r in rows)
    # a suspension still running on the document's date is not listed
    early, _ = render(CN, dt.date(2026, 11, 1))
    assert "MOFCOM-2025-72" not in early[early.index('<section id="to-check">'):
                                          early.index('<section id="unverified">')]


def test_each_listing_announcement_shows_its_entries_measures_and_timeline(html: str) -> None:
    section = html[html.index('id="announcements"'):html.index("<th>Party</th>")]
    found = re.findall(r"<tr><td><code>[^<]*</code></td><td><a [^>]*>([^<]*)</a></td>\s*"
                       r"<td>(.*?)</td><td>(.*?)</td>\s*<td>(.*?)</td></tr>", section, re.S)
    rows = {ins: (entries, measures, re.sub(r"<[^>]+>", "", life))
            for ins, entries, measures, life in found}
    entries, measures, life = rows["MOFCOM-2025-21"]
    assert "High Point Aerotechnologies" in entries and measures == "dual-use-export-ban"
    assert "suspended 2025-05-14 – 2026-11-09" in life and "in force 2026-11-10 – onwards" in life
    entries, measures, life = rows["UEL-2025-6"]
    assert entries == "Illumina" and measures == "import-ban"
    assert "lifted 2025-11-10 – onwards (by MOFCOM-2025-1105)" in life
    assert "lifted 2025-08-12 – onwards (by MOFCOM-2025-0812)" in rows["MOFCOM-2025-22"][2]


def test_named_conclusions_are_listed_with_their_basis_and_the_rules_that_test_them() -> None:
    text, _ = render(RULEBOOKS / "us-ear-3c001", TODAY)
    part = text[text.index('id="conclusion-subject-to-the-ear"'):]
    part = part[:part.index("</article>")]
    assert "Holds when either (the export country is stated, and the export country is in " \
        "United States), or “A U.S.-origin item exported from another country” holds, or " \
        "“A foreign-made item whose controlled U.S.-origin content exceeds the de minimis " \
        "level for its destination” holds." in part
    assert 'href="#instrument-EAR-734">EAR-734</a> section 734.3(a)(1)' in part
    assert 'Tested by <a href="#rule-ear-3c001-ns1">ear-3c001-ns1</a>.' in part


def test_exceptions_ungrouped_items_and_ownership_are_shown(tmp_path: Path) -> None:
    """A rule's page lists its exceptions; an item in no group is listed with the others; a
    party's owner and share show beside its name."""
    from tests.test_outcomes import EXCEPTION

    (tmp_path / "demo.excon").write_text(EXCEPTION + """
party holding "Holding Corp."
  country US

party subsidiary "Subsidiary Ltd."
  country US
  owned by holding 60 %
""", encoding="utf-8")
    text, _ = render(tmp_path, TODAY)
    rule = text[text.index('id="rule-widget-licence"'):]
    rule = rule[:rule.index("</article>")]
    assert ('Exceptions: <a href="#rule-research-samples">research-samples</a> (exception, per '
            'LAW-1 article 2, when end_use mentions &#34;research&#34;).') in rule
    items = text[text.index('id="items"'):]
    assert 'id="group-ungrouped">Items in no group' in items and "Widget" in items
    assert "owned by holding (60 %)" in text


def test_every_condition_of_the_repository_reads_in_words() -> None:
    """No construct falls through to its syntax: every rule's, exception's and conclusion's
    condition in the repository's rulebooks reads without a node's name or a raw field."""
    from dsl import ast
    from dsl.check.names import iter_conditions
    from dsl.plain import plain

    rb = dsl.load([RULEBOOKS], declaration_schema()).rulebook
    kinds = set()
    for decl in [*rb.rules.values(), *rb.exceptions.values(), *rb.conclusions.values()]:
        when = ast.first_attr(decl, ast.When)
        if when is None:
            continue
        kinds |= {type(n).__name__ for n in iter_conditions(when.condition)}
        words = plain(when.condition, rb)
        unquoted = re.sub(r'"[^"]*"|“[^”]*”', "", words)
        assert not re.search(r"[A-Z][a-z]+\(|\b[a-z]+_[a-z_]+\b", unquoted), words
    assert {"ItemIn", "InSet", "Mentions", "Listed", "Related", "Comparison", "Reaches",
            "ConclusionRef", "CodeUnder", "IsMissing"} <= kinds
