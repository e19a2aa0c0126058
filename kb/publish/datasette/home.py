"""The home page (`/`): excon's own view instead of Datasette's index.

Datasette's index lists every database's tables with their columns, keys, full-text tables
and visibility, asking SQLite and the permission hooks for each of about 150 tables on every
request (and, when a count is slow, every foreign key of every table): about 740 queries and
100 ms per page on a knowledge base of 1,000,000 declarations. The served snapshot never
changes, so its listing is made once per server and kind of visitor (anonymous or analyst:
all analysts see the same), with exact counts taken when the server starts
(kb.publish.serve.table_counts); the home page's own sections
(`home_page`) are queries the result cache keeps. Only the decisions database,
which analysts write to, is listed afresh.
`/.json` is still Datasette's index.
"""

from __future__ import annotations

import hashlib
from typing import Any

from datasette.utils.asgi import Response


async def home(request: Any, datasette: Any) -> Response:
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    served = getattr(datasette, "excon_kb", None)
    context = {
        "metadata": datasette.metadata(),
        "databases": await listing(datasette, request.actor),
        "private": False,
        "excon_home": await home_page(datasette, served[0], request) if served else None,
    }
    page = await datasette.render_template("index.html", context, request=request,
                                           view_name="index")
    return Response.html(page)


async def listing(datasette: Any, actor: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each database the visitor may see, with its visible tables (not the hidden ones) and
    views, largest first."""
    cache: dict[tuple[str, bool], dict[str, Any] | None] = datasette.__dict__.setdefault(
        "excon_listings", {})
    out = []
    for name, db in datasette.databases.items():
        key = (name, actor is not None)
        if key in cache and not db.is_mutable:
            entry = cache[key]
        else:
            entry = cache[key] = await _database(datasette, name, db, actor)
        if entry is not None:
            out.append(entry)
    return out


async def _database(datasette: Any, name: str, db: Any, actor: dict[str, Any] | None
                    ) -> dict[str, Any] | None:
    visible, private = await datasette.check_visibility(actor, "view-database", name)
    if not visible:
        return None
    hidden = set(await db.hidden_table_names())
    counts = getattr(db, "_cached_table_counts", None) or {}
    tables = []
    for table in await db.table_names():
        if table in hidden:
            continue
        seen, secret = await datasette.check_visibility(actor, "view-table", (name, table))
        if seen:
            tables.append({"name": table, "count": counts.get(table), "private": secret})
    for view in await db.view_names():
        seen, secret = await datasette.check_visibility(actor, "view-table", (name, view))
        if seen:
            tables.append({"name": view, "count": None, "private": secret})
    tables.sort(key=lambda t: (-(t["count"] or 0), t["name"]))
    colour = db.hash[:6] if db.hash else hashlib.md5(name.encode()).hexdigest()[:6]
    return {"name": name, "color": colour, "private": private,
            "tables_and_views_truncated": tables, "tables_and_views_more": False}


RECENT_SQL = """
SELECT DISTINCT day, kind, instrument, what FROM (
  SELECT issued AS day, 'issued' AS kind, id AS instrument, title AS what FROM instruments
   WHERE issued IS NOT NULL
  UNION ALL
  SELECT in_force, 'in force', id, title FROM instruments
   WHERE in_force IS NOT NULL AND in_force <> COALESCE(issued, '')
  UNION ALL
  -- the action is the row's kind ("lift: listings under …", not "lift: lift listings …")
  SELECT valid_from, action, instrument_id, target
         || COALESCE(' until ' || valid_until, '') FROM amendments WHERE valid_from IS NOT NULL
  UNION ALL
  -- what came back when a suspension ended by its own text: one row per suspension
  SELECT resumes, 'applies again',
         CASE WHEN COUNT(*) = 1 AND MIN(target_kind) <> 'rule' THEN MIN(target_name) END,
         group_concat(target, ', ')
         || CASE WHEN COUNT(*) = 1 THEN ' applies' ELSE ' apply' END || ' again: the suspension ('
         || suspended_by || ') ended by its own text on ' || ended
         || '; a later decision may exist'
    FROM lapses GROUP BY resumes, suspended_by, ended
  UNION ALL
  SELECT listed_from, 'listing', instrument_id,
         COUNT(*) || ' part' || CASE WHEN COUNT(*) = 1 THEN 'y' ELSE 'ies' END
         || ' listed on ' || list FROM list_entries WHERE listed_from IS NOT NULL
   GROUP BY listed_from, instrument_id, list
)
ORDER BY day DESC, instrument
LIMIT :limit
"""


async def home_page(datasette: Any, database: str, request: Any) -> dict[str, Any]:
    """The analyst's home page: what changed recently in the law, the findings (new since
    the last build, for analysts), the rules and the instruments; reference tables below."""
    db = datasette.get_database(database)
    recent = await _rows(db, RECENT_SQL, {"limit": 12})
    rules = await _rows(db, "SELECT name, title, title_zh, outcome FROM rules "
                            "ORDER BY outcome, name", [])
    instruments = await _rows(db, "SELECT id, title, title_zh, in_force FROM instruments "
                                  "ORDER BY COALESCE(in_force, issued) DESC, id", [])
    changes = None
    if await datasette.permission_allowed(request.actor, "view-table",
                                          (database, "finding_changes"), default=True):
        changes = {r["change"]: r["n"] for r in await _rows(
            db, "SELECT change, COUNT(*) AS n FROM finding_changes GROUP BY change", [])}
    sources = await _rows(db, "SELECT name, sources_checked FROM rulebooks ORDER BY name", [])
    return {"database": database, "recent": recent, "rules": rules, "sources": sources,
            "instruments": instruments, "changes": changes,
            "decisions": getattr(datasette, "excon_decisions", None) is not None}


async def _rows(db: Any, sql: str, params: dict[str, Any] | list[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in (await db.execute(sql, params)).rows]
