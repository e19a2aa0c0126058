"""Indicators: precision and recall on a held-out labelled set, and their cost.

Quality: the demo generator (`kb.inputs.demo`) plants the cases of the smuggling typology among
ordinary trade with its look-alikes and lists them in truth.csv. The evaluation set is generated
with its own seed (`EVALUATION_SEED`), which no example was written against;
`kb.screen.quality` scores each indicator against the kinds it must find, with 95 % Wilson
intervals (targets: recall ≥ 0.9, precision ≥ 0.8). Five definitions were revised in session
12 with that set's misses in view, so the same figures are also measured on sets no definition
was revised against (`FRESH_SEEDS`), and reported beside it.

Cost, end to end: `excon screen` of the same input files (load, every derived relation,
findings written) with every rule, against the same with the rulebook's indicators file left
out, median of `repeat` interleaved runs (target: all / without ≤ 2). The older figure, the final
`findings` query alone on the largest screening knowledge base, is kept next to it, labelled as
such.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench.stats import fmt_range, ratio_spread
from dsl import ast
from kb.screen.quality import TARGETS, indicator_quality, read_truth


def _median_seconds(conn: sqlite3.Connection, sql: str, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = conn.execute(sql).fetchone()[0]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), count


EVALUATION_SEED = 7
FRESH_SEEDS = (8, 11)
# the labelled sets' prevalence (issue 38): one planted case of each kind per 2,000
# declarations, under 1 % of them planted (until session 25 the demo's 8 %: a background
# where every twelfth declaration is a case flatters precision)
EVALUATION_CASES_PER = 2000


def quality(db: Path, truth: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        flagged = conn.execute(
            "SELECT declaration_id, rule FROM findings WHERE outcome IN ('risk', 'prohibited')"
        ).fetchall()
    return [{"rule": q.rule, "kinds": q.kinds, "cases": q.cases, "found": q.found,
             "flagged": q.flagged, "correct": q.correct, "recall": q.recall,
             "recall_ci": q.recall_ci, "precision": q.precision,
             "precision_ci": q.precision_ci, "met": q.met, "flagged_by_kind": dict(q.by_kind)}
            for q in indicator_quality(flagged, read_truth(truth))]


def cost(db: Path, repeat: int) -> dict[str, Any]:
    from kb.screen.checks import tune_connection

    with sqlite3.connect(db) as conn:
        tune_connection(conn)
        views = conn.execute(
            "SELECT r.name, r.outcome FROM rules AS r WHERE r.outcome IS NOT NULL").fetchall()
        names = {v for (v,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'view' AND name LIKE 'check_%'")}
        from dsl.compile import view_name

        base = [view_name(r) for r, outcome in views
                if outcome != "risk" and view_name(r) in names]
        indicators = [view_name(r) for r, outcome in views
                      if outcome == "risk" and view_name(r) in names]
        union = " UNION ALL ".join(f"SELECT declaration_id FROM {v}" for v in base)
        all_times, base_times = [], []
        for _ in range(repeat):  # interleaved, so noise hits both alike
            all_t, all_n = _median_seconds(conn, "SELECT COUNT(*) FROM findings", 1)
            base_t, base_n = _median_seconds(conn, f"SELECT COUNT(*) FROM ({union})", 1)
            all_times.append(all_t)
            base_times.append(base_t)
        all_s, base_s = statistics.median(all_times), statistics.median(base_times)
        per_rule = {v: _median_seconds(conn, f"SELECT COUNT(*) FROM {v}", repeat)[0]
                    for v in indicators}
        n = conn.execute("SELECT COUNT(*) FROM declarations").fetchone()[0]
    return {"declarations": n, "all_rules_s": all_s, "without_indicators_s": base_s,
            "ratio": all_s / base_s, "ratio_range": ratio_spread(all_times, base_times),
            "indicators": len(indicators),
            "indicator_findings": all_n - base_n, "per_indicator_s": per_rule}


def evaluation_set(n: int, cache: Path, seed: int = EVALUATION_SEED) -> Path:
    """A labelled set: n demo declarations generated with the seed."""
    from bench.load import demo_folder

    name = "evaluation" if seed == EVALUATION_SEED else f"evaluation-seed{seed}"
    return demo_folder(n, cache, seed=seed, name=name, cases_per=EVALUATION_CASES_PER)


def evaluate(n: int, cache: Path, seed: int) -> dict[str, Any]:
    """Build a knowledge base from the seed's labelled set and score every indicator."""
    from kb.build import build

    folder = evaluation_set(n, cache, seed)
    db = folder / "kb.db"
    build(db, [Path("rulebooks")], folder / "declarations.csv", folder / "licences.csv",
          folder / "parties.csv")
    found = quality(db, folder / "truth.csv")
    truth = read_truth(folder / "truth.csv")
    with (folder / "declarations.csv").open(encoding="utf-8") as f:
        declarations = sum(1 for _ in f) - 1
    return {"seed": seed, "quality": found, "quality_met": all(q["met"] for q in found),
            # the share of the set's declarations that belong to a planted case
            "planted_share": len({t["declaration_id"] for t in truth}) / declarations,
            "min_recall": min(q["recall"] for q in found),
            "min_precision": min(q["precision"] for q in found)}


