"""Findings say what they rest on. On 2026-12-06 the US ban of MOFCOM-2024-46 clause 2, the
superhard items of MOFCOM-2025-55 and the Control List entries of MOFCOM-2025-21 apply again
only because their suspensions ended by their own text, after the CN rulebook's sources were
checked (2025-11-30): those findings are `lapsed-by-text`, with a caveat naming the act and
the day. The same findings before the suspensions are `settled` (or `unverified` when they rest
on a fact the rulebook marks so), in every output: screen, explain, Datasette, the API."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kb.build import build
from kb.cli import cli
from kb.screen import Finding, Screener
from kb.screen.explain import explain
from tests.conftest import RULEBOOKS

HEADER = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
          "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,licence_no,"
          "parameters\n")
ROWS = [
    # gallium to the US: the ban (clause 2) applies again from 2026-11-28
    "BAN-NOW,2026-12-06,Hunan Co.,Acme Inc,US,,,US,8112929010,gallium metal,50,20000,99.99,,",
    "BAN-THEN,2025-01-15,Hunan Co.,Acme Inc,US,,,US,8112929010,gallium metal,50,20000,99.99,,",
    # diamond micropowder: MOFCOM-2025-55 applies from 2026-11-11, by the lapse of No. 70
    "SUPERHARD-NOW,2026-12-06,Hunan Co.,Seoul Tools,KR,,,KR,7105102000,diamond micropowder,"
    "20,2000,,,particle_size=40 µm",
    # a Control List No. 21 entity: its measures apply again from 2026-11-10
    "LISTED-NOW,2026-12-06,Hunan Co.,High Point Aerotechnologies,US,,,US,8112929010,gallium metal,"
    "10,5000,99.99,,",
    "LISTED-THEN,2025-04-20,Hunan Co.,High Point Aerotechnologies,US,,,US,8112929010,gallium metal,"
    "10,5000,99.99,,",
]


@pytest.fixture(scope="module")
def declarations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("basis") / "declarations.csv"
    path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def findings(declarations: Path) -> dict[tuple[str, str], Finding]:
    found, _ = Screener([RULEBOOKS]).screen_files(declarations)
    return {(f.declaration_id, f.rule): f for f in found}


@pytest.fixture(scope="module")
def built(declarations: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("basis-kb") / "kb.db"
    build(db, [RULEBOOKS], declarations)
    return db


def test_findings_resting_on_a_lapse_say_so_and_name_the_act_and_day(
        findings: dict[tuple[str, str], Finding]) -> None:
    ban = findings["BAN-NOW", "us-critical-minerals-ban"]
    assert ban.basis == "lapsed-by-text"
    assert ban.caveat is not None and "MOFCOM-2025-72" in ban.caveat
    assert "2026-11-28" in ban.caveat and "2025-11-30" in ban.caveat
    superhard = findings["SUPERHARD-NOW", "superhard-licence"]
    assert (superhard.instrument, superhard.basis) == ("MOFCOM-2025-55", "lapsed-by-text")
    assert superhard.caveat is not None and "MOFCOM-2025-70" in superhard.caveat
    assert "2026-11-11" in superhard.caveat
    [listed] = [f for (d, _), f in findings.items() if d == "LISTED-NOW"
                and f.instrument == "MOFCOM-2025-21"]
    assert listed.basis == "lapsed-by-text" and listed.outcome == "prohibited"
    assert listed.caveat is not None and "listings under MOFCOM-2025-21" in listed.caveat
    assert "2026-11-10" in listed.caveat


def test_the_same_findings_before_any_lapse_are_settled_or_unverified(
        findings: dict[tuple[str, str], Finding]) -> None:
    ban = findings["BAN-THEN", "us-critical-minerals-ban"]
    assert (ban.basis, ban.caveat) == ("settled", None)
    [listed] = [f for (d, _), f in findings.items() if d == "LISTED-THEN"
                and f.instrument == "MOFCOM-2025-21"]
    # the announcement is marked unverified (not all of its 16 entities are in the sources)
    assert listed.basis == "unverified"
    assert listed.caveat is not None and listed.caveat.startswith(
        "instrument MOFCOM-2025-21 is marked unverified:")
    # cites the unified list MOFCOM-2024-51, whose gallium entry is not in the sources
    licence = findings["BAN-THEN", "ga-ge-licence"]
    assert (licence.instrument, licence.provision) == ("MOFCOM-2024-51", None)
    assert licence.basis == "unverified" and "MOFCOM-2024-51" in (licence.caveat or "")
    assert all(f.basis in ("settled", "lapsed-by-text", "unverified") for f in findings.values())
    assert all((f.basis == "settled") == (f.caveat is None) for f in findings.values())


def test_screen_prints_the_columns_counts_by_basis_and_warns_once(declarations: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["screen", str(declarations), "--rulebooks", str(RULEBOOKS),
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[-4:] == ["basis", "caveat", "rulebook", "jurisdiction"]
    assert {r["basis"] for r in rows} == {"settled", "lapsed-by-text", "unverified"}
    summary = [line for line in result.stderr.splitlines() if "finding(s):" in line]
    lapsed = sum(r["basis"] == "lapsed-by-text" for r in rows)
    assert len(summary) == 1 and f"{lapsed} lapsed-by-text" in summary[0]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len([w for w in warnings if "not settled" in w]) == 1
    assert len([w for w in warnings if "checked through" in w and "2025-11-30" in w]) == 1
    for fmt in ("json", "jsonl"):
        out = runner.invoke(cli, ["screen", str(declarations), "--rulebooks", str(RULEBOOKS),
                                  "--format", fmt]).stdout
        found = json.loads(out) if fmt == "json" else [json.loads(x) for x in out.splitlines()]
        assert [(r["basis"], r["caveat"] or "") for r in found] == \
            [(r["basis"], r["caveat"]) for r in rows], fmt


def test_before_the_sources_date_nothing_is_said_of_the_sources(tmp_path: Path) -> None:
    path = tmp_path / "declarations.csv"
    path.write_text(HEADER + ROWS[1] + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["screen", str(path), "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    assert "checked through" not in result.stderr


def test_explain_says_the_rule_is_in_force_by_a_lapse_and_what_the_finding_rests_on(
        built: Path) -> None:
    text = explain(built, "BAN-NOW", rulebooks=(RULEBOOKS,)).text()
    ban = text.split("us-critical-minerals-ban —")[1].split("\n\n")[0]
    assert "in force: yes" in ban and "by the lapse of a suspension: MOFCOM-2025-72" in ban
    assert "basis: lapsed-by-text — MOFCOM-2025-72 suspended MOFCOM-2024-46 clause 2" in ban
    before = explain(built, "BAN-THEN", rulebooks=(RULEBOOKS,)).text().split(
        "us-critical-minerals-ban —")[1].split("\n\n")[0]
    assert "basis: settled" in before and "by the lapse" not in before


@pytest.fixture(scope="module")
def ds(built: Path) -> Iterator[Any]:
    from kb.publish.auth import hash_password
    from kb.publish.serve import datasette_app, snapshot

    with snapshot(built) as served:
        yield datasette_app(served, {"analyst": hash_password("a long enough password")})


def test_datasette_findings_have_a_basis_facet_badges_and_the_caveat(ds: Any) -> None:
    import asyncio

    def get(path: str) -> Any:
        cookies = {"ds_actor": ds.excon_auth.session_cookie(ds, "analyst")}
        return asyncio.run(ds.client.get(path, cookies=cookies))

    page = get("/kb/finding_details?_facet=basis")
    assert page.status_code == 200
    assert 'class="excon-basis excon-basis-lapsed-by-text"' in page.text
    facets = get("/kb/finding_details.json?_facet=basis&_size=0").json()
    counts = {r["value"]: r["count"] for r in facets["facet_results"]["basis"]["results"]}
    assert counts["lapsed-by-text"] >= 3 and counts.get("settled", 0) >= 1
    declaration = get("/kb/declarations/BAN-NOW")
    assert "excon-basis-lapsed-by-text" in declaration.text
    assert "To check:</strong> MOFCOM-2025-72 suspended MOFCOM-2024-46 clause 2" in \
        declaration.text


def test_the_pages_show_what_came_back_by_lapse_and_when(ds: Any) -> None:
    import asyncio
    import html

    def page(path: str) -> str:
        cookies = {"ds_actor": ds.excon_auth.session_cookie(ds, "analyst")}
        response = asyncio.run(ds.client.get(path, cookies=cookies))
        assert response.status_code == 200, path
        return html.unescape(response.text)

    home = page("/")
    assert "MOFCOM-2024-46 clause 2 applies again: the suspension (MOFCOM-2025-72) ended by " \
           "its own text on 2026-11-27" in home
    assert "MOFCOM-2025-55, MOFCOM-2025-56, MOFCOM-2025-57, MOFCOM-2025-58, MOFCOM-2025-61, " \
           "MOFCOM-2025-62 apply again" in home
    # the pages show how far the sources reach
    assert "cn-strategic-minerals checked through 2025-11-30" in re.sub(r"<[^>]+>", "", home)
    assert "/instruments/None" not in home  # a change of several acts links none of them
    # each change once, however many targets its amendment names
    assert home.count("lift listings under UEL-2025-5, listings under UEL-2025-6") <= 1
    instrument = page("/kb/instruments/MOFCOM-2024-46")
    assert "MOFCOM-2024-46 clause 2 applies again from 2026-11-28" in instrument
    assert "after its rulebook's sources were checked (2025-11-30)" in instrument
    rule = page("/kb/rules/us-critical-minerals-ban")
    assert "In force again from 2026-11-28" in rule and "excon-basis-lapsed-by-text" in rule
    assert "In force again" not in page("/kb/rules/ga-ge-licence")


def test_an_example_can_say_what_a_finding_rests_on_and_fails_when_it_does_not(
        tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(RULEBOOKS / "cn-strategic-minerals", tmp_path / "cn"))
    (folder / "wrong.excon").write_text(
        'example "us-critical-minerals-ban: wrongly said to be settled after the lapse"\n'
        "  declaration on 2026-12-06 code 8112929010 to US 50 kg\n"
        "  expect presumption-of-denial by us-critical-minerals-ban resting on settled\n",
        encoding="utf-8")
    result = CliRunner().invoke(cli, ["test", str(folder)])
    assert result.exit_code == 1
    assert "wrong.excon:3" in result.output and "resting on settled" in result.output
    (folder / "wrong.excon").write_text(
        'example "us-critical-minerals-ban: a basis that does not exist"\n'
        "  declaration on 2026-12-06 code 8112929010 to US 50 kg\n"
        "  expect presumption-of-denial by us-critical-minerals-ban resting on certain\n",
        encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 1
    assert "'certain' is not a basis" in result.output and "lapsed-by-text" in result.output
