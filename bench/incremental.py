"""Incremental screening (issue 38): a day's declarations added to a knowledge base of history
(`excon add`), against screening the history and the new declarations again from scratch
(`excon screen` of every declaration). Target: the add takes at most a tenth of the time of
the full re-screening, on SQLite and on DuckDB, and gives the new declarations the same
findings, row for row.

Both figures are end to end, as a user waits for them: a process started by the command line,
the rulebooks loaded, the inputs validated, every relation made, the findings written to a
file; the add also writes the declarations, their derived rows and their findings into the
knowledge base. Not included: building the knowledge base of history (once, cached) and
copying it for each add (an add changes it). Medians of `repeat` runs, the add and the full
screening alternating.
"""

from __future__ import annotations

import csv
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.load import demo_folder
from bench.stats import ratio_spread, spread

TARGET_RATIO = 0.10


def split(folder: Path, new: int, out: Path) -> tuple[Path, Path, int]:
    """history.csv (every declaration up to a day) and new.csv (the whole days after it, at
    most `new` declarations); their row counts."""
    with (folder / "declarations.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        on = header.index("declared_on")
        rows = sorted(reader, key=lambda r: (r[on], r[0]))
    days = Counter(r[on] for r in rows)
    after, cut = 0, ""
    for day in sorted(days, reverse=True):
        if after + days[day] > new:
            cut = day
            break
        after += days[day]
    paths = out / "history.csv", out / "new.csv"
    for path, part in zip(paths, ([r for r in rows if r[on] <= cut],
                                  [r for r in rows if r[on] > cut]), strict=True):
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(part)
    return paths[0], paths[1], len(rows) - after


def _timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kb.cli", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _findings(path: Path, ids: set[str] | None = None) -> list[tuple[str, ...]]:
    with path.open(encoding="utf-8", newline="") as f:
        return sorted(tuple(r.values()) for r in csv.DictReader(f)
                      if ids is None or r["declaration_id"] in ids)


def run(history: int = 1_000_000, new: int = 20_000, repeat: int = 3,
        engines: tuple[str, ...] = ("sqlite", "duckdb"),
        cache: Path | None = None) -> dict[str, Any]:
    from kb.build import build

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    folder = demo_folder(history + new, cache)
    work = cache / f"incremental-{folder.name}-{new}"
    work.mkdir(parents=True, exist_ok=True)
    earlier, later, past = split(folder, new, work)
    kb = work / "history.db"
    built_s = None
    if not kb.exists():
        t0 = time.perf_counter()
        build(kb, [Path("rulebooks")], earlier, folder / "licences.csv",
              folder / "parties.csv")
        built_s = time.perf_counter() - t0
    with later.open(encoding="utf-8", newline="") as f:
        ids = {r["id"] for r in csv.DictReader(f)}
    out: dict[str, Any] = {"history": past, "new": len(ids), "repeat": repeat,
                           "history_build_s": built_s, "engines": {}}
    everything = [str(folder / "declarations.csv"), "--licences", str(folder / "licences.csv"),
                  "--parties", str(folder / "parties.csv")]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "kb.db"
        for engine in engines:
            adds, fulls, same = [], [], True
            for _ in range(repeat):
                shutil.copy(kb, target)
                adds.append(_timed(["add", str(later), "--db", str(target), "--engine", engine,
                                    "-o", f"{tmp}/added.csv"]))
                fulls.append(_timed(["screen", *everything, "--engine", engine,
                                     "-o", f"{tmp}/full.csv"]))
                same &= _findings(Path(f"{tmp}/added.csv")) == \
                    _findings(Path(f"{tmp}/full.csv"), ids)
            out["engines"][engine] = {
                "add_s": statistics.median(adds), "add_range": spread(adds),
                "full_s": statistics.median(fulls), "full_range": spread(fulls),
                "ratio": ratio_spread(adds, fulls),
                "findings": len(_findings(Path(f"{tmp}/added.csv"))),
                "same_findings": same}
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"incremental screening: {r['new']:,} new declarations added to a knowledge base "
             f"of {r['history']:,} (excon add), against excon screen of all "
             f"{r['history'] + r['new']:,}; end to end, median of {r['repeat']}"]
    if r["history_build_s"] is not None:
        lines.append(f"  (building the knowledge base of history took "
                     f"{r['history_build_s']:.1f} s, once)")
    for engine, e in r["engines"].items():
        ratio = e["ratio"]["median"]
        mark = "met" if ratio <= TARGET_RATIO else "NOT met"
        if r["history"] + r["new"] < 1_000_000:
            mark = f"not at 1M ({r['history'] + r['new']:,})"
        lines.append(f"  {engine}: add {e['add_s']:.2f} s (min {e['add_range']['min']:.2f}, "
                     f"max {e['add_range']['max']:.2f}), full {e['full_s']:.2f} s "
                     f"(min {e['full_range']['min']:.2f}, max {e['full_range']['max']:.2f}); "
                     f"add / full {ratio:.3f} (target ≤ {TARGET_RATIO:g}: {mark}); "
                     f"{e['findings']:,} findings, "
                     f"{'the same as' if e['same_findings'] else 'DIFFERENT from'} the full "
                     "screening's for those declarations")
    return "\n".join(lines)
