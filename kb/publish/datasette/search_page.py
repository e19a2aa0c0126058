"""`/-/excon/search?q=…`: one search box across the knowledge base — items, instruments and
their provisions, listed parties and their aliases, rules, and (for analysts) declarations —
in Chinese (镓), pinyin and English, with a link to `party_search` for a name that may be
misspelt ("Lockhed Martn": the fuzzy scores are there, not in a word search).

The word searches use the search tables the build makes (kb.publish.search: Chinese one
character per token, pinyin beside it) through the served connections' `escape_fts`; rules
are few and matched by name and title; declarations only by an exact id or party name (their
indexes), so that a search never scans a million rows. Each section is shown only when the
visitor may see its table.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from datasette.utils.asgi import Response

MAX_QUERY = 200
PER_SECTION = 20

# (section title, table, the SQL for it; :q is the query) — the word searches first
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("Items", "items",
     "SELECT t.name AS key, t.title AS title, t.title_zh AS detail FROM items_fts "
     "JOIN items AS t ON t.rowid = items_fts.rowid WHERE items_fts MATCH escape_fts(:q) "
     "ORDER BY rank LIMIT 20"),
    ("Instruments", "instruments",
     "SELECT * FROM (SELECT id AS key, title, title_zh AS detail FROM instruments "
     "WHERE instr(lower(id), lower(:q)) ORDER BY id LIMIT 20) UNION "
     "SELECT * FROM (SELECT t.id AS key, t.title AS title, t.title_zh AS detail "
     "FROM instruments_fts JOIN instruments AS t ON t.rowid = instruments_fts.rowid "
     "WHERE instruments_fts MATCH escape_fts(:q) ORDER BY rank LIMIT 20) LIMIT 20"),
    ("Provisions", "instruments",
     "SELECT t.instrument_id AS key, t.kind || ' ' || t.label AS title, "
     "COALESCE(t.text, t.text_zh) AS detail FROM provisions_fts "
     "JOIN provisions AS t ON t.rowid = provisions_fts.rowid "
     "WHERE provisions_fts MATCH escape_fts(:q) ORDER BY rank LIMIT 20"),
    ("Listed parties", "parties",
     "SELECT t.name AS key, t.legal_name AS title, t.country AS detail FROM parties_fts "
     "JOIN parties AS t ON t.rowid = parties_fts.rowid "
     "WHERE parties_fts MATCH escape_fts(:q) ORDER BY rank LIMIT 20"),
    ("Rules", "rules",
     "SELECT name AS key, title, outcome AS detail FROM rules WHERE instr(lower(name), "
     "lower(:q)) OR instr(lower(COALESCE(title, '')), lower(:q)) ORDER BY name LIMIT 20"),
    ("Declarations", "declarations",
     "SELECT id AS key, declared_on || ' ' || exporter || ' → ' || consignee AS title, "
     "description AS detail FROM declarations WHERE id = :q OR exporter = :q "
     "OR consignee = :q OR end_user = :q ORDER BY declared_on DESC, id LIMIT 20"),
)
# the page each section's keys open
PAGES = {"Items": "items", "Instruments": "instruments", "Provisions": "instruments",
         "Listed parties": "parties", "Rules": "rules", "Declarations": "declarations"}


async def search(request: Any, datasette: Any) -> Response:
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    served = getattr(datasette, "excon_kb", None)
    if served is None:
        return Response.text("This server has no knowledge base to search.", status=404)
    name = served[0]
    query = (request.args.get("q") or "").strip()[:MAX_QUERY]
    db = datasette.get_database(name)
    sections = []
    if query:
        for title, table, sql in SECTIONS:
            seen, _ = await datasette.check_visibility(request.actor, "view-table",
                                                       (name, table))
            if not seen:
                continue
            # a word search reads the query as words: a quote mark alone was an FTS5 syntax
            # error (a 500); whatever else the search syntax refuses finds nothing
            q = query.replace('"', " ").strip() if "escape_fts" in sql else query
            try:
                rows = [dict(r) for r in (await db.execute(sql, {"q": q})).rows] if q else []
            except sqlite3.OperationalError:
                rows = []
            sections.append({"title": title, "rows": rows, "page": PAGES[title]})
    page = await datasette.render_template("excon_search.html", {
        "query": query, "sections": sections, "database": name,
        "found": sum(len(s["rows"]) for s in sections)}, request=request)
    return Response.html(page)
