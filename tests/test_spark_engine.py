"""`excon screen --engine spark` gives the default engine's findings (a JVM starts: slow).
Needs Java 17 or later and PySpark, as test_spark.py says."""

from __future__ import annotations

import pytest

from kb.screen import Screener
from tests.conftest import DATA
from tests.test_compile import LICENCE, decl

pytestmark = pytest.mark.slow


def test_screen_on_spark_gives_the_default_engines_findings() -> None:
    """The semantics rulebook's cases: a suspension's boundaries, licence cover and why it
    failed, listed parties after normalisation, a threshold the declaration cannot answer,
    declared facts of every type."""
    screener = Screener([DATA / "semantics"])
    rows = [decl("before", "2024-05-31", to="US"), decl("first", "2024-06-01", to="US"),
            decl("after", "2024-07-01", to="US"),
            decl("ok", "2024-03-01", quantity_kg=600, licence_no="L-1"),
            decl("exhausted", "2024-03-02", quantity_kg=600, licence_no="L-1"),
            decl("expired", "2025-01-02", licence_no="L-1"),
            decl("unknown", "2024-03-03", licence_no="L-9"),
            decl("listed", "2025-02-01", consignee="LOCKHEED MARTIN CORPORATION"),
            decl("purity", "2024-03-03", purity_pct=None),
            # declared facts of every type (a military end user of US-origin widgets), met,
            # one below its threshold, and one missing
            *(decl(n, "2024-03-04", origin="US", end_user_type="military", registered="no",
                   lot=lot, contract_signed="2024-02-01", us_share=share, programme="x")
              for n, lot, share in (("facts", 0.5, 10.5), ("facts-light", 0.499, 10.5),
                                    ("facts-unknown", 0.5, None)))]
    default = screener.screen(rows, [LICENCE])
    try:
        on_spark = screener.screen(rows, [LICENCE], engine="spark")
    finally:
        screener.close()
    assert {f.declaration_id for f in default} >= {"before", "exhausted", "listed"}
    assert {(f.declaration_id, f.outcome) for f in default if f.rule == "military-widgets"} \
        == {("facts", "prohibited"), ("facts-unknown", "undetermined")}
    assert on_spark == default
