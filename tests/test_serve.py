"""Publishing: the real Datasette app in-process, on a knowledge base built from demo data.

JSON is read with `_shape=array` (stable across Datasette versions). Anonymous visitors must get
403 on everything derived from declarations, licences and parties; an analyst gets the data.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.build import build
from kb.publish.auth import hash_password
from kb.publish.metadata import PRIVATE_QUERIES, private_names
from kb.publish.serve import ServeError, datasette_app, read_credentials, snapshot
from kb.store.tables import SPECS
from tests.conftest import RULEBOOKS
from tests.serving import PASSWORD, Server


@pytest.fixture(scope="module")
def built(demo_kb: Path) -> Path:
    return demo_kb


@pytest.fixture(scope="module")
def ds(built: Path) -> Iterator[Any]:
    with snapshot(built) as served:
        yield datasette_app(served, {"analyst": hash_password(PASSWORD)})


def get(ds: Any, path: str, actor: dict[str, str] | None = None) -> Any:
    cookies = {"ds_actor": ds.excon_auth.session_cookie(ds, actor["id"])} if actor else {}
    return asyncio.run(ds.client.get(path, cookies=cookies))


ANALYST = {"id": "analyst"}


def rows(ds: Any, path: str, actor: dict[str, str] | None = ANALYST) -> list[dict[str, Any]]:
    sep = "&" if "?" in path else "?"
    response = get(ds, f"{path}{sep}_shape=array", actor)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    result: list[dict[str, Any]] = response.json()
    return result


def query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_private_table_view_and_query_is_403_for_anonymous_visitors(ds: Any,
                                                                          built: Path) -> None:
    conn = sqlite3.connect(built)
    from sqlite_utils import Database

    private = private_names(Database(conn))
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                         "WHERE type IN ('table', 'view')")}
    assert {"declarations", "licences", "trade_parties", "findings", "finding_details",
            "runs", "rejected_rows", "check_ga_ge_licence"} <= set(private)
    for name in sorted(set(private) & names):
        for suffix in ("", ".json", ".json?_shape=array", ".csv"):
            assert get(ds, f"/kb/{name}{suffix}").status_code == 403, (name, suffix)
        assert get(ds, f"/kb/{name}.json?_shape=array", ANALYST).status_code == 200, name
    for name in PRIVATE_QUERIES:
        assert get(ds, f"/kb/{name}.json?_shape=array").status_code == 403, name
        assert get(ds, f"/kb/{name}.json?_shape=array&declaration_id=x",
                   ANALYST).status_code == 200, name
    # arbitrary SQL and the database file
    assert get(ds, "/kb.json?sql=select+*+from+declarations").status_code == 403
    assert get(ds, "/kb.db").status_code == 403
    assert get(ds, "/-/dashboards/findings").status_code == 403
    assert get(ds, "/kb.json?sql=select+count(*)+as+n+from+declarations&_shape=array",
               ANALYST).json() == [{"n": 3000}]
    assert get(ds, "/kb.db", ANALYST).status_code == 200


def test_every_table_is_classified_public_or_private(built: Path) -> None:
    """A new table derived from the inputs cannot become public by accident: anything that is
    neither reference data nor publishing support must be in the private list."""
    from sqlite_utils import Database

    conn = sqlite3.connect(built)
    private = set(private_names(Database(conn)))
    public = {s.name for s in SPECS.values() if s.public} | {
        "rule_checks", "rule_timeline", "law_timeline", "excon_metadata", "_sqlite_migrations",
        "sqlite_stat1", "excon_rulebook_sources"}  # the rulebooks as written, not inputs
    for name, kind in conn.execute("SELECT name, type FROM sqlite_master "
                                   "WHERE type IN ('table', 'view')"):
        base = name.split("_fts")[0]
        assert name in private or name in public or base in public, (name, kind)
        assert not (name in private and name in public), name


def test_reference_data_is_public_with_metadata_labels_and_full_text_search(ds: Any,
                                                                           built: Path) -> None:
    items = rows(ds, "/kb/items.json?_search=gallium", actor=None)
    assert items and all("allium" in (i["title"] or "") for i in items)
    instruments = rows(ds, "/kb/instruments.json?_search=gallium", actor=None)
    assert "MOFCOM-2023-23" in {i["id"] for i in instruments}
    parties = rows(ds, "/kb/parties.json?_search=lockheed", actor=None)
    assert [p["name"] for p in parties] == ["lockheed-martin"]
    home = " ".join(get(ds, "/").text.split())
    n_rules, n_items, n_parties = (query(built, f"SELECT COUNT(*) FROM {t}")[0][0]
                                   for t in ("rules", "items", "parties"))
    assert (f"{n_rules} rules, {n_items} items, {n_parties} listed parties; "
            "3,000 declarations screened") in home
    assert get(ds, "/-/metadata.json").status_code == 403  # every table's columns
    meta = get(ds, "/-/metadata.json", ANALYST).json()
    tables = meta["databases"]["kb"]["tables"]
    assert tables["hs_codes"]["license"] == "ODC-PDDL-1.0"
    assert tables["declarations"]["columns"]["quantity_kg"] == "Net quantity, kg"
    assert tables["finding_details"]["facets"][:3] == ["outcome", "severity", "rule"]
    assert "pbkdf2" not in json.dumps(meta)  # no password hash in the metadata
    # foreign keys show labels: a provision links to its instrument by title
    page = get(ds, "/kb/provisions").text
    assert "Announcement No. 46 of 2024" in page


def test_findings_table_has_facets_and_matches_the_findings_view(ds: Any, built: Path) -> None:
    response = get(ds, "/kb/finding_details.json?_size=0", ANALYST).json()
    facets = response["facet_results"]
    facets = facets.get("results", facets)  # Datasette 0.65 vs 1.0 layouts
    assert {"outcome", "rule", "instrument", "destination_country", "item_group"} <= set(facets)
    # the mineral, not a union group such as dual-use-minerals
    groups = {v["value"] for v in facets["item_group"]["results"]}
    assert groups and groups <= {"gallium", "germanium", "graphite", "antimony", "tungsten",
                                 "superhard", "medium-heavy-rare-earths", "batteries", None}
    served = rows(ds, "/kb/finding_details.json?_size=max&_col=declaration_id&_col=rule"
                      "&_col=outcome&_col=explanation")
    live = query(built, "SELECT declaration_id, rule, outcome, explanation FROM findings")
    assert len(live) > 20
    assert sorted((r["declaration_id"], r["rule"], r["outcome"], r["explanation"])
                  for r in served) == sorted(live)


def test_stored_query_judges_one_declaration_as_of_a_date(ds: Any, built: Path) -> None:
    us = query(built, "SELECT declaration_id, explanation FROM findings "
                      "WHERE rule = 'us-critical-minerals-ban' "
                      "AND outcome = 'presumption-of-denial' "
                      "ORDER BY declaration_id LIMIT 1")
    assert us, "the demo data plants exports to the US under the ban"
    decl, explanation = us[0]
    found = rows(ds, f"/kb/declaration_findings.json?declaration_id={decl}&as_of=")
    assert {(f["rule"], f["outcome"], f["explanation"]) for f in found} >= {
        ("us-critical-minerals-ban", "presumption-of-denial", explanation)}
    # while No. 72 suspends clause 2 of No. 46, the same declaration has no such finding
    suspended = rows(ds, f"/kb/declaration_findings.json?declaration_id={decl}"
                         "&as_of=2026-01-15")
    assert "us-critical-minerals-ban" not in {f["rule"] for f in suspended}
    # the ban lapses back into force the day after the suspension ends
    back = rows(ds, f"/kb/declaration_findings.json?declaration_id={decl}&as_of=2026-11-28")
    assert "us-critical-minerals-ban" in {f["rule"] for f in back}


def test_the_one_declaration_page_is_titled_by_its_query_not_its_sql(ds: Any,
                                                                     built: Path) -> None:
    """Its SQL inlines every check: in the page title and an "Edit SQL" link (a URL no server
    accepts) it was most of each page. A short stored query keeps its link."""
    decl = query(built, "SELECT id FROM declarations ORDER BY id LIMIT 1")[0][0]
    page = get(ds, f"/kb/declaration_findings?declaration_id={decl}&as_of=", ANALYST)
    assert page.status_code == 200
    title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title == "kb: Findings for a declaration, as of a date"
    assert "canned-query-edit-sql" not in page.text
    assert len(page.text) < 50_000
    short = get(ds, "/kb/in_force_on?date=2026-01-15", ANALYST)
    assert "canned-query-edit-sql" in short.text
    assert short.text.split("<title>", 1)[1].startswith("kb: What was in force on a date")


def test_in_force_licence_balance_and_party_search_queries(ds: Any, built: Path) -> None:
    during = {(r["kind"], r["name"]): r["status"]
              for r in rows(ds, "/kb/in_force_on.json?date=2026-01-15", actor=None)}
    assert during[("rule", "us-critical-minerals-ban")] == "suspended"
    assert during[("rule", "ga-ge-licence")] == "in force"
    # one source of truth with the checks: clause 1 of MOFCOM-2024-46 is not suspended with
    # clause 2, lifted and suspended list entries say so, and nothing is listed twice
    assert during[("rule", "us-military-end-use")] == "in force"
    assert during[("list entry", "echodyne")] == "lifted"
    assert during[("list entry", "source-intelligence")] == "suspended"
    assert ("item", "synthetic-diamond-micropowder") not in during  # No. 55 is suspended
    assert during[("item", "gallium-metal")] == "controlled"
    every = [(r["kind"], r["name"], r["instrument"]) for r in rows(
        ds, "/kb/in_force_on.json?date=2026-01-15&_size=max", actor=None)]
    assert len(every) == len(set(every))
    before = {(r["kind"], r["name"]) for r in rows(ds, "/kb/in_force_on.json?date=2023-07-31",
                                                   actor=None)}
    assert ("rule", "ga-ge-licence") not in before
    balances = rows(ds, "/kb/licence_balances.json?_size=max")
    limited = [b for b in balances if b["limit_kg"] is not None]
    assert limited
    for b in limited:
        assert b["remaining_kg"] == pytest.approx(b["limit_kg"] - b["drawn_kg"])
    assert len(balances) == query(built, "SELECT COUNT(*) FROM licences")[0][0]
    # least remaining first, unlimited licences last
    remaining = [b["remaining_kg"] for b in balances]
    assert remaining[:len(limited)] == sorted(remaining[:len(limited)])
    assert all(r is None for r in remaining[len(limited):])
    # a page of 50 with a link to the next: every licence is reached by paging
    page = get(ds, "/kb/licence_balances.json", ANALYST).json()
    assert len(page["rows"]) == 50 and page["next_url"]
    assert get(ds, "/kb/licence_balances.json", None).status_code == 403
    matches = rows(ds, "/kb/party_search.json?name=Lockheed-Martin+Corporation&min_score=",
                   actor=None)
    assert matches[0]["party"] == "lockheed-martin"
    assert matches[0]["score"] >= 90
    assert "control-list" in matches[0]["listed_on"]
    assert rows(ds, "/kb/party_search.json?name=Acme+Bakery+GmbH&min_score=90",
                actor=None) == []
    # the minimum score is a number, whatever the form sends (it compared text with numbers,
    # and every search with a minimum found nothing)
    misspelt = "/kb/party_search.json?name=Lockhed+Martn&min_score="
    found = rows(ds, misspelt + "50", actor=None)
    assert found and found[0]["party"] == "lockheed-martin" and 50 <= found[0]["score"] < 99
    assert rows(ds, misspelt + "99", actor=None) == []
    assert [r["party"] for r in rows(ds, misspelt + "0", actor=None)][:1] == ["lockheed-martin"]


def test_rule_page_shows_law_timeline_source_sql_and_findings(ds: Any) -> None:
    anonymous = get(ds, "/kb/rules/us-critical-minerals-ban")
    assert anonymous.status_code == 200
    page = anonymous.text
    assert 'href="/kb/instruments/MOFCOM-2024-46"' in page
    assert "clause 2" in page
    assert "suspended</strong> by <a" in page and "MOFCOM-2025-72" in page
    assert "2025-11-09 – 2026-11-27" in page
    assert "cn-strategic-minerals/rules.excon:" in page and "rulebooks/" not in page
    assert "check_us_critical_minerals_ban" in page and "SELECT" in page
    assert "log in" in page and "D0000" not in page  # no findings for anonymous visitors
    analyst = get(ds, "/kb/rules/us-critical-minerals-ban", ANALYST).text
    assert "presumption-of-denial" in analyst and "/kb/declarations/D" in analyst


def test_instrument_page_lists_provisions_and_the_rules_citing_them(ds: Any) -> None:
    page = get(ds, "/kb/instruments/MOFCOM-2024-46").text
    assert "clause 2" in page
    assert 'href="/kb/rules/us-critical-minerals-ban"' in page
    assert get(ds, "/kb/instruments/NO-SUCH-THING").status_code == 404


def test_a_rebuild_never_disturbs_the_served_snapshot(built: Path, tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    db.write_bytes(built.read_bytes())
    with snapshot(db) as served:
        before = query(served, "SELECT COUNT(*) FROM declarations")[0][0]
        build(db, [RULEBOOKS])  # a rebuild without declarations replaces kb.db
        assert query(db, "SELECT COUNT(*) FROM declarations")[0][0] == 0
        assert query(served, "SELECT COUNT(*) FROM declarations")[0][0] == before == 3000
        assert query(served, "PRAGMA integrity_check") == [("ok",)]
    assert not served.exists()  # the snapshot goes when the server stops


def test_two_servers_of_one_file_keep_their_own_snapshots(built: Path, tmp_path: Path) -> None:
    """A second server in the same process (or a test's) neither shares nor removes the
    first's snapshot; a snapshot left by a killed server is removed by the next start."""
    import os
    import subprocess

    db = tmp_path / "kb.db"
    db.write_bytes(built.read_bytes())
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f".kb.db.serving-{gone.pid}-abc"
    stale.mkdir()
    with snapshot(db) as first:
        assert not stale.exists()
        with snapshot(db) as second:
            assert first != second and first.exists() and second.exists()
            assert first.parent.name.startswith(f".kb.db.serving-{os.getpid()}-")
        assert not second.exists()
        assert first.exists()
        assert query(first, "SELECT COUNT(*) FROM declarations")[0][0] == 3000
    assert not first.exists()


def test_credentials_from_a_file_and_the_environment(tmp_path: Path) -> None:
    hashed = hash_password("x")
    f = tmp_path / "logins"
    f.write_text(f"# analysts\nalice:{hashed}\n\n", encoding="utf-8")
    assert read_credentials(f, {"EXCON_CREDENTIALS": f"bob:{hashed},carol:{hashed}"}
                            ).users() == {"alice": hashed, "bob": hashed, "carol": hashed}
    f.write_text("alice:secret\n", encoding="utf-8")
    with pytest.raises(ServeError, match=r"logins:1: expected name:pbkdf2_sha256"):
        read_credentials(f, {})  # nobody could log in
    # one bad line among good ones is reported and skipped: the others still log in
    f.write_text(f"alice:{hashed}\nbob secret\ncarol:{hashed}\n", encoding="utf-8")
    assert read_credentials(f, {}).users() == {"alice": hashed, "carol": hashed}
    with pytest.raises(ServeError, match="cannot read"):
        read_credentials(tmp_path / "missing", {})


def test_served_connections_are_memory_mapped_and_markdown_cells_are_left_alone(
        ds: Any) -> None:
    """Each page reads the snapshot memory-mapped; datasette-render-markdown keeps its template
    helper (dashboards) but no longer looks at every cell of every page."""
    from datasette.plugins import pm

    asyncio.run(ds.invoke_startup())
    db = ds.get_database("kb")
    mmap = asyncio.run(db.execute("PRAGMA mmap_size")).rows[0][0]
    assert mmap >= 1 << 30
    markdown = pm.get_plugin("render_markdown")
    assert markdown is not None and callable(markdown.extra_template_vars)
    assert not hasattr(markdown, "render_cell")
    # the plugin list still works (pluggy hashes its plugins)
    assert markdown in pm.get_plugins()
    plugins = get(ds, "/-/plugins.json", ANALYST)
    assert plugins.status_code == 200
    assert "excon" in {p["name"] for p in plugins.json()}


def test_table_access_rules_are_found_once_and_still_apply_to_every_visitor(ds: Any) -> None:
    """The `allow` blocks of each table are computed once per server, not by copying the whole
    metadata on every permission check; who may see what is unchanged."""
    page = "/kb/rules/us-critical-minerals-ban"
    assert get(ds, page, ANALYST).status_code == 200
    before = ds._table_permission_allows.cache_info()
    for _ in range(2):
        assert get(ds, page, ANALYST).status_code == 200
    after = ds._table_permission_allows.cache_info()
    assert after.misses == before.misses  # nothing computed again
    assert after.hits > before.hits
    # the cached blocks are the same for everyone: anonymous visitors are still refused
    assert get(ds, "/kb/finding_details").status_code == 403
    assert get(ds, "/kb/finding_details", ANALYST).status_code == 200
    assert get(ds, "/kb/rules").status_code == 200


def test_the_findings_page_counts_its_facets_once_per_server(ds: Any) -> None:
    """The snapshot never changes: the second view of the findings table reads its facet counts
    and rows from the server's result cache, and shows what the first showed."""
    cache = ds.excon_results
    run = cache.execute_uncached
    ran: list[str] = []

    async def recorded(sql: str, *args: Any, **kwargs: Any) -> Any:
        ran.append(" ".join(sql.split()))
        return await run(sql, *args, **kwargs)

    cache.execute_uncached = recorded
    try:
        page = "/kb/finding_details.json?_facet=exporter&declared_on__gte=1901-01-01"
        first = get(ds, page, ANALYST).json()
        assert sum("count(*) as count" in sql for sql in ran) == 8  # seven from metadata
        ran.clear()
        again = get(ds, page, ANALYST).json()
        assert not [sql for sql in ran if "finding_details" in sql]  # none ran again
        assert again["facet_results"] == first["facet_results"]
        assert again["rows"] == first["rows"]
        # another filter is another query, counted over its own rows
        rule = first["rows"][0][first["columns"].index("rule")]
        filtered = get(ds, f"{page}&rule={rule}", ANALYST).json()
        assert sum("count(*) as count" in sql for sql in ran) == 8
    finally:
        cache.execute_uncached = run
    facets = filtered["facet_results"]
    facets = facets.get("results", facets)
    assert [v["value"] for v in facets["rule"]["results"]] == [rule]


def test_queries_that_can_change_are_never_kept(ds: Any) -> None:
    """random(), date('now') and the like, in the query or in a view it reads, run every time;
    so do statements that fail."""
    cache = ds.excon_results
    assert cache.deterministic("SELECT rule, COUNT(*) FROM finding_details GROUP BY rule", None)
    assert cache.deterministic("SELECT excon_party_key(:n)", {"n": "ACME Ltd"})
    for sql in ("SELECT random()", "SELECT date('now')", "SELECT current_timestamp",
                "SELECT changes()", "PRAGMA schema_version", "SELECT * FROM no_such_table"):
        assert not cache.deterministic(sql, None), sql
    draws = {rows(ds, "/kb.json?sql=select+random()+as+r")[0]["r"] for _ in range(3)}
    assert len(draws) == 3
    bad = get(ds, "/kb.json?sql=select+*+from+no_such_table", ANALYST)
    assert bad.status_code == 400
    assert get(ds, "/kb.json?sql=select+*+from+no_such_table", ANALYST).status_code == 400


def test_the_result_cache_is_bounded_and_computes_a_result_once(built: Path) -> None:
    """Concurrent requests for one result wait for it rather than run it again; the oldest
    results leave when the cache holds its budget of rows."""
    from kb.publish.result_cache import ResultCache

    with snapshot(built) as served:
        app = datasette_app(served, {})
        db = app.get_database("kb")
        cache = ResultCache(db, served, lambda conn: app._prepare_connection(conn, "kb"),
                            budget_rows=40)
        calls: list[str] = []
        run = cache.execute_uncached

        async def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(sql)
            return await run(sql, *args, **kwargs)

        cache.execute_uncached = counted

        async def scenario() -> list[Any]:
            same = "SELECT rule, COUNT(*) FROM finding_details GROUP BY rule"
            results = await asyncio.gather(*(cache.execute(same) for _ in range(5)))
            for n in range(1, 30):  # 29 more results of one row each: the first must go
                await cache.execute("SELECT ? + 1", [n])
            return results

        results = asyncio.run(scenario())
        assert calls.count("SELECT rule, COUNT(*) FROM finding_details GROUP BY rule") == 1
        assert all(r is results[0] for r in results)
        assert cache.info()["rows"] <= 40
        calls.clear()
        asyncio.run(cache.execute("SELECT rule, COUNT(*) FROM finding_details GROUP BY rule"))
        assert len(calls) == 1  # evicted, so run again


def test_table_rows_are_written_as_datasette_writes_them() -> None:
    """The findings table's body is written in one call, with Datasette's markup: a cell per
    column classed by column and type, text escaped, links left as links."""
    from markupsafe import Markup

    from kb.publish.datasette import table_rows_html

    html = table_rows_html([[
        {"column": "declaration_id", "value": Markup('<a href="/kb/d/1">1</a>'),
         "raw": "1", "value_type": "str"},
        {"column": "explanation", "value": "<b>AT&T</b>", "raw": "x", "value_type": "str"},
        {"column": "purity pct", "value": "99.9", "raw": 99.9, "value_type": "float"},
    ]])
    assert html.startswith('<tr><td class="col-declaration_id type-str">'
                           '<a href="/kb/d/1">1</a></td>')
    assert '<td class="col-explanation type-str">&lt;b&gt;AT&amp;T&lt;/b&gt;</td>' in html
    assert 'class="col-purity-pct-' in html and "type-float" in html


def test_the_findings_page_shows_every_cell_of_its_rows(ds: Any) -> None:
    import re

    page = get(ds, "/kb/finding_details?_size=7", ANALYST)
    assert page.status_code == 200, page.text[-2000:]
    body = page.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    data = get(ds, "/kb/finding_details.json?_size=7", ANALYST).json()
    assert body.count("<tr>") == len(data["rows"]) == 7
    for column in data["columns"]:
        if column != "rowid":  # a row number means nothing to an analyst: not shown
            assert len(re.findall(rf'<td class="col-{column} type-', body)) == 7, column
    assert "col-Link" not in page.text and "col-rowid" not in page.text
    first = data["rows"][0][data["columns"].index("explanation")]
    assert first.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;") in body


def test_findings_link_to_their_declaration_rule_instrument_and_parties(ds: Any) -> None:
    import html
    import re

    data = get(ds, "/kb/finding_details.json?_size=20&instrument__notblank=1", ANALYST).json()
    page = get(ds, "/kb/finding_details?_size=20&instrument__notblank=1", ANALYST).text
    links = set(re.findall(r'<a href="(/kb/[^"]+)"', page))
    for row in data["rows"]:
        f = dict(zip(data["columns"], row, strict=True))
        assert f"/kb/declarations/{f['declaration_id']}" in links
        assert f"/kb/rules/{f['rule']}" in links
        assert f"/kb/instruments/{f['instrument']}" in links
        assert any(html.unescape(u).startswith("/kb/party_search?name=") for u in links)
    # quantities in kg below a tonne, in t from one (never "Mg"), each the row's kilograms
    shown = re.findall(r'<td class="col-quantity_kg[^"]*">\s*<span title="[^"]*">([^<]*)</span>',
                       page)
    kgs = [dict(zip(data["columns"], row, strict=True))["quantity_kg"] for row in data["rows"]]
    assert len(shown) == len(kgs)
    for text, kg in zip(shown, kgs, strict=True):
        amount, unit = text.split(" ")
        assert unit == ("t" if kg >= 1000 else "kg"), text
        assert float(amount.replace(",", "")) == pytest.approx(
            kg / 1000 if unit == "t" else kg, abs=0.001), text
    # the stored query for one declaration links the same way
    first = dict(zip(data["columns"], data["rows"][0], strict=True))
    query = get(ds, f"/kb/declaration_findings?declaration_id={first['declaration_id']}"
                    "&as_of=", ANALYST).text
    assert f'href="/kb/rules/{first["rule"]}"' in query
    assert f'href="/kb/declarations/{first["declaration_id"]}"' in query


def test_a_declaration_page_shows_its_findings_licence_and_party_matches(ds: Any,
                                                                       built: Path) -> None:
    [(decl, rule, explanation)] = query(
        built, "SELECT f.declaration_id, f.rule, f.explanation FROM finding_details AS f "
               "JOIN licence_cover AS c ON c.declaration_id = f.declaration_id "
               "WHERE c.covered = 1 ORDER BY f.declaration_id LIMIT 1")
    page = get(ds, f"/kb/declarations/{decl}", ANALYST)
    assert page.status_code == 200
    text = page.text
    assert f'href="/kb/rules/{rule}"' in text
    assert explanation.replace("'", "&#39;").replace('"', "&#34;") in text
    assert "drawn up to and including it" in text
    assert f"declaration_findings?declaration_id={decl}" in text
    [(matched, party, score)] = query(
        built, "SELECT d.id, n.party, n.score FROM declarations AS d JOIN listed_names AS n "
               "ON n.name = d.consignee ORDER BY d.id LIMIT 1")
    text = get(ds, f"/kb/declarations/{matched}", ANALYST).text
    assert f'href="/kb/parties/{party}"' in text and f"<td>{score}</td>" in text
    assert get(ds, f"/kb/declarations/{decl}").status_code == 403  # analysts only


def test_an_instrument_page_says_which_clauses_are_suspended_and_when(ds: Any) -> None:
    text = " ".join(get(ds, "/kb/instruments/MOFCOM-2024-46").text.split())
    assert ("2025-11-09 – 2026-11-27</span> clause 2 <strong>suspended</strong> by "
            '<a href="/kb/instruments/MOFCOM-2025-72">MOFCOM-2025-72</a>') in text
    assert "clause 1 <strong>suspended" not in text
    listings = " ".join(get(ds, "/kb/instruments/MOFCOM-2025-22").text.split())
    assert "<strong>lifted</strong> by" in listings and "<strong>suspended</strong>" in listings


def test_workers_share_logins_and_stop_with_the_server(built: Path, tmp_path: Path) -> None:
    """`excon serve --workers 2`: two processes answer on one port; a login (its form token
    from one worker, its post to whichever) is valid on both; SIGTERM stops them all and
    removes the snapshot."""
    import signal

    db = tmp_path / "kb.db"
    db.write_bytes(built.read_bytes())
    server = Server(db, workers=2)
    try:
        assert len(server.workers()) == 2
        assert server.login()[0] == 302
        pages = [server.get("/kb/finding_details.json?_size=1") for _ in range(20)]
        assert {status for status, _ in pages} == {200}
        assert [p for p in tmp_path.iterdir() if p.name.startswith(".kb.db.serving-")]
    finally:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=20) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kb.db.serving-")]


