"""Diagnostics for the slips policy staff make, with the hint that leads to the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import dsl
from kb.store.schema import declaration_schema
from tests.conftest import DATA

HEAD = """rulebook demo "Demo"
  jurisdiction CN

instrument LAW-1
  title "A law"
  issued 2024-01-01
  in force 2024-01-01
  article 1 "Widgets"

item widget "Widget"
  customs {code}
  per LAW-1 article 1

rule widget-ban "No widgets to the US"
  per LAW-1 article 1
  when item in widget and destination_country = "US"
  then prohibited

example "a widget"
  declaration on 2024-03-01 code 8112929010 to {country} 10 kg
  expect {outcome} by widget-ban
"""


def diagnose(tmp_path: Path, code: str = "8112929010", country: str = "US",
             outcome: str = "prohibited") -> list[tuple[str, str, str | None]]:
    (tmp_path / "demo.excon").write_text(
        HEAD.format(code=code, country=country, outcome=outcome), encoding="utf-8")
    result = dsl.load([tmp_path], declaration_schema())
    return [(d.code, d.message, d.hint) for d in result.diagnostics]


def test_the_slips_checked_here_are_otherwise_clean(tmp_path: Path) -> None:
    assert diagnose(tmp_path) == []


@pytest.mark.parametrize(("code", "digits"), [("811292901", 9), ("8112.929", 7),
                                              ("81129290100", 11)])
def test_a_customs_code_of_the_wrong_length_says_how_many_digits_codes_have(
        tmp_path: Path, code: str, digits: int) -> None:
    # (the item is then not declared, and the rule's reference to it is reported too)
    [(found, message, hint)] = [d for d in diagnose(tmp_path, code=code) if d[0] != "E202"]
    assert found == "E405"
    assert message == (f"'{code}' is not a customs code: customs codes have 6, 8 or 10 digits "
                       f"(dots allowed), and this one has {digits}")
    assert hint is not None and "10 digits" in hint


@pytest.mark.parametrize(("country", "suggested"), [
    ("UK", "'GB' (United Kingdom)"), ("USA", "'US' (United States)"),
    ("Germany", "'DE' (Germany)"), ("DEU", "'DE' (Germany)")])
def test_a_country_written_another_way_gets_its_iso_code(tmp_path: Path, country: str,
                                                         suggested: str) -> None:
    [(found, message, hint)] = diagnose(tmp_path, country=country)
    assert (found, message) == ("E405", f"'{country}' is not an ISO 3166 country code")
    assert hint is not None and hint.startswith(f"did you mean {suggested}?")


def test_a_misspelled_outcome_gets_the_right_spelling(tmp_path: Path) -> None:
    [(found, message, hint)] = diagnose(tmp_path, outcome="unlicenced")
    # the likely fix leads; what the grammar accepts there follows in the hint
    assert found == "E101" and message.endswith("did you mean 'unlicensed'?")
    assert hint is not None and hint.startswith("expected one of")


def test_follow_on_errors_are_left_out_and_hints_come_first(tmp_path: Path) -> None:
    """A misspelt declaration keyword still declares its name (no error for each reference
    to it); days that end before they start are E302 alone (not also E303); a misspelt
    keyword's or unit's spelling leads the message."""
    tour = (DATA / "tour.excon").read_text(encoding="utf-8")

    def errors(text: str) -> list[tuple[str, str]]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        (folder / "tour.excon").write_text(text, encoding="utf-8")
        shutil.copy(DATA / "tour-countries.excon", folder)
        return [(d.code, d.message) for d in dsl.load([folder], declaration_schema()).errors]

    assert errors(tour.replace('rule us-ban "', 'rul us-ban "')) == [
        ("E101", "unexpected 'rul' here; did you mean 'rule'?")]
    assert [c for c, _ in errors(tour.replace(
        "from 2025-11-09 until 2026-11-27\n\nsuspend listings",
        "from 2026-11-09 until 2025-11-27\n\nsuspend listings"))] == ["E302"]
    assert errors(tour.replace("  when item in us-ban-minerals", "  wehn item in us-ban-minerals")
                  ) == [("E101", "unexpected 'wehn' here; did you mean 'when'?")]
    assert errors(tour.replace("quantity < 1 kg", "quantity < 1 kgs")) == [
        ("E101", "unexpected 'kgs' here; did you mean 'kg'?")]


def test_empty_folders_and_files_are_warned_about(tmp_path: Path) -> None:
    empty = tmp_path / "notes"
    empty.mkdir()
    [w] = dsl.load([empty], declaration_schema()).diagnostics
    assert (w.code, w.severity) == ("W001", "warning") and "holds no rulebook file" in w.message
    (empty / "draft.excon").write_text("# to do\n", encoding="utf-8")
    [w] = dsl.load([empty], declaration_schema()).diagnostics
    assert (w.code, w.message, w.span.file.endswith("draft.excon")) == (
        "W002", "the file declares nothing", True)


def test_excon_test_fails_when_there_is_no_example_to_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kb.cli import cli

    result = CliRunner().invoke(cli, ["test", str(tmp_path)])
    assert result.exit_code == 1 and "nothing was tested" in result.output


@pytest.mark.parametrize(("text", "named", "advice"), [
    ('title “A law”', "curly quote '“'", "straight double quotes"),
    ("title \u3000\"A law\"", "full-width space (U+3000)", "ordinary space"),
])
def test_characters_from_word_processors_and_chinese_keyboards_are_named(
        tmp_path: Path, text: str, named: str, advice: str) -> None:
    (tmp_path / "law.excon").write_text(
        f'instrument LAW-1\n  {text}\n  issued 2024-01-01\n', encoding="utf-8")
    [d] = dsl.load([tmp_path], declaration_schema()).diagnostics
    assert d.code == "E102" and d.message.startswith(f"unexpected {named} here")
    assert d.hint is not None and advice in d.hint


def test_a_chinese_name_says_names_are_ascii(tmp_path: Path) -> None:
    (tmp_path / "item.excon").write_text('item 镓 "Gallium"\n', encoding="utf-8")
    [d] = dsl.load([tmp_path], declaration_schema()).diagnostics
    assert d.message == "unexpected Chinese character '镓' here; expected a name"
    assert d.hint is not None and 'zh "…"' in d.hint


def test_a_flood_of_errors_is_described_up_to_a_hundred_and_counted(tmp_path: Path) -> None:
    """5 MB of garbage, or one misspelled line repeated, gives a screenful: the first 100
    errors with their hints, then how many more there are; the summary counts them all. (How
    long it takes is measured by bench/frontend.py, not asserted here.)"""
    import random
    import re

    from click.testing import CliRunner

    from dsl.diagnostics import MAX_ERRORS
    from kb.cli import cli

    rng = random.Random(5)
    cases = {
        "garbage.excon": "".join(rng.choice('abcxyz 0123"#()=<>-.,:\n\t镓“') for _ in
                                 range(5_000_000)).encode()[:5_000_000].decode("utf-8",
                                                                               "ignore"),
        "repeated.excon": 'rul us-ban "Gallium to the US"\n' * 5_000,
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(cli, ["check", str(path)])
        assert result.exit_code == 1
        out = result.output
        described = re.findall(r": error\[E\d{3}\]: ", out)
        assert len(described) == MAX_ERRORS, name
        more = re.search(r"… and ([\d,]+) more error\(s\), not shown", out)
        assert more is not None, out[-500:]
        hidden = int(more.group(1).replace(",", ""))
        assert hidden > 0
        assert out.strip().endswith(f"{MAX_ERRORS + hidden} error(s), 0 warning(s)"), name
    repeated = CliRunner().invoke(cli, ["check", str(tmp_path / "repeated.excon")]).output
    assert repeated.count("did you mean 'rule'?") == MAX_ERRORS
    assert "more error(s), not shown" in repeated and "4,900 more" in repeated


CONCLUSIONS = """rulebook demo "Demo"
  jurisdiction CN

