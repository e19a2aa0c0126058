"""Run an excon Spark bundle: `spark-submit run.py` from the bundle's folder (or anywhere, with
the folder as the script's own). Copied into each Spark bundle as `run.py`; it needs PySpark
only, not excon.

    spark-submit run.py                                  # inputs/*.csv, findings/ as Parquet
    spark-submit run.py --inputs s3a://bucket/day/ --format parquet --out s3a://bucket/out/

The rulebook's rows come with the bundle (`rulebook/*.csv`). The inputs are `excon prepare`'s
tables, as CSV (the bundle's `load-inputs.sql`) or as Parquet files or folders named after
each table (`declarations.parquet`, …, with the manifest's columns). Then the scripts run in
the manifest's order, and each check's findings are appended to `--out` (Parquet), one check
at a time: Spark's optimizer runs out of memory on the union of every check as one plan.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def statements(text: str) -> list[str]:
    """The statements of a script, split at semicolons outside quotes and comments (Spark's
    string literals escape with a backslash)."""
    out, start, i, quote = [], 0, 0, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 1
        elif c == ";":
            out.append(text[start:i].strip())
            start = i + 1
        i += 1
    out.append(text[start:].strip())
    return [s for s in out if s]


# Relations computed by a recursive query (a licence's walk over its uses): Spark loses the
# walk's columns when a query that reads the cached relation twice has its plan copied
# (Spark 4.3), so such a relation is computed once and kept as its rows (a local checkpoint),
# not as a plan.
CHECKPOINTED = ("licence_walk",)


def run_statement(spark: Any, sql: str) -> None:
    """One statement of the scripts; `CACHE TABLE name AS query` of a relation in
    CHECKPOINTED becomes a temporary view over the query's rows, checkpointed."""
    head = sql.split(None, 4)
    if len(head) == 5 and [w.upper() for w in head[:2]] == ["CACHE", "TABLE"] and \
            head[3].upper() == "AS" and head[2] in CHECKPOINTED:
        spark.sql(head[4]).localCheckpoint(eager=True).createOrReplaceTempView(head[2])
        return
    spark.sql(sql)


def register_parquet(spark: Any, manifest: dict[str, Any], inputs: str) -> None:
    """Each input table as a temporary view over `<inputs>/<table>.parquet`, with the
    manifest's columns in its order and types (a column Parquet lacks is an error)."""
    for table in manifest["tables"]:
        if not table["file"].startswith("inputs/"):
            continue
        frame = spark.read.parquet(f"{inputs.rstrip('/')}/{table['name']}.parquet")
        frame.selectExpr(*(f"CAST(`{c['name']}` AS {c['type']}) AS `{c['name']}`"
                           for c in table["columns"])).createOrReplaceTempView(table["name"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run excon's compiled checks on Spark.")
    parser.add_argument("--inputs", help="where excon prepare's tables are, as Parquet "
                        "(with --format parquet); default: the bundle's inputs/ as CSV")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--out", default=str(HERE / "findings"),
                        help="where the findings go, as Parquet (default: findings/)")
    args = parser.parse_args(argv)
    if args.format == "parquet" and not args.inputs:
        parser.error("--format parquet needs --inputs")

    from pyspark.sql import SparkSession

    manifest = json.loads((HERE / "manifest.json").read_text("utf-8"))
    spark = SparkSession.builder.appName("excon-checks").getOrCreate()
    settings = dict(manifest["spark_conf"])
    if str(spark.sparkContext.master).startswith("local"):  # one machine: plan once, up front
        settings.update(manifest.get("spark_local_conf", {}))
    for key, value in settings.items():
        spark.conf.set(key, value)
    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {text}", flush=True)

    progress(f"master {spark.sparkContext.master}; settings: "
             + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for script in manifest["scripts"]:
        progress(f"running {script}")
        if script == "load-inputs.sql" and args.format == "parquet":
            register_parquet(spark, manifest, args.inputs)
            continue
        text = (HERE / script).read_text("utf-8")
        if script.startswith("load-"):  # the CSV files' paths are the bundle's own
            folder = str(HERE).replace("\\", "\\\\").replace("'", "\\'")
            text = text.replace("path '", f"path '{folder}/")
        for sql in statements(text):
            run_statement(spark, sql)
    mode = "overwrite"
    checks = manifest["checks"]
    for n, view in enumerate(checks, 1):
        spark.table(view).write.mode(mode).parquet(args.out)
        mode = "append"
        progress(f"check {n}/{len(checks)} {view} written")
    count = spark.read.parquet(args.out).count()
    print(f"{count} findings in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