def test_sighup_serves_the_new_build_and_a_dead_worker_is_replaced(
        built: Path, tmp_path: Path) -> None:
    """gunicorn supervises the workers: SIGHUP replaces them with workers on the current
    build (logins stay valid: one secret, one session file), and a worker that dies is
    replaced while the server goes on."""
    import json as json_
    import os
    import signal

    db = tmp_path / "kb.db"
    db.write_bytes(built.read_bytes())
    server = Server(db, workers=2)

    def declarations() -> int | None:
        status, body = server.get("/kb.json?sql=select+count(*)+as+n+from+declarations"
                                  "&_shape=array")
        return json_.loads(body)[0]["n"] if status == 200 else None

    try:
        assert server.login()[0] == 302
        assert declarations() == 3000
        build(db, [RULEBOOKS])  # a rebuild without declarations
        assert declarations() == 3000  # the snapshot is untouched
        before = set(server.workers())
        server.proc.send_signal(signal.SIGHUP)
        server.wait_until(lambda: not (set(server.workers()) & before)
                          and len(server.workers()) == 2)
        assert declarations() == 0  # the same login, on the new build
        victim = server.workers()[0]
        os.kill(victim, signal.SIGKILL)
        server.wait_until(lambda: len(server.workers()) == 2
                          and victim not in server.workers())
        assert server.proc.poll() is None
        assert declarations() == 0
        snapshots = [p for p in tmp_path.iterdir() if p.name.startswith(".kb.db.serving-")]
        assert 1 <= len(snapshots) <= 2, snapshots  # the old build's kept while it drains
    finally:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kb.db.serving-")]


