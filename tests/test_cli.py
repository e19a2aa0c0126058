"""`excon check` and `excon fmt` as policy staff and CI use them: output and exit status."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from tests.conftest import GOLDEN, RULEBOOKS

BROKEN = 'rule r "R"\n  per NOWHERE\n  when item in nothing\n  then prohibited\n'
MESSY = 'rule r "R"   per X\nwhen destination in usa   and quantity > 1 kg then prohibited # why\n'


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_check_is_clean_on_the_repository_rulebooks(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    assert "0 error(s)" in result.output


def test_check_defaults_to_the_rulebooks_folder(runner: CliRunner, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(RULEBOOKS, tmp_path / "rulebooks")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0
    assert f"{len(list(RULEBOOKS.rglob('*.excon')))} file(s)" in result.output


def test_check_exits_1_and_names_file_line_and_column(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "broken.excon"
    path.write_text(BROKEN, encoding="utf-8")
    result = runner.invoke(cli, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2:7: error[E202]: there is no instrument called 'NOWHERE'" in result.output
    assert "   |       ^^^^^^^" in result.output
    assert "2 error(s)" in result.output


def test_check_json_lists_every_diagnostic(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", "--format", "json", str(GOLDEN / "dates.excon")])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert [d["code"] for d in payload] == ["E302", "E304", "E301", "E302", "E305", "E303"]
    assert payload[0]["line"] == 10 and payload[0]["severity"] == "error"


def test_usage_errors_exit_2(runner: CliRunner, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(cli, ["check", "--format", "xml"]).exit_code == 2
    assert runner.invoke(cli, ["nonsense"]).exit_code == 2
    monkeypatch.chdir(tmp_path)  # no ./rulebooks here
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 2 and "give a rulebook file or folder" in result.output


def test_missing_path_is_reported_not_crashed(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["check", str(tmp_path / "nope.excon")])
    assert result.exit_code == 1
    assert "error[E002]" in result.output


def test_fmt_rewrites_in_place_and_then_has_nothing_to_do(runner: CliRunner,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "messy.excon"
    path.write_text(MESSY, encoding="utf-8")
    check = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert check.exit_code == 1 and "would reformat" in check.output
    assert path.read_text(encoding="utf-8") == MESSY  # --check changes nothing
    assert runner.invoke(cli, ["fmt", str(tmp_path)]).exit_code == 0
    assert path.read_text(encoding="utf-8") == (
        'rule r "R"\n  per X\n  when destination in usa\n   and quantity > 1 kg\n'
        "  then prohibited  # why\n"
    )
    again = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert again.exit_code == 0 and again.output == ""


def test_fmt_leaves_a_broken_file_untouched(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "broken.excon"
    text = "rule r\n  then maybe\n"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["fmt", str(path)])
    assert result.exit_code == 1 and "error[E101]" in result.output
    assert path.read_text(encoding="utf-8") == text


def test_fmt_diff_and_stdin(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "messy.excon"
    path.write_text(MESSY, encoding="utf-8")
    diff = runner.invoke(cli, ["fmt", "--diff", str(path)])
    assert diff.exit_code == 1 and "+  when destination in usa" in diff.output
    piped = runner.invoke(cli, ["fmt", "-"], input=MESSY)
    assert piped.exit_code == 0 and piped.output.startswith('rule r "R"\n  per X\n')


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in cli.commands:
        assert name in result.output


def test_screen_takes_a_published_unit_value_table_over_no_range(runner: CliRunner,
                                                                  tmp_path: Path) -> None:
    """Furniture has no range in the rulebook and too little history: a published value for its
    subheading makes a declaration at gallium's price a relabelling risk."""
    decl = tmp_path / "declarations.csv"
    decl.write_text("id,declared_on,exporter,consignee,consignee_country,end_user,"
                    "end_user_country,destination_country,hs_code,description,quantity_kg,"
                    "value_usd,purity_pct,licence_no\n"
                    "d1,2025-03-01,E,C,NL,,,NL,9403600000,furniture,40,20000,,\n",
                    encoding="utf-8")
    values = tmp_path / "unit-values.csv"
    values.write_text("code,low,high,unit,source\n940360,2000,8000,USD/t,trade statistics\n",
                      encoding="utf-8")
    args = ["screen", str(decl), "--rulebooks", str(RULEBOOKS), "--format", "json"]
    assert json.loads(runner.invoke(cli, args).stdout) == []
    [finding] = json.loads(runner.invoke(cli, [*args, "--unit-values", str(values)]).stdout)
    assert (finding["rule"], finding["outcome"]) == ("relabelled-unit-value", "risk")


