"""Single-declaration latency through the Python API (`kb.screen.screen`), as a tool that
screens each declaration when it is filed would call it.

Targets (issue 41): p50 ≤ 30 ms and p95 ≤ 60 ms against 1,000,000 declarations of history;
without history (issue 4 / issue 8) p50 ≤ 5 ms. The screener is built once (as `kb.screen`
caches it); each call loads one declaration, adds the history its checks look back on, refreshes the
derived relations, reads `findings` and rolls back. The declarations are demo declarations, so
some hit rules and most do not. Since session 22 the figure is measured with history (issue
38: a declaration filed today is judged against the knowledge base's earlier ones); the
figure without it is reported beside it.
"""

from __future__ import annotations

import compileall
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import demo_folder
from bench.stats import fmt_range, percentile, spread

TARGET_P50_MS = 30.0  # issue 41: with 1,000,000 declarations of history
TARGET_P95_MS = 60.0
TARGET_ALONE_P50_MS = 5.0  # issue 8: without history (the figure until session 22)
TARGET_START_S = 1.0  # issue 41: a screener's start from a cached compile

# a tool's process that opens a screener over a knowledge base and is ready to screen
_START = ("import sys; from pathlib import Path; from kb.screen import Screener; "
          "Screener(db=Path(sys.argv[1]))")
# …and that has screened its first declaration (what a user of `excon screen --db` waits for)
_FIRST = ("import json, sys; from pathlib import Path; from kb.screen import Screener; "
          "Screener(db=Path(sys.argv[1])).screen([json.loads(sys.argv[2])])")


def startup(db: Path, repeat: int = 5, row: dict[str, str] | None = None) -> dict[str, Any]:
    """Seconds from starting a Python process to a `Screener(db=…)` ready to screen (process
    start, imports, the rulebooks the knowledge base keeps loaded and compiled, the check
    views made, its licences and parties copied), with excon's cache warm and turned off
    (`EXCON_CACHE_DIR=`), alternating; medians of `repeat`. With a declaration `row`, also to
    that declaration screened, cache warm (`first_s`)."""
    # excon's modules compiled to bytecode, as an installed excon has them (where
    # PYTHONDONTWRITEBYTECODE is set, as on this project's machines, each start would
    # otherwise compile them again: half a second more)
    for package in ("dsl", "kb"):
        compileall.compile_dir(Path(__file__).parent.parent / package, quiet=1)
    with tempfile.TemporaryDirectory() as cache:
        def once(folder: str, first: bool = False) -> float:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", *((_FIRST, str(db), json.dumps(row))
                                                    if first else (_START, str(db)))],
                           check=True, env={**os.environ, "EXCON_CACHE_DIR": folder})
            return time.perf_counter() - t0

        once(cache, first=row is not None)  # fills the cache
        warm, off, first = [], [], []
        for _ in range(repeat):
            warm.append(once(cache))
            off.append(once(""))
            if row is not None:
                first.append(once(cache, first=True))
    return {"warm_s": statistics.median(warm), "warm_range": spread(warm),
            "off_s": statistics.median(off), "off_range": spread(off), "repeat": repeat,
            "target_s": TARGET_START_S,
            **({"first_s": statistics.median(first), "first_range": spread(first)}
               if first else {})}


def _timed(screener: Any, rows: list[dict[str, str]], rounds: int) -> dict[str, Any]:
    """p50, p95 and p99 of one call per declaration, each the median over the rounds."""
    screener.screen(rows[:10])  # warm: statements prepared, pages cached
    marks: dict[str, list[float]] = {"p50": [], "p95": [], "p99": []}
    every: list[float] = []
    flagged = 0
    for _ in range(rounds):
        times, flagged = [], 0
        for row in rows:
            t0 = time.perf_counter()
            findings = screener.screen([row])
            times.append(time.perf_counter() - t0)
            flagged += bool(findings)
        for mark, runs in marks.items():
            runs.append(percentile(times, int(mark[1:]) / 100) * 1000)
        every += times
    return {"flagged": flagged, "max_ms": max(every) * 1000,
            **{f"{mark}_ms": statistics.median(runs) for mark, runs in marks.items()},
            **{f"{mark}_range": spread(runs) for mark, runs in marks.items()}}


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
    started = startup(db, 3 if rounds == 1 else 5, rows[0])
    with_history = _timed(Screener(db=db), rows, rounds)
    alone = _timed(Screener([Path("rulebooks")], licences=folder / "licences.csv",
                            parties=folder / "parties.csv"), rows, rounds)
    return {"calls": len(rows), "rounds": rounds, "history": len(past), **with_history,
            "without_history": alone, "target_p50_ms": TARGET_P50_MS,
            "target_p95_ms": TARGET_P95_MS, "start": started}


def report(r: dict[str, Any]) -> str:
    def met(value: float, target: float) -> str:
        return "met" if value <= target else "NOT met"

    alone, start = r["without_history"], r["start"]
    return (f"single declaration via Screener(db=…) against {r['history']:,} earlier "
            f"declarations ({r['calls']:,} calls x {r['rounds']} rounds, {r['flagged']} "
            f"flagged): p50 {r['p50_ms']:.2f} ms ({fmt_range(r['p50_range'])}), p95 "
            f"{r['p95_ms']:.2f} ms ({fmt_range(r['p95_range'])}), p99 {r['p99_ms']:.2f} ms, "
            f"max {r['max_ms']:.1f} ms (medians of the rounds; targets p50 ≤ "
            f"{TARGET_P50_MS:g} ms: {met(r['p50_ms'], TARGET_P50_MS)}, p95 ≤ "
            f"{TARGET_P95_MS:g} ms: {met(r['p95_ms'], TARGET_P95_MS)})\n"
            f"  without history (the figure before session 22, now with the same licences and "
            f"parties): p50 {alone['p50_ms']:.2f} ms ({fmt_range(alone['p50_range'])}), p95 "
            f"{alone['p95_ms']:.2f} ms, {alone['flagged']} flagged (target p50 ≤ "
            f"{TARGET_ALONE_P50_MS:g} ms: {met(alone['p50_ms'], TARGET_ALONE_P50_MS)})\n"
            f"  start-up, a new process to a screener over that knowledge base: "
            f"{start['warm_s']:.2f} s with excon's cache warm ({fmt_range(start['warm_range'])}),"
            f" {start['off_s']:.2f} s with it off (target ≤ {TARGET_START_S:g} s warm: "
            f"{'met' if start['warm_s'] <= TARGET_START_S else 'NOT met'}); to its first "
            f"declaration screened {start['first_s']:.2f} s "
            f"({fmt_range(start['first_range'])}), cache warm")