def test_default_workers_follow_the_cpus_up_to_eight() -> None:
    from unittest import mock

    from kb.publish.serve import default_workers

    for cpus, workers in ((1, 1), (2, 2), (6, 6), (64, 8)):
        with mock.patch("os.sched_getaffinity", return_value=set(range(cpus))):
            assert default_workers() == workers, cpus


def test_search_finds_chinese_by_character_word_and_pinyin(ds: Any) -> None:
    def found(table: str, search: str) -> set[str]:
        key = {"instruments": "id", "party_aliases": "party"}.get(table, "name")
        return {r[key] for r in rows(ds, f"/kb/{table}.json?_search={search}&_size=max",
                                     actor=None)}

    gallium = found("items", "镓")  # one character: the mineral
    assert {"gallium-metal", "gallium-oxide", "gallium-nitride"} <= gallium
    assert all("gallium" in name for name in gallium)
    assert found("items", "锑") >= {"antimony-metal", "gallium-antimonide"}
    assert found("items", "氧化镓") == {"gallium-oxide"}  # a word is a phrase, not 3 letters
    assert found("items", "jia") == gallium  # pinyin, without a Chinese keyboard
    assert found("items", "yanghuajia") == {"gallium-oxide"}
    assert "gallium-oxide" in found("items", "gallium oxide")  # and English as before
    # a party by its Chinese alias, and by that alias's pinyin
    assert found("parties", "洛克希德") == {"lockheed-martin"}
    assert found("parties", "luokexide") == {"lockheed-martin"}
    assert found("party_aliases", "马丁") == {"lockheed-martin"}
    # an announcement by its Chinese designation
    assert found("instruments", "公告2024年第46号") == {"MOFCOM-2024-46"}
    page = get(ds, "/kb/items?_search=%E9%95%93").text  # the box shows what was typed
    assert 'value="镓"' in page


