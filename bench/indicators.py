"""Indicators: precision and recall on the demo data's planted cases, and their cost.

Quality: the demo data (`kb.demo`) plants every kind of case the indicators look for and lists
them in truth.csv; `kb.quality` scores each indicator against the kinds it must find (targets:
recall ≥ 0.9, precision ≥ 0.8).

Cost: on the largest screening knowledge base, the `findings` query with every rule against the
same query over the rules that are not indicators (`risk` outcomes), median of `repeat` runs.
Issue 6's target: the indicators add at most 2x to the screening time (all / without ≤ 2).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench.load import declarations_file
from bench.stats import fmt_range, ratio_spread
from kb.quality import indicator_quality, read_truth


def _median_seconds(conn: sqlite3.Connection, sql: str, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = conn.execute(sql).fetchone()[0]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), count


def quality(db: Path, truth: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        flagged = conn.execute(
            "SELECT declaration_id, rule FROM findings WHERE outcome IN ('risk', 'prohibited')"
        ).fetchall()
    return [{"rule": q.rule, "kinds": q.kinds, "cases": q.cases, "found": q.found,
             "flagged": q.flagged, "correct": q.correct, "recall": q.recall,
             "precision": q.precision, "met": q.met}
            for q in indicator_quality(flagged, read_truth(truth))]


def cost(db: Path, repeat: int) -> dict[str, Any]:
    from kb.checks import tune_connection

    with sqlite3.connect(db) as conn:
        tune_connection(conn)
        views = conn.execute(
            "SELECT r.name, r.outcome FROM rules AS r WHERE r.outcome IS NOT NULL").fetchall()
        names = {v for (v,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'view' AND name LIKE 'check_%'")}
        from dsl.compile import view_name

        base = [view_name(r) for r, outcome in views
                if outcome != "risk" and view_name(r) in names]
        indicators = [view_name(r) for r, outcome in views
                      if outcome == "risk" and view_name(r) in names]
        union = " UNION ALL ".join(f"SELECT declaration_id FROM {v}" for v in base)
        all_times, base_times = [], []
        for _ in range(repeat):  # interleaved, so noise hits both alike
            all_t, all_n = _median_seconds(conn, "SELECT COUNT(*) FROM findings", 1)
            base_t, base_n = _median_seconds(conn, f"SELECT COUNT(*) FROM ({union})", 1)
            all_times.append(all_t)
            base_times.append(base_t)
        all_s, base_s = statistics.median(all_times), statistics.median(base_times)
        per_rule = {v: _median_seconds(conn, f"SELECT COUNT(*) FROM {v}", repeat)[0]
                    for v in indicators}
        n = conn.execute("SELECT COUNT(*) FROM declarations").fetchone()[0]
    return {"declarations": n, "all_rules_s": all_s, "without_indicators_s": base_s,
            "ratio": all_s / base_s, "ratio_range": ratio_spread(all_times, base_times),
            "indicators": len(indicators),
            "indicator_findings": all_n - base_n, "per_indicator_s": per_rule}


def run(quality_size: int, cost_db: Path | None, repeat: int,
        cache: Path | None = None) -> dict[str, Any]:
    import tempfile

    from kb.build import build

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    cache.mkdir(parents=True, exist_ok=True)
    decls = declarations_file(quality_size, cache)
    db = cache / f"kb-quality-{quality_size}.db"
    build(db, [Path("rulebooks")], decls, decls.parent / "licences.csv",
          decls.parent / "parties.csv")
    out: dict[str, Any] = {"quality_declarations": quality_size,
                           "quality": quality(db, decls.parent / "truth.csv")}
    out["quality_met"] = all(q["met"] for q in out["quality"])
    out["min_recall"] = min(q["recall"] for q in out["quality"])
    out["min_precision"] = min(q["precision"] for q in out["quality"])
    if cost_db is not None and cost_db.exists():
        out["cost"] = cost(cost_db, repeat)
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"indicators: planted cases in {r['quality_declarations']:,} demo declarations "
             "(targets: recall ≥ 0.9, precision ≥ 0.8)"]
    for q in r["quality"]:
        lines.append(f"  {q['rule']:28} {q['cases']:5} cases, {q['found']:5} found: recall "
                     f"{q['recall']:.3f}   {q['flagged']:6} flagged, {q['correct']:6} planted: "
                     f"precision {q['precision']:.3f}  {'met' if q['met'] else 'NOT met'}")
    c = r.get("cost")
    if c:
        lines.append(f"  cost on {c['declarations']:,} declarations: all rules "
                     f"{c['all_rules_s']:.2f} s, without the {c['indicators']} indicators "
                     f"{c['without_indicators_s']:.2f} s: {c['ratio']:.2f}x "
                     f"({fmt_range(c['ratio_range'])}; target ≤ 2x)")
        slow = sorted(c["per_indicator_s"].items(), key=lambda kv: -kv[1])[:4]
        lines.append("  slowest indicators: " + ", ".join(f"{v[6:]} {s:.2f} s" for v, s in slow))
    return "\n".join(lines)
