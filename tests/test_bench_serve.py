"""The Datasette benchmark at a tiny size: every analyst page, cached and uncached, and a
login flood against the rate limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_bench_smoke import quick, targets


@pytest.mark.slow
def test_datasette_benchmark_writes_figures(tmp_path: Path) -> None:
    from bench.serve import PAGES, UNCACHED_PAGES

    results = quick(tmp_path, "serve")
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
    rows = targets(results)
    for page in PAGES:
        assert rows[f"Datasette p95 (1M): {page}, cached"]["value"] == served[page]["p95_ms"]
    assert rows["single declaration p50, 1M of history"]["status"] == "not measured"
