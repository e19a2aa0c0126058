"""A hostile CSV corpus, generated here (no binary files are committed): each bad row is
rejected with its exact line and the reason, the other rows load, and only a file that cannot
be split into rows fails whole, naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from kb.cli import cli
from kb.inputs.csv_files import CSV_FIELD_LIMIT, MAX_FIELD
from kb.inputs.load import load_csv
from kb.inputs.report import LoadError
from kb.store.tables import MIGRATIONS
from tests.conftest import RULEBOOKS

HEADER = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
          "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
          "licence_no\n")


def row(n: int, description: str = "gallium ingots", declared_on: str = "2025-01-15") -> str:
    return (f"D{n},{declared_on},Hunan Antimony Co.,Acme Inc.,US,,,US,8112929010,"
            f"{description},50,21000,99.99,\n")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "kb.db")
    MIGRATIONS.apply(database)
    return database


def load(db: Database, tmp_path: Path, body: bytes, **kwargs: object) -> tuple[
        list[str], list[tuple[int, str, str]]]:
    f = tmp_path / "declarations.csv"
    f.write_bytes(HEADER.encode() + body)
    load_csv(db, "declarations", f, **kwargs)  # type: ignore[arg-type]
    ids = [r["id"] for r in db["declarations"].rows_where(order_by="rowid")]
    rejected = [(r["line"], r["column"], r["expected"])
                for r in db["rejected_rows"].rows_where(order_by="id")]
    return ids, rejected


def test_invalid_utf8_rejects_its_row_alone(db: Database, tmp_path: Path) -> None:
    body = (row(1) + row(2, "M\xfcller ingots") + row(3)).encode("latin-1")
    ids, rejected = load(db, tmp_path, body)
    assert ids == ["D1", "D3"]
    assert rejected == [(3, "description", "UTF-8 text (this field has bytes that are not "
                                           "UTF-8)")]
    kept = next(db["rejected_rows"].rows)
    assert kept["value"] == "M\ufffdller ingots"  # stored, with the bad byte marked
    assert json.loads(kept["row"])["id"] == "D2"


def test_a_field_over_the_parser_limit_rejects_its_row_and_lines_stay_right(
        db: Database, tmp_path: Path) -> None:
    huge = "x" * (CSV_FIELD_LIMIT + 70_000)  # beyond Python's csv limit (131,072) too
    body = (row(1) + row(2, f'"{huge}"') + row(3) + row(4, '"two\nlines"') + row(5)
            + row(6, declared_on="2025-02-30")).encode()
    ids, rejected = load(db, tmp_path, body)
    assert ids == ["D1", "D3", "D4", "D5"]
    assert rejected[0][0] == 3 and "field larger than field limit" in rejected[0][2]
    assert rejected[1] == (8, "declared_on", "a real calendar date YYYY-MM-DD")


def test_a_long_field_is_rejected_with_its_length(db: Database, tmp_path: Path) -> None:
    body = (row(1, "y" * (MAX_FIELD + 1)) + row(2, "y" * MAX_FIELD)).encode()
    ids, rejected = load(db, tmp_path, body)
    assert ids == ["D2"]
    assert rejected == [(2, "description", f"at most {MAX_FIELD:,} characters")]
    assert f"({MAX_FIELD + 1:,} characters)" in next(db["rejected_rows"].rows)["value"]


def test_a_stray_quote_rejects_its_row(db: Database, tmp_path: Path) -> None:
    body = (row(1) + row(2, '"gallium" ingots') + row(3)).encode()
    ids, rejected = load(db, tmp_path, body)
    assert ids == ["D1", "D3"]
    assert rejected[0][:2] == (3, "(row)") and "expected after" in rejected[0][2]


def test_an_unterminated_quote_fails_the_file_naming_its_line(db: Database,
                                                             tmp_path: Path) -> None:
    body = (row(1) + row(2) + row(3, '"never closed') + row(4)).encode()
    with pytest.raises(LoadError, match=r"declarations.csv:4: the row that starts on line 4 "
                                        r"opens a quote that is never closed"):
        load(db, tmp_path, body)
    assert db["declarations"].count == 0 and db["rejected_rows"].count == 0


def test_blank_lines_crlf_a_bom_and_wrong_widths(db: Database, tmp_path: Path) -> None:
    body = ("\ufeff" + HEADER + row(1) + "\n" + row(2).replace("\n", "\r\n")
            + "D3,2025-01-15,too,few\n" + row(4)).encode()
    f = tmp_path / "declarations.csv"
    f.write_bytes(body)
    report = load_csv(db, "declarations", f)
    assert [r["id"] for r in db["declarations"].rows_where(order_by="rowid")] == [
        "D1", "D2", "D4"]
    assert report.rejected_rows == 1 and report.problems[0].line == 5


def test_nul_and_control_characters_are_rejected(db: Database, tmp_path: Path) -> None:
    body = (row(1, "gal\x00lium") + row(2, "bell\x07") + row(3)).encode()
    ids, rejected = load(db, tmp_path, body)
    assert ids == ["D3"]
    assert [(line, column) for line, column, _ in rejected] == [(2, "description"),
                                                                (3, "description")]


def test_declarations_dated_after_today_warn_or_are_rejected(db: Database,
                                                             tmp_path: Path) -> None:
    body = (row(1, declared_on="2025-01-15") + row(2, declared_on="2031-05-01")).encode()
    f = tmp_path / "declarations.csv"
    f.write_bytes(HEADER.encode() + body)
    report = load_csv(db, "declarations", f, today="2026-12-01")
    assert report.loaded == 2 and report.future_rows == 1
    assert report.warnings() == [f"{f}:3: warning: 1 declarations rows are dated after today "
                                 "(2026-12-01); check the dates, or reject such rows with "
                                 "--reject-future"]
    report = load_csv(db, "declarations", f, today="2026-12-01", reject_future=True)
    assert report.rejected_rows == 1
    assert report.problems[0].expected == "a date not after today (2026-12-01)"


def test_licence_items_must_be_codes_or_rulebook_names(tmp_path: Path) -> None:
    licences = tmp_path / "licences.csv"
    licences.write_text(
        "licence_no,kind,holder,items,destination_country,end_user,quantity_kg,valid_from,"
        "valid_to\n"
        "L1,individual,Hunan Antimony Co.,8112929010;gallium-metal,US,,100,2025-01-01,"
        "2025-12-31\n"
        "L2,individual,Hunan Antimony Co.,811292901,US,,100,2025-01-01,2025-12-31\n"
        "L3,individual,Hunan Antimony Co.,unobtainium,US,,100,2025-01-01,2025-12-31\n"
        "L4,individual,Hunan Antimony Co.,<script>,US,,100,2025-01-01,2025-12-31\n",
        encoding="utf-8")
    declarations = tmp_path / "declarations.csv"
    declarations.write_text(HEADER + row(1), encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(RULEBOOKS), "--db", str(tmp_path / "kb.db"),
                                      "--declarations", str(declarations),
                                      "--licences", str(licences), "--allow-rejected", "3"])
    assert result.exit_code == 0, result.output
    db = Database(tmp_path / "kb.db")
    assert [r["licence_no"] for r in db["licences"].rows] == ["L1"]
    reasons = {r["line"]: r["expected"] for r in db["rejected_rows"].rows}
    assert "'811292901' has 9 digits" in reasons[3]
    assert "no rulebook names 'unobtainium'" in reasons[4]
    assert "'<script>' is none of them" in reasons[5]


def test_the_command_line_reports_rejected_rows_and_fails_on_them(tmp_path: Path) -> None:
    f = tmp_path / "declarations.csv"
    f.write_bytes((HEADER + row(1) + row(2, "M\xfcller")).encode("latin-1"))
    result = CliRunner().invoke(cli, ["screen", str(f)])
    assert result.exit_code == 1
    assert f"{f}:3: description: 'M\ufffdller': expected UTF-8 text" in result.output
    assert "more than --allow-rejected 0 allows" in result.output
    assert CliRunner().invoke(cli, ["screen", str(f), "--allow-rejected", "1"]).exit_code == 0


def test_other_scripts_digits_absurd_numbers_and_multi_line_keys_are_rejected(
        db: Database, tmp_path: Path) -> None:
    """float() reads full-width and Arabic-Indic digits and 1e308, and a quoted id may hold a
    line break: each was accepted (a full-width customs code never matched an item)."""
    body = (row(1).replace(",50,", ",５０,")
            + row(2).replace("8112929010", "８１１２９２９０１０")
            + row(3).replace(",21000,", ",1e308,")
            + '"D4\nX"' + row(4)[2:]
            + row(5))
    ids, rejects = load(db, tmp_path, body.encode())
    assert ids == ["D5"]
    reasons = {(column, expected) for _, column, expected in rejects}
    assert reasons == {
        ("quantity_kg", "a number written with the digits 0-9 (such as 1250.5)"),
        ("hs_code", "a customs code of 8 or 10 digits (dots and spaces allowed)"),
        ("value_usd", "a number of at most 1,000,000,000,000,000 (1e15)"),
        ("id", "a value on one line (this one holds a line break)")}
