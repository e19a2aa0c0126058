"""`excon export`: SQL that runs on each engine, and JSON that follows its published schema."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import psycopg
import pytest
from click.testing import CliRunner

from dsl.interpret import Interpreter
from dsl.ir import node_classes
from kb.cli import cli
from kb.inputs import demo
from kb.screen import Screener
from kb.screen.examples import typed_row
from kb.screen.export import rulebook_from_json
from kb.store.schema import declaration_schema
from tests.conftest import RULEBOOKS


def export(tmp_path: Path, *args: str) -> Path:
    result = CliRunner().invoke(cli, ["export", *args, "--out", str(tmp_path),
                                      "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    return tmp_path


@pytest.fixture(scope="module")
def rules_json(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """`excon export --format json`, once for the module: rules.json and rules.schema.json."""
    out = export(tmp_path_factory.mktemp("json"), "--format", "json")
    return (json.loads((out / "rules.json").read_text("utf-8")),
            json.loads((out / "rules.schema.json").read_text("utf-8")))


def script(folder: Path, *names: str) -> str:
    return "\n".join((folder / n).read_text("utf-8") for n in names)


def test_sqlite_bundle_creates_every_table_and_check(tmp_path: Path) -> None:
    folder = export(tmp_path, "--dialect", "sqlite")
    conn = sqlite3.connect(":memory:")
    conn.executescript(script(folder, "schema.sql", "derive.sql", "checks.sql"))
    kinds = dict(conn.execute("select name, type from sqlite_master").fetchall())
    assert kinds["findings"] == kinds["check_us_critical_minerals_ban"] == "view"
    # the relations derived from the inputs are stored, with their indexes
    assert kinds["licence_cover"] == kinds["window_1"] == "table"
    assert kinds["licence_cover_declaration_id"] == "index"
    assert conn.execute("select count(*) from findings").fetchone() == (0,)


def test_duckdb_bundle_runs_on_duckdb(tmp_path: Path) -> None:
    """The scripts create every table and view on DuckDB; each check answers, and
    findings.sql fills `findings` with the contract's columns, check by check."""
    folder = export(tmp_path, "--dialect", "duckdb")
    conn = duckdb.connect()
    conn.execute(script(folder, "schema.sql", "derive.sql", "checks.sql", "findings.sql"))
    checks = [v for (v,) in conn.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND view_name LIKE 'check_%'"
    ).fetchall()]
    assert "check_us_critical_minerals_ban" in checks and len(checks) > 20
    for view in checks:
        assert conn.execute(f'SELECT COUNT(*) FROM "{view}"').fetchone() == (0,), view
    columns = [r[0] for r in conn.execute("DESCRIBE findings").fetchall()]
    assert columns[:6] == ["declaration_id", "rule", "outcome", "severity", "instrument",
                           "provision"]