def test_home_page_leads_with_recent_changes_rules_instruments_and_findings(ds: Any) -> None:
    anonymous = " ".join(get(ds, "/").text.split())
    order = [anonymous.index(s) for s in ("What changed recently", "<h2>Findings</h2>",
                                          "<h2>Rules</h2>", "<h2>Instruments</h2>",
                                          "Every table", "/kb/hs_codes")]
    assert order == sorted(order)
    assert ('<a href="/kb/instruments/MOFCOM-2025-72">MOFCOM-2025-72</a></td><td>suspend: '
            'MOFCOM-2024-46 clause 2 until 2026-11-27') in anonymous
    assert "suspend: suspend" not in anonymous and "lift: lift" not in anonymous
    assert 'href="/kb/rules/us-critical-minerals-ban"' in anonymous
    assert "log in</a>" in anonymous and "New since the last build" not in anonymous
    analyst = " ".join(get(ds, "/", ANALYST).text.split())
    assert "No finding appeared, disappeared or changed since the last build." in analyst


def test_dashboard_charts_colour_by_severity_and_click_through_to_their_findings(
        ds: Any) -> None:
    from urllib.parse import urlencode

    from datasette_dashboards import replace_opts_in_query

    meta = get(ds, "/-/metadata.json", ANALYST).json()
    board = meta["plugins"]["datasette-dashboards"]["findings"]
    assert set(board["filters"]) == {"date_start", "date_end", "rule", "destination",
                                     "exporter"}
    scale = board["charts"]["by-outcome"]["display"]["encoding"]["color"]["scale"]
    colours = dict(zip(scale["domain"], scale["range"], strict=True))
    assert colours["prohibited"] == "#c62828" and colours["unlicensed"] == "#ef6c00"
    assert colours["undetermined"] == "#9e9e9e" and colours["risk: high"] != colours["risk: low"]
    for filters in ({}, {"date_start": "2025-01-01", "date_end": "2025-12-31",
                         "rule": "us-critical-minerals-ban"}):
        for name in ("by-outcome", "by-destination", "by-group"):
            sql = replace_opts_in_query(board["charts"][name]["query"], filters)
            bars = rows(ds, "/kb.json?" + urlencode({"sql": sql, "_shape": "array", **filters}))
            assert bars, (name, filters)
            for bar in bars[:3]:  # a bar's link lists exactly the findings it counts
                href = bar["href"].replace("finding_details?", "finding_details.json?", 1)
                listed = get(ds, href, ANALYST).json()
                assert listed["filtered_table_rows_count"] == bar["findings"], (name, bar)
            assert all(b.get("level") is None or b["level"] in colours for b in bars)
    page = get(ds, "/-/dashboards/findings", ANALYST)
    assert page.status_code == 200 and "Declared from" in page.text
    # the changes chart of a first build, which has nothing to compare, says so (it was
    # blank)
    assert rows(ds, "/kb/finding_changes.json?_size=1") == []
    changes = board["charts"]["changes"]["query"]
    [bar] = rows(ds, "/kb.json?" + urlencode({"sql": changes, "_shape": "array"}))
    assert bar["rule"].startswith("no finding appeared") and bar["findings"] == 0


