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
from bench.stats import fmt_range, in_process, ratio_spread, spread

# Each engine's screening runs in a process of its own, so that its peak RSS is its own; both
# scripts end with the same timed loop over `findings` (`run` executes one query).
_TIMED = """
times = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    count = run("SELECT COUNT(*) FROM findings")
    times.append(time.perf_counter() - t0)
print(json.dumps({"times": times, "count": count,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_SQLITE = """
import json, resource, sqlite3, sys, time
from kb.checks import tune_connection
conn = sqlite3.connect(sys.argv[1])
tune_connection(conn)  # as excon's own connections (Datasette, builds) are set
run = lambda sql: conn.execute(sql).fetchone()[0]
""" + _TIMED

# DuckDB gets the same checks printed in its dialect, over a copy of the data in memory.
_DUCKDB = """
import json, resource, sqlite3, sys, time
from pathlib import Path
from kb.checks import SUPPORT_VIEWS, support_statements
from kb.engines import copy_to_duckdb
from kb.screen import Screener
compiled = Screener([Path("rulebooks")]).compiled
with sqlite3.connect(sys.argv[1]) as conn:
    duck = copy_to_duckdb(conn)
duck.execute("SET enable_progress_bar = false")
for sql in [*support_statements("duckdb")[-len(SUPPORT_VIEWS):],
            *compiled.statements("duckdb")]:
    duck.execute(sql)
