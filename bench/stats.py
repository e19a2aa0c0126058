"""Summaries shared by the benchmarks: the median of several runs with its min and max, and
percentiles of a latency distribution."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def spread(values: Sequence[float]) -> dict[str, Any]:
    """`{"median", "min", "max", "runs"}` of several runs of one figure."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """The ratio of two figures measured side by side (run i of one with run i of the other):
    the ratio of the medians, and the min and max of the per-run ratios."""
    pairs = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": statistics.median(numerators) / statistics.median(denominators),
            "min": min(pairs), "max": max(pairs), "runs": len(pairs)}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt_range(s: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    return f"min {s['min'] * scale:.{digits}f}, max {s['max'] * scale:.{digits}f}"


def in_process(script: str, *args: str) -> dict[str, Any]:
    """Run a measuring script in a Python process of its own (so that its peak RSS is its own);
    its last line of output is its JSON result (libraries may print progress before it)."""
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