instrument LAW-1
  title "A law"
  issued 2024-01-01
  in force 2024-01-01
  article 1 "Widgets"

item widget "Widget"
  customs 8112929010
  per LAW-1 article 1

conclusion to-the-us "Goods for the United States"
  per LAW-1 article 1
  when destination in US or end_user_country in US

conclusion circular-a "One half of a circle"
  per LAW-1 article 1
  when circular-b holds

conclusion circular-b "The other half"
  per LAW-1 article 1
  when circular-a holds and destination in US

conclusion uncited "No legal basis"
  when destination in US

rule widget-ban "No widgets to the US"
  per LAW-1 article 1
  when item in widget and to-the-uss holds
  then prohibited
"""


def test_conclusions_are_checked_by_name_basis_and_circles(tmp_path: Path) -> None:
    (tmp_path / "demo.excon").write_text(CONCLUSIONS, encoding="utf-8")
    found = [(d.code, d.message, d.hint) for d in
             dsl.load([tmp_path], declaration_schema()).diagnostics if d.severity == "error"]
    assert ("E202", "there is no conclusion called 'to-the-uss'", "did you mean 'to-the-us'?") \
        in found
    circles = [m for c, m, _ in found if c == "E208"]
    assert "conclusion 'circular-a' rests on itself (circular-a → circular-b → circular-a)" \
        in circles
    assert ("E205", "conclusion 'uncited' needs a citation (per INSTRUMENT …)", None) in found


LISTINGS = """rulebook demo "Demo"
  jurisdiction CN

