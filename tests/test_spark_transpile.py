"""Engines excon does not ship: docs/engines.md's sqlglot recipe turns the DuckDB bundle's
scripts into Spark SQL, and the result, in a Spark bundle's place, gives `excon screen`'s
findings (Spark needs Java 17 and PySpark, as tests/test_spark.py says; slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from kb.inputs import demo
from kb.screen import Screener
from tests.conftest import ROOT, RULEBOOKS
from tests.test_spark import invoke, spark_submit


@pytest.mark.slow
def test_the_duckdb_bundle_transpiled_by_docs_recipe_runs_on_spark(tmp_path: Path) -> None:
    """docs/engines.md, "Engines excon does not ship": its sqlglot function turns the DuckDB
    bundle's derive.sql and checks.sql into Spark SQL; in a Spark bundle's place they give
    `excon screen`'s findings, row for row."""
    import re

    recipe = re.search(r"```python\n(.*?def duckdb_script_for_spark.*?)```",
                       (ROOT / "docs" / "engines.md").read_text(encoding="utf-8"), re.S)
    assert recipe, "docs/engines.md lost its transpiling recipe"
    namespace: dict[str, Any] = {}
    exec(recipe.group(1), namespace)  # the docs' own code, as a reader would copy it
    inputs = demo.write(demo.generate(300, seed=4, rulebooks=[RULEBOOKS]), tmp_path / "in")
    duck, folder = tmp_path / "duckdb", tmp_path / "spark"
    for dialect, out in (("duckdb", duck), ("spark", folder)):
        invoke("export", "--dialect", dialect, "--out", str(out), "--rulebooks",
               str(RULEBOOKS))
    for script in ("derive.sql", "checks.sql"):
        (folder / script).write_text(namespace["duckdb_script_for_spark"](
            (duck / script).read_text(encoding="utf-8")), encoding="utf-8")
    invoke("prepare", "--declarations", str(inputs["declarations"]), "--licences",
           str(inputs["licences"]), "--parties", str(inputs["parties"]),
           "--bundle", str(folder))
    spark_submit(folder, tmp_path)
    got = sorted(tuple(r.values()) for r in pq.read_table(folder / "findings").to_pylist())
    findings, _ = Screener([RULEBOOKS]).screen_files(
        inputs["declarations"], inputs["licences"], inputs["parties"])
    assert got == sorted(tuple(f.as_dict().values()) for f in findings) and got