def test_a_row_address_with_too_few_key_parts_is_not_found(ds: Any, built: Path) -> None:
    """`/kb/list_entries/1` on a table keyed by several columns failed binding the missing
    parts and answered 500; it is no such row, 404, on every such table, as page and JSON."""
    import sqlite3

    with sqlite3.connect(built) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            if sum(1 for c in conn.execute(f'PRAGMA table_info("{t}")') if c[5]) > 1]
    assert "list_entries" in tables
    for table in tables:
        for suffix in ("", ".json"):
            status = get(ds, f"/kb/{table}/1{suffix}", ANALYST).status_code
            assert status in (403, 404), (table, suffix, status)
    assert get(ds, "/kb/list_entries/1", ANALYST).status_code == 404


def test_the_law_over_time_is_in_date_order_and_links_to_what_it_names(ds: Any) -> None:
    page = get(ds, "/kb/law_timeline").text
    assert '<a href="/kb/rules/ga-ge-licence">ga-ge-licence</a>' in get(
        ds, "/kb/law_timeline?kind=rule&_size=max").text
    assert re.search(r'<a href="/kb/items/[^"]+">', page)
    assert re.search(r'<a href="/kb/instruments/[^"]+">', page)
    dates = [r["valid_from"] for r in get(
        ds, "/kb/law_timeline.json?_shape=array&_size=max&valid_from__notblank=1").json()]
    assert dates == sorted(dates)
    listed = get(ds, "/kb/law_timeline?kind=list+entry").text
    assert re.search(r'<a href="/kb/parties/[^"]+">', listed)


