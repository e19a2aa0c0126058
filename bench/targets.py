"""The table of targets: every figure with a target, its value from this run, and whether it
meets it. Targets come from the issues (front end, load, screening, latency, Datasette)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (figure, unit, target as text, how to read the value, test)
Check = tuple[str, str, str, Callable[[dict[str, Any]], float | None], Callable[[float], bool]]


def _get(*path: Any) -> Callable[[dict[str, Any]], float | None]:
    def read(results: dict[str, Any]) -> float | None:
        node: Any = results
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return float(node) if isinstance(node, int | float) else None
    return read


def _largest_screen(key: str) -> Callable[[dict[str, Any]], float | None]:
    def read(results: dict[str, Any]) -> float | None:
        runs = results.get("screen", {}).get("runs", [])
        big = [r for r in runs if r["declarations"] >= 1_000_000]
        return float(big[-1][key]) if big else None
    return read


CHECKS: list[Check] = [
    ("front end / bare Lark parse", "x", "≤ 1.5", _get("frontend", "ratio_front_end_to_bare"),
     lambda v: v <= 1.5),
    ("load 1M declarations", "s", "≤ 10", _get("load", "validated_s"), lambda v: v <= 10),
    ("load / raw executemany", "x", "≤ 3", _get("load", "ratio_to_raw"), lambda v: v <= 3),
    ("load peak RSS", "MB", "≤ 500", _get("load", "peak_rss_mb"), lambda v: v <= 500),
    ("screen 1M on SQLite", "s", "≤ 10", _largest_screen("sqlite_s"), lambda v: v <= 10),
    ("screening growth 1M / 100k", "x", "≤ 11", _get("screen", "growth_sqlite"),
     lambda v: v <= 11),
    ("compiled / hand-written: licence cover", "x", "≤ 1.5",
     _get("screen", "hand_written", "check_ga_ge_licence", "ratio"), lambda v: v <= 1.5),
    ("compiled / hand-written: listed party", "x", "≤ 1.5",
     _get("screen", "hand_written", "check_control_list_consignee", "ratio"),
     lambda v: v <= 1.5),
    ("compiled / hand-written: suspended rule", "x", "≤ 1.5",
     _get("screen", "hand_written", "check_us_critical_minerals_ban", "ratio"),
     lambda v: v <= 1.5),
    ("compiled SQLite / interpreter speed-up", "x", "≥ 20",
     _get("screen", "speedup_over_interpreter"), lambda v: v >= 20),
    ("indicators: lowest recall", "", "≥ 0.9", _get("indicators", "min_recall"),
     lambda v: v >= 0.9),
    ("indicators: lowest precision", "", "≥ 0.8", _get("indicators", "min_precision"),
     lambda v: v >= 0.8),
    ("indicators' cost: all rules / without", "x", "≤ 2",
     _get("indicators", "cost", "ratio"), lambda v: v <= 2),
    ("single declaration p50", "ms", "≤ 5", _get("latency", "p50_ms"), lambda v: v <= 5),
    ("Datasette p95: findings table", "ms", "≤ 300",
     _get("serve", "requests", "findings table + facets", "p95_ms"), lambda v: v <= 300),
    ("Datasette p95: rule page", "ms", "≤ 300", _get("serve", "requests", "rule page", "p95_ms"),
     lambda v: v <= 300),
    ("Datasette p95: one declaration", "ms", "≤ 300",
     _get("serve", "requests", "stored query, one declaration", "p95_ms"), lambda v: v <= 300),
]


def table(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, unit, target, read, ok in CHECKS:
        value = read(results)
        rows.append({"figure": name, "value": value, "unit": unit, "target": target,
                     "status": "not measured" if value is None else
                     ("met" if ok(value) else "NOT met")})
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["targets:"]
    for r in rows:
        value = "—" if r["value"] is None else f"{r['value']:,.2f} {r['unit']}"
        lines.append(f"  {r['figure']:42} {value:>14}   target {r['target']:>6} {r['unit']:<2}"
                     f"  {r['status']}")
    return "\n".join(lines)
