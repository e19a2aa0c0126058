"""Single-declaration latency through the Python API (`kb.screen.screen`), as a tool that
screens each declaration when it is filed would call it.

Target (issue 4 / issue 8): p50 ≤ 5 ms. The screener is built once (as `kb.screen` caches it);
each call loads one declaration, refreshes the derived relations, reads `findings` and rolls
back. The declarations are demo declarations, so some hit rules and most do not.
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import declarations_file
from bench.stats import fmt_range, percentile, spread

TARGET_P50_MS = 5.0


def run(calls: int = 1000, rounds: int = 3, cache: Path | None = None) -> dict[str, Any]:
    from kb.screen import Screener

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    source = declarations_file(max(calls, 1000), cache)
    with source.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:calls]
    screener = Screener([Path("rulebooks")])
    screener.screen(rows[:10])  # warm: statements prepared, pages cached
    p50s, p99s, every, flagged = [], [], [], 0
    for _ in range(rounds):
        times, flagged = [], 0
        for row in rows:
            t0 = time.perf_counter()
            findings = screener.screen([row])
            times.append(time.perf_counter() - t0)
            flagged += bool(findings)
        p50s.append(percentile(times, 0.50) * 1000)
        p99s.append(percentile(times, 0.99) * 1000)
        every += times
    return {"calls": len(rows), "rounds": rounds, "flagged": flagged,
            "p50_ms": statistics.median(p50s), "p50_range": spread(p50s),
            "p99_ms": statistics.median(p99s), "p99_range": spread(p99s),
            "max_ms": max(every) * 1000, "target_p50_ms": TARGET_P50_MS}


def report(r: dict[str, Any]) -> str:
    mark = "met" if r["p50_ms"] <= TARGET_P50_MS else "NOT met"
    return (f"single declaration via kb.screen ({r['calls']:,} calls x {r['rounds']} rounds, "
            f"{r['flagged']} flagged): p50 {r['p50_ms']:.2f} ms ({fmt_range(r['p50_range'])}), "
            f"p99 {r['p99_ms']:.2f} ms ({fmt_range(r['p99_range'])}), max {r['max_ms']:.1f} ms"
            f" (median of the rounds; target p50 ≤ {TARGET_P50_MS:g} ms: {mark})")
