"""Single-declaration latency through the Python API (`kb.screen.screen`), as a tool that
screens each declaration when it is filed would call it.

Target (issue 4 / issue 8): p50 ≤ 5 ms. The screener is built once (as `kb.screen` caches it);
each call loads one declaration, adds the history its checks look back on, refreshes the
derived relations, reads `findings` and rolls back. The declarations are demo declarations, so
some hit rules and most do not. Since session 22 the figure is measured with history (issue
38: a declaration filed today is judged against the knowledge base's earlier ones); the
figure without it is reported beside it.
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import demo_folder
from bench.stats import fmt_range, percentile, spread

TARGET_P50_MS = 5.0


def _timed(screener: Any, rows: list[dict[str, str]], rounds: int) -> dict[str, Any]:
    """p50 and p99 of one call per declaration, median over the rounds."""
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
    return {"flagged": flagged, "p50_ms": statistics.median(p50s), "p50_range": spread(p50s),
            "p99_ms": statistics.median(p99s), "p99_range": spread(p99s),
            "max_ms": max(every) * 1000}


def run(calls: int = 1000, rounds: int = 3, cache: Path | None = None,
        history: int = 1_000_000) -> dict[str, Any]:
    """The last `calls` declarations (by date) of a demo set of `history` + `calls`,
    each screened alone against a knowledge base holding the others (`Screener(db=…)`:
    windows, first-seen dates and licence draw-down see the history), and, for comparison with
    the figure before session 22, against the rulebooks with the same licences and parties
    but no history."""
    from kb.build import build
    from kb.screen import Screener

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    folder = demo_folder(history + calls, cache)
    with (folder / "declarations.csv").open(encoding="utf-8", newline="") as f:
        every = sorted(csv.DictReader(f), key=lambda r: (r["declared_on"], r["id"]))
    rows, past = every[-calls:], every[:-calls]
    db = cache / f"kb-latency-{folder.name}.db"
    if not db.exists():
        with tempfile.TemporaryDirectory() as tmp:
            earlier = Path(tmp) / "declarations.csv"
            with earlier.open("w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(every[0]))
                writer.writeheader()
                writer.writerows(past)
            build(db, [Path("rulebooks")], earlier, folder / "licences.csv",
                  folder / "parties.csv")
    with_history = _timed(Screener(db=db), rows, rounds)
    alone = _timed(Screener([Path("rulebooks")], licences=folder / "licences.csv",
                            parties=folder / "parties.csv"), rows, rounds)
    return {"calls": len(rows), "rounds": rounds, "history": len(past), **with_history,
            "without_history": alone, "target_p50_ms": TARGET_P50_MS}


def report(r: dict[str, Any]) -> str:
    mark = "met" if r["p50_ms"] <= TARGET_P50_MS else "NOT met"
    alone = r["without_history"]
    return (f"single declaration via Screener(db=…) against {r['history']:,} earlier "
            f"declarations ({r['calls']:,} calls x {r['rounds']} rounds, {r['flagged']} "
            f"flagged): p50 {r['p50_ms']:.2f} ms ({fmt_range(r['p50_range'])}), p99 "
            f"{r['p99_ms']:.2f} ms ({fmt_range(r['p99_range'])}), max {r['max_ms']:.1f} ms "
            f"(median of the rounds; target p50 ≤ {TARGET_P50_MS:g} ms: {mark})\n"
            f"  without history (the figure before session 22, now with the same licences and "
            f"parties): p50 {alone['p50_ms']:.2f} ms ({fmt_range(alone['p50_range'])}), p99 "
            f"{alone['p99_ms']:.2f} ms, {alone['flagged']} flagged")