def test_postgres_bundle_runs_on_postgres(tmp_path: Path, postgres_dsn: str) -> None:
    folder = export(tmp_path, "--dialect", "postgres")
    with psycopg.connect(postgres_dsn, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA export_test")
        try:
            pg.execute("SET search_path TO export_test")
            pg.execute(script(folder, "schema.sql", "derive.sql", "checks.sql").encode("utf-8"))
            row = pg.execute("select count(*) from findings").fetchone()
            assert row is not None and row[0] == 0
        finally:
            pg.execute("DROP SCHEMA export_test CASCADE")


def test_rules_json_follows_its_schema(
        rules_json: tuple[dict[str, Any], dict[str, Any]]) -> None:
    document, schema = rules_json
    jsonschema.validate(document, schema)
    ban = next(r for r in document["rules"] if r["name"] == "us-critical-minerals-ban")
    assert ban["in_force"] == [["2024-12-03", "2025-11-08"], ["2026-11-28", None]]
    assert ban["view"] == "check_us_critical_minerals_ban"
    assert {"node": "Citation", "instrument": {"node": "Ref", "name": "MOFCOM-2024-46"},
            "provision": {"node": "ProvisionRef", "kind": "clause", "label": "2"}} in \
        ban["attributes"]


def test_any_node_is_held_to_the_definition_of_its_own_kind(
        rules_json: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """`$defs/node` (any node) applies the definition of the node's own kind, whichever of the
    kinds it is, and refuses a kind the language does not have."""
    _, schema = rules_json
    root = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/node"}
    validator = jsonschema.validators.validator_for(root)(root)
    kinds = schema["$defs"]["node"]["properties"]["node"]["enum"]
    assert len(kinds) > 100
    for kind in kinds:
        refusals = {tuple(e.schema.get("properties", {}).get("node", {}).items())
                    for e in validator.iter_errors({"node": kind, "not_a_part": 1})
                    if e.validator == "additionalProperties"}
        assert refusals == {(("const", kind),)}, kind
    assert not validator.is_valid({"node": "Nonsense"})


def test_rules_json_gives_each_items_control_periods_as_the_knowledge_base_has_them(
        rules_json: tuple[dict[str, Any], dict[str, Any]], demo_kb: Path) -> None:
    """An evaluator written from rules.json alone needs when each item is controlled and by
    which act (it gave 505 findings where excon gives 420 without them)."""
    document, _ = rules_json
    with sqlite3.connect(demo_kb) as conn:
        table = conn.execute("SELECT item, controlled_from, controlled_until, instrument_id, "
                             "provision FROM item_controls").fetchall()
    exported = [(item, c["from"], c["until"], c["instrument"], c["provision"])
                for item, controls in document["item_controls"].items() for c in controls]
    assert sorted(exported, key=str) == sorted(table, key=str)
    gallium = document["item_controls"]["gallium-metal"]
    assert {"from": "2023-08-01", "until": "2024-11-30", "instrument": "MOFCOM-2023-23",
            "provision": "annex 1"} in gallium


def test_rules_json_item_choice_alone_matches_declarations_to_items_as_the_kb_does(
        rules_json: tuple[dict[str, Any], dict[str, Any]], demo_kb: Path) -> None:
    """Which items a declared code is, from rules.json's `customs_codes` and `item_choice`
    alone (an evaluator without excon), is the knowledge base's `declaration_items`, row for
    row, on 3,000 demo declarations and on codes that several items share."""
    document, _ = rules_json
    choice, codes = document["item_choice"], document["customs_codes"]

    def items_of(declared: str) -> set[str]:
        found: set[str] = set()
        for rulebook in set(choice["item_rulebooks"].values()):
            for step in choice["steps"]:
                hits = {item for item, refs in codes.items()
                        if choice["item_rulebooks"][item] == rulebook
                        for ref in refs if len(ref) == step["reference_digits"]
                        and (declared == ref if step["match"] == "exact"
                             else declared.startswith(ref))}
                if hits:  # the first step that matches decides; ties: all of them
                    found |= hits
                    break
        return found

    with sqlite3.connect(demo_kb) as conn:
        declared = dict(conn.execute("SELECT id, hs_code FROM declarations"))
        expected: dict[str, set[str]] = {}
        for declaration, item in conn.execute("SELECT declaration_id, item "
                                              "FROM declaration_items"):
            expected.setdefault(declaration, set()).add(item)
    got = {d: found for d, code in declared.items() if (found := items_of(code))}
    assert got == expected and len(got) > 500
    shared = [d for d, items in got.items() if len(items) > 1]
    assert shared, "no demo declaration's code is shared by several items"


def test_rules_json_explanation_parts_assemble_excons_explanations(
        rules_json: tuple[dict[str, Any], dict[str, Any]], demo_kb: Path) -> None:
    """From each rule's `explanation` in rules.json alone (its sentence filled with the
    declaration's facts and a title of an item its code matches, the act cited, then notes in
    the forms given), an evaluator writes the explanations excon writes: the sentence exactly,
    every note in one of the rule's forms, on 3,000 demo declarations' findings."""
    document, _ = rules_json
    rules = {r["name"]: r["explanation"] for r in document["rules"] if "explanation" in r}
    titles = {i["name"]["name"]: i["title"]["value"] for i in document["items"]}
    codes = document["customs_codes"]

    def pattern(form: str) -> str:
        return "".join("(.+?)" if part.startswith("{") else re.escape(part)
                       for part in re.split(r"(\{[^{}]*\})", form) if part)

    with sqlite3.connect(demo_kb) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT f.rule, f.instrument, f.provision, f.explanation, d.* "
                            "FROM findings AS f JOIN declarations AS d "
                            "ON d.id = f.declaration_id").fetchall()
    assert len(rows) > 100
    kinds = set()
    for row in rows:
        parts = rules[row["rule"]]
        facts = {k: "" if row[k] is None else str(row[k]) for k in row.keys()}  # noqa: SIM118
        matched = [titles[i] for i, refs in codes.items()
                   if any(row["hs_code"].startswith(r) for r in refs)] + ["an item"]
        sentences = [re.sub(r"\{([^{}]*)\}", lambda m, t=t, f=facts: t if m[1] == "item_title"
                            else f.get(m[1].strip(), m[0]), parts["sentence"])
                     for t in matched]
        if parts["act_citation"] and row["instrument"]:
            cite = f" ({row['instrument']}" + (f" {row['provision']}" if row["provision"]
                                               else "") + ")"
            sentences = [s + cite for s in sentences]
        said = row["explanation"]
        head = next((s for s in sentences if said.startswith(s)), None)
        assert head is not None, (said, sentences[:2])
        unknown = parts["unknown_note"]
        forms = [*(f for note in parts["notes"] for f in note),
                 *([parts["licence_note"]] if parts["licence_note"] else []),
                 unknown["head"] + unknown["no_fact"],
                 unknown["head"] + unknown["missing"] + "{facts}",
                 unknown["exception_head"] + unknown["missing"] + "{facts}",
                 unknown["exception_head"] + unknown["no_fact"]]
        notes = "|".join(f"(?:{pattern(f)})" for f in forms)
        rest = said[len(head):]
        assert re.fullmatch(f"(?:(?:{notes})(?=; |$))*", rest), (row["rule"], rest)
        kinds |= {note[0] for note in parts["notes"] if re.search(pattern(note[0]), rest)}
    assert len(kinds) >= 6, kinds  # windows, listed parties, links, first seen, mentions, …


def test_rules_json_is_the_whole_rulebook_and_its_schema_names_every_node(
        rules_json: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Every declaration as written, with its file relative to the rulebook folder, checks
    again into the same rulebook (the same version); the schema has a definition per kind of
    node and rejects a node it does not describe."""
    document, schema = rules_json
    assert set(node_classes()) <= set(schema["$defs"])
    assert {d["file"] for d in document["declarations"]} >= {
        "cn-strategic-minerals/rules.excon", "us-ear-3c001/rulebook.excon"}
    rebuilt = rulebook_from_json(document)
    assert rebuilt.version == document["rulebook_version"]
    assert "2805301910" in document["customs_codes"]["samarium"]
    assert {"field": "purity_pct", "aliases": ["purity"], "column": "purity_pct"}.items() <= \
        next(f for f in document["fields"] if f["field"] == "purity_pct").items()
    assert next(f for f in document["fields"] if f["field"] == "particle_size")["column"] == \
        "parameters"
    assert {"name": "pig-iron", "code": "720110", "low": 0.3, "high": 0.7,
            "unit": "USD/kg"} in document["value_ranges"]
    broken = json.loads(json.dumps(document))
    broken["declarations"][0]["declaration"]["attrs"].append({"node": "Nonsense"})
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert not validator.is_valid(broken)  # stops at the first error, as a tool's check would


def test_the_interpreter_runs_from_rules_json_alone(
        tmp_path: Path, rules_json: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The rulebook rebuilt from rules.json, with no rulebook file at hand, judges generated
    declarations as the compiled checks do."""
    document, _ = rules_json
    files = demo.write(demo.generate(2000, seed=4, rulebooks=[RULEBOOKS]), tmp_path / "demo")
    findings, _ = Screener([RULEBOOKS]).screen_files(files["declarations"],
                                                     files["licences"], files["parties"])

    def rows(name: str, table: str) -> list[dict[str, Any]]:
        with files[name].open(encoding="utf-8", newline="") as f:
            return [typed_row(table, r) for r in csv.DictReader(f)]

    interpreter = Interpreter(rulebook_from_json(document), declaration_schema())
    judged = interpreter.judge(rows("declarations", "declarations"),
                               rows("licences", "licences"), None,
                               rows("parties", "trade_parties"))
    expected = [(f.declaration_id, f.rule, f.outcome, f.severity, f.instrument, f.provision)
                for f in findings]
    assert len(expected) > 100
    assert [(j.declaration_id, j.rule, j.outcome, j.severity, j.instrument, j.provision)
            for j in judged] == expected


def test_export_needs_a_dialect_or_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "--out", str(tmp_path)])
    assert result.exit_code == 2
