"""The screening and indicator benchmarks at a tiny size (the slowest of the benchmarks, in a
file of their own so that another test worker takes the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_bench_smoke import quick, targets


@pytest.mark.slow
def test_screening_and_indicator_benchmarks_write_figures(tmp_path: Path) -> None:
    results = quick(tmp_path, "screen", "indicators")
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
            # the relations Python computes count in the loaded figure
            assert loaded["python_s"] > 0
            assert loaded["seconds"] == pytest.approx(
                loaded["python_s"] + loaded["derive_s"] + loaded["checks_s"])
            assert loaded["plan_s"] > 0 and kinds["end_to_end"]["rss_mb"] > 0
        assert run["engines"]["duckdb"]["end_to_end"]["sqlite_over_engine"] > 0
    # the hand-written SQL the compiled checks are compared with finds the same declarations
    hand = results["screen"]["hand_written"]
    assert len(hand) == 3, hand
    assert all(x["same_findings"] and x["same_count"] for x in hand.values()), hand
    assert sum(x["declarations"] for x in hand.values()) > 0
    # the interpreter had the same inputs, parties included, and gave the same findings
    assert results["screen"]["interpreter_same_findings"] is True
    ind = results["indicators"]
    assert {q["rule"] for q in ind["quality"]} >= {"split-consignments", "hub-routing"}
    # each figure sits inside its Wilson interval, which has width (a few cases at this size)
    assert all(q["recall_ci"][0] <= q["recall"] <= q["recall_ci"][1] and
               q["recall_ci"][0] < q["recall_ci"][1] for q in ind["quality"] if q["cases"])
    assert ind["seed"] == 7 and ind["cost_end_to_end"]["without_indicators_s"] > 0
    # precision by planted kind: every flag counted once, under its case's kind or background
    assert all(sum(q["flagged_by_kind"].values()) == q["flagged"] for q in ind["quality"])
    assert any("background" in q["flagged_by_kind"] for q in ind["quality"])
    assert 0 < ind["planted_share"] < 1
    # a set no definition was revised against, scored the same way
    [fresh] = ind["fresh"]
    assert fresh["seed"] == 8 and {q["rule"] for q in fresh["quality"]} == \
        {q["rule"] for q in ind["quality"]}
    assert ind["fresh_min_precision"] == min(q["precision"] for q in fresh["quality"])
    # the final query's cost, on the screening benchmark's largest knowledge base
    assert ind["cost"]["ratio"] >= 1 and ind["cost"]["indicators"] >= 13
    rows = targets(results)
    # the quick run measures everything but the 1M screening figures
    assert rows["screen 1M on SQLite: final query alone"]["status"] == "not measured"
    assert rows["screen 1M: DuckDB faster than SQLite, end to end"]["status"] == "not measured"
    assert rows["compiled / hand-written: licence cover"]["status"] == "not at 1M (2,000)"


@pytest.mark.slow
def test_the_threshold_sweep_moves_precision_and_recall_the_way_the_threshold_does(
        tmp_path: Path) -> None:
    """Each threshold an indicator reads, set to values around the rulebook's (`--set`), the
    labelled set screened at each: a stricter value never flags more."""
    sweep = quick(tmp_path, "sweep")["sweep"]
    by_name = {s["parameter"]: s for s in sweep["sweeps"]}
    assert set(by_name) == {"split-parts", "split-window"}
    assert set(by_name["split-parts"]["rules"]) == {"split-consignments",
                                                     "split-bulk-consignments"}
    for s in by_name.values():
        assert [p["rulebook"] for p in s["points"]].count(True) == 1
        for rule in s["rules"]:
            flagged = [p["rules"][rule]["flagged"] for p in s["points"]]
            # more parts needed: fewer flags; a longer window: more
            order = flagged if s["parameter"] == "split-window" else flagged[::-1]
            assert order == sorted(order), (s["parameter"], rule, flagged)
            assert all(0 <= p["rules"][rule]["precision"] <= 1 and
                       0 <= p["rules"][rule]["recall"] <= 1 for p in s["points"])
    assert [p["value"] for p in by_name["split-parts"]["points"]] == ["1", "2", "3", "4"]
    assert [p["value"] for p in by_name["split-window"]["points"]] == \
        ["22days", "34days", "45days", "68days", "90days"]
