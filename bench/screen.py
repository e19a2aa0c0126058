"""Screening: the compiled checks over N demo declarations, on SQLite and on DuckDB.

Measures the `findings` query only (the data is loaded beforehand): declarations per second,
and the growth ratio between sizes (linear is the ratio of the sizes). Issue 4's targets:
1,000,000 declarations in ≤ 10 s on SQLite; growth 1M/100k ≤ 11.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import declarations_file


def _sqlite_seconds(db: Path, repeat: int) -> tuple[float, int]:
    import sqlite3

    times, count = [], 0
    for _ in range(repeat):
        with sqlite3.connect(db) as conn:
            t0 = time.perf_counter()
            count = conn.execute("SELECT COUNT(*) FROM findings").fetchone()[0]
            times.append(time.perf_counter() - t0)
    return statistics.median(times), count


def _duckdb_seconds(db: Path, repeat: int) -> tuple[float, int]:
    import sqlite3

    from kb.checks import SUPPORT_VIEWS, support_statements
    from kb.engines import copy_to_duckdb
    from kb.screen import Screener

    compiled = Screener([Path("rulebooks")]).compiled
    with sqlite3.connect(db) as conn:
        duck = copy_to_duckdb(conn)
    for sql in [*support_statements("duckdb")[-len(SUPPORT_VIEWS):],
                *compiled.statements("duckdb")]:
        duck.execute(sql)
    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = duck.execute("SELECT COUNT(*) FROM findings").fetchone()[0]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), count


def run(sizes: tuple[int, ...] = (10_000, 100_000), repeat: int = 3,
        cache: Path | None = None) -> dict[str, Any]:
    from kb.build import build

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"sizes": list(sizes), "repeat": repeat, "runs": []}
    for n in sizes:
        decls = declarations_file(n, cache)
        db = cache / f"kb-{n}.db"
        build(db, [Path("rulebooks")], decls, decls.parent / "licences.csv",
              decls.parent / "parties.csv")
        s_sec, s_count = _sqlite_seconds(db, repeat)
        d_sec, d_count = _duckdb_seconds(db, repeat)
        out["runs"].append({"declarations": n, "sqlite_s": s_sec, "duckdb_s": d_sec,
                            "findings": s_count, "same_count": s_count == d_count,
                            "sqlite_per_s": n / s_sec, "duckdb_per_s": n / d_sec})
    runs = out["runs"]
    if len(runs) > 1:
        out["growth_sqlite"] = runs[-1]["sqlite_s"] / runs[-2]["sqlite_s"]
        out["growth_duckdb"] = runs[-1]["duckdb_s"] / runs[-2]["duckdb_s"]
        out["size_ratio"] = runs[-1]["declarations"] / runs[-2]["declarations"]
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"screening: findings query, median of {r['repeat']} runs"]
    for x in r["runs"]:
        lines.append(f"  {x['declarations']:>9,} declarations  SQLite {x['sqlite_s']:7.2f} s "
                     f"({x['sqlite_per_s']:9,.0f}/s)   DuckDB {x['duckdb_s']:7.2f} s "
                     f"({x['duckdb_per_s']:9,.0f}/s)   {x['findings']:,} findings"
                     f"{'' if x['same_count'] else '  (COUNTS DIFFER)'}")
    if "growth_sqlite" in r:
        lines.append(f"  growth for {r['size_ratio']:.0f}x the declarations: SQLite "
                     f"{r['growth_sqlite']:.1f}x, DuckDB {r['growth_duckdb']:.1f}x "
                     f"(linear = {r['size_ratio']:.0f}x)")
    return "\n".join(lines)
