"""The home page (`/`): excon's own view instead of Datasette's index.

Datasette's index lists every database's tables with their columns, keys, full-text tables
and visibility, asking SQLite and the permission hooks for each of about 150 tables on every
request (and, when a count is slow, every foreign key of every table): about 740 queries and
100 ms per page on a knowledge base of 1,000,000 declarations. The served snapshot never
changes, so its listing is made once per server and kind of visitor (anonymous or analyst:
all analysts see the same), with exact counts taken when the server starts
(kb.publish.serve.table_counts); the home page's own sections
(kb.publish.datasette.home_page) are queries the result cache keeps. Only the decisions database,
which analysts write to, is listed afresh.
`/.json` is still Datasette's index.
"""

from __future__ import annotations

import hashlib
from typing import Any

from datasette.utils.asgi import Response


async def home(request: Any, datasette: Any) -> Response:
    from kb.publish.datasette import home_page

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
