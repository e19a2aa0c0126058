"""Loading the input files: validation, rejected rows, atomicity, idempotence, stdin."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from kb.cli import cli
from kb.inputs.load import load_csv
from kb.inputs.report import LoadError
from kb.store.tables import MIGRATIONS
from tests.conftest import DATA, RULEBOOKS

INPUTS = DATA / "inputs"
SMALL = DATA / "semantics"  # a small rulebook: what these tests check does not depend on it


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "kb.db")
    MIGRATIONS.apply(database)
    return database


def rejected(db: Database) -> list[tuple[int, str, str, str]]:
    return [(r["line"], r["column"], r["value"], r["expected"])
            for r in db["rejected_rows"].rows_where(order_by="id")]


def test_good_rows_load_and_bad_rows_are_kept_with_their_reason(db: Database) -> None:
    report = load_csv(db, "declarations", INPUTS / "declarations.csv")
    assert report.loaded == 3 and report.rejected_rows == 3
    assert [r["id"] for r in db["declarations"].rows_where(order_by="id")] == ["D1", "D4", "D5"]
    assert rejected(db) == [
        (3, "declared_on", "2025-02-30", "a real calendar date YYYY-MM-DD"),
        (4, "consignee_country", "USA", "an ISO 3166 alpha-2 country code (such as US, DE, TH)"),
        (4, "hs_code", "811292901", "a customs code of 8 or 10 digits (dots and spaces allowed)"),
        (4, "quantity_kg", "-5", "a number that is not negative"),
        (4, "purity_pct", "120", "a percentage between 0 and 100"),
        (6, "id", "D1", "a unique id; line 2 has it"),
    ]
    row = json.loads(db["rejected_rows"].get(1)["row"])
    assert row["id"] == "D2" and row["exporter"] == "Hunan Antimony Co."


def test_values_are_normalised_and_text_kept_exactly(db: Database) -> None:
    load_csv(db, "declarations", INPUTS / "declarations.csv")
    d1 = db["declarations"].get("D1")
    assert d1["hs_code"] == "8112929010" and d1["purity_pct"] == 99.99
    assert d1["end_user"] is None and d1["licence_no"] is None
    d5 = db["declarations"].get("D5")
    assert d5["exporter"] == "镓业有限公司"
    assert d5["description"] == 'natural flake graphite, "premium"'


def test_optional_columns_may_be_absent_and_are_validated_when_present(db: Database) -> None:
    load_csv(db, "declarations", INPUTS / "declarations.csv")  # a file without them
    assert db["declarations"].get("D1")["end_use"] is None
    head = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
            "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
            "licence_no,end_use,re_content_pct,export_country\n")
    body = ("E1,2026-12-01,A Co.,B GmbH,DE,,,DE,8505111000,magnets,10,500,,,civil,2.5,US\n"
            "E2,2026-12-01,A Co.,B GmbH,DE,,,DE,8505111000,magnets,10,500,,,,150,USA\n")
    report = load_csv(db, "declarations", io.BytesIO((head + body).encode()))
    assert report.loaded == 1
    e1 = db["declarations"].get("E1")
    assert (e1["end_use"], e1["re_content_pct"], e1["export_country"]) == ("civil", 2.5, "US")
    assert [(c, v) for _, c, v, _ in rejected(db) if v in ("150", "USA")][-2:] == [
        ("re_content_pct", "150"), ("export_country", "USA")]


def test_reloading_the_same_file_changes_nothing(db: Database) -> None:
    load_csv(db, "declarations", INPUTS / "declarations.csv")
    first = list(db["declarations"].rows_where(order_by="id"))
    report = load_csv(db, "declarations", INPUTS / "declarations.csv")
    assert report.loaded == 3
    assert list(db["declarations"].rows_where(order_by="id")) == first


def test_licences_and_parties_follow_their_contracts(db: Database) -> None:
    report = load_csv(db, "licences", INPUTS / "licences.csv")
    assert report.loaded == 1
    assert rejected(db) == [(3, "kind", "temporary", "individual or general")]
    assert db["licences"].get("L-1")["items"] == "2825800010;1C902"
    assert load_csv(db, "trade_parties", INPUTS / "parties.csv").loaded == 2


class _FailingStream(io.RawIOBase):
    """Serves the first bytes of a file, then fails as a dying disk or a Ctrl-C would."""

    def __init__(self, data: bytes, fail_after: int, exc: BaseException) -> None:
        self.data, self.fail_after, self.exc, self.pos = data, fail_after, exc, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        if self.pos >= self.fail_after:
            raise self.exc
        chunk = self.data[self.pos:self.pos + min(len(b), 64)]
        b[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


@pytest.mark.parametrize("exc", [OSError("device error"), KeyboardInterrupt()])
def test_an_interrupted_load_leaves_the_database_as_it_was(db: Database,
                                                           exc: BaseException) -> None:
    header = (INPUTS / "declarations.csv").read_bytes().split(b"\n")[0]
    rows = b"".join(b"\nX%d,2025-01-01,E,C,US,,,US,8112929010,g,1,1,," % i for i in range(20000))
    data = header + rows + b"\n"
    with pytest.raises(type(exc)):
        load_csv(db, "declarations", _FailingStream(data, len(data) // 2, exc))  # type: ignore[arg-type]
    assert db["declarations"].count == 0 and db["rejected_rows"].count == 0
    assert not db.conn.in_transaction


def test_a_file_without_the_contract_columns_is_refused_whole(db: Database,
                                                              tmp_path: Path) -> None:
    bad = tmp_path / "declarations.csv"
    bad.write_text("id,declared_on\nD1,2025-01-01\n", encoding="utf-8")
    with pytest.raises(LoadError, match="the header lacks the column"):
        load_csv(db, "declarations", bad)
    assert db["declarations"].count == 0


def test_build_reads_declarations_from_stdin(tmp_path: Path) -> None:
    data = (INPUTS / "declarations.csv").read_bytes()
    out = tmp_path / "kb.db"
    result = CliRunner().invoke(cli, ["build", "--db", str(out), str(RULEBOOKS),
                                      "--declarations", "-", "--allow-rejected", "50%"],
                                input=data)
    assert result.exit_code == 0, result.output
    assert "<stdin>: 3 declarations rows loaded, 3 rejected" in result.output
    assert "<stdin>:3: declared_on: '2025-02-30': expected a real calendar date" in result.output
    with sqlite3.connect(out) as conn:
        assert conn.execute("select count(*) from declarations").fetchone() == (3,)


def test_rejected_rows_fail_the_build_and_the_screening_unless_allowed(tmp_path: Path) -> None:
    data = (INPUTS / "declarations.csv").read_bytes()  # 3 good rows, 3 bad ones
    out = tmp_path / "kb.db"
    args = ["build", "--db", str(out), str(SMALL), "--declarations", "-"]
    strict = CliRunner().invoke(cli, args, input=data)
    assert strict.exit_code == 1 and not out.exists()
    assert "3 of 6 declarations rows rejected, more than --allow-rejected 0 allows" in \
        strict.output
    assert "<stdin>:3: declared_on: '2025-02-30'" in strict.output  # the reasons are shown
    assert CliRunner().invoke(cli, [*args, "--allow-rejected", "2"], input=data).exit_code == 1
    assert CliRunner().invoke(cli, [*args, "--allow-rejected", "3"], input=data).exit_code == 0
    assert CliRunner().invoke(cli, [*args, "--allow-rejected", "x%"]).exit_code == 2
    screen = ["screen", "-", "--rulebooks", str(SMALL), "--format", "json"]
    result = CliRunner().invoke(cli, screen, input=data)
    assert result.exit_code == 1 and "3 of 6 declarations rows rejected" in result.output
    assert CliRunner().invoke(cli, [*screen, "--allow-rejected", "50%"],
                              input=data).exit_code == 0


def test_a_build_that_lost_every_row_never_replaces_the_database(tmp_path: Path) -> None:
    out = tmp_path / "kb.db"
    good = (INPUTS / "declarations.csv").read_bytes()
    base = ["build", "--db", str(out), str(SMALL), "--declarations", "-"]
    assert CliRunner().invoke(cli, [*base, "--allow-rejected", "3"], input=good).exit_code == 0
    before = out.read_bytes()
    header = good.split(b"\n", 1)[0] + b"\n"
    every_row_bad = header + b"X1,2025-02-30,E,C,DE,,,DE,8110101000,antimony,1,1,,\n"
    lost = CliRunner().invoke(cli, [*base, "--allow-rejected", "100%"], input=every_row_bad)
    assert lost.exit_code == 1 and "no declarations row loaded, where" in lost.output
    assert out.read_bytes() == before
    forced = CliRunner().invoke(cli, [*base, "--allow-rejected", "100%", "--force"],
                                input=every_row_bad)
    assert forced.exit_code == 0
    with sqlite3.connect(out) as conn:
        assert conn.execute("select count(*) from declarations").fetchone() == (0,)


def test_line_numbers_count_quoted_line_breaks_and_short_rows(db: Database,
                                                              tmp_path: Path) -> None:
    header = (INPUTS / "declarations.csv").read_text(encoding="utf-8").split("\n")[0]
    path = tmp_path / "declarations.csv"
    path.write_text(
        header + "\n"
        'A1,2025-01-01,E,C,US,,,US,8112929010,"two\nlines",1,1,,\n'
        "A2,2025-01-01,E,C,US,,,US,8112929010,short row\n"
        "\n"
        "A3,2025-01-01,E,C,XX,,,US,8112929010,ok,1,1,,\n",
        encoding="utf-8",
    )
    report = load_csv(db, "declarations", path)
    assert report.loaded == 1
    assert db["declarations"].get("A1")["description"] == "two\nlines"
    assert rejected(db) == [
        (4, "(row)", "10 fields", "14 fields, as in the header"),
        (6, "consignee_country", "XX",
         "an ISO 3166 alpha-2 country code (such as US, DE, TH)"),
    ]


def test_a_quote_closed_in_a_later_row_is_one_rejected_row_that_names_both_lines(
        db: Database, tmp_path: Path) -> None:
    """The quote opened in A1's description closes in A2's: the parser reads one row over
    two lines. Both lines are kept whole, with the span, and the report says A2's line is
    part of the rejected row (A2 was reported nowhere)."""
    header = (INPUTS / "declarations.csv").read_text(encoding="utf-8").split("\n")[0]
    path = tmp_path / "declarations.csv"
    a1 = 'A1,2025-01-01,E,C,US,,,US,8112929010,"gallium ingots,1,1,,'
    a2 = 'A2,2025-01-01,E,C,US,,,US,8112929010,oxide",1,1,,'
    path.write_text(f"{header}\n{a1}\n{a2}\nA3,2025-01-01,E,C,US,,,US,8112929010,ok,1,1,,\n",
                    encoding="utf-8")
    report = load_csv(db, "declarations", path)
    assert report.loaded == 1 and report.rejected_rows == 1
    [row] = db["rejected_rows"].rows
    assert (row["line"], row["end_line"]) == (2, 3)
    assert row["raw"].splitlines() == [a1, a2]  # every line of it, as written
    assert "the row runs from line 2 to line 3" in row["expected"]
    assert "line 3 is part of it; if it is a row of its own, close the quote on line 2" \
        in row["expected"]
    # a one-line rejected row keeps its text too
    load_csv(db, "declarations", INPUTS / "declarations.csv")
    one = next(db["rejected_rows"].rows_where("line = 3 AND file LIKE ?", ["%inputs%"]))
    assert one["end_line"] == 3 and one["raw"].startswith(
        (INPUTS / "declarations.csv").read_text("utf-8").split("\n")[2].split(",")[0])


def test_values_no_cargo_or_name_can_have_are_rejected_each_with_its_reason(
        db: Database) -> None:
    head = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
            "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
            "licence_no\n")
    rows = ["ok,2025-03-01,E,C,DE,,,DE,8110101000,antimony,100,1200,,",
            "nul,2025-03-01,E\x00vil,C,DE,,,DE,8110101000,antimony,100,1200,,",
            "bell,2025-03-01,E,C,DE,End\x07User,DE,DE,8110101000,antimony,100,1200,,",
            "zero,2025-03-01,E,C,DE,,,DE,8110101000,antimony,0,1200,,",
            "huge,2025-03-01,E,C,DE,,,DE,8110101000,antimony,900000000,1200,,",
            "nan,2025-03-01,E,C,DE,,,DE,8110101000,antimony,nan,1200,,",
            "inf,2025-03-01,E,C,DE,,,DE,8110101000,antimony,100,inf,,"]
    report = load_csv(db, "declarations", io.BytesIO((head + "\n".join(rows)).encode()),
                      name="declarations.csv")
    assert (report.loaded, report.rejected_rows) == (1, 6)
    why = {line: (column, expected) for line, column, _, expected in rejected(db)}
    assert why[3] == ("exporter", "text without control characters (U+0000 at character 2)")
    assert why[4] == ("end_user", "text without control characters (U+0007 at character 4)")
    assert why[5] == ("quantity_kg", "a quantity above 0 kg")
    assert why[6][1].startswith("a quantity of at most 500,000,000 kg")
    assert why[7] == ("quantity_kg", "a number, not NaN")
    assert why[8] == ("value_usd", "a finite number, not infinity")


def test_a_licence_valid_to_before_valid_from_is_rejected(db: Database) -> None:
    text = ("licence_no,kind,holder,items,destination_country,end_user,quantity_kg,valid_from,"
            "valid_to\nL1,individual,E,gallium,,,,2025-01-01,2025-12-31\n"
            "L2,individual,E,gallium,,,,2025-12-31,2025-01-01\n")
    report = load_csv(db, "licences", io.BytesIO(text.encode()), name="licences.csv")
    assert (report.loaded, report.rejected_rows) == (1, 1)
    assert rejected(db) == [(3, "valid_to", "2025-01-01",
                             "a date on or after valid_from (2025-12-31)")]


def test_unknown_columns_and_a_header_only_file_are_reported(db: Database) -> None:
    """A misspelt column lost its values silently (`parameter` for `parameters` turned an
    unlicensed finding into an undetermined one); a file with a header and no rows screened
    with no word. Both are warnings now, with the nearest column's name."""
    head = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
            "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
            "licence_no,parameter,energy_density\n")
    body = "E1,2025-06-01,A Co.,B GmbH,DE,,,DE,8112929010,gallium,10,500,,,x=1,300\n"
    report = load_csv(db, "declarations", io.BytesIO((head + body).encode()), name="d.csv")
    assert report.loaded == 1
    assert report.warnings() == [
        "d.csv:1: warning: the column 'parameter' is not one excon reads, and its values are "
        "ignored (did you mean 'parameters'?)",
        "d.csv:1: warning: the column 'energy_density' is not one excon reads, and its values "
        "are ignored (state it in the parameters column, as energy_density=…)"]
    empty = load_csv(db, "licences", io.BytesIO(
        b"licence_no,kind,holder,items,destination_country,end_user,quantity_kg,valid_from,"
        b"valid_to\n"), name="l.csv")
    assert empty.warnings() == ["l.csv: warning: the file has a header and no licences rows"]


