"""`excon diff` against one screening: what a policy officer waits for to see a change's effect.

Both are the command in a process of its own, end to end, on the same demo declarations,
licences and parties: `excon screen` under the rulebooks, and `excon diff` of the rulebooks
against a copy in which the suspension of MOFCOM-2024-46 clause 2 ends a year later, as of
2026-12-15 (so that findings change). The diff reads and validates the inputs once and screens
them under both versions. Target (issue 23): the diff takes at most 2× the screening at
1,000,000 declarations. Runs alternate, `repeat` times; medians are reported.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import declarations_file
from bench.stats import spread

TARGET_RATIO = 2.0
SUSPENSION = "  from 2025-11-09 until 2026-11-27\n"


def run(n: int = 1_000_000, repeat: int = 1, cache: Path | None = None) -> dict[str, Any]:
    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    decls = declarations_file(n, cache)
    inputs = ["--licences", str(decls.parent / "licences.csv"), "--parties",
              str(decls.parent / "parties.csv")]
    excon = str(Path(sys.executable).parent / "excon")
    with tempfile.TemporaryDirectory() as tmp:
        changed = Path(tmp) / "rulebooks"
        shutil.copytree("rulebooks", changed)
        rules = changed / "cn-strategic-minerals" / "rules.excon"
        rules.write_text(rules.read_text(encoding="utf-8").replace(
            SUSPENSION, "  from 2025-11-09 until 2027-11-27\n"), encoding="utf-8")
        commands = {
            "screen": [excon, "screen", str(decls), *inputs, "--as-of", "2026-12-15",
                       "--allow-rejected", "0.1%", "-o", str(Path(tmp) / "findings.csv")],
            "diff": [excon, "diff", "rulebooks", str(changed), "--declarations", str(decls),
                     *inputs, "--as-of", "2026-12-15", "--format", "json", "-o",
                     str(Path(tmp) / "diff.json")],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(repeat):
            for name, command in commands.items():
                t0 = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t0)
        changes = (Path(tmp) / "diff.json").read_text(encoding="utf-8").count('"kind": "')
    screen_s, diff_s = (statistics.median(times[k]) for k in ("screen", "diff"))
    return {"declarations": n, "repeat": repeat, "screen_s": screen_s, "diff_s": diff_s,
            "ratio": diff_s / screen_s, "screen_range": spread(times["screen"]),
            "diff_range": spread(times["diff"]), "changes_reported": changes,
            "target_ratio": TARGET_RATIO}


def report(r: dict[str, Any]) -> str:
    mark = "met" if r["ratio"] <= TARGET_RATIO else "NOT met"
    return (f"excon diff, {r['declarations']:,} declarations (median of {r['repeat']}): "
            f"diff {r['diff_s']:.1f} s, one screening {r['screen_s']:.1f} s = "
            f"{r['ratio']:.2f}× (target ≤ {TARGET_RATIO:g}×: {mark})")
