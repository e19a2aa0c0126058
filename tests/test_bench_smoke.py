"""The benchmarks run at a tiny size in the test suite so that they cannot rot. One file per
group of benchmarks (test_bench_screen.py, test_bench_serve.py), so that the test workers
share them; each checks its own figures and its rows of the targets table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import dsl
from bench.__main__ import main
from bench.generate import rulebook_text
from kb.store.schema import declaration_schema
from tests.conftest import DATA

TARGETS = 55  # rows of the targets table, measured or not


def quick(tmp_path: Path, *only: str) -> dict[str, Any]:
    """`python -m bench --quick --only …`: the results it writes."""
    out = tmp_path / "results.json"
    assert main(["--quick", *(a for b in only for a in ("--only", b)), "--out", str(out)]) == 0
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert set(results["measured"]) == set(only)
    assert results["machine"]["cores"] >= 1
    assert len(results["targets"]) == TARGETS
    assert all(r["status"] in ("met", "NOT met", "not measured")
               or r["status"].startswith("not at 1M (") for r in results["targets"])
    return results


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["figure"]: r for r in results["targets"]}


def test_generated_benchmark_rulebook_is_valid() -> None:
    sf, diags = dsl.parse_text(rulebook_text(400), "gen.excon")
    assert diags == []
    _, problems = dsl.check([sf], declaration_schema())
    assert [d for d in problems if d.is_error] == []


@pytest.mark.slow
def test_front_end_load_matching_latency_and_diff_write_figures(tmp_path: Path) -> None:
    results = quick(tmp_path, "frontend", "checker", "load", "matching", "latency", "diff",
                    "incremental")
    fe = results["frontend"]
    assert fe["lines"] >= 300 and fe["lines_per_s"] > 0
    assert fe["ratio_front_end_to_bare"] > 0
    broken = fe["broken"]
    for kind in ("garbage", "repeated"):  # the first 100 errors described, the rest counted
        assert broken[f"{kind}_described"] == 100 < broken[f"{kind}_errors"], broken
    ck = results["checker"]
    assert [r["rules"] for r in ck["runs"]] == [50, 100]
    # the generated rulebooks are clean: `excon check` exits 0 and says so
    assert all(r["errors"] == 0 and r["check_exit"] == 0 and r["load_s"] > 0
               and r["check_summary"].endswith("0 error(s), 0 warning(s)") for r in ck["runs"])
    assert ck["growth_per_rule"] > 0 and ck["text_s"] > 0 and ck["text_mb"] >= 0
    assert results["load"]["rows"] >= 2000 and results["load"]["rejected"] == 0
    assert results["load"]["ratio_to_raw"] > 0
    assert results["latency"]["calls"] == 50
    assert results["latency"]["p50_ms"] > 0
    # against a knowledge base of the 2,000 earlier declarations, and without one
    assert results["latency"]["history"] == 2_000
    assert results["latency"]["without_history"]["p50_ms"] > 0
    # a new process's screener over the knowledge base, with the cache warm and off
    start = results["latency"]["start"]
    assert start["warm_s"] > 0 and start["off_s"] > 0 and start["warm_range"]["runs"] == 3
    assert start["first_s"] > 0 and start["first_range"]["runs"] == 3
    mt = results["matching"]
    assert mt["pairs"] >= 200 and mt["precision"] > 0.9 and mt["recall"] > 0.9
    assert [r["list_size"] for r in mt["runs"]] == [1_000, 2_000]
    assert results["diff"]["ratio"] > 0 and results["diff"]["changes_reported"] > 0
    inc = results["incremental"]
    assert inc["new"] > 0 and inc["history"] + inc["new"] == 2_200
    for engine in ("sqlite", "duckdb"):  # the add gives the full screening's findings
        assert inc["engines"][engine]["same_findings"], engine
        assert inc["engines"][engine]["add_s"] > 0 and inc["engines"][engine]["findings"] > 0
    rows = targets(results)
    assert rows["add 20k to 1M / screen all 1.02M, sqlite"]["status"] == "not at 1M (2,200)"
    assert rows["single declaration p50, 1M of history"]["value"] == results["latency"]["p50_ms"]
    # a figure named at 1M and measured on fewer is shown, not marked met or not met
    assert rows["single declaration p50, 1M of history"]["status"] == "not at 1M (2,000)"
    assert rows["single declaration p95, 1M of history"]["value"] == \
        results["latency"]["p95_ms"] >= results["latency"]["p50_ms"]
    assert rows["load 1M declarations"]["status"] == "not at 1M (2,000)"
    assert rows["excon check of 5 MB of garbage"]["status"] == "not measured"  # 200 kB here
    assert rows["excon diff / one screening (1M)"]["status"] == "not measured"  # 2,000 here
    spread = rows["load / raw executemany"]
    assert spread["min"] is not None and spread["max"] is not None
    # the benchmarks not run here are not measured, whatever their figures would be
    assert rows["screen 1M: DuckDB faster than SQLite, end to end"]["status"] == "not measured"


@pytest.mark.slow
def test_update_reruns_one_benchmark_and_keeps_the_others_figures(tmp_path: Path) -> None:
    """--update on a results file that holds only a load figure from 2026-01-01: the latency
    benchmark runs, the load figures and when they were measured stay, and the targets table
    is made from both."""
    out = tmp_path / "results.json"
    shutil.copy(DATA / "bench" / "results-load-only.json", out)
    before = json.loads(out.read_text(encoding="utf-8"))
    assert main(["--quick", "--only", "latency", "--update", "--out", str(out)]) == 0
    updated = json.loads(out.read_text(encoding="utf-8"))
    assert updated["load"] == before["load"]
    assert updated["measured"]["load"] == before["measured"]["load"]
    assert updated["measured"]["latency"]["at"] > "2026-01-01"
    rows = targets(updated)
    assert len(rows) == TARGETS
    assert rows["load / raw executemany"]["value"] == before["load"]["ratio_to_raw"]
    assert rows["single declaration p50, 1M of history"]["value"] == updated["latency"]["p50_ms"]
    assert rows["excon diff / one screening (1M)"]["status"] == "not measured"