def test_one_search_box_finds_across_the_knowledge_base(ds: Any, built: Path) -> None:
    """镓 and its pinyin find the gallium items, an act's id finds the act, a misspelt name is
    led to the party search, and declarations are found for analysts only, by id."""
    def search(q: str, actor: dict[str, str] | None = None) -> str:
        response = get(ds, "/-/excon/search?" + urllib.parse.urlencode({"q": q}), actor)
        assert response.status_code == 200
        return str(response.text)

    page = search("镓")
    assert "<h2>Items</h2>" in page and 'href="/kb/items/gallium-metal"' in page
    assert 'href="/kb/items/gallium-metal"' in search("jia")
    assert 'href="/kb/instruments/MOFCOM-2024-46"' in search("MOFCOM-2024-46")
    assert 'href="/kb/rules/ga-ge-licence"' in search("ga-ge")
    misspelt = search("Lockhed Martn")
    assert "/kb/party_search?name=Lockhed%20Martn&amp;min_score=" in misspelt
    [(declaration,)] = query(built, "SELECT id FROM declarations ORDER BY id LIMIT 1")
    assert "<h2>Declarations</h2>" not in search(declaration)  # private
    assert f'href="/kb/declarations/{declaration}"' in search(declaration, ANALYST)
    assert 'action="/-/excon/search"' in get(ds, "/").text  # the box on the home page
    for hostile in ('"', "NEAR(", "<script>alert(1)</script>"):  # found nothing, no 500
        assert "<script>alert" not in search(hostile)