def test_screen_csv_neutralises_spreadsheet_formulas_and_json_keeps_them(
        runner: CliRunner, tmp_path: Path) -> None:
    decl = tmp_path / "declarations.csv"
    decl.write_text("id,declared_on,exporter,consignee,consignee_country,end_user,"
                    "end_user_country,destination_country,hs_code,description,quantity_kg,"
                    "value_usd,purity_pct,licence_no\n"
                    '"=HYPERLINK(""http://x"")",2024-03-01,E,C,NL,@x,NL,NL,8112929010,'
                    "gallium,40,20000,,\n", encoding="utf-8")
    args = ["screen", str(decl), "--rulebooks", str(RULEBOOKS)]
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, args).stdout)))
    assert rows and {r["declaration_id"] for r in rows} == {"'=HYPERLINK(\"http://x\")"}
    found = json.loads(runner.invoke(cli, [*args, "--format", "json"]).stdout)
    assert {f["declaration_id"] for f in found} == {'=HYPERLINK("http://x")'}


def test_an_instrument_url_must_be_an_absolute_web_address(runner: CliRunner,
                                                           tmp_path: Path) -> None:
    from kb.documents.html import web_url

    path = tmp_path / "r.excon"
    path.write_text('instrument X-1\n  title "An act"\n  issued 2024-01-01\n'
                    '  in force 2024-01-01\n  url "javascript:alert(1)"\n', encoding="utf-8")
    result = runner.invoke(cli, ["check", str(path)])
    assert result.exit_code == 1
    assert "E408" in result.output and "not an absolute http or https URL" in result.output
    assert web_url("javascript:alert(1)") == "" and web_url("/relative") == ""
    assert web_url("https://www.mofcom.gov.cn/a") == "https://www.mofcom.gov.cn/a"


HEADER = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
          "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,"
          "licence_no\n")


def test_screen_fail_on_sets_the_exit_status_and_every_format_says_the_same(
        runner: CliRunner, tmp_path: Path) -> None:
    """Gallium to the US in March 2025 is in principle not licensed (MOFCOM-2024-46 clause 2, a
    presumption of denial); the same goods to Germany need a licence that was not given."""
    decl = tmp_path / "declarations.csv"
    decl.write_text(HEADER + "us,2025-03-03,E,C,US,,,US,8112929010,gallium,40,20000,99.99,\n"
                    "de,2025-03-03,E,C,DE,,,DE,8112929010,gallium,40,20000,99.99,\n",
                    encoding="utf-8")
    base = ["screen", str(decl), "--rulebooks", str(RULEBOOKS)]
    as_json = runner.invoke(cli, [*base, "--format", "json"])
    assert as_json.exit_code == 0
    found = {(f["declaration_id"], f["outcome"]) for f in json.loads(as_json.stdout)}
    assert ("us", "presumption-of-denial") in found and ("de", "unlicensed") in found
    assert ("de", "presumption-of-denial") not in found and ("us", "prohibited") not in found
    lines = runner.invoke(cli, [*base, "--format", "jsonl"]).stdout.splitlines()
    assert {(json.loads(x)["declaration_id"], json.loads(x)["outcome"]) for x in lines} == found
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, base).stdout)))
    assert {(r["declaration_id"], r["outcome"]) for r in rows} == found
    assert all(r["explanation"] and r["rulebook_version"] for r in rows)
    assert runner.invoke(cli, [*base, "--fail-on", "presumption-of-denial"]).exit_code == 1
    assert runner.invoke(cli, [*base, "--fail-on", "prohibited"]).exit_code == 0
    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + "f,2025-03-03,E,C,NL,,,NL,9403600000,furniture,400,2000,,\n",
                     encoding="utf-8")
    every = "prohibited,presumption-of-denial,unlicensed,case-by-case,undetermined,risk"
    assert runner.invoke(cli, ["screen", str(clean), "--rulebooks", str(RULEBOOKS),
                               "--fail-on", every]).exit_code == 0
    assert runner.invoke(cli, [*base, "--fail-on", "forbidden"]).exit_code == 2
    written = tmp_path / "out.json"
    assert runner.invoke(cli, [*base, "--format", "json", "-o", str(written)]).exit_code == 0
    assert {(f["declaration_id"], f["outcome"])
            for f in json.loads(written.read_text(encoding="utf-8"))} == found


