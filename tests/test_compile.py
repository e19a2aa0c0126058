"""The compiled checks get the semantics exactly right, on SQLite and on DuckDB alike."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlglot

from dsl.compile import FINDING_COLUMNS
from kb.screen import Finding, Screener
from kb.screen.statements import support_statements
from tests.conftest import DATA, RULEBOOKS

ENGINES = ["sqlite", "duckdb", "postgres"]


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener([DATA / "semantics"])


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """sqlite, duckdb, or the DSN of the session's PostgreSQL server."""
    name: str = request.param
    return request.getfixturevalue("postgres_dsn") if name == "postgres" else name


def decl(id: str, on: str, code: str = "8112929010", to: str = "DE",
         **extra: Any) -> dict[str, Any]:
    row = {"id": id, "declared_on": on, "exporter": "Hunan Widgets Co.", "consignee": "Acme GmbH",
           "consignee_country": to, "destination_country": to, "hs_code": code,
           "description": "widgets", "quantity_kg": 50, "value_usd": 1000, "purity_pct": 99.999}
    row.update(extra)
    return row


def outcomes(findings: list[Finding], rule: str | None = None) -> dict[str, str]:
    return {f.declaration_id: f.outcome for f in findings if rule is None or f.rule == rule}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_suspension_is_inclusive_and_the_rule_returns_the_next_day(screener: Screener,
                                                                   engine: str) -> None:
    rows = [decl(i, on, to="US") for i, on in (
        ("before", "2024-05-31"), ("first", "2024-06-01"), ("last", "2024-06-30"),
        ("after", "2024-07-01"), ("not-yet", "2024-01-09"), ("start", "2024-01-10"))]
    got = outcomes(screener.screen(rows, engine=engine), "widget-ban")
    assert got == {"before": "prohibited", "after": "prohibited", "start": "prohibited"}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_as_of_judges_every_declaration_by_one_date(screener: Screener, engine: str) -> None:
    rows = [decl("a", "2024-05-31", to="US"), decl("b", "2024-07-01", to="US")]
    assert outcomes(screener.screen(rows, as_of="2024-06-15", engine=engine), "widget-ban") == {}
    assert outcomes(screener.screen(rows, as_of="2024-08-01", engine=engine),
                    "widget-ban") == {"a": "prohibited", "b": "prohibited"}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_items_match_exact_ten_digit_codes_and_eight_digit_prefixes(screener: Screener,
                                                                    engine: str) -> None:
    rows = [decl("exact", "2024-03-01", "8112929010"), decl("other", "2024-03-01", "8112929099"),
            decl("line10", "2024-03-01", "7105102000"), decl("line8", "2024-03-01", "71051020"),
            decl("short", "2024-03-01", "81129290")]
    got = outcomes(screener.screen(rows, engine=engine), "widget-licence")
    assert got == {"exact": "unlicensed", "line10": "unlicensed", "line8": "unlicensed"}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_threshold_the_declaration_cannot_answer_is_undetermined(screener: Screener,
                                                                   engine: str) -> None:
    rows = [decl("missing", "2024-03-01", "2825800010", purity_pct=None),
            decl("below", "2024-03-01", "2825800010", purity_pct=99.98),
            decl("at", "2024-03-01", "2825800010", purity_pct=99.99)]
    findings = [f for f in screener.screen(rows, engine=engine) if f.rule == "widget-licence"]
    assert outcomes(findings) == {"missing": "undetermined", "at": "unlicensed"}
    missing = next(f for f in findings if f.declaration_id == "missing")
    assert "missing: purity_pct" in missing.explanation


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_the_missing_note_names_only_facts_that_matter_for_the_matched_item(engine: str) -> None:
    """A group mixes items with and without thresholds: germanium without a declared purity
    is judged on its end use alone, antimony oxide needs its purity too."""
    screener = Screener([RULEBOOKS])
    rows = [decl("ge", "2026-01-10", "8112921010", to="US", purity_pct=None),
            decl("sb", "2026-01-10", "2825800010", to="US", purity_pct=None)]
    got = {f.declaration_id: f.explanation for f in screener.screen(rows, engine=engine)
           if f.rule == "us-military-end-use"}
    assert got["ge"].endswith("missing: end_use")
    assert got["sb"].endswith("missing: purity_pct end_use")


