"""Spark: the Spark bundle, submitted with spark-submit as on a cluster (here a local master),
gives `excon screen`'s findings on the demo data, row for row and word for word, and so does
the DuckDB bundle turned into Spark SQL by docs/engines.md's sqlglot recipe
(`excon screen --engine spark`: test_spark_engine.py, on another test worker).

Spark needs Java 17 or later (Debian's openjdk-17-jre-headless, which `make system-deps`
installs) and PySpark (the `spark` extra). A test that starts a JVM is slow (marked `slow`);
the bundle's script splitting needs no Spark."""

from __future__ import annotations

import json
import os
import re
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
from tests.conftest import ROOT, RULEBOOKS


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def spark_submit(home: Path, *folders: Path) -> subprocess.CompletedProcess[str]:
    """`spark-submit run.py` on a local master, as the bundle's README says, for each bundle
    folder in turn within one submission (one JVM: a JVM's start and warm-up is most of a small
    run), in a process that does not import excon; it must succeed."""
    submit = Path(sys.executable).parent / "spark-submit"
    driver = home / "run_bundles.py"
    driver.write_text(
        "import os, runpy, sys\n"
        "from pyspark.sql import SparkSession\n"
        "for folder in sys.argv[1:]:\n"
        "    spark = SparkSession.builder.getOrCreate()  # each bundle starts afresh\n"
        "    for table in spark.catalog.listTables():\n"
        "        if table.isTemporary:\n"
        "            spark.catalog.dropTempView(table.name)\n"
        "    os.chdir(folder)\n"
        "    sys.argv = ['run.py']\n"
        "    try:\n"
        "        runpy.run_path(os.path.join(folder, 'run.py'), run_name='__main__')\n"
        "    except SystemExit as done:\n"
        "        if done.code:\n"
        "            raise\n", encoding="utf-8")
    done = subprocess.run(
        [str(submit), "--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=4",
         str(driver), *map(str, folders)],
        cwd=folders[0], capture_output=True, text=True, timeout=1200,
        env={"PATH": f"{submit.parent}:/usr/bin:/bin", "HOME": str(home),
             "PYSPARK_PYTHON": sys.executable, "JAVA_HOME": os.environ.get("JAVA_HOME", "")})
    # Spark's INFO lines and cache notes bury the Python traceback: the rest is what failed
    assert done.returncode == 0, "\n".join(
        line for line in done.stderr.splitlines()
        if " INFO " not in line and not line.startswith(" [rdd_"))[-4000:]
    return done


@pytest.mark.slow
def test_spark_bundle_and_the_transpiled_duckdb_bundle_give_excon_screens_findings(
        tmp_path: Path) -> None:
    """The Spark bundle, and docs/engines.md's "Engines excon does not ship" recipe (sqlglot
    turns the DuckDB bundle's derive.sql and checks.sql into Spark SQL, put in a Spark bundle's
    place), each give `excon screen`'s findings row for row, in one spark-submit."""
    recipe = re.search(r"```python\n(.*?def duckdb_script_for_spark.*?)```",
                       (ROOT / "docs" / "engines.md").read_text(encoding="utf-8"), re.S)
    assert recipe, "docs/engines.md lost its transpiling recipe"
    namespace: dict[str, Any] = {}
    exec(recipe.group(1), namespace)  # the docs' own code, as a reader would copy it
    inputs = demo.write(demo.generate(2000, seed=1, rulebooks=[RULEBOOKS]), tmp_path / "in")
    folder, duck, transpiled = tmp_path / "spark", tmp_path / "duckdb", tmp_path / "transpiled"
    for dialect, out in (("spark", folder), ("duckdb", duck), ("spark", transpiled)):
        invoke("export", "--dialect", dialect, "--out", str(out), "--rulebooks",
               str(RULEBOOKS))
    for script in ("derive.sql", "checks.sql"):
        (transpiled / script).write_text(namespace["duckdb_script_for_spark"](
            (duck / script).read_text(encoding="utf-8")), encoding="utf-8")
    invoke("prepare", "--declarations", str(inputs["declarations"]), "--licences",
           str(inputs["licences"]), "--parties", str(inputs["parties"]),
           "--out", str(folder / "inputs"), "--rulebooks", str(RULEBOOKS))
    invoke("prepare", "--declarations", str(inputs["declarations"]), "--licences",
           str(inputs["licences"]), "--parties", str(inputs["parties"]),
           "--bundle", str(transpiled))
    done = spark_submit(tmp_path, folder, transpiled)
    findings, _ = Screener([RULEBOOKS]).screen_files(
        inputs["declarations"], inputs["licences"], inputs["parties"])
    expected = [tuple(f.as_dict().values()) for f in findings]
    assert {f[2] for f in expected} == {"prohibited", "presumption-of-denial", "unlicensed",
                                        "undetermined", "risk"}
    for out in (folder, transpiled):
        got = sorted(tuple(r.values()) for r in pq.read_table(out / "findings").to_pylist())
        assert got == sorted(expected), out.name
    assert done.stdout.count(f"{len(expected)} findings in") == 2
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