run = lambda sql: duck.execute(sql).fetchone()[0]
""" + _TIMED


# Hand-written SQL for three checks, as an engineer would write them for this rulebook; they
# share the support relations (item matching, licence cover) with the compiled checks.
HAND_WRITTEN = {
    # an item of the gallium or germanium groups, on or after 2023-08-01, no licence covering it
    "check_ga_ge_licence": """
        SELECT COUNT(DISTINCT d.id) FROM declarations d
        JOIN declaration_items di ON di.declaration_id = d.id
        LEFT JOIN licence_cover lc ON lc.declaration_id = d.id
        WHERE di.item IN ('gallium-antimonide', 'gallium-arsenide', 'gallium-metal',
                          'gallium-nitride', 'gallium-oxide', 'gallium-phosphide',
                          'gallium-selenide', 'germanium-dioxide',
                          'germanium-epitaxial-substrate', 'germanium-metal',
                          'germanium-tetrachloride', 'indium-gallium-arsenide',
                          'zinc-germanium-phosphide', 'zone-refined-germanium')
          AND d.declared_on >= '2023-08-01' AND COALESCE(lc.covered, 0) = 0""",
    # the consignee or the end user matches (score ≥ the list's threshold, 90) a party while
    # it is on the Control List
    "check_control_list_consignee": """
        SELECT COUNT(DISTINCT id) FROM (
          SELECT d.id FROM declarations d
          JOIN listed_names k ON k.name = d.consignee AND k.score >= 90
          JOIN list_entry_periods e ON e.party = k.party AND e.list = 'control-list'
          WHERE d.declared_on >= e.valid_from
            AND (e.valid_until IS NULL OR d.declared_on <= e.valid_until)
          UNION ALL
          SELECT d.id FROM declarations d
          JOIN listed_names k ON k.name = d.end_user AND k.score >= 90
          JOIN list_entry_periods e ON e.party = k.party AND e.list = 'control-list'
          WHERE d.declared_on >= e.valid_from
            AND (e.valid_until IS NULL OR d.declared_on <= e.valid_until))""",
    # an item of the ban to the US, from 2024-12-03 except during the suspension (2025-11-09 to
    # 2026-11-27); items with a purity threshold count when they meet it or do not say
    "check_us_critical_minerals_ban": """
        SELECT COUNT(DISTINCT d.id) FROM declarations d
        JOIN declaration_items di ON di.declaration_id = d.id
        WHERE di.item IN ('antimony-hydride', 'antimony-metal', 'antimony-ores',
                          'antimony-oxides', 'dcpcvd-equipment', 'diamond-grinding-wheel',
                          'diamond-wire-saw', 'gallium-antimonide', 'gallium-arsenide',
                          'gallium-metal', 'gallium-nitride', 'gallium-oxide',
                          'gallium-phosphide', 'gallium-selenide', 'germanium-dioxide',
                          'germanium-epitaxial-substrate', 'germanium-metal',
                          'germanium-tetrachloride', 'indium-antimonide',
                          'indium-gallium-arsenide', 'organic-antimony',
                          'synthetic-diamond-micropowder', 'synthetic-diamond-single-crystal',
                          'zinc-germanium-phosphide', 'zone-refined-germanium')
          AND d.destination_country = 'US'
          AND d.declared_on >= '2024-12-03'
          AND NOT (d.declared_on >= '2025-11-09' AND d.declared_on <= '2026-11-27')
          AND NOT (di.item = 'antimony-oxides' AND COALESCE(d.purity_pct, 100) < 99.99)
          AND NOT (di.item IN ('organic-antimony', 'antimony-hydride')
                   AND COALESCE(d.purity_pct, 100) <= 99.999)""",
}


def _compare_hand_written(db: Path, repeat: int) -> dict[str, Any]:
    import sqlite3

    from kb.checks import tune_connection

    out = {}
    with sqlite3.connect(db) as conn:
        tune_connection(conn)
        for view, sql in HAND_WRITTEN.items():
            compiled, hand = [], []
            for _ in range(repeat):  # interleaved, so noise hits both alike
                t0 = time.perf_counter()
                found = conn.execute(f"SELECT COUNT(*) FROM {view}").fetchone()[0]
                compiled.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                expected = conn.execute(sql).fetchone()[0]
                hand.append(time.perf_counter() - t0)
            ratio = ratio_spread(compiled, hand)
            out[view] = {"compiled_s": statistics.median(compiled),
                         "hand_written_s": statistics.median(hand), "ratio": ratio["median"],
                         "ratio_range": ratio, "declarations": found,
                         "same_count": found == expected}
    return out


def _interpreter_seconds(db: Path) -> float:
    import sqlite3

    from dsl.interpret import Interpreter
    from kb.schema import declaration_schema
    from kb.screen import Screener

    rb = Screener([Path("rulebooks")]).rulebook
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        decls = [dict(r) for r in conn.execute("SELECT * FROM declarations")]
        licences = [dict(r) for r in conn.execute("SELECT * FROM licences")]
    interpreter = Interpreter(rb, declaration_schema())
    t0 = time.perf_counter()
    interpreter.judge(decls, licences)
    return time.perf_counter() - t0


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), repeat: int = 3,
        cache: Path | None = None) -> dict[str, Any]:
    from kb.build import build

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"sizes": list(sizes), "repeat": repeat, "runs": []}
    for n in sizes:
        decls = declarations_file(n, cache)
        db = cache / f"kb-{n}.db"
        t0 = time.perf_counter()
        build(db, [Path("rulebooks")], decls, decls.parent / "licences.csv",
              decls.parent / "parties.csv")
        build_s = time.perf_counter() - t0
        lite = in_process(_SQLITE, str(db), str(repeat))
        duck = in_process(_DUCKDB, str(db), str(repeat))
        s_sec, d_sec = statistics.median(lite["times"]), statistics.median(duck["times"])
        out["runs"].append({"declarations": n, "build_s": build_s,
                            "sqlite_s": s_sec, "sqlite_range": spread(lite["times"]),
                            "sqlite_rss_mb": lite["rss_mb"],
                            "duckdb_s": d_sec, "duckdb_range": spread(duck["times"]),
                            "duckdb_rss_mb": duck["rss_mb"],
                            "findings": lite["count"], "same_count": lite["count"] == duck["count"],
                            "sqlite_per_s": n / s_sec, "duckdb_per_s": n / d_sec})
    runs = out["runs"]
    last_db = cache / f"kb-{sizes[-1]}.db"
    out["hand_written"] = _compare_hand_written(last_db, max(repeat, 5))
    interp = _interpreter_seconds(last_db)
    out["interpreter_s"] = interp  # one run: at 1,000,000 declarations it takes minutes
    out["speedup_over_interpreter"] = interp / runs[-1]["sqlite_s"]
    if len(runs) > 1:
        out["growth_sqlite"] = runs[-1]["sqlite_s"] / runs[-2]["sqlite_s"]
        out["growth_duckdb"] = runs[-1]["duckdb_s"] / runs[-2]["duckdb_s"]
        out["size_ratio"] = runs[-1]["declarations"] / runs[-2]["declarations"]
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"screening: findings query, median of {r['repeat']} runs (each engine in its own "
             "process: peak RSS is its own)"]
    for x in r["runs"]:
        lines.append(f"  {x['declarations']:>9,} declarations  (build {x['build_s']:.1f} s)"
                     f"   {x['findings']:,} findings"
                     f"{'' if x['same_count'] else '  (COUNTS DIFFER)'}")
        lines.append(f"      SQLite {x['sqlite_s']:7.2f} s ({x['sqlite_per_s']:9,.0f}/s; "
                     f"{fmt_range(x['sqlite_range'])}; peak RSS {x['sqlite_rss_mb']:.0f} MB)")
        lines.append(f"      DuckDB {x['duckdb_s']:7.2f} s ({x['duckdb_per_s']:9,.0f}/s; "
                     f"{fmt_range(x['duckdb_range'])}; peak RSS {x['duckdb_rss_mb']:.0f} MB)")
    for view, x in r.get("hand_written", {}).items():
        lines.append(f"  {view:32} compiled {x['compiled_s']:6.3f} s, hand-written "
                     f"{x['hand_written_s']:6.3f} s: {x['ratio']:.2f}x "
                     f"({fmt_range(x['ratio_range'])}; target ≤ 1.5x)"
                     f"{'' if x['same_count'] else '  (COUNTS DIFFER)'}")
    if "interpreter_s" in r:
        lines.append(f"  reference interpreter {r['interpreter_s']:.2f} s (one run): compiled "
                     f"SQLite is {r['speedup_over_interpreter']:.1f}x faster (target ≥ 20x)")
    if "growth_sqlite" in r:
        lines.append(f"  growth for {r['size_ratio']:.0f}x the declarations: SQLite "
                     f"{r['growth_sqlite']:.1f}x, DuckDB {r['growth_duckdb']:.1f}x "
                     f"(linear = {r['size_ratio']:.0f}x)")
    return "\n".join(lines)
