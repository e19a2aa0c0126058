"""Declared facts: a rulebook declares the facts its rules read beyond the declaration's own
columns, each with a type; they are columns of declarations.csv, validated by the loaders,
read by the compiled checks on every engine and by the interpreter, and `undetermined` when
missing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

import dsl
from dsl.interpret import Interpreter
from kb.cli import cli
from kb.inputs.contracts import contract_for
from kb.screen import Screener
from kb.screen.examples import typed_row
from kb.store.schema import declaration_schema

RULEBOOK = '''
rulebook facts-demo "A made-up regime that reads a fact of every type"
  jurisdiction US

instrument REG
  title "A made-up regulation"
  issued 2019-12-01
  in force 2020-01-01
  article 1 "Exports of things of US origin to military end users"

fact origin "Country of origin of the goods"
  type country
  alias country_of_origin, origin_country
  read from "customs declaration, country of origin"

fact end_user_type "Kind of end user"
  type one of "civil", "government", "military"

fact registered "The exporter is registered with the authority"
  type yes/no

fact strength "Tensile strength"
  type number in MPa

fact lot "Weight of the whole lot"
  type number in t

fact contract_signed "Date the sales contract was signed"
  type date

fact us_share "US-origin content, % of value"
  type percentage

fact programme "Programme named in the contract"
  type text

item thing "Thing"
  customs 2804701000
  per REG

rule military-things "Things of US origin to military end users"
  per REG article 1
  when item in thing
   and origin in US
   and end_user_type = "military"
   and registered = "no"
   and strength > 5 MPa
   and lot >= 500 kg
   and contract_signed < 2024-01-01
   and us_share >= 10 %
   and programme != "exempt"
  then prohibited

example "military-things: every fact met"
  declaration on 2024-02-01 code 2804701000 to DE 10 kg with origin "US"
    with end_user_type "military" with registered "no" with strength 6 MPa with lot 0.5 t
    with contract_signed 2023-12-31 with us_share 10 % with programme "x"
  expect prohibited by military-things citing REG article 1

example "military-things: a lot just under 500 kg"
  declaration on 2024-02-01 code 2804701000 to DE 10 kg with origin "US"
    with end_user_type "military" with registered "no" with strength 6 MPa with lot 0.499 t
    with contract_signed 2023-12-31 with us_share 10 % with programme "x"
  expect no findings

example "military-things: the alias names the same fact"
  declaration on 2024-02-01 code 2804701000 to DE 10 kg with country_of_origin "US"
    with end_user_type "military" with registered "no" with strength 6 MPa with lot 1 t
    with contract_signed 2023-12-31 with us_share 10 % with programme "x"
  expect prohibited by military-things

example "military-things: a civil end user, a registered exporter, a later contract"
  declaration a on 2024-02-01 code 2804701000 to DE 10 kg with origin "US"
    with end_user_type "civil" with registered "no" with strength 6 MPa with lot 1 t
    with contract_signed 2023-12-31 with us_share 10 % with programme "x"
  declaration b on 2024-02-01 code 2804701000 to DE 10 kg with origin "US"
    with end_user_type "military" with registered "yes" with strength 6 MPa with lot 1 t
    with contract_signed 2023-12-31 with us_share 10 % with programme "x"
  declaration c on 2024-02-01 code 2804701000 to DE 10 kg with origin "US"
    with end_user_type "military" with registered "no" with strength 6 MPa with lot 1 t
    with contract_signed 2024-01-01 with us_share 9.9 % with programme "exempt"
  expect no findings

example "military-things: a missing origin or share cannot be judged"
  declaration a on 2024-02-01 code 2804701000 to DE 10 kg
    with end_user_type "military" with registered "no" with strength 6 MPa with lot 1 t
    with contract_signed 2023-12-31 with us_share 10 % with programme "x"
  declaration b on 2024-02-01 code 2804701000 to DE 10 kg with origin "US"
    with end_user_type "military" with registered "no" with strength 6 MPa with lot 1 t
    with contract_signed 2023-12-31 with programme "x"
  expect undetermined by military-things for a missing origin
  expect undetermined by military-things for b missing us_share
'''

HEADER = ("id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
          "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,licence_no,"
          "country_of_origin,end_user_type,registered,strength,lot,contract_signed,us_share,"
          "programme")


def _line(n: str, origin: str = "US", kind: str = "military", registered: str = "no",
          strength: str = "6", lot: str = "1", signed: str = "2023-12-31", share: str = "10",
          programme: str = "x") -> str:
    return (f"{n},2024-02-01,E,C,DE,,,DE,2804701000,thing,10,100,,,{origin},{kind},"
            f"{registered},{strength},{lot},{signed},{share},{programme}")


ROWS = [_line("hit"), _line("kind-case", kind="MILITARY", registered="N"),
        _line("civil", kind="civil"), _line("light", lot="0.4"), _line("weak", strength="5"),
        _line("no-origin", origin=""), _line("no-share", share=""),
        _line("registered", registered="true"), _line("late", signed="2024-01-01")]
HITS = {("hit", "prohibited"), ("kind-case", "prohibited"), ("no-origin", "undetermined"),
        ("no-share", "undetermined")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("facts")
    (path / "rules.excon").write_text(RULEBOOK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def declarations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("facts-inputs") / "declarations.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    return path


def test_the_examples_hold_on_the_checks_and_the_interpreter(folder: Path) -> None:
    result = CliRunner().invoke(cli, ["test", str(folder)])
    assert result.exit_code == 0, result.output
    assert "5 passed, 0 failed" in result.output


@pytest.mark.parametrize("engine", ["sqlite", "duckdb", "postgres"])
def test_every_engine_reads_every_type_from_the_file(folder: Path, declarations: Path,
                                                     engine: str,
                                                     request: pytest.FixtureRequest) -> None:
    on = request.getfixturevalue("postgres_dsn") if engine == "postgres" else engine
    screener = Screener([folder])
    try:
        findings, reports = screener.screen_files(declarations, as_of="2024-03-01", engine=on)
    finally:
        screener.close()
    assert reports[0].rejected_rows == 0
    assert {(f.declaration_id, f.outcome) for f in findings} == HITS
    [missing] = [f for f in findings if f.declaration_id == "no-origin"]
    assert missing.explanation.endswith("cannot be judged, missing: origin")


def test_the_interpreter_judges_the_file_alike(folder: Path, declarations: Path) -> None:
    rb = dsl.load([folder], declaration_schema()).rulebook
    facts = rb.declared_fields()
    with declarations.open(encoding="utf-8") as f:
        rows = [typed_row("declarations", {("origin" if k == "country_of_origin" else k): v
                                           for k, v in r.items()}, facts)
                for r in csv.DictReader(f)]
    judged = Interpreter(rb, declaration_schema()).judge(rows, [], "2024-03-01", [])
    assert {(j.declaration_id, j.outcome) for j in judged} == HITS


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_values_that_do_not_fit_their_type_are_rejected_with_line_column_and_reason(
        folder: Path, tmp_path: Path, engine: str) -> None:
    bad = tmp_path / "declarations.csv"
    bad.write_text("\n".join([
        HEADER, _line("ok"), _line("bad-kind", kind="militar"),
        _line("bad-yes", registered="maybe"), _line("bad-date", signed="2023-13-01"),
        _line("bad-share", share="120"), _line("bad-origin", origin="USA"),
        _line("bad-number", strength="strong")]) + "\n", encoding="utf-8")
    screener = Screener([folder])
    try:
        findings, [report] = screener.screen_files(bad, as_of="2024-03-01", engine=engine)
    finally:
        screener.close()
    assert {f.declaration_id for f in findings} == {"ok"}
    problems = {(p.line, p.column, p.expected) for p in report.problems}
    assert problems >= {
        (3, "end_user_type", "one of 'civil', 'government', 'military'"),
        (4, "registered", "yes or no"),
        (5, "contract_signed", "a real calendar date YYYY-MM-DD"),
        (6, "us_share", "a percentage between 0 and 100"),
        (8, "strength", "a number (such as 1250.5)"),
    }
    assert any(p.line == 7 and p.column == "origin" for p in report.problems)
    assert report.rejected_rows == 6


def test_a_column_given_under_its_name_and_an_alias_is_refused(folder: Path,
                                                             tmp_path: Path) -> None:
    twice = tmp_path / "declarations.csv"
    twice.write_text(HEADER + ",origin\n" + _line("a") + ",US\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["screen", "--rulebooks", str(folder), str(twice)])
    assert result.exit_code != 0
    assert "the column origin is given more than once (country_of_origin, origin)" in \
        result.output


def test_the_knowledge_base_describes_each_fact_and_stores_its_column(folder: Path) -> None:
    screener = Screener([folder])
    try:
        conn = screener.db.conn
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT name, type, unit, choices, aliases, rulebook FROM declared_facts")}
        columns = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(declarations)")}
        contract = contract_for(conn, "declarations")
    finally:
        screener.close()
    assert rows["origin"] == ("country", None, None, "country_of_origin; origin_country",
                              "facts-demo")
    assert rows["end_user_type"][0] == "one of civil, government, military"
    assert rows["lot"][:2] == ("number in t", "t")
    assert rows["us_share"][:2] == ("percentage", "%")
    assert {columns[n] for n in ("strength", "lot", "us_share")} == {"REAL"}
    assert columns["contract_signed"] == "TEXT"
    assert contract.aliases == {"country_of_origin": "origin", "origin_country": "origin"}


def _errors(tmp_path: Path, text: str) -> set[tuple[str, str]]:
    (tmp_path / "rules.excon").write_text(text, encoding="utf-8")
    return {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema()).diagnostics
            if d.severity == "error"}


def test_the_checker_reports_what_a_fact_cannot_be(tmp_path: Path) -> None:
    found = _errors(tmp_path, RULEBOOK.replace('end_user_type = "military"',
                                                'end_user_type = "militry"')
                    .replace('with registered "no" with strength 6 MPa with lot 0.5 t',
                             'with registered "nope" with strength 6 MPa with lot 0.5 t')
                    .replace('type number in MPa', 'type number in MPa\n  type text')
                    + '\nfact quantity_kg "Again"\n  type number in kg\n'
                    + 'fact untyped "No type"\n  alias origin_country\n')
    assert found == {
        ("E409", "'end_user_type' is one of \"civil\", \"government\", \"military\", never "
                 "\"militry\""),
        ("E409", "'registered' is one of \"yes\", \"no\", never \"nope\""),
        ("E206", "'type' is given more than once"),
        ("E201", "'quantity_kg' is already a column of every declaration (quantity_kg: Net "
                 "quantity in kg)"),
        ("E205", "fact 'untyped' needs a type (type number in UNIT, percentage, country, "
                 "text, yes/no, date, or one of \"…\", \"…\")"),
        ("E201", "'origin_country' already names fact 'origin'"),
    }


def test_an_example_value_of_the_wrong_type_is_an_error(tmp_path: Path) -> None:
    found = _errors(tmp_path, RULEBOOK.replace('with origin "US"\n    with end_user_type '
                                               '"military" with registered "no" with '
                                               'strength 6 MPa with lot 0.5 t',
                                               'with origin "USA"\n    with end_user_type '
                                               '"military" with registered 1 with '
                                               'strength "high" with lot 0.5 t', 1))
    assert ("E405", "'USA' is not an ISO 3166 country code") in found
    assert ("E401", "'registered' is \"yes\" or \"no\", not a number") in found
    assert ("E401", "'strength' is a number in MPa, not a text") in found


def test_two_rulebooks_share_a_fact_of_one_type_and_not_of_two(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "rules.excon").write_text(RULEBOOK, encoding="utf-8")
    other = ('rulebook other "Another"\n\nfact origin "Origin"\n  type country\n\n'
             'fact programme "A programme code"\n  type number in kg\n')
    (tmp_path / "b" / "rules.excon").write_text(other, encoding="utf-8")
    result = dsl.load([tmp_path / "a", tmp_path / "b"], declaration_schema())
    assert [(d.code, d.message) for d in result.diagnostics if d.severity == "error"] == [
        ("E201", "fact 'programme' is declared twice, of different types (text; number in "
                 "kg)")]


def test_a_duckdb_bundle_carries_the_declared_facts(folder: Path, declarations: Path,
                                                    tmp_path: Path) -> None:
    from tests.test_bundle import duckdb_findings

    out = tmp_path / "bundle"
    for args in (["export", "--dialect", "duckdb", "--out", str(out)],
                 ["prepare", "--declarations", str(declarations), "--as-of", "2024-03-01",
                  "--out", str(out / "inputs")]):
        result = CliRunner().invoke(cli, [*args, "--rulebooks", str(folder)])
        assert result.exit_code == 0, result.output
    with (out / "inputs" / "declarations.csv").open(encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert {"origin", "end_user_type", "lot", "us_share"} <= set(header)
    assert {(row[0], row[2]) for row in duckdb_findings(out)} == HITS


def test_rules_json_describes_each_fact_and_follows_its_schema(folder: Path,
                                                              tmp_path: Path) -> None:
    import json

    import jsonschema

    from kb.screen.export import rulebook_from_json

    result = CliRunner().invoke(cli, ["export", "--format", "json", "--out", str(tmp_path),
                                      "--rulebooks", str(folder)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "rules.json").read_text("utf-8"))
    jsonschema.validate(document, json.loads((tmp_path / "rules.schema.json").read_text()))
    facts = {f["name"]: f for f in document["facts"]}
    assert {k: facts["origin"][k] for k in ("type", "aliases", "read_from", "rulebook")} == {
        "type": "country", "aliases": ["country_of_origin", "origin_country"],
        "read_from": "customs declaration, country of origin", "rulebook": "facts-demo"}
    assert (facts["lot"]["type"], facts["lot"]["unit"]) == ("number", "t")
    assert facts["end_user_type"]["choices"] == ["civil", "government", "military"]
    assert facts["registered"]["choices"] == ["yes", "no"]
    assert {"field": "lot", "column": "lot", "declared": "number in t"}.items() <= \
        next(f for f in document["fields"] if f["field"] == "lot").items()
    assert rulebook_from_json(document).declared_fields() == \
        dsl.load([folder], declaration_schema()).rulebook.declared_fields()


def test_the_documents_and_explain_show_the_facts(folder: Path, declarations: Path,
                                                  tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["docs", str(folder), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "facts-demo.html").read_text("utf-8")
    part = page[page.index('id="fact-origin"'):page.index('id="fact-end_user_type"')]
    assert "Type: country." in part and "<code>country_of_origin</code>" in part
    assert '<a href="#rule-military-things">military-things</a>' in part
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["build", str(folder), "--db", str(db),
                                 "--declarations", str(declarations), "--force"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["explain", "no-origin", "--db", str(db),
                                 "--rulebooks", str(folder)])
    assert result.exit_code == 0, result.output
    assert ("Declared facts: origin (not declared); end_user_type military; registered no; "
            "strength 6 MPa; lot 1 t; contract_signed 2023-12-31; us_share 10 %; programme x."
            ) in result.output
    assert "result: undetermined" in result.output


def test_the_language_server_completes_and_describes_declared_facts(folder: Path) -> None:
    from lsprotocol import types as t

    from dsl.lsp import analyse, completions, hover_text

    a = analyse(folder.resolve(), {}, declaration_schema())
    assert "type country; a column of declarations.csv (also country_of_origin, " \
        "origin_country)" in (hover_text(a, "origin") or "")
    text = "rule x\n  when item in thing and "
    labels = {c.label for c in completions(a, text, t.Position(1, len("  when item in thing "
                                                                         "and ")))}
    assert {"origin", "us_share", "quantity_kg", "end_user"} <= labels


def test_diff_names_a_fact_added_or_retyped(folder: Path, declarations: Path,
                                            tmp_path: Path) -> None:
    (tmp_path / "rules.excon").write_text(
        RULEBOOK.replace('type one of "civil", "government", "military"',
                         'type one of "civil", "government", "military", "police"')
        + '\nfact registration_no "Registration number"\n  type text\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["diff", str(folder), str(tmp_path), "--declarations",
                                      str(declarations)])
    assert "declared fact registration_no added" in result.output, result.output
    assert ("declared fact end_user_type now has type one of civil, government, military, "
            "police instead of one of civil, government, military") in result.output


def test_the_inputs_contract_lists_every_fact_the_repository_declares() -> None:
    import re

    from tests.conftest import ROOT, RULEBOOKS

    page = (ROOT / "docs" / "inputs.md").read_text(encoding="utf-8")
    listed = {(rulebook, name, kind) for rulebook, name, kind in re.findall(
        r"^\| `([a-z0-9-]+)` \| `(\w+)`[^|]* \| ([^|]+?) \|", page, flags=re.M)}
    rb = dsl.load([RULEBOOKS], declaration_schema()).rulebook
    assert listed == {(rulebook, f.name, f.type_words) for f in rb.declared_fields()
                      for rulebook in f.rulebook.split(", ")}


def test_a_fact_two_rulebooks_declare_is_one_column_that_both_read() -> None:
    from tests.conftest import RULEBOOKS

    rb = dsl.load([RULEBOOKS], declaration_schema()).rulebook
    [origin] = [f for f in rb.declared_fields() if f.name == "origin"]
    assert (origin.type, origin.rulebook) == ("country", "cn-strategic-minerals, us-ear-3c001")
    rows = [{"id": n, "declared_on": "2026-12-01", "exporter": "E", "consignee": "C",
             "consignee_country": "DE", "destination_country": "DE", "hs_code": "8505111000",
             "description": "magnets", "quantity_kg": 10, "value_usd": 1000,
             "re_content_pct": 2, "origin": origin_of}
            for n, origin_of in (("jp", "JP"), ("cn", "CN"), ("unstated", None))]
    found = {f.declaration_id for f in Screener([RULEBOOKS]).screen(rows)
             if f.rule == "rare-earth-content-licence"}
    assert found == {"jp", "unstated"}
