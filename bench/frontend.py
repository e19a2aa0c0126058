"""Front end: parse + check of a generated 10,000-line rulebook, against a bare Lark parse.

Target (issue 2): the whole front end costs at most 1.5× the bare LALR parse of the same text.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import dsl
from bench.generate import rulebook_text
from bench.stats import ratio_spread
from dsl.parse import bare_lark
from kb.schema import declaration_schema

TARGET_RATIO = 1.5


def _median_seconds(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        gc.collect()  # as timeit does: the collector's pauses are noise, not front-end cost
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        finally:
            gc.enable()
    return statistics.median(times), min(times), max(times)


def run(lines: int = 10_000, repeat: int = 5) -> dict[str, Any]:
    text = rulebook_text(lines)
    n_lines = text.count("\n")
    schema = declaration_schema()
    bare = bare_lark()

    def bare_parse() -> None:
        bare.parse(text)

    def parse_only() -> None:
        dsl.parse_text(text, "bench.excon")

    def front_end() -> None:
        sf, diags = dsl.parse_text(text, "bench.excon")
        assert not diags
        _, problems = dsl.check([sf], schema)
        assert not [d for d in problems if d.is_error], problems[:3]

    front_end()  # warm up and prove the text is valid
    # Interleave the runs so that machine noise hits all three alike.
    results: dict[str, list[float]] = {"bare": [], "parse": [], "front": []}
    for _ in range(repeat):
        for name, fn in (("bare", bare_parse), ("parse", parse_only), ("front", front_end)):
            results[name].append(_median_seconds(fn, 1)[0])
    med = {k: statistics.median(v) for k, v in results.items()}
    return {
        "lines": n_lines,
        "repeat": repeat,
        "bare_parse_s": med["bare"],
        "parse_to_ast_s": med["parse"],
        "front_end_s": med["front"],
        "front_end_min_s": min(results["front"]),
        "front_end_max_s": max(results["front"]),
        "lines_per_s": n_lines / med["front"],
        "ratio_parse_to_bare": med["parse"] / med["bare"],
        "ratio_front_end_to_bare": med["front"] / med["bare"],
        "ratio_range": ratio_spread(results["front"], results["bare"]),
        "target_ratio": TARGET_RATIO,
        "meets_target": med["front"] / med["bare"] <= TARGET_RATIO,
    }


def report(r: dict[str, Any]) -> str:
    return "\n".join([
        f"front end: {r['lines']:,} lines, median of {r['repeat']} runs",
        f"  bare Lark LALR parse      {r['bare_parse_s'] * 1000:8.1f} ms",
        f"  parse to typed AST        {r['parse_to_ast_s'] * 1000:8.1f} ms"
        f"   ({r['ratio_parse_to_bare']:.2f}x bare)",
        f"  parse + check (front end) {r['front_end_s'] * 1000:8.1f} ms"
        f"   ({r['ratio_front_end_to_bare']:.2f}x bare; min {r['front_end_min_s'] * 1000:.1f},"
        f" max {r['front_end_max_s'] * 1000:.1f})",
        f"  throughput                {r['lines_per_s']:10,.0f} lines/s",
        f"  target ≤ {r['target_ratio']}x bare: {'met' if r['meets_target'] else 'NOT met'}",
    ])
