"""`excon explain`: why a declaration was, or was not, flagged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.build import build
from kb.cli import cli
from tests.conftest import RULEBOOKS

HEADER = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
          "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,licence_no\n")


def kb_with(tmp_path: Path, rows: str) -> Path:
    decls = tmp_path / "declarations.csv"
    decls.write_text(HEADER + rows, encoding="utf-8")
    db = tmp_path / "kb.db"
    build(db, [RULEBOOKS], decls)
    return db


def explain(db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["explain", *args, "--db", str(db), "--rulebooks",
                                      str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def g1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One gallium export to the US on 2025-12-01 (explain opens the file read-only)."""
    return kb_with(tmp_path_factory.mktemp("g1"), "G1,2025-12-01,Hunan Co.,Acme Inc.,US,,,US,"
                                                  "8112929010,gallium,50,20000,99.99,\n")


def test_why_a_declaration_was_flagged_and_not_flagged(g1: Path) -> None:
    db = g1
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    text = explain(db, "G1")
    ban = text.split("us-critical-minerals-ban —")[1].split("\n\n")[0]
    assert "in force: no — suspended by MOFCOM-2025-72 from 2025-11-09 until 2026-11-27" in ban
    assert ("(destination in usa or (end_user_country is not missing and end_user_country in "
            "usa)) → true") in ban
    assert "result: no finding" in ban
    licence = text.split("ga-ge-licence —")[1].split("\n\n")[0]
    assert "licence: none declared" in licence
    assert "result: unlicensed — Gallium metal (code 8112929010) to US on 2025-12-01" in licence
    listed = text.split("control-list-consignee —")[1].split("\n\n")[0]
    assert "end_user is missing: the rule says no finding" in listed
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # opened read-only


def test_as_of_another_date(g1: Path) -> None:
    text = explain(g1, "G1", "--as-of", "2025-01-15")
    ban = text.split("us-critical-minerals-ban —")[1].split("\n\n")[0]
    assert "in force: yes" in ban and "result: presumption-of-denial" in ban


def test_unknown_declaration_is_an_error(g1: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", "NOPE", "--db", str(g1)])
    assert result.exit_code == 1 and "there is no declaration 'NOPE'" in result.output


def test_an_indicator_is_explained_with_its_history_and_party_links(tmp_path: Path) -> None:
    """Windows look at the declarations before this one, and links at parties.csv: explain
    reads them from the knowledge base, and agrees with its checks."""
    rows = "".join(f"S{i},2024-03-0{i},Hunan Co.,Apex Materials GmbH,DE,,,DE,8112921010,"
                   f"germanium,200,300000,99.999,\n" for i in range(1, 4))
    rows += "O1,2024-03-02,Hunan Co.,Other GmbH,DE,,,DE,8112921010,germanium,200,300000,,\n"
    decls = tmp_path / "declarations.csv"
    decls.write_text(HEADER + rows, encoding="utf-8")
    parties = tmp_path / "parties.csv"
    parties.write_text("name,country,address,phone,parent\nHunan Co.,CN,1 Renmin Road,,\n"
                       "Apex Materials GmbH,DE,1 RENMIN ROAD,,\n", encoding="utf-8")
    db = tmp_path / "kb.db"
    build(db, [RULEBOOKS], decls, parties=parties)
    split = explain(db, "S3").split("split-consignments —")[1].split("\n\n")[0]
    assert "count of declarations within split-window with same exporter, consignee, group " \
           "reaches split-parts → true" in split
    # each parameter a step reads, with the value in force and the numbers it was held to
    assert "split-parts: at least 2 (in force on 2024-03-03); count of declarations within " \
           "split-window with same exporter, consignee, group = 3" in split
    assert "split-window: 45 days (in force on 2024-03-03)" in split
    assert "result: risk" in split and "group: 3;" in split and ": 600 kg" in split
    early = explain(db, "S1").split("split-consignments —")[1].split("\n\n")[0]
    assert "→ false" in early and "result: no finding" in early
    linked = explain(db, "S1").split("exporter-consignee-linked —")[1].split("\n\n")[0]
    assert "consignee related to exporter within link-depth hops via address, phone, parent " \
        "→ true" in linked
    assert "link-depth: 2 (in force on 2024-03-01)" in linked
    assert "Apex Materials GmbH —address— Hunan Co." in linked


def test_a_named_conclusion_is_a_step_with_its_citation_and_truth(tmp_path: Path) -> None:
    """The EAR rule tests `subject-to-the-ear holds`: explain shows the conclusion with its
    title, citation and truth, and the finding rests on its unverified act."""
    decls = tmp_path / "declarations.csv"
    decls.write_text(HEADER.rstrip("\n") + ",export_country\n"
                     "W1,2025-06-01,Wolfspeed,Infineon AG,DE,,,DE,3818000010,wafers,2,9000,,,US\n"
                     "W2,2025-06-01,Hunan Co.,Infineon AG,DE,,,DE,3818000010,wafers,2,9000,,,\n",
                     encoding="utf-8")
    db = tmp_path / "kb.db"
    build(db, [RULEBOOKS], decls)
    ear = explain(db, "W1").split("ear-3c001-ns1 —")[1].split("\n\n")[0]
    assert "subject-to-the-ear holds → true" in ear
    assert ("subject-to-the-ear: The goods are subject to the EAR: items in the United States, "
            "U.S.-origin items wherever located, and foreign-made items above de minimis "
            "(EAR-734 section 734.3(a)(1)) → true") in ear
    assert ("us-origin-abroad: A U.S.-origin item exported from another country (EAR-734 "
            "section 734.3(a)(2)) → false") in ear
    assert "result: unlicensed" in ear
    other = explain(db, "W2").split("ear-3c001-ns1 —")[1].split("\n\n")[0]
    assert "subject-to-the-ear: The goods are subject to the EAR" in other and "→ false" in other
    assert "result: no finding" in other