LICENCE = {"licence_no": "L-1", "kind": "individual", "holder": "Hunan Widgets Co.",
           "items": "8112929010", "destination_country": "DE", "quantity_kg": 1000,
           "valid_from": "2024-01-01", "valid_to": "2024-12-31"}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_licence_cover_and_why_it_failed(screener: Screener, engine: str) -> None:
    rows = [decl("ok", "2024-03-01", quantity_kg=600, licence_no="L-1"),
            decl("exhausted", "2024-03-02", quantity_kg=600, licence_no="L-1"),
            decl("expired", "2025-01-02", licence_no="L-1"),
            decl("elsewhere", "2024-03-03", to="FR", licence_no="L-1"),
            decl("unknown", "2024-03-03", licence_no="L-9"),
            decl("none", "2024-03-03")]
    findings = {f.declaration_id: f for f in screener.screen(rows, [LICENCE], engine=engine)
                if f.rule == "widget-licence"}
    assert set(findings) == {"exhausted", "expired", "elsewhere", "unknown", "none"}
    assert "quantity exhausted: 1200 of 1000 kg" in findings["exhausted"].explanation
    assert "valid from 2024-01-01 to 2024-12-31, not on 2025-01-02" in \
        findings["expired"].explanation
    assert "for another destination" in findings["elsewhere"].explanation
    assert "licence L-9 is unknown" in findings["unknown"].explanation
    assert "licence: none declared" in findings["none"].explanation
    # the unified list (LIC-2 clause 1) controls the widgets from 2024-12-01: findings cite it
    assert all(f.outcome == "unlicensed" for f in findings.values())
    assert (findings["expired"].instrument, findings["expired"].provision) == \
        ("LIC-2", "clause 1")
    assert {f.instrument for f in findings.values()} <= {"LIC-1", "LIC-2"}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_licence_limits_refusals_and_names_on_every_engine(screener: Screener,
                                                         engine: str) -> None:
    """A refused shipment draws nothing; the value limit counts like the quantity; the
    quantities in the note are shown to the gram; names match after normalisation."""
    capped = {**LICENCE, "licence_no": "L-2", "quantity_kg": 100, "value_usd": 50000,
              "holder": "HUNAN WIDGETS CO", "agents": "Changsha Traders Ltd."}
    rows = [decl("first", "2024-03-01", quantity_kg=80, licence_no="L-2"),
            decl("too-much", "2024-03-02", quantity_kg=20.5, licence_no="L-2"),
            decl("fits", "2024-03-03", quantity_kg=18, licence_no="L-2"),
            decl("over-value", "2024-03-04", quantity_kg=1.5, value_usd=60000,
                 licence_no="L-2"),
            # 98 kg drawn (the refused shipments drew nothing): 2 kg more exactly fills it
            decl("agent", "2024-03-05", quantity_kg=2, exporter="CHANGSHA TRADERS LTD",
                 licence_no="L-2")]
    findings = {f.declaration_id: f for f in screener.screen(rows, [capped], engine=engine)
                if f.rule == "widget-licence"}
    assert set(findings) == {"too-much", "over-value"}
    assert "quantity exhausted: 100.5 of 100 kg" in findings["too-much"].explanation
    assert "value exhausted: 62000 of 50000 USD" in findings["over-value"].explanation


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_listed_parties_match_after_normalisation_from_their_listing_date(
        screener: Screener, engine: str) -> None:
    rows = [decl("caps", "2025-02-01", consignee="LOCKHEED MARTIN CORPORATION"),
            decl("width", "2025-02-01", consignee="Ｌｏｃｋｈｅｅｄ　Ｍａｒｔｉｎ, Inc."),
            decl("chinese", "2025-02-01", consignee="洛克希德·马丁"),
            decl("early", "2025-01-01", consignee="Lockheed Martin Corp."),
            decl("other", "2025-02-01", consignee="Lockheed Electronics Ltd")]
    findings = screener.screen(rows, engine=engine)
    got = outcomes(findings, "listed-consignee")
    assert got == {"caps": "prohibited", "width": "prohibited", "chinese": "prohibited"}
    caps = next(f for f in findings
                if f.declaration_id == "caps" and f.rule == "listed-consignee")
    assert caps.explanation.endswith(
        "; consignee matches Lockheed Martin Corp. on control-list (listed by LIST-1 entry 1; "
        "export-ban; as 'Lockheed Martin Corp.', score 100.0)")
    assert (caps.instrument, caps.provision) == ("LIST-1", "entry 1")


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_exceptions_suppress_and_prohibitions_sit_beside_licence_findings(
        screener: Screener, engine: str) -> None:
    rows = [decl("sample", "2024-03-01", quantity_kg=0.5), decl("both", "2024-03-01", to="US")]
    findings = screener.screen(rows, engine=engine)
    assert sorted((f.declaration_id, f.rule, f.outcome) for f in findings) == [
        ("both", "widget-ban", "prohibited"), ("both", "widget-licence", "unlicensed")]


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_rulebook_strings_that_look_like_sql_are_data(screener: Screener, engine: str) -> None:
    rows = [decl("sql", "2024-03-01", "9403600000",
                 description="x'; DROP TABLE declarations; -- y"),
            decl("quote", "2024-03-01", "9403600000", description='a BACK\\SLASH "QUOTED" b'),
            decl("han", "2024-03-01", "9403600000", description="含镓"),
            decl("plain", "2024-03-01", "9403600000", description="furniture")]
    got = outcomes(screener.screen(rows, engine=engine), "tricky-description")
    assert got == {"sql": "risk", "quote": "risk", "han": "risk"}
    again = screener.screen([decl("after", "2024-03-01", "9403600000")], engine=engine)
    assert again == []  # the declarations table is still there and working