def test_strict_refuses_unknown_columns_and_an_empty_licences_file_fails(
        tmp_path: Path) -> None:
    """A misspelt column is a warning, and with --strict an error (exit 1, for screen,
    prepare and build; a failed build keeps the previous database). A licences file with no
    row always fails: every finding a licence would lift would stand unlicensed."""
    head = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
            "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
            "licence_no,parameter\n")
    declarations = tmp_path / "d.csv"
    declarations.write_text(head + "E1,2025-06-01,A Co.,B GmbH,DE,,,DE,8112929010,gallium,"
                            "10,500,,,x=1\n", encoding="utf-8")
    rulebooks = ["--rulebooks", str(SMALL)]
    runner = CliRunner()
    loose = runner.invoke(cli, ["screen", str(declarations), *rulebooks])
    assert loose.exit_code == 0 and "warning: the column 'parameter'" in loose.output
    strict = runner.invoke(cli, ["screen", str(declarations), "--strict", *rulebooks])
    assert strict.exit_code == 1
    assert "error: " in strict.output and "the column 'parameter' is not one excon reads " \
        "(did you mean 'parameters'?) (--strict)" in strict.output
    prepared = runner.invoke(cli, ["prepare", "--declarations", str(declarations), "--out",
                                   str(tmp_path / "in"), "--strict", *rulebooks])
    assert prepared.exit_code == 1 and "(--strict)" in prepared.output
    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["build", str(SMALL), "--db", str(db)]).exit_code == 0
    before = db.read_bytes()
    built = runner.invoke(cli, ["build", str(SMALL), "--db", str(db), "--declarations",
                                str(declarations), "--strict"])
    assert built.exit_code == 1 and "is unchanged" in built.output
    assert db.read_bytes() == before
    licences = tmp_path / "l.csv"
    licences.write_text("licence_no,kind,holder,items,destination_country,end_user,"
                        "quantity_kg,valid_from,valid_to\n", encoding="utf-8")
    empty = runner.invoke(cli, ["screen", str(declarations), "--licences", str(licences),
                                *rulebooks])
    assert empty.exit_code == 1
    assert "no licences row loaded, so no licence can cover a declaration" in empty.output
    assert runner.invoke(cli, ["build", str(SMALL), "--db", str(db), "--declarations",
                               str(declarations), "--licences", str(licences)]).exit_code == 1


