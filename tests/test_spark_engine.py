"""`excon screen --engine spark` gives the default engine's findings (a JVM starts: slow).
Needs Java 17 or later and PySpark, as test_spark.py says."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from kb.screen import Screener
from tests.conftest import DATA, RULEBOOKS
from tests.test_compile import LICENCE, decl
from tests.test_differential import broad_batch, interpreted, key, repository_codes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def screeners() -> Iterator[dict[str, Screener]]:
    """The semantics and repository screeners; their Spark session is one (`getOrCreate`),
    stopped when the module's tests are done."""
    held = {"semantics": Screener([DATA / "semantics"]), "repository": Screener([RULEBOOKS])}
    yield held
    for screener in held.values():
        screener.close()


def test_screen_on_spark_gives_the_default_engines_findings(
        screeners: dict[str, Screener]) -> None:
    """The semantics rulebook's cases: a suspension's boundaries, licence cover and why it
    failed, listed parties after normalisation, a threshold the declaration cannot answer,
    declared facts of every type."""
    screener = screeners["semantics"]
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
    on_spark = screener.screen(rows, [LICENCE], engine="spark")
    assert {f.declaration_id for f in default} >= {"before", "exhausted", "listed"}
    assert {(f.declaration_id, f.outcome) for f in default if f.rule == "military-widgets"} \
        == {("facts", "prohibited"), ("facts-unknown", "undetermined")}
    assert on_spark == default


def test_a_generated_batch_on_spark_agrees_with_the_interpreter(
        screeners: dict[str, Screener]) -> None:
    """A batch of the differential tests' generated declarations (every item of the
    repository, texts in every case of letters outside ASCII, end users without a country,
    runs of shipments, licences, parties and owners), judged by the law as of the day a
    suspension began: Spark's findings are the interpreter's, as SQLite's and DuckDB's are in
    tests/test_differential.py."""
    screener = screeners["repository"]
    decls, licences, parties = broad_batch(random.Random(11), repository_codes(
        screener.rulebook), 300, screener.rulebook.declared_fields())
    on_spark = [key(f) for f in screener.screen(decls, licences, parties, as_of="2025-11-09",
                                                engine="spark")]
    assert len({f[1] for f in on_spark}) >= 10  # a broad batch: many rules fire
    assert on_spark == interpreted(screener, decls, licences, "2025-11-09", parties)
