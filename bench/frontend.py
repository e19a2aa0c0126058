"""Front end: parse + check of a generated 10,000-line rulebook, against a bare Lark parse.

Target (issue 2): the whole front end costs at most 1.5× the bare LALR parse of the same text.

Broken input (issue 23): `excon check` (a process of its own: what a user waits for) on 5 MB
of random characters, and on 5 MB of one misspelled line repeated (`rul r1 …`, a syntax error
on every line). It describes the first 100 errors and counts the others. Target: the garbage
in under 10 s.
"""

from __future__ import annotations

import gc
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dsl
from bench.generate import rulebook_text
from bench.stats import ratio_spread
from dsl.parse import bare_lark
from kb.store.schema import declaration_schema

TARGET_RATIO = 1.5
TARGET_GARBAGE_S = 10.0
GARBAGE_CHARS = ("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789\"#(){}[]=<>-_.,;:\n\t镓“"
                 "　")
MISSPELLED_LINE = 'rul us-ban "Gallium to the US" per MOFCOM-2024-46 clause 2\n'


def broken_input(size: int = 5_000_000) -> dict[str, Any]:
    """Seconds `excon check` takes on `size` bytes of garbage and of one misspelled line
    repeated, with the errors it reported (described and counted)."""
    rng = random.Random(23)
    texts = {
        "garbage": "".join(rng.choice(GARBAGE_CHARS) for _ in range(size)).encode()[:size]
        .decode("utf-8", "ignore"),
        "repeated": MISSPELLED_LINE * (size // len(MISSPELLED_LINE.encode())),
    }
    out: dict[str, Any] = {"bytes": size}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in texts.items():
            path = Path(tmp) / f"{name}.excon"
            path.write_text(text, encoding="utf-8")
            t0 = time.perf_counter()
            run = subprocess.run([str(Path(sys.executable).parent / "excon"), "check",
                                  str(path)], capture_output=True, text=True)
            out[f"{name}_s"] = time.perf_counter() - t0
            summary = run.stderr.strip().splitlines()[-1]
            out[f"{name}_errors"] = int(summary.split(": ")[-1].split(" error")[0])
            out[f"{name}_described"] = run.stderr.count(": error[")
            out[f"{name}_bytes"] = path.stat().st_size
    return out


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


def run(lines: int = 10_000, repeat: int = 5, broken_size: int = 5_000_000) -> dict[str, Any]:
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
        "broken": broken_input(broken_size),
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
        *_broken_report(r.get("broken")),
    ])


def _broken_report(b: dict[str, Any] | None) -> list[str]:
    if not b:
        return []
    lines = []
    for name, label in (("garbage", "random characters"),
                        ("repeated", "one misspelled line repeated")):
        mark = ("" if name != "garbage" else
                f"; target < {TARGET_GARBAGE_S:g} s: "
                f"{'met' if b[name + '_s'] < TARGET_GARBAGE_S else 'NOT met'}")
        lines.append(f"  excon check, {b[name + '_bytes'] / 1e6:.1f} MB of {label}: "
                     f"{b[name + '_s']:.1f} s, {b[name + '_errors']:,} errors "
                     f"({b[name + '_described']} described){mark}")
    return lines
