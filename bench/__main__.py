"""`python -m bench [--quick]`: run every benchmark, print a table, write bench/results.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    checker,
    diff,
    frontend,
    incremental,
    indicators,
    latency,
    load,
    matching,
    screen,
    serve,
    targets,
)


def machine() -> dict[str, object]:
    from importlib.metadata import version

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "duckdb": version("duckdb"),
        "datasette": version("datasette"),
        "platform": platform.platform(),
    }


def _commit() -> str | None:
    """The checked-out commit (with `+changes` when the tree differs from it), if in git."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results.json"))
    parser.add_argument("--only", choices=["frontend", "checker", "load", "screen",
                                           "indicators", "sweep", "matching", "latency",
                                           "serve", "diff", "incremental"],
                        action="append",
                        help="run only these benchmarks")
    parser.add_argument("--update", action="store_true",
                        help="keep the other benchmarks' figures from --out (each benchmark "
                             "records when and at which commit it ran)")
    parser.add_argument("--screen-sizes", default="10000,100000,1000000",
                        help="declaration counts for the screening benchmark, e.g. "
                             "10000,100000,1000000")
    parser.add_argument("--serve-size", type=int, default=1_000_000,
                        help="declarations in the knowledge base served for the Datasette "
                             "benchmark")
    parser.add_argument("--engines", help="engines the screening benchmark runs, e.g. "
                        "sqlite,duckdb (default: sqlite,duckdb,postgres,spark; with --quick "
                        "sqlite,duckdb)")
    parser.add_argument("--engine-repeat", type=int,
                        help="runs of each engine's end-to-end and loaded screening figures "
                             "per size (default: 3, and 1 from 1,000,000 declarations)")
    parser.add_argument("--quality-size", type=int, default=100_000,
                        help="demo declarations for the indicators' precision and recall")
    args = parser.parse_args(argv)
    only = set(args.only or ["frontend", "checker", "load", "screen", "indicators", "sweep",
                             "matching", "latency", "serve", "diff", "incremental"])
    lines, repeat = (300, 1) if args.quick else (10_000, 7)
    n, load_repeat = (2_000, 1) if args.quick else (1_000_000, 3)
    results: dict[str, object] = {"machine": machine()}
    if "frontend" in only:
        results["frontend"] = fe = frontend.run(lines, repeat,
                                                200_000 if args.quick else 5_000_000)
        print(frontend.report(fe))
    if "checker" in only:
        results["checker"] = ck = checker.run((50, 100) if args.quick else
                                              (1_000, 5_000, 10_000),
                                              200_000 if args.quick else 5_000_000)
        print(checker.report(ck))
    if "load" in only:
        results["load"] = ld = load.run(n, load_repeat)
        print(load.report(ld))
    if "screen" in only:
        sizes = (1_000, 2_000) if args.quick else tuple(
            int(n) for n in args.screen_sizes.split(","))
        engines = tuple(args.engines.split(",")) if args.engines else (
            ("sqlite", "duckdb") if args.quick else screen.ENGINES)
        results["screen"] = sc = screen.run(sizes, 1 if args.quick else 3, engines=engines,
                                            engine_repeat=args.engine_repeat)
        print(screen.report(sc))
    if "indicators" in only:
        import tempfile

        sizes = (1_000, 2_000) if args.quick else tuple(
            int(n) for n in args.screen_sizes.split(","))
        biggest = Path(tempfile.gettempdir()) / "excon-bench" / f"kb-{sizes[-1]}.db"
        results["indicators"] = ind = indicators.run(
            3_000 if args.quick else args.quality_size,
            biggest if "screen" in only else None, 1 if args.quick else 3,
            fresh_seeds=(8,) if args.quick else indicators.FRESH_SEEDS)
        print(indicators.report(ind))
    if "sweep" in only:
        import tempfile

        results["sweep"] = sw = indicators.sweep(
            3_000 if args.quick else args.quality_size,
            Path(tempfile.gettempdir()) / "excon-bench",
            only=("split-parts", "split-window") if args.quick else ())
        print(indicators.sweep_report(sw))
    if "matching" in only:
        results["matching"] = mt = matching.run(
            (1_000, 2_000) if args.quick else (1_000, 10_000, 100_000),
            200 if args.quick else 2_000)
        print(matching.report(mt))
    if "latency" in only:
        results["latency"] = lt = latency.run(50 if args.quick else 1000,
                                              1 if args.quick else 3,
                                              history=2_000 if args.quick else 1_000_000)
        print(latency.report(lt))
    if "serve" in only:
        results["serve"] = sv = serve.run(2_000 if args.quick else args.serve_size,
                                          3 if args.quick else 25, 1 if args.quick else 3)
        print(serve.report(sv))
    if "incremental" in only:
        results["incremental"] = inc = incremental.run(
            2_000 if args.quick else 1_000_000, 200 if args.quick else 20_000,
            1 if args.quick else 3)
        print(incremental.report(inc))
    if "diff" in only:
        results["diff"] = df = diff.run(2_000 if args.quick else 1_000_000)
        print(diff.report(df))
    stamp = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
             "commit": _commit(), "machine": results["machine"]}
    measured = {name: stamp for name in results if name != "machine"}
    out = Path(args.out)
    if args.update and out.exists():
        kept = json.loads(out.read_text(encoding="utf-8"))
        kept.pop("targets", None)
        measured = {**kept.pop("measured", {}), **measured}
        results = {**kept, **results}
    results["measured"] = measured
    results["targets"] = rows = targets.table(results)
    print(targets.report(rows))
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
