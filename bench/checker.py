"""The checker at scale (issue 40): how long `excon check` takes for rulebooks of 1,000,
5,000 and 10,000 rules, end to end (a process of its own: Python's start, parsing, checking,
compiling every condition, the summary printed), and beside it how long `dsl.load` with the
checks compiled takes (what `test`, `screen`, `build` and `export` pay first, in a process of
their own), each with its peak memory; and the memory one 5 MB text costs.

Targets: growth with the rules no worse than linear (`excon check`'s time per rule at the
largest size within 1.5x of the smallest's), 10,000 rules checked in under 20 s, a 5 MB text
in under 200 MB.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import rulebook_text
from bench.stats import in_process

TARGET_10K_S = 20.0
TARGET_GROWTH = 1.5
TARGET_TEXT_MB = 200.0
LINES_PER_TWO_RULES = 45  # what bench.generate writes for two rules, their items and example

_LOAD = """
import json, resource, sys, time
from pathlib import Path
import dsl
from kb.store.schema import declaration_schema
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
result = dsl.load([Path(sys.argv[1])], declaration_schema(), checks=sys.argv[2] == "checks")
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "errors": len(result.errors),
                  "rules": len(result.rulebook.rules) if result.rulebook else 0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before}))
"""


def excon_check(folder: Path) -> dict[str, Any]:
    """`excon check FOLDER` as a user runs it: its wall time, exit status and summary line."""
    excon = Path(sys.executable).parent / "excon"
    t0 = time.perf_counter()
    done = subprocess.run([str(excon), "check", str(folder)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "exit": done.returncode,
            "summary": (done.stderr.strip().splitlines() or [""])[-1]}


def run(sizes: tuple[int, ...] = (1_000, 5_000, 10_000), text_bytes: int = 5_000_000
        ) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rules in sizes:
            folder = Path(tmp) / f"r{rules}"
            folder.mkdir()
            (folder / "gen.excon").write_text(
                rulebook_text(rules * LINES_PER_TWO_RULES // 2), encoding="utf-8")
            check = excon_check(folder)
            found = in_process(_LOAD, str(folder), "checks")
            runs.append({"rules": found["rules"], "errors": found["errors"],
                         "check_s": check["seconds"], "check_exit": check["exit"],
                         "check_summary": check["summary"],
                         "per_rule_ms": check["seconds"] / max(found["rules"], 1) * 1000,
                         "load_s": found["seconds"], "load_rss_mb": found["rss_mb"],
                         "load_per_rule_ms": found["seconds"] / max(found["rules"], 1) * 1000})
        folder = Path(tmp) / "text"
        folder.mkdir()
        (folder / "big.excon").write_text(
            f'rulebook big "One long text"\n  jurisdiction CN\n  note "{"x" * text_bytes}"\n',
            encoding="utf-8")
        text = in_process(_LOAD, str(folder), "checks")
    growth = runs[-1]["per_rule_ms"] / runs[0]["per_rule_ms"] if len(runs) > 1 else None
    load_growth = runs[-1]["load_per_rule_ms"] / runs[0]["load_per_rule_ms"] \
        if len(runs) > 1 else None
    return {"runs": runs, "growth_per_rule": growth, "load_growth_per_rule": load_growth,
            "text_bytes": text_bytes, "text_s": text["seconds"], "text_mb": text["rss_mb"]}


def report(r: dict[str, Any]) -> str:
    lines = ["checker (`excon check`, end to end, a process per size; beside it dsl.load with "
             "the checks compiled, as test/screen/build/export load):"]
    for x in r["runs"]:
        lines.append(f"  {x['rules']:>7,} rules  check {x['check_s']:7.2f} s "
                     f"({x['per_rule_ms']:5.2f} ms a rule)  load with checks "
                     f"{x['load_s']:7.2f} s ({x['load_per_rule_ms']:5.2f} ms a rule, peak "
                     f"+{x['load_rss_mb']:.0f} MB)"
                     + (f"  ({x['errors']} errors)" if x["errors"] else ""))
    if r["growth_per_rule"] is not None:
        big = r["runs"][-1]
        ok = r["growth_per_rule"] <= TARGET_GROWTH
        lines.append(f"  check's time a rule, largest / smallest: {r['growth_per_rule']:.2f}x "
                     f"(target ≤ {TARGET_GROWTH}x: {'met' if ok else 'NOT met'}; load with "
                     f"checks {r['load_growth_per_rule']:.2f}x); {big['rules']:,} rules "
                     f"checked in {big['check_s']:.1f} s (target < {TARGET_10K_S:g} s at "
                     "10,000: "
                     + ("met" if big["rules"] >= 10_000 and big["check_s"] < TARGET_10K_S else
                        "not at 10,000" if big["rules"] < 10_000 else "NOT met") + ")")
    lines.append(f"  one {r['text_bytes'] / 1e6:.0f} MB text: {r['text_s']:.2f} s, peak "
                 f"+{r['text_mb']:.0f} MB (target < {TARGET_TEXT_MB:g} MB)")
    return "\n".join(lines)