def test_a_formula_for_an_agent_and_a_party_that_is_its_own_parent_are_rejected(
        db: Database) -> None:
    licences = (b"licence_no,kind,holder,items,destination_country,end_user,quantity_kg,"
                b"valid_from,valid_to,agents\n"
                b"L-1,individual,A Co.,8112929010,DE,,10,2025-01-01,2025-12-31,=cmd|' /C calc'!A0\n"
                b"L-2,individual,A Co.,8112929010,DE,,10,2025-01-01,2025-12-31,B Co.; C Co.\n")
    report = load_csv(db, "licences", io.BytesIO(licences), name="l.csv")
    assert report.loaded == 1 and db["licences"].get("L-2")["agents"] == "B Co.;C Co."
    assert rejected(db)[-1][1:3] == ("agents", "=cmd|' /C calc'!A0")
    assert "not a spreadsheet formula" in rejected(db)[-1][3]
    parties = (b"name,country,address,phone,parent\n"
               b"Acme Corp.,US,,,Acme Corp.\nAcme GmbH,DE,,,Acme Corp.\n")
    report = load_csv(db, "trade_parties", io.BytesIO(parties), name="p.csv")
    assert report.loaded == 1
    assert rejected(db)[-1][1:] == ("parent", "Acme Corp.",
                                    "a parent other than the party itself")