def test_the_repository_rulebook_gives_the_same_findings_on_every_engine(
        postgres_dsn: str) -> None:
    screener = Screener([RULEBOOKS])
    rows = [decl(f"r{i}", day, code, to, consignee=c, purity_pct=p)
            for i, (day, code, to, c, p) in enumerate([
                ("2025-01-15", "8112929010", "US", "Acme Inc.", 99.99),
                ("2025-11-09", "8112929010", "US", "Acme Inc.", None),
                ("2026-11-28", "2825800010", "US", "LOCKHEED MARTIN CORP", None),
                ("2024-10-01", "2825800010", "TH", "Siam Metals", 99.995),
                ("2023-07-31", "8112921010", "JP", "Tokyo Metals K.K.", None)])]
    on_sqlite = screener.screen(rows)
    assert len(on_sqlite) >= 4
    assert on_sqlite == screener.screen(rows, engine="duckdb")
    assert on_sqlite == screener.screen(rows, engine=postgres_dsn)


def test_every_check_prints_for_every_dialect_and_reparses(screener: Screener) -> None:
    for dialect in ("sqlite", "duckdb", "postgres"):
        for sql in [*support_statements(dialect), *screener.compiled.statements(dialect)]:
            assert sqlglot.parse_one(sql, read=dialect) is not None


def test_findings_view_has_the_contract_columns(screener: Screener) -> None:
    conn: sqlite3.Connection = screener.db.conn
    cols = [c[1] for c in conn.execute("PRAGMA table_info(findings)").fetchall()]
    assert tuple(cols) == FINDING_COLUMNS