def cost_end_to_end(folder: Path, repeat: int) -> dict[str, Any]:
    """`excon screen` of the evaluation files with and without the indicators, interleaved."""
    import shutil
    import tempfile

    from kb.screen import Screener

    with tempfile.TemporaryDirectory() as tmp:
        without = Path(tmp) / "rulebooks"
        shutil.copytree("rulebooks", without,
                        ignore=shutil.ignore_patterns("indicators.excon"))
        screeners = {"all": Screener([Path("rulebooks")]), "without": Screener([without])}
        times: dict[str, list[float]] = {"all": [], "without": []}
        counts: dict[str, int] = {}
        for _ in range(repeat):
            for name, screener in screeners.items():
                t0 = time.perf_counter()
                findings, _ = screener.screen_files(folder / "declarations.csv",
                                                    folder / "licences.csv",
                                                    folder / "parties.csv")
                times[name].append(time.perf_counter() - t0)
                counts[name] = len(findings)
    all_s, base_s = statistics.median(times["all"]), statistics.median(times["without"])
    return {"all_rules_s": all_s, "without_indicators_s": base_s, "ratio": all_s / base_s,
            "ratio_range": ratio_spread(times["all"], times["without"]),
            "indicator_findings": counts["all"] - counts["without"]}


def run(quality_size: int, cost_db: Path | None, repeat: int, cache: Path | None = None,
        fresh_seeds: tuple[int, ...] = FRESH_SEEDS) -> dict[str, Any]:
    import tempfile

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"quality_declarations": quality_size,
                           **evaluate(quality_size, cache, EVALUATION_SEED)}
    out["fresh"] = fresh = [evaluate(quality_size, cache, seed) for seed in fresh_seeds]
    if fresh:
        out["fresh_min_recall"] = min(f["min_recall"] for f in fresh)
        out["fresh_min_precision"] = min(f["min_precision"] for f in fresh)
    out["cost_end_to_end"] = cost_end_to_end(evaluation_set(quality_size, cache), repeat)
    out["cost_end_to_end"]["declarations"] = quality_size
    if cost_db is not None and cost_db.exists():
        out["cost"] = cost(cost_db, repeat)
    return out


def report(r: dict[str, Any]) -> str:
    lines = []
    for s in [r, *r.get("fresh", ())]:
        lines.append(f"indicators: labelled set of {r['quality_declarations']:,} demo "
                     f"declarations, seed {s.get('seed')}"
                     + (" (fresh)" if s is not r else "")
                     + f", {s['planted_share']:.1%} of them planted"
                     + " (targets: recall ≥ 0.9, precision ≥ 0.8; 95 % Wilson intervals)")
        for q in s["quality"]:
            rlo, rhi = q["recall_ci"]
            plo, phi = q["precision_ci"]
            lines.append(f"  {q['rule']:26} {q['found']:4}/{q['cases']:<4} recall "
                         f"{q['recall']:.3f} ({rlo:.2f}–{rhi:.2f})  "
                         f"{q['correct']:5}/{q['flagged']:<5} precision {q['precision']:.3f} "
                         f"({plo:.2f}–{phi:.2f})  {'met' if q['met'] else 'NOT met'}")
            lines.append("      flagged by planted kind: " + ", ".join(
                f"{kind} {n}" for kind, n in q["flagged_by_kind"].items()))
    e, c = r.get("cost_end_to_end"), r.get("cost")
    if e:
        lines.append(_cost_line(f"cost end to end (excon screen, {e['declarations']:,} "
                                "declarations)", e, "the indicators", "; target ≤ 2x"))
    if c:
        lines.append(_cost_line(f"final findings query alone on {c['declarations']:,} "
                                "declarations", c, f"the {c['indicators']} indicators", ""))
        slow = sorted(c["per_indicator_s"].items(), key=lambda kv: -kv[1])[:4]
        lines.append("  slowest indicators: " + ", ".join(f"{v[6:]} {s:.2f} s" for v, s in slow))
    return "\n".join(lines)


