"""Spark: the Spark bundle, submitted with spark-submit as on a cluster (here a local master),
gives `excon screen`'s findings on the demo data, row for row and word for word; and
`excon screen --engine spark` gives the default engine's.

Spark needs Java 17 or later (Debian's openjdk-17-jre-headless, which `make system-deps`
installs) and PySpark (the `spark` extra). Each test starts a JVM: they are slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.inputs import demo
from kb.screen import Screener
from kb.screen.spark_run import statements
from tests.conftest import DATA, RULEBOOKS
from tests.test_compile import LICENCE, decl

pytestmark = pytest.mark.slow


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_spark_bundle_gives_excon_screens_findings(tmp_path: Path) -> None:
    inputs = demo.write(demo.generate(2000, seed=1, rulebooks=[RULEBOOKS]), tmp_path / "in")
    folder = tmp_path / "spark"
    invoke("export", "--dialect", "spark", "--out", str(folder), "--rulebooks", str(RULEBOOKS))
    invoke("prepare", "--declarations", str(inputs["declarations"]), "--licences",
           str(inputs["licences"]), "--parties", str(inputs["parties"]),
           "--out", str(folder / "inputs"), "--rulebooks", str(RULEBOOKS))
    submit = Path(sys.executable).parent / "spark-submit"
    # as the README says, from the bundle's folder; a process that does not import excon
    done = subprocess.run(
        [str(submit), "--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=4",
         "--conf", "spark.sql.adaptive.enabled=false", "run.py"],
        cwd=folder, capture_output=True, text=True, timeout=1200,
        env={"PATH": f"{submit.parent}:/usr/bin:/bin", "HOME": str(tmp_path),
             "PYSPARK_PYTHON": sys.executable, "JAVA_HOME": os.environ.get("JAVA_HOME", "")})
    assert done.returncode == 0, done.stderr[-3000:]
    got = sorted(tuple(r.values()) for r in pq.read_table(folder / "findings").to_pylist())
    findings, _ = Screener([RULEBOOKS]).screen_files(
        inputs["declarations"], inputs["licences"], inputs["parties"])
    expected = [tuple(f.as_dict().values()) for f in findings]
    assert {f[2] for f in expected} == {"prohibited", "unlicensed", "undetermined", "risk"}
    assert got == sorted(expected)
    assert f"{len(expected)} findings in" in done.stdout
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["scripts"][0] == "load-rulebook.sql" and "schema.sql" not in manifest


def test_screen_on_spark_gives_the_default_engines_findings() -> None:
    """The semantics rulebook's cases: a suspension's boundaries, licence cover and why it
    failed, listed parties after normalisation, a threshold the declaration cannot answer."""
    screener = Screener([DATA / "semantics"])
    rows = [decl("before", "2024-05-31", to="US"), decl("first", "2024-06-01", to="US"),
            decl("after", "2024-07-01", to="US"),
            decl("ok", "2024-03-01", quantity_kg=600, licence_no="L-1"),
            decl("exhausted", "2024-03-02", quantity_kg=600, licence_no="L-1"),
            decl("expired", "2025-01-02", licence_no="L-1"),
            decl("unknown", "2024-03-03", licence_no="L-9"),
            decl("listed", "2025-02-01", consignee="LOCKHEED MARTIN CORPORATION"),
            decl("purity", "2024-03-03", purity_pct=None)]
    default = screener.screen(rows, [LICENCE])
    try:
        on_spark = screener.screen(rows, [LICENCE], engine="spark")
    finally:
        screener.close()
    assert {f.declaration_id for f in default} >= {"before", "exhausted", "listed"}
    assert on_spark == default


def test_statements_split_outside_quotes_and_comments() -> None:
    script = ("SELECT 'a;b', \"c;\" FROM t; -- a note; more\nSELECT `x;y` /* z; */ FROM u;"
              "\nSELECT 'it\\'s; fine';")
    assert statements(script) == ["SELECT 'a;b', \"c;\" FROM t",
                                  "-- a note; more\nSELECT `x;y` /* z; */ FROM u",
                                  "SELECT 'it\\'s; fine'"]
