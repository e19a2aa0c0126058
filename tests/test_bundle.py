"""The exported bundles, run as another tool would: in a fresh SQLite, DuckDB or PostgreSQL
database, with the commands of the bundle's README, in processes that do not import excon.
Their findings must be `excon screen`'s, row for row and word for word."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.inputs import demo
from kb.screen import Screener
from tests.conftest import RULEBOOKS
from tests.postgres import _bin

AS_OF = "2025-06-01"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated declarations over every item, destination and planted case."""
    return demo.write(demo.generate(3000, seed=3, rulebooks=[RULEBOOKS]),
                      tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def expected(inputs: dict[str, Path]) -> dict[str | None, list[tuple[Any, ...]]]:
    """`excon screen`'s findings for the inputs, by their own dates and as of one date."""
    screener = Screener([RULEBOOKS])
    out: dict[str | None, list[tuple[Any, ...]]] = {}
    for as_of in (None, AS_OF):
        findings, _ = screener.screen_files(inputs["declarations"], inputs["licences"],
                                            inputs["parties"], as_of)
        out[as_of] = [tuple(f.as_dict().values()) for f in findings]
    assert {f[2] for f in out[None]} == {"prohibited", "presumption-of-denial", "unlicensed",
                                         "undetermined", "risk"}
    return out


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    return result.output


def bundle(tmp: Path, dialect: str, inputs: dict[str, Path], as_of: str | None) -> Path:
    out = tmp / dialect
    invoke("export", "--dialect", dialect, "--out", str(out))
    invoke("prepare", "--declarations", str(inputs["declarations"]),
           "--licences", str(inputs["licences"]), "--parties", str(inputs["parties"]),
           "--out", str(out / "inputs"), *(("--as-of", as_of) if as_of else ()))
    return out


def run(folder: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """A command of the README, from the bundle's folder; nothing of excon is importable
    there (no PYTHONPATH, and the folder holds no package)."""
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(folder)})


def scripts(folder: Path) -> list[str]:
    return list(json.loads((folder / "manifest.json").read_text("utf-8"))["scripts"])


FINDINGS = "SELECT * FROM findings ORDER BY declaration_id, rule, outcome"


def sqlite_findings(folder: Path) -> list[tuple[Any, ...]]:
    done = run(folder, ["sqlite3", "-bail", "kb.sqlite",
                        *(f".read {s}" for s in scripts(folder))])
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(folder / "kb.sqlite") as conn:
        return conn.execute(FINDINGS).fetchall()


def duckdb_findings(folder: Path) -> list[tuple[Any, ...]]:
    code = ("import duckdb; c = duckdb.connect('kb.duckdb'); "
            f"[c.execute(open(f).read()) for f in {scripts(folder)}]")
    done = run(folder, [sys.executable, "-I", "-c", code])
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(folder / "kb.duckdb")) as conn:
        return [tuple(r) for r in conn.execute(FINDINGS).fetchall()]


