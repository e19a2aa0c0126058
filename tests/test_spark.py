"""Spark: the Spark bundle, submitted with spark-submit as on a cluster (here a local master),
gives `excon screen`'s findings on the demo data, row for row and word for word
(`excon screen --engine spark`: test_spark_engine.py, on another test worker).

Spark needs Java 17 or later (Debian's openjdk-17-jre-headless, which `make system-deps`
installs) and PySpark (the `spark` extra). A test that starts a JVM is slow (marked `slow`);
the bundle's script splitting needs no Spark."""

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
from tests.conftest import RULEBOOKS


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def spark_submit(folder: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`spark-submit run.py` on a local master, as the bundle's README says: from the bundle's
    folder, in a process that does not import excon; it must succeed."""
    submit = Path(sys.executable).parent / "spark-submit"
    done = subprocess.run(
        [str(submit), "--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=4",
         "run.py"],
        cwd=folder, capture_output=True, text=True, timeout=1200,
        env={"PATH": f"{submit.parent}:/usr/bin:/bin", "HOME": str(home),
             "PYSPARK_PYTHON": sys.executable, "JAVA_HOME": os.environ.get("JAVA_HOME", "")})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_spark_bundle_gives_excon_screens_findings(tmp_path: Path) -> None:
    inputs = demo.write(demo.generate(2000, seed=1, rulebooks=[RULEBOOKS]), tmp_path / "in")
    folder = tmp_path / "spark"
    invoke("export", "--dialect", "spark", "--out", str(folder), "--rulebooks", str(RULEBOOKS))
    invoke("prepare", "--declarations", str(inputs["declarations"]), "--licences",
           str(inputs["licences"]), "--parties", str(inputs["parties"]),
           "--out", str(folder / "inputs"), "--rulebooks", str(RULEBOOKS))
    done = spark_submit(folder, tmp_path)
    got = sorted(tuple(r.values()) for r in pq.read_table(folder / "findings").to_pylist())
    findings, _ = Screener([RULEBOOKS]).screen_files(
        inputs["declarations"], inputs["licences"], inputs["parties"])
    expected = [tuple(f.as_dict().values()) for f in findings]
    assert {f[2] for f in expected} == {"prohibited", "presumption-of-denial", "unlicensed",
                                        "undetermined", "risk"}
    assert got == sorted(expected)
    assert f"{len(expected)} findings in" in done.stdout
    # on a local master run.py plans once (adaptive execution off), and says how it goes
    assert "spark.sql.adaptive.enabled=false" in done.stdout
    checks = len(json.loads((folder / "manifest.json").read_text("utf-8"))["checks"])
    assert f"check {checks}/{checks} " in done.stdout and "running derive.sql" in done.stdout
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["scripts"][0] == "load-rulebook.sql" and "schema.sql" not in manifest


def test_statements_split_outside_quotes_and_comments() -> None:
    script = ("SELECT 'a;b', \"c;\" FROM t; -- a note; more\nSELECT `x;y` /* z; */ FROM u;"
              "\nSELECT 'it\\'s; fine';")
    assert statements(script) == ["SELECT 'a;b', \"c;\" FROM t",
                                  "-- a note; more\nSELECT `x;y` /* z; */ FROM u",
                                  "SELECT 'it\\'s; fine'"]