def test_excon_test_passes_the_repository_and_fails_a_wrong_example_with_its_line(
        runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["test", str(RULEBOOKS)])
    assert result.exit_code == 0 and " passed, 0 failed" in result.output
    book = tmp_path / "book"
    shutil.copytree(RULEBOOKS, book)
    rules = book / "cn-strategic-minerals" / "rules.excon"
    text = rules.read_text(encoding="utf-8")
    right = "  expect undetermined by antimony-licence missing purity\n"
    assert right in text
    line = text[:text.index(right)].count("\n") + 1
    # `purity` is missing, not `end_use`: a field name is matched whole
    rules.write_text(text.replace(right, right.replace("purity", "end_use")), encoding="utf-8")
    result = runner.invoke(cli, ["test", str(book)])
    assert result.exit_code == 1 and " passed, 1 failed" in result.output
    assert f"rules.excon:{line}" in result.output


def test_expect_missing_matches_a_field_name_whole() -> None:
    from dsl.model import Expectation
    from kb.screen import Finding
    from kb.screen.examples import _matches, missing_fields

    finding = Finding("d1", "r", "undetermined", None, None, None,
                      "Goods to US: cannot be judged, missing: end_user purity_pct", "v")
    assert missing_fields(finding.explanation) == {"end_user", "purity_pct"}

    def expects(missing: str) -> bool:
        return _matches(finding, Expectation("", "undetermined", True, None, None, missing,
                                             None, None))  # type: ignore[arg-type]

    assert expects("end_user") and expects("purity")
    assert not expects("end_use") and not expects("user")


def test_screen_reads_parquet_and_runs_on_a_chosen_engine(
        runner: CliRunner, tmp_path: Path, postgres_dsn: str) -> None:
    """The same files as Parquet, and the same checks on DuckDB and PostgreSQL, give the same
    findings as CSV on SQLite; a Parquet row that fails validation is reported with its
    file."""
    import duckdb

    from kb.inputs import demo

    files = demo.write(demo.generate(600, seed=21, rulebooks=[RULEBOOKS]), tmp_path / "csv")
    parquet = {}
    for name in ("declarations", "licences", "parties"):
        parquet[name] = tmp_path / f"{name}.parquet"
        # every column as text, as in the CSV file (DuckDB would guess dates and numbers)
        duckdb.read_csv(str(files[name]), all_varchar=True).write_parquet(str(parquet[name]))

    def findings(*args: str) -> str:
        result = runner.invoke(cli, ["screen", *args, "--rulebooks", str(RULEBOOKS),
                                     "--format", "jsonl"])
        assert result.exit_code == 0, result.output
        return result.stdout

    base = findings(str(files["declarations"]), "--licences", str(files["licences"]),
                    "--parties", str(files["parties"]))
    assert base.count("\n") > 20
    assert findings(str(parquet["declarations"]), "--licences", str(parquet["licences"]),
                    "--parties", str(parquet["parties"])) == base
    for engine in (["--engine", "duckdb"], ["--engine", "postgres", "--dsn", postgres_dsn]):
        assert findings(str(files["declarations"]), "--licences", str(files["licences"]),
                        "--parties", str(files["parties"]), *engine) == base, engine
    # Parquet validated straight into DuckDB
    assert findings(str(parquet["declarations"]), "--licences", str(parquet["licences"]),
                    "--parties", str(parquet["parties"]), "--engine", "duckdb") == base
    result = runner.invoke(cli, ["screen", str(files["declarations"]), "--engine", "postgres",
                                 "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 2 and "--engine postgres needs --dsn" in result.output
    bad = tmp_path / "bad.parquet"
    duckdb.sql("SELECT 'x1' AS id, 'yesterday' AS declared_on").write_parquet(str(bad))
    result = runner.invoke(cli, ["screen", str(bad), "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 1 and "bad.parquet (Parquet)" in result.output
