"""The benchmarks run at a tiny size in the test suite so that they cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dsl
from bench.__main__ import main
from bench.generate import rulebook_text
from kb.store.schema import declaration_schema


def test_generated_benchmark_rulebook_is_valid() -> None:
    sf, diags = dsl.parse_text(rulebook_text(400), "gen.excon")
    assert diags == []
    _, problems = dsl.check([sf], declaration_schema())
    assert [d for d in problems if d.is_error] == []


@pytest.mark.slow
def test_quick_benchmark_run_writes_figures(tmp_path: Path, capsys: object) -> None:
    out = tmp_path / "results.json"
    assert main(["--quick", "--out", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    fe = results["frontend"]
    assert fe["lines"] >= 300 and fe["lines_per_s"] > 0
    assert fe["ratio_front_end_to_bare"] > 0
    assert results["load"]["rows"] >= 2000 and results["load"]["rejected"] == 0
    assert results["load"]["ratio_to_raw"] > 0
    assert all(r["same_count"] for r in results["screen"]["runs"])
    assert results["screen"]["runs"][-1]["findings"] > 0
    assert all(r["sqlite_rss_mb"] > 0 and r["build_s"] > 0 for r in results["screen"]["runs"])
    # each engine end to end (excon screen) and loaded, with what the loaded figure is made of
    for run in results["screen"]["runs"]:
        assert set(run["engines"]) == {"sqlite", "duckdb"}
        for engine, kinds in run["engines"].items():
            assert kinds["end_to_end"]["findings"] == kinds["loaded"]["findings"] == \
                run["findings"], engine
            loaded = kinds["loaded"]
            assert loaded["seconds"] == loaded["derive_s"] + loaded["checks_s"]
            assert loaded["plan_s"] > 0 and kinds["end_to_end"]["rss_mb"] > 0
        assert run["engines"]["duckdb"]["end_to_end"]["sqlite_over_engine"] > 0
    # the hand-written SQL the compiled checks are compared with finds the same declarations
    hand = results["screen"]["hand_written"]
    assert len(hand) == 3, hand
    assert all(x["same_findings"] and x["same_count"] for x in hand.values()), hand
    assert sum(x["declarations"] for x in hand.values()) > 0
    assert results["machine"]["cores"] >= 1
    assert results["latency"]["calls"] == 50
    assert results["latency"]["p50_ms"] > 0
    from bench.serve import PAGES, UNCACHED_PAGES

    served = results["serve"]["requests"]
    assert set(served) == set(PAGES)
    assert all(x["count"] == 24 and x["p95_ms"] > 0 for x in served.values())
    # each page again on URLs no request used: as many as there are unseen ones (rules are few)
    uncached = results["serve"]["uncached"]
    assert set(uncached) == set(UNCACHED_PAGES)
    assert all(0 < x["count"] <= 24 and x["p95_ms"] > 0 for x in uncached.values()), uncached
    assert uncached["declaration page"]["count"] == 24
    # the login flood meets the rate limit: wrong passwords (401), then refusals (429)
    flood = results["serve"]["login_flood"]
    assert {401, 429} <= {int(k) for k in flood["login_answers"]}, flood
    assert flood["flooded_p95_ms"] > 0 and flood["ratio"] > 0
    ind = results["indicators"]
    assert {q["rule"] for q in ind["quality"]} >= {"split-consignments", "hub-routing"}
    # each figure sits inside its Wilson interval, which has width (a few cases at this size)
    assert all(q["recall_ci"][0] <= q["recall"] <= q["recall_ci"][1] and
               q["recall_ci"][0] < q["recall_ci"][1] for q in ind["quality"] if q["cases"])
    assert ind["seed"] == 7 and ind["cost_end_to_end"]["without_indicators_s"] > 0
    # a set no definition was revised against, scored the same way
    [fresh] = ind["fresh"]
    assert fresh["seed"] == 8 and {q["rule"] for q in fresh["quality"]} == \
        {q["rule"] for q in ind["quality"]}
    assert ind["fresh_min_precision"] == min(q["precision"] for q in fresh["quality"])
    assert ind["cost"]["ratio"] >= 1 and ind["cost"]["indicators"] >= 13
    mt = results["matching"]
    assert mt["pairs"] >= 200 and mt["precision"] > 0.9 and mt["recall"] > 0.9
    assert [r["list_size"] for r in mt["runs"]] == [1_000, 2_000]
    rows = {r["figure"]: r for r in results["targets"]}
    assert len(rows) == 43 and {r["status"] for r in rows.values()} <= {
        "met", "NOT met", "not measured"}
    # the quick run measures everything but the 1M screening figures
    assert rows["single declaration p50"]["value"] == results["latency"]["p50_ms"]
    assert rows["screen 1M on SQLite: final query alone"]["status"] == "not measured"
    assert rows["excon check of 5 MB of garbage"]["status"] == "not measured"  # 200 kB here
    assert rows["excon diff / one screening (1M)"]["status"] == "not measured"  # 2,000 here
    assert results["diff"]["ratio"] > 0 and results["diff"]["changes_reported"] > 0
    broken = results["frontend"]["broken"]
    for kind in ("garbage", "repeated"):  # the first 100 errors described, the rest counted
        assert broken[f"{kind}_described"] == 100 < broken[f"{kind}_errors"], broken
    assert rows["screen 1M: DuckDB faster than SQLite, end to end"]["status"] == "not measured"
    spread = rows["load / raw executemany"]
    assert spread["min"] is not None and spread["max"] is not None
    assert set(results["measured"]) >= {"frontend", "load", "screen", "serve"}
    # --update re-runs one benchmark and keeps the others' figures, each saying when it ran
    before = results["measured"]["load"]
    results["measured"]["load"] = dict(before, at="2026-01-01T00:00:00+00:00")
    out.write_text(json.dumps(results), encoding="utf-8")
    assert main(["--quick", "--only", "frontend", "--update", "--out", str(out)]) == 0
    updated = json.loads(out.read_text(encoding="utf-8"))
    assert updated["load"] == results["load"] and updated["serve"] == results["serve"]
    assert updated["measured"]["load"]["at"] == "2026-01-01T00:00:00+00:00"
    assert updated["measured"]["frontend"]["at"] > "2026-01-01"
    assert len(updated["targets"]) == 43
    assert {r["figure"]: r["value"] for r in updated["targets"]}["load / raw executemany"] == \
        results["load"]["ratio_to_raw"]