instrument LIST-2026-1
  title "A listing announcement"
  issued 2026-03-01
  in force 2026-03-01
  entry 1 "Acme is listed"

list control-list "Control list"
  per LIST-2026-1

party acme "Acme Corp."
  country US
  listed on control-list per LIST-2026-1 entry 1 from 2026-03-01
  listed on control-list per LIST-2026-1 from 2026-03-01

party early "Early Corp."
  country US
  listed on control-list per LIST-2026-1 from 2016-03-01
"""


def test_a_party_listed_twice_by_one_announcement_or_before_it_is_an_error(
        tmp_path: Path) -> None:
    """Both passed `check` and then crashed or misled: the second line broke every command
    that builds the knowledge base (a UNIQUE constraint), the early one cited a 2026
    announcement for 2020 findings."""
    (tmp_path / "demo.excon").write_text(LISTINGS, encoding="utf-8")
    found = {(d.code, d.message, d.span.line) for d in
             dsl.load([tmp_path], declaration_schema()).diagnostics if d.severity == "error"}
    assert found == {
        ("E201", "'acme' is listed on control-list by LIST-2026-1 twice", 16),
        ("E304", "this listing applies from 2016-03-01, before LIST-2026-1, which makes it, "
                 "came into force on 2026-03-01", 20)}


def test_a_single_valued_detail_given_twice_is_an_error(tmp_path: Path) -> None:
    """A second `number` line, or two `per` lines on one rule, were silently accepted (the
    first one won)."""
    text = HEAD.format(code="8112929010", country="US", outcome="prohibited").replace(
        '  title "A law"\n', '  title "A law"\n  number "1/2024"\n  number "2/2024"\n').replace(
        "rule widget-ban \"No widgets to the US\"\n  per LAW-1 article 1\n",
        "rule widget-ban \"No widgets to the US\"\n  per LAW-1 article 1\n  per LAW-1\n")
    (tmp_path / "demo.excon").write_text(text, encoding="utf-8")
    found = {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema()).diagnostics
             if d.severity == "error"}
    assert found == {("E206", "'number' is given more than once"),
                     ("E206", "'per' is given more than once")}
