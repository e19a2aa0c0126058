"""Load: 1,000,000 declarations with full validation, against a raw executemany of the same rows.

Targets (issue 3): ≤ 10 s, ≤ 3× the raw executemany in one transaction, peak RSS ≤ 500 MB.
Each measurement runs in its own process so that its peak RSS is its own.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.stats import in_process, ratio_spread, spread

TARGET_SECONDS = 10.0
TARGET_RATIO = 3.0
TARGET_RSS_MB = 500.0

_VALIDATED = """
import json, resource, sys, time
from pathlib import Path
from sqlite_utils import Database
from kb.inputs.load import load_csv
from kb.store.tables import MIGRATIONS
db = Database(Path(sys.argv[2]))
MIGRATIONS.apply(db)
t0 = time.perf_counter()
report = load_csv(db, "declarations", sys.argv[1])
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "rows": report.loaded, "rejected": report.rejected_rows,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# The baseline gets the same page cache and deferred indexes, so the ratio is validation's cost.
_RAW = """
import csv, json, resource, sys, time
from pathlib import Path
from sqlite_utils import Database
from kb.inputs.csv_files import bulk_cache, deferred_indexes
from kb.store.tables import MIGRATIONS
db = Database(Path(sys.argv[2]))
MIGRATIONS.apply(db)
conn = db.conn
t0 = time.perf_counter()
with open(sys.argv[1], encoding="utf-8", newline="") as f, bulk_cache(conn):
    reader = csv.reader(f)
    header = next(reader)
    cols = ", ".join(header)
    marks = ", ".join("?" for _ in header)
    conn.execute("BEGIN")
    with deferred_indexes(conn, "declarations"):
        conn.executemany(f"INSERT INTO declarations ({cols}) VALUES ({marks})", reader)
    conn.execute("COMMIT")
elapsed = time.perf_counter() - t0
rows = conn.execute("select count(*) from declarations").fetchone()[0]
print(json.dumps({"seconds": elapsed, "rows": rows,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def declarations_file(n: int, cache: Path) -> Path:
    """The demo generator's declarations.csv with n rows (seed 1), generated once and cached."""
    return demo_folder(n, cache) / "declarations.csv"


def demo_folder(n: int, cache: Path, seed: int = 1, name: str = "demo",
                cases_per: int = 0) -> Path:
    """A folder of demo files (declarations, licences, parties, truth) with n declarations,
    generated once and cached (the cache is keyed by the generator's code and the rulebooks,
    so a change to either regenerates)."""
    import hashlib

    import kb.inputs.demo

    digest = hashlib.sha256(Path(kb.inputs.demo.__file__).read_bytes())
    for f in sorted(Path("rulebooks").rglob("*.excon")):
        digest.update(f.read_bytes())
    out = cache / f"{name}-{n}{f'-per{cases_per}' if cases_per else ''}-{digest.hexdigest()[:10]}"
    if not (out / "truth.csv").exists():
        kb.inputs.demo.write(kb.inputs.demo.generate(n, seed=seed, cases_per=cases_per), out)
    return out


def _measure(script: str, csv_path: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return in_process(script, str(csv_path), f"{tmp}/kb.db")


def run(n: int = 1_000_000, repeat: int = 3, cache: Path | None = None) -> dict[str, Any]:
    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    cache.mkdir(parents=True, exist_ok=True)
    path = declarations_file(n, cache)
    validated, raw = [], []
    for _ in range(repeat):  # interleaved, so noise hits both alike
        validated.append(_measure(_VALIDATED, path))
        raw.append(_measure(_RAW, path))
    v = statistics.median(r["seconds"] for r in validated)
    r = statistics.median(x["seconds"] for x in raw)
    rss = max(x["rss_mb"] for x in validated)
    return {
        "rows": validated[0]["rows"], "rejected": validated[0]["rejected"], "repeat": repeat,
        "validated_s": v, "validated_min_s": min(x["seconds"] for x in validated),
        "validated_max_s": max(x["seconds"] for x in validated), "raw_s": r,
        "validated_range": spread([x["seconds"] for x in validated]),
        "ratio_range": ratio_spread([x["seconds"] for x in validated],
                                    [x["seconds"] for x in raw]),
        "rss_range": spread([x["rss_mb"] for x in validated]),
        "rows_per_s": validated[0]["rows"] / v, "ratio_to_raw": v / r, "peak_rss_mb": rss,
        "raw_peak_rss_mb": max(x["rss_mb"] for x in raw),
        "meets_target": v <= TARGET_SECONDS and v / r <= TARGET_RATIO and rss <= TARGET_RSS_MB,
    }


def report(r: dict[str, Any]) -> str:
    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return "\n".join([
        f"load: {r['rows']:,} declarations, median of {r['repeat']} runs",
        f"  validated load (load_csv)    {r['validated_s']:7.2f} s"
        f"  (min {r['validated_min_s']:.2f}, max {r['validated_max_s']:.2f})"
        f"   target ≤ {TARGET_SECONDS:.0f} s: {mark(r['validated_s'] <= TARGET_SECONDS)}",
        f"  raw executemany, one txn     {r['raw_s']:7.2f} s",
        f"  ratio validated / raw        {r['ratio_to_raw']:7.2f}x   target ≤ {TARGET_RATIO:.0f}x:"
        f" {mark(r['ratio_to_raw'] <= TARGET_RATIO)}",
        f"  throughput                   {r['rows_per_s']:10,.0f} rows/s",
        f"  peak RSS (validated)         {r['peak_rss_mb']:7.0f} MB   target ≤ "
        f"{TARGET_RSS_MB:.0f} MB: {mark(r['peak_rss_mb'] <= TARGET_RSS_MB)}"
        f"   (raw: {r['raw_peak_rss_mb']:.0f} MB)",
    ])