def _cost_line(what: str, c: dict[str, Any], without: str, target: str) -> str:
    return (f"  {what}: all rules {c['all_rules_s']:.2f} s, without {without} "
            f"{c['without_indicators_s']:.2f} s: {c['ratio']:.2f}x "
            f"({fmt_range(c['ratio_range'])}{target})")


# ---------------------------------------------------------------- threshold sweeps
# how far each threshold is moved from the rulebook's value: multiples of a quantity, a share or
# a length, steps of a count
SWEEP_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)
SWEEP_STEPS = (-1, 0, 1, 2)


def sweep_values(values: list[Any]) -> list[tuple[str, bool]]:
    """The settings a parameter is swept over (`excon screen --set` values) and whether each is
    the rulebook's own: its last value moved by SWEEP_FACTORS (a share kept within 100 %, a
    length in whole days) or, for a plain count, by SWEEP_STEPS."""
    v = values[-1]
    number, unit = float(v.value), v.unit
    if unit is None and number == int(number):
        points = sorted({max(1, int(number) + s) for s in SWEEP_STEPS})
        return [(str(p), p == number) for p in points]
    out = []
    for f in SWEEP_FACTORS:
        x = number * f
        if unit == "%":
            x = min(x, 100.0)
        if unit == "days":
            x = max(1, round(x))
        text = str(int(x)) if x == int(x) else f"{x:.4f}".rstrip("0")
        out.append((f"{text}{unit or ''}", f == 1.0))
    return list(dict.fromkeys(out))


def sweep(n: int, cache: Path, seed: int = EVALUATION_SEED,
          only: tuple[str, ...] = ()) -> dict[str, Any]:
    """Precision and recall of each indicator across a sweep of each threshold it reads:
    `excon screen` of the labelled set (every rule) with the parameter set to each value
    (`Screener(…, parameters=…)`), the other thresholds as the rulebook has them."""
    import dsl
    from dsl.rulebook import parameters_read
    from kb.screen import Screener
    from kb.store.schema import declaration_schema

    folder = evaluation_set(n, cache, seed)
    truth = read_truth(folder / "truth.csv")
    rb = dsl.load([Path("rulebooks")], declaration_schema()).rulebook
    assert rb is not None
    readers: dict[str, list[str]] = {}
    for name, decl in sorted(rb.rules.items()):
        condition = rb.condition_of(decl)
        for p in parameters_read(condition) if condition is not None else ():
            readers.setdefault(p, []).append(name)
    indicators = set(TARGETS)

    def screened(settings: dict[str, str]) -> dict[str, Any]:
        findings, _ = Screener([Path("rulebooks")], parameters=settings).screen_files(
            folder / "declarations.csv", folder / "licences.csv", folder / "parties.csv")
        flagged = [(f.declaration_id, f.rule) for f in findings
                   if f.outcome in ("risk", "prohibited")]
        return {q.rule: q for q in indicator_quality(flagged, truth)}

    base = screened({})
    out = []
    for name in sorted(readers):
        rules = [r for r in readers[name] if r in indicators]
        if not rules or (only and name not in only):
            continue
        points = []
        for value, own in sweep_values(ast.attrs_of(rb.parameters[name], ast.ParameterValue)):
            scores = base if own else screened({name: value})
            points.append({"value": value, "rulebook": own, "rules": {
                r: {"flagged": scores[r].flagged, "correct": scores[r].correct,
                    "found": scores[r].found, "cases": scores[r].cases,
                    "precision": scores[r].precision, "recall": scores[r].recall}
                for r in rules}})
        out.append({"parameter": name, "rules": rules, "points": points})
    return {"declarations": n, "seed": seed, "sweeps": out}


def sweep_report(r: dict[str, Any]) -> str:
    lines = [f"threshold sweeps: labelled set of {r['declarations']:,} demo declarations, seed "
             f"{r['seed']}; precision / recall of each indicator that reads the parameter "
             "(* the rulebook's value)"]
    for s in r["sweeps"]:
        for rule in s["rules"]:
            cells = [f"{p['value']}{'*' if p['rulebook'] else ''} "
                     f"{p['rules'][rule]['precision']:.2f}/{p['rules'][rule]['recall']:.2f}"
                     for p in s["points"]]
            lines.append(f"  {s['parameter']:30} {rule:26} " + "  ".join(cells))
    return "\n".join(lines)
