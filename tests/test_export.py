"""`excon export`: SQL that runs on each engine, and JSON that follows its published schema."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import duckdb
import jsonschema
import psycopg
from click.testing import CliRunner

from kb.cli import cli
from tests.conftest import RULEBOOKS


def export(tmp_path: Path, *args: str) -> Path:
    result = CliRunner().invoke(cli, ["export", *args, "--out", str(tmp_path),
                                      "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    return tmp_path


def script(folder: Path, *names: str) -> str:
    return "\n".join((folder / n).read_text("utf-8") for n in names)


def test_sqlite_bundle_creates_every_table_and_check(tmp_path: Path) -> None:
    folder = export(tmp_path, "--dialect", "sqlite")
    conn = sqlite3.connect(":memory:")
    conn.executescript(script(folder, "schema.sql", "checks.sql"))
    views = {r[0] for r in conn.execute("select name from sqlite_master where type = 'view'")}
    assert {"findings", "check_us_critical_minerals_ban", "licence_cover"} <= views
    assert conn.execute("select count(*) from findings").fetchone() == (0,)


def test_duckdb_bundle_runs_on_duckdb(tmp_path: Path) -> None:
    """The scripts create every table and view on DuckDB; each check answers, and
    findings.sql fills `findings` with the contract's columns, check by check."""
    folder = export(tmp_path, "--dialect", "duckdb")
    conn = duckdb.connect()
    conn.execute(script(folder, "schema.sql", "checks.sql", "findings.sql"))
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
            pg.execute(script(folder, "schema.sql", "checks.sql").encode("utf-8"))
            row = pg.execute("select count(*) from findings").fetchone()
            assert row is not None and row[0] == 0
        finally:
            pg.execute("DROP SCHEMA export_test CASCADE")


def test_rules_json_follows_its_schema(tmp_path: Path) -> None:
    out = export(tmp_path, "--format", "json")
    document = json.loads((out / "rules.json").read_text("utf-8"))
    schema = json.loads((out / "rules.schema.json").read_text("utf-8"))
    jsonschema.validate(document, schema)
    ban = next(r for r in document["rules"] if r["name"] == "us-critical-minerals-ban")
    assert ban["in_force"] == [["2024-12-03", "2025-11-08"], ["2026-11-28", None]]
    assert ban["view"] == "check_us_critical_minerals_ban"
    assert {"node": "Citation", "instrument": {"node": "Ref", "name": "MOFCOM-2024-46"},
            "provision": {"node": "ProvisionRef", "kind": "clause", "label": "2"}} in \
        ban["attributes"]


def test_export_needs_a_dialect_or_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "--out", str(tmp_path)])
    assert result.exit_code == 2