def postgres_findings(folder: Path, dsn: str, database: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(f"DROP DATABASE IF EXISTS {database}")
        pg.execute(f"CREATE DATABASE {database}")
    target = dsn.rsplit("/", 1)[0] + f"/{database}"
    done = run(folder, [_bin("psql"), target, "-v", "ON_ERROR_STOP=1", "-q",
                        *(x for s in scripts(folder) for x in ("-f", s))])
    assert done.returncode == 0, done.stderr
    with psycopg.connect(target) as pg:
        return [tuple(r) for r in pg.execute(FINDINGS).fetchall()]


@pytest.mark.parametrize("as_of", [None, AS_OF])
def test_sqlite_bundle_gives_excon_screens_findings(
        tmp_path: Path, inputs: dict[str, Path], expected: dict[str | None, Any],
        as_of: str | None) -> None:
    assert shutil.which("sqlite3"), "the sqlite3 shell is a system dependency (make system-deps)"
    assert sqlite_findings(bundle(tmp_path, "sqlite", inputs, as_of)) == expected[as_of]


def test_duckdb_bundle_gives_excon_screens_findings(
        tmp_path: Path, inputs: dict[str, Path], expected: dict[str | None, Any]) -> None:
    assert duckdb_findings(bundle(tmp_path, "duckdb", inputs, None)) == expected[None]


def test_postgres_bundle_gives_excon_screens_findings(
        tmp_path: Path, inputs: dict[str, Path], expected: dict[str | None, Any],
        postgres_dsn: str) -> None:
    """Explanations included: halves are rounded up and integers are made from whole numbers
    on every engine (PostgreSQL rounds a double's halves to even, and casts round)."""
    folder = bundle(tmp_path, "postgres", inputs, AS_OF)
    # JIT off where the checks run and where the README reads them (20-40 times slower on)
    assert (folder / "checks.sql").read_text("utf-8").startswith("SET jit = off;")
    assert "PGOPTIONS='-c jit=off' psql" in (folder / "README.md").read_text("utf-8")
    assert json.loads((folder / "manifest.json").read_text("utf-8"))[
        "postgres_settings"] == {"jit": "off"}
    assert postgres_findings(folder, postgres_dsn, "bundle_test") == expected[AS_OF]


def _run_scripts(folder: Path, dialect: str, names: list[str], dsn: str = "") -> None:
    """Some of the bundle's scripts, in its README's way, in the database a run before made."""
    if dialect == "sqlite":
        done = run(folder, ["sqlite3", "-bail", "kb.sqlite", *(f".read {s}" for s in names)])
    elif dialect == "duckdb":
        code = ("import duckdb; c = duckdb.connect('kb.duckdb'); "
                f"[c.execute(open(f).read()) for f in {names}]")
        done = run(folder, [sys.executable, "-I", "-c", code])
    else:
        done = run(folder, [_bin("psql"), dsn, "-v", "ON_ERROR_STOP=1", "-q",
                            *(x for s in names for x in ("-f", s))])
    assert done.returncode == 0, done.stderr


def _read(folder: Path, dialect: str, dsn: str = "") -> list[tuple[Any, ...]]:
    if dialect == "sqlite":
        with sqlite3.connect(folder / "kb.sqlite") as conn:
            return conn.execute(FINDINGS).fetchall()
    if dialect == "duckdb":
        with duckdb.connect(str(folder / "kb.duckdb")) as conn:
            return [tuple(r) for r in conn.execute(FINDINGS).fetchall()]
    with psycopg.connect(dsn) as pg:
        return [tuple(r) for r in pg.execute(FINDINGS).fetchall()]


@pytest.mark.slow  # every bundle's scripts twice, end to end
@pytest.mark.parametrize("dialect", ["sqlite", "duckdb", "postgres"])
def test_every_script_runs_again_and_new_inputs_replace_the_old(
        tmp_path: Path, inputs: dict[str, Path], expected: dict[str | None, Any],
        dialect: str, request: pytest.FixtureRequest) -> None:
    """The whole bundle run twice, then another day's inputs prepared and loaded with
    load-inputs.sql, derive.sql, checks.sql and selfcheck.sql alone, twice: each time the
    findings are `excon screen`'s for the inputs loaded last, once each (loading the DuckDB
    bundle's inputs again appended them: 27,756 findings instead of 239)."""
    dsn = ""
    if dialect == "postgres":
        server = request.getfixturevalue("postgres_dsn")
        with psycopg.connect(server, autocommit=True) as pg:
            pg.execute("DROP DATABASE IF EXISTS bundle_rerun")
            pg.execute("CREATE DATABASE bundle_rerun")
        dsn = server.rsplit("/", 1)[0] + "/bundle_rerun"
    folder = bundle(tmp_path, dialect, inputs, None)
    every = scripts(folder)
    for _ in range(2):
        _run_scripts(folder, dialect, every, dsn)
        assert _read(folder, dialect, dsn) == expected[None]
    day = demo.write(demo.generate(400, seed=11, rulebooks=[RULEBOOKS]), tmp_path / "day")
    invoke("prepare", "--declarations", str(day["declarations"]), "--licences",
           str(day["licences"]), "--parties", str(day["parties"]), "--out",
           str(folder / "inputs"))
    findings, _ = Screener([RULEBOOKS]).screen_files(day["declarations"], day["licences"],
                                                     day["parties"])
    again = [s for s in every if s not in ("schema.sql", "load-rulebook.sql")]
    for _ in range(2):
        _run_scripts(folder, dialect, again, dsn)
        assert _read(folder, dialect, dsn) == [tuple(f.as_dict().values()) for f in findings]


def test_a_repeated_input_row_is_refused(tmp_path: Path, inputs: dict[str, Path]) -> None:
    """SQLite's and PostgreSQL's keys refuse it at load; DuckDB's tables have none, and the
    self-check names it."""
    for dialect in ("sqlite", "duckdb"):
        folder = bundle(tmp_path, dialect, inputs, None)
        path = folder / "inputs" / "declarations.csv"
        lines = path.read_text("utf-8").splitlines(keepends=True)
        path.write_text("".join([*lines, lines[1]]), encoding="utf-8")  # a row twice
        if dialect == "sqlite":
            done = run(folder, ["sqlite3", "-bail", "kb.sqlite",
                                *(f".read {s}" for s in scripts(folder))])
            assert "UNIQUE constraint failed: declarations.id" in done.stderr
            continue
        code = ("import duckdb; c = duckdb.connect('kb.duckdb'); "
                f"[c.execute(open(f).read()) for f in {scripts(folder)}]")
        done = run(folder, [sys.executable, "-I", "-c", code])
        assert done.returncode != 0
        assert "table declarations has a id more than once: its inputs were loaded twice, " \
            "or the file repeats one" in done.stderr


def test_prepare_takes_the_bundle_and_its_rulebooks_and_refuses_another_version(
        tmp_path: Path, inputs: dict[str, Path], expected: dict[str | None, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the repository, with no ./rulebooks: `excon prepare --bundle DIR` writes the
    bundle's inputs/ with the rulebooks the bundle keeps, and records what it prepared."""
    folder = tmp_path / "sqlite"
    invoke("export", "--dialect", "sqlite", "--out", str(folder))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    files = ("--declarations", str(inputs["declarations"]), "--licences",
             str(inputs["licences"]), "--parties", str(inputs["parties"]))
    result = CliRunner().invoke(cli, ["prepare", "--bundle", str(folder), *files])
    assert result.exit_code == 0, result.output
    prepared = json.loads((folder / "inputs" / "prepared.json").read_text("utf-8"))
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert prepared["rulebook_version"] == manifest["rulebook_version"]
    assert sqlite_findings(folder) == expected[None]
    # a bundle made from other rulebooks is refused, naming both versions
    manifest["rulebook_version"] = "0000000000000000"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = CliRunner().invoke(cli, ["prepare", "--bundle", str(folder), *files])
    assert result.exit_code == 1
    assert "was exported from rulebook version 0000000000000000" in result.output
    result = CliRunner().invoke(cli, ["prepare", *files])
    assert result.exit_code == 2 and "give --bundle" in result.output


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb"])
def test_the_self_check_refuses_inputs_prepared_with_other_rulebooks(
        tmp_path: Path, inputs: dict[str, Path], dialect: str) -> None:
    """inputs/ records the rulebook version excon prepare used; another than the bundle's is
    refused by the self-check, which names both."""
    folder = bundle(tmp_path, dialect, inputs, None)
    version = json.loads((folder / "manifest.json").read_text("utf-8"))["rulebook_version"]
    prepared = folder / "inputs" / "excon_prepared.csv"
    assert prepared.read_text("utf-8").splitlines() == ['"rulebook_version"', f'"{version}"']
    prepared.write_text('"rulebook_version"\n"0123456789abcdef"\n', encoding="utf-8")
    if dialect == "sqlite":
        done = run(folder, ["sqlite3", "-bail", "kb.sqlite",
                            *(f".read {s}" for s in scripts(folder))])
        with sqlite3.connect(folder / "kb.sqlite") as conn:
            problems = [p for (p,) in conn.execute("SELECT problem FROM excon_selfcheck")]
        assert done.returncode != 0 and "excon_selfcheck" in done.stderr
    else:
        code = ("import duckdb; c = duckdb.connect('kb.duckdb'); "
                f"[c.execute(open(f).read()) for f in {scripts(folder)}]")
        done = run(folder, [sys.executable, "-I", "-c", code])
        assert done.returncode != 0
        problems = [done.stderr]
    assert any(f"inputs/ were prepared with rulebook version 0123456789abcdef, this bundle is "
               f"rulebook version {version}" in p for p in problems), problems


def test_the_self_check_fails_on_inputs_prepared_for_other_declarations(
        tmp_path: Path, inputs: dict[str, Path]) -> None:
    folder = bundle(tmp_path, "sqlite", inputs, None)
    other = tmp_path / "other"
    files = demo.write(demo.generate(300, seed=99, rulebooks=[RULEBOOKS]), other)
    invoke("prepare", "--declarations", str(files["declarations"]), "--out", str(other / "in"))
    shutil.copy(other / "in" / "declarations.csv", folder / "inputs" / "declarations.csv")
    done = run(folder, ["sqlite3", "-bail", "kb.sqlite",
                        *(f".read {s}" for s in scripts(folder))])
    assert done.returncode != 0 and "excon_selfcheck" in done.stderr
    with sqlite3.connect(folder / "kb.sqlite") as conn:
        problems = [p for (p,) in conn.execute("SELECT problem FROM excon_selfcheck")]
    assert problems == ["party_name_keys does not know every declared name: the prepared "
                        "relations are for other declarations (run excon prepare again)"]


def test_the_self_check_fails_without_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "duckdb"
    invoke("export", "--dialect", "duckdb", "--out", str(folder))
    code = ("import duckdb; c = duckdb.connect('kb.duckdb'); "
            f"[c.execute(open(f).read()) for f in {scripts(folder)}]")
    for name in json.loads((folder / "manifest.json").read_text("utf-8"))["tables"]:
        if name["file"].startswith("inputs/"):  # what `excon prepare` has not written yet
            (folder / name["file"]).write_text(
                ",".join(f'"{c["name"]}"' for c in name["columns"]) + "\n", encoding="utf-8")
    done = run(folder, [sys.executable, "-I", "-c", code])
    assert done.returncode != 0
    assert "table declarations is empty: run excon prepare and load-inputs.sql" in done.stderr


def test_the_manifest_says_where_every_table_comes_from(tmp_path: Path) -> None:
    folder = tmp_path / "postgres"
    invoke("export", "--dialect", "postgres", "--out", str(folder))
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["dialect"] == "postgres" and manifest["null"] == "\\N"
    tables = {t["name"]: t for t in manifest["tables"]}
    assert tables["items"]["rows"] > 50 and (folder / tables["items"]["file"]).exists()
    assert "fuzzy matching" in tables["listed_names"]["source"]
    assert tables["declarations"]["file"] == "inputs/declarations.csv"
    assert {"name": "quantity_kg", "type": "DOUBLE PRECISION"} in \
        tables["declarations"]["columns"]
    readme = (folder / "README.md").read_text("utf-8")
    assert "excon prepare --bundle . --declarations" in readme and "psql \"$DSN\"" in readme
