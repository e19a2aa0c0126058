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

    from kb.checks import tune_connection

    times, count = [], 0
    for _ in range(repeat):
        with sqlite3.connect(db) as conn:
            tune_connection(conn)  # as excon's own connections (Datasette, builds) are set
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


# Hand-written SQL for three checks, as an engineer would write them for this rulebook; they
# share the support relations (item matching, licence cover) with the compiled checks.
HAND_WRITTEN = {
    "check_ga_ge_licence": """
        SELECT COUNT(*) FROM declarations d
        JOIN declaration_items di ON di.declaration_id = d.id
        LEFT JOIN licence_cover lc ON lc.declaration_id = d.id
        WHERE di.item IN ('gallium-metal', 'gallium-nitride', 'gallium-oxide',
                          'gallium-arsenide', 'germanium-metal', 'germanium-dioxide',
                          'germanium-tetrachloride')
          AND d.declared_on >= '2023-08-01' AND COALESCE(lc.covered, 0) = 0""",
    "check_control_list_consignee": """
        SELECT COUNT(DISTINCT d.id) FROM declarations d
        JOIN party_name_keys k ON k.name = d.consignee
        JOIN listed_party_keys lk ON lk.key = k.key
        JOIN list_entry_periods e ON e.party = lk.party AND e.list = 'control-list'
        WHERE d.declared_on >= e.valid_from
          AND (e.valid_until IS NULL OR d.declared_on <= e.valid_until)""",
    "check_us_critical_minerals_ban": """
        SELECT COUNT(DISTINCT d.id) FROM declarations d
        JOIN declaration_items di ON di.declaration_id = d.id
        JOIN item_group_members g ON g.item = di.item
        WHERE g.group_name IN ('gallium', 'germanium', 'antimony', 'superhard')
          AND d.destination_country = 'US'
          AND ((d.declared_on >= '2024-12-03' AND d.declared_on <= '2025-11-08')
               OR d.declared_on >= '2026-11-28')
          AND NOT (di.item = 'antimony-oxides' AND COALESCE(d.purity_pct, 100) < 99.99)""",
}


def _compare_hand_written(db: Path, repeat: int) -> dict[str, Any]:
    import sqlite3

    from kb.checks import tune_connection

    out = {}
    with sqlite3.connect(db) as conn:
        tune_connection(conn)
        for view, sql in HAND_WRITTEN.items():
            compiled, hand = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                conn.execute(f"SELECT COUNT(*) FROM {view}").fetchone()
                compiled.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                conn.execute(sql).fetchone()
                hand.append(time.perf_counter() - t0)
            c, h = statistics.median(compiled), statistics.median(hand)
            out[view] = {"compiled_s": c, "hand_written_s": h, "ratio": c / h}
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
    last_db = cache / f"kb-{sizes[-1]}.db"
    out["hand_written"] = _compare_hand_written(last_db, repeat)
    interp = _interpreter_seconds(last_db)
    out["interpreter_s"] = interp
    out["speedup_over_interpreter"] = interp / runs[-1]["sqlite_s"]
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
    for view, x in r.get("hand_written", {}).items():
        lines.append(f"  {view:32} compiled {x['compiled_s']:6.3f} s, hand-written "
                     f"{x['hand_written_s']:6.3f} s: {x['ratio']:.2f}x (target ≤ 1.5x)")
    if "interpreter_s" in r:
        lines.append(f"  reference interpreter {r['interpreter_s']:.2f} s: compiled SQLite is "
                     f"{r['speedup_over_interpreter']:.1f}x faster (target ≥ 20x)")
    if "growth_sqlite" in r:
        lines.append(f"  growth for {r['size_ratio']:.0f}x the declarations: SQLite "
                     f"{r['growth_sqlite']:.1f}x, DuckDB {r['growth_duckdb']:.1f}x "
                     f"(linear = {r['size_ratio']:.0f}x)")
    return "\n".join(lines)
