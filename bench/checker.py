"""The checker at scale (issue 40): how long `dsl.load` (parse, check, resolve, compile: what
`excon check` and every other command run first) takes for rulebooks of 1,000, 5,000 and
10,000 rules, each in a process of its own, with its peak memory; and the memory one 5 MB
text costs.

Targets: growth with the rules no worse than linear (the time per rule at the largest size
within 1.5x of the smallest's), 10,000 rules in under 20 s, a 5 MB text in under 200 MB.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.generate import rulebook_text
from bench.stats import in_process

TARGET_10K_S = 20.0
TARGET_GROWTH = 1.5
TARGET_TEXT_MB = 200.0
LINES_PER_RULE = 22  # what bench.generate writes for each rule, with its items and examples

_LOAD = """
import json, resource, sys, time
from pathlib import Path
import dsl
from kb.store.schema import declaration_schema
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
result = dsl.load([Path(sys.argv[1])], declaration_schema())
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "errors": len(result.errors),
                  "rules": len(result.rulebook.rules) if result.rulebook else 0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before}))
"""


def run(sizes: tuple[int, ...] = (1_000, 5_000, 10_000), text_bytes: int = 5_000_000
        ) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rules in sizes:
            folder = Path(tmp) / f"r{rules}"
            folder.mkdir()
            (folder / "gen.excon").write_text(rulebook_text(rules * LINES_PER_RULE),
                                              encoding="utf-8")
            found = in_process(_LOAD, str(folder))
            runs.append({**found, "per_rule_ms": found["seconds"] / max(found["rules"], 1)
                         * 1000})
        folder = Path(tmp) / "text"
        folder.mkdir()
        (folder / "big.excon").write_text(
            f'rulebook big "One long text"\n  jurisdiction CN\n  note "{"x" * text_bytes}"\n',
            encoding="utf-8")
        text = in_process(_LOAD, str(folder))
    growth = runs[-1]["per_rule_ms"] / runs[0]["per_rule_ms"] if len(runs) > 1 else None
    return {"runs": runs, "growth_per_rule": growth, "text_bytes": text_bytes,
            "text_s": text["seconds"], "text_mb": text["rss_mb"]}


def report(r: dict[str, Any]) -> str:
    lines = ["checker (dsl.load: parse, check, resolve, compile; a process per size):"]
    for x in r["runs"]:
        lines.append(f"  {x['rules']:>7,} rules  {x['seconds']:7.2f} s  "
                     f"{x['per_rule_ms']:6.2f} ms a rule  peak +{x['rss_mb']:.0f} MB"
                     + (f"  ({x['errors']} errors)" if x["errors"] else ""))
    if r["growth_per_rule"] is not None:
        big = r["runs"][-1]
        ok = r["growth_per_rule"] <= TARGET_GROWTH
        lines.append(f"  time a rule, largest / smallest: {r['growth_per_rule']:.2f}x (target ≤ "
                     f"{TARGET_GROWTH}x: {'met' if ok else 'NOT met'}); {big['rules']:,} rules "
                     f"in {big['seconds']:.1f} s (target < {TARGET_10K_S:g} s at 10,000: "
                     + ("met" if big["rules"] >= 10_000 and big["seconds"] < TARGET_10K_S else
                        "not at 10,000" if big["rules"] < 10_000 else "NOT met") + ")")
    lines.append(f"  one {r['text_bytes'] / 1e6:.0f} MB text: {r['text_s']:.2f} s, peak "
                 f"+{r['text_mb']:.0f} MB (target < {TARGET_TEXT_MB:g} MB)")
    return "\n".join(lines)
