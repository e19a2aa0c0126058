"""excon's Datasette plugin: rule and instrument pages, name matching in SQL, access rules.

Registered through the `datasette` entry point of the package, so `excon serve` (and any
Datasette started from this environment) loads it. Its templates extend Datasette's own
(`default:row.html`), so a Datasette upgrade keeps the rest of the page.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

# Datasette registers every plugin (its own modules included) while `datasette.plugins` is
# first imported: import it before any Datasette module that it registers, or that module is
# registered half-imported, without its hooks (see _register_whole_module for this one).
import datasette.plugins  # noqa: F401  isort: skip
from datasette import hookimpl as _hookimpl
from datasette.utils import tilde_decode, tilde_encode, to_css_class
from markupsafe import Markup, escape
from rapidfuzz import fuzz

from dsl.names import party_key
from kb.publish.datasette import guard, language

F = TypeVar("F", bound=Callable[..., Any])


def hookimpl(fn: F) -> F:
    """Datasette's hook marker, typed (pluggy's marker is untyped)."""
    marked: F = _hookimpl(fn)
    return marked

# Datasette 0.65 prints every handled error with rich when rich is importable, including the
# 404 it raises outside an `except` block; rich refuses that (ValueError), so a missing page
# became a 500. Without rich it logs plainly and answers 404 (datasette.handle_exception).
with contextlib.suppress(ImportError, AttributeError):
    import datasette.handle_exception as _handle_exception

    _handle_exception.rich = None


def url_quote(value: Any) -> str | None:
    """A value for a URL's query string (the dashboard's links to filtered findings)."""
    return None if value is None else quote(str(value), safe="")


def match_score(query: str | None, name: str | None) -> float | None:
    """0–100: how closely two party names agree after normalisation (rapidfuzz WRatio)."""
    if not query or not name:
        return None
    return round(fuzz.WRatio(party_key(query), party_key(name)), 1)


def _quiet_markdown_cells() -> None:
    """datasette-render-markdown (installed by datasette-dashboards) renders cells of columns
    named `*_markdown`, which the knowledge base has none of; to know, it reads its plugin
    configuration for every text cell of every page (900 cells and ~30 ms on the findings
    page). Keep its template helpers (the dashboards' markdown panels), drop its cell hook."""
    import types

    from datasette.plugins import pm

    plugin = pm.get_plugin("render_markdown")
    if plugin is None or not hasattr(plugin, "render_cell"):
        return  # not installed, or already replaced
    pm.unregister(plugin)
    # a module, as plugins are: pluggy keeps its plugins in sets (hashable)
    helpers = types.ModuleType("render_markdown")
    helpers.extra_template_vars = plugin.extra_template_vars  # type: ignore[attr-defined]
    helpers.prepare_jinja2_environment = (  # type: ignore[attr-defined]
        plugin.prepare_jinja2_environment)
    pm.register(helpers, name="render_markdown")


# The longest URL an "Edit SQL" link may be (kb/publish/datasette/templates/query.html drops
# longer ones).
MAX_EDIT_SQL_URL = 8000


def _no_unusable_edit_links() -> None:
    """Datasette URL-encodes a stored query's SQL into an "Edit SQL" link on every view of it;
    `declaration_findings` inlines every check, so that was a third of its page's time, for a
    link longer than any server accepts (and that the template drops). Such a link is not
    built: the encoded query is left empty and the template shows no link."""
    import datasette.views.database as views

    original = views.urlencode
    if getattr(original, "excon", False):
        return

    def urlencode(query: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(query, dict) and len(str(query.get("sql", ""))) > MAX_EDIT_SQL_URL:
            return ""
        return str(original(query, *args, **kwargs))

    urlencode.excon = True  # type: ignore[attr-defined]
    views.urlencode = urlencode


def take_over_logins() -> None:
    """Datasette's own `ds_actor` check accepts any cookie it signed, for as long as the
    cookie says; excon's (kb.publish.datasette.guard) also asks the session store and the
    credentials, so Datasette's must go. Also the plugins' inline scripts."""
    from datasette.plugins import pm

    if pm.get_plugin("datasette.actor_auth_cookie") is not None:
        pm.unregister(name="datasette.actor_auth_cookie")
    _quiet_markdown_cells()
    _no_unusable_edit_links()


@hookimpl
def startup(datasette: Any) -> None:
    take_over_logins()


@_hookimpl(hookwrapper=True)  # type: ignore[untyped-decorator]
def extra_body_script() -> Iterator[None]:
    """Plugins' body scripts are inline scripts, which excon's Content-Security-Policy does not
    run (datasette-leaflet's, installed by datasette-dashboards for map charts that excon has
    none of, is the only one): leave them out of the pages."""
    outcome: Any = yield
    outcome.force_result([])


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    from kb.publish.datasette.decide import decide
    from kb.publish.datasette.home import home
    from kb.publish.datasette.search_page import search

    return [*guard.ROUTES, (r"^/-/excon/decide$", decide), (r"^/-/excon/search$", search),
            (r"^/-/excon/lang$", language.choose), (r"^/$", home)]


@hookimpl
def actor_from_request(datasette: Any, request: Any) -> dict[str, str] | None:
    return guard.actor_from_request(datasette, request)


@hookimpl
def handle_exception(datasette: Any, request: Any, exception: Exception) -> Any:
    return guard.handle_exception(datasette, request, exception)


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    return guard.asgi_wrapper(datasette)


def table_rows_html(rows: Iterable[Iterable[dict[str, Any]]], table: str | None = None,
                    decided: dict[tuple[str, str], str] | None = None,
                    words: Any = None) -> Markup:
    """The `<tr>` rows of Datasette's table template, as its per-cell loop writes them
    (`<td class="col-{column} type-{type}">{value}</td>`, the value escaped unless it is
    markup already), in one call. The findings' rowid (a row number with no meaning to an
    analyst; the declaration is the link to follow) is left out, as `hidden_columns` says.
    `decided`: each finding's decision (`finding_decisions`), in a last column. `words`:
    the knowledge base's Chinese wording, to show findings' explanations in Chinese."""
    classes: dict[tuple[str, str], str] = {}
    hidden = hidden_columns(table)
    out = []
    for row in rows:
        out.append("<tr>")
        if words is not None:
            row = language.row_in_chinese(words, row)
        if decided is not None:
            raw = {c["column"]: c["raw"] for c in row}
            status = decided.get((str(raw.get("declaration_id")), str(raw.get("rule"))),
                                 "undecided")
            row = [*row, {"column": "decision", "value": status, "value_type": "text"}]
        for cell in row:
            if cell["column"] in hidden:
                continue
            key = (cell["column"], cell["value_type"])
            css = classes.get(key)
            if css is None:
                css = classes[key] = str(escape(f"col-{to_css_class(key[0])} type-{key[1]}"))
            out.append(f'<td class="{css}">{escape(cell["value"])}</td>')
        out.append("</tr>\n")
    return Markup("".join(out))


def query_rows_html(columns: list[str], rows: Iterable[Iterable[Any]]) -> Markup:
    """A query page's `<tr>` rows as Datasette's query template writes them
    (`<td class="col-{column}">{value}</td>`), in one call."""
    classes = [str(escape(f"col-{to_css_class(c)}")) for c in columns]
    out = []
    for row in rows:
        out.append("<tr>")
        out.extend(f'<td class="{css}">{escape(value)}</td>'
                   for css, value in zip(classes, row, strict=False))
        out.append("</tr>\n")
    return Markup("".join(out))


def hidden_columns(table: str | None) -> frozenset[str]:
    return frozenset({"Link", "rowid"}) if table == "finding_details" else frozenset()


# Columns whose values name a row of another table, and the table: a link to that row's page
# wherever findings and stored queries show them (where a foreign key does not already).
LINKED = {"declaration_id": "declarations", "rule": "rules", "instrument": "instruments"}
# Tables (None: a stored or ad-hoc query) where those columns are linked.
LINKED_IN = frozenset({None, "finding_details", "finding_changes", "rule_timeline",
                       "law_timeline", "licence_cover", "decisions", "decision_log"})
# Party names as declared (free text): linked to the party search, which shows the listed
# parties each resembles with a score.
PARTY_COLUMNS = frozenset({"exporter", "consignee", "end_user", "holder", "matched_name"})
PARTY_TABLES = frozenset({None, "finding_details", "declarations", "licences"})
QUANTITY_COLUMNS = frozenset({"quantity_kg", "limit_kg", "drawn_kg", "remaining_kg"})


def quantity_text(kg: float) -> Markup:
    """A mass as an analyst reads it: kilograms below a tonne, tonnes from one (Datasette's
    unit conversion printed 6,333 kg as "6.333 Mg"); the exact kilograms on hover."""
    amount, unit = (kg / 1000, "t") if abs(kg) >= 1000 else (kg, "kg")
    shown = f"{amount:,.3f}".rstrip("0").rstrip(".")
    return Markup(f'<span title="{kg:,} kg">{shown} {unit}</span>')


@functools.lru_cache(maxsize=256)
def _base_url(datasette: Any, database: str, table: str) -> str:
    """A table's URL (a row's is this, `/`, its key), HTML-escaped, made once: render_cell
    runs for every cell of every page, and building a URL and a Markup per link was a third
    of the findings page's time."""
    return str(escape(datasette.urls.table(database, table)))


# Long texts in table cells, shown in a box of a few lines that scrolls (the row page has
# them whole)
CLAMPED = {"rules": frozenset({"condition", "source_text", "explain", "unverified"}),
           "examples": frozenset({"source_text", "expectations"}),
           "items": frozenset({"unverified"}), "instruments": frozenset({"unverified"})}
# law_timeline's `name`, by its `kind`: the page of the rule, item or listed party
TIMELINE_PAGES = {"rule": "rules", "item": "items", "list entry": "parties"}


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str,
                datasette: Any) -> Markup | None:
    """Links from findings and queries to the declaration, rule, instrument and party pages,
    and quantities in kg or t."""
    if table in CLAMPED and column in CLAMPED[table] and isinstance(value, str) and \
            len(value) > 200:
        return Markup(f'<div class="excon-clamp">{escape(value)}</div>')
    if table in ("law_timeline", None) and column in ("name", "amended_by") and \
            isinstance(value, str) and value:  # also the in_force_on query's rows
        try:
            kind = row["kind"]
        except (KeyError, IndexError, TypeError):
            kind = None
        if column == "name" and kind in TIMELINE_PAGES:
            return _page_link(datasette, database, TIMELINE_PAGES[kind], value)
        if column == "amended_by" and kind is not None:
            return _page_link(datasette, database, "instruments", value)
    if column in QUANTITY_COLUMNS and isinstance(value, int | float) and \
            not isinstance(value, bool):
        return quantity_text(float(value))
    if not isinstance(value, str) or not value:
        return None
    if column == "basis" and value in BASIS_TITLES:
        return basis_badge(value)
    if column in LINKED:
        if table in LINKED_IN or (table or "").startswith("check_"):
            return _link(datasette, database, column, value)
    elif column in PARTY_COLUMNS and table in PARTY_TABLES:
        return _link(datasette, database, column, value)
    return None


BASIS_TITLES = {
    "settled": "Every fact it rests on is sourced and within the sources' reach",
    "lapsed-by-text": "It rests on a suspension that ended by its own text after the sources "
                      "were checked: a later decision may exist (see the caveat)",
    "unverified": "It rests on a fact the rulebook marks unverified (see the caveat)",
}


def basis_badge(basis: str) -> Markup:
    """A finding's basis as a badge, its meaning in the title."""
    return Markup(f'<span class="excon-basis excon-basis-{escape(basis)}" '
                  f'title="{escape(BASIS_TITLES.get(basis, ""))}">{escape(basis)}</span>')


@functools.lru_cache(maxsize=8192)
def _link(datasette: Any, database: str, column: str, value: str) -> Markup:
    """A linked cell's markup. A page repeats the same rules, instruments and party names row
    after row, and every page of a server the same ones: each link is built once."""
    # the pages linked to are the knowledge base's, also from the decisions database
    database = getattr(datasette, "excon_kb", (database,))[0]
    if column in LINKED:
        href = f"{_base_url(datasette, database, LINKED[column])}/{escape(tilde_encode(value))}"
        return Markup(f'<a href="{href}">{escape(value)}</a>')
    href = (f"{_base_url(datasette, database, 'party_search')}?name="
            f"{escape(quote_plus(value))}&amp;min_score=")
    return Markup(f'<a href="{href}" title="Listed parties this name resembles">'
                  f"{escape(value)}</a>")


@functools.lru_cache(maxsize=8192)
def _page_link(datasette: Any, database: str, table: str, key: str) -> Markup:
    href = f"{_base_url(datasette, database, table)}/{escape(tilde_encode(key))}"
    return Markup(f'<a href="{href}">{escape(key)}</a>')


def finding_decisions(datasette: Any, rows: list[list[dict[str, Any]]], table: str | None,
                      request: Any) -> dict[tuple[str, str], str] | None:
    """For an analyst's page of the findings table: the standing decision on each finding
    shown, as the decision column says it ('released (L-1)', with 'review' when the
    finding's explanation has changed since); None on other tables and for visitors."""
    import sqlite3

    from kb.publish.decisions import LABELS
    from kb.publish.metadata import DECISIONS_DB

    store = datasette.databases.get(DECISIONS_DB)
    if table != "finding_details" or store is None or not (request and request.actor):
        return None
    keys = {}
    for row in rows:
        raw = {c["column"]: c["raw"] for c in row}
        keys[str(raw.get("declaration_id")), str(raw.get("rule"))] = raw.get("explanation")
    if not keys:
        return {}
    marks = ", ".join(["(?, ?)"] * len(keys))
    with contextlib.closing(sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)) as conn:
        found = conn.execute(
            "SELECT declaration_id, rule, decision, licence_no, explanation FROM decisions "
            f"WHERE (declaration_id, rule) IN (VALUES {marks})",
            [v for k in keys for v in k]).fetchall()
    out = {}
    for declaration, rule, decision, licence, then in found:
        text = LABELS.get(decision, decision) + (f" ({licence})" if licence else "")
        now = keys.get((declaration, rule))
        out[declaration, rule] = text + ("; review: the finding has changed"
                                         if now is not None and now != then else "")
    return out


@hookimpl
def prepare_jinja2_environment(env: Any, datasette: Any) -> None:
    env.globals["excon_table_rows"] = table_rows_html
    env.globals["excon_decisions"] = functools.partial(finding_decisions, datasette)
    env.globals["excon_hidden_columns"] = hidden_columns
    env.globals["excon_query_rows"] = query_rows_html
    env.globals["excon_quantity"] = lambda kg: "" if kg is None else quantity_text(kg)
    env.globals["excon_basis"] = basis_badge
    # English wherever a page is rendered without its request's language (extra_template_vars
    # gives each page the reader's)
    env.globals.update({k: v for k, v in language.template_vars(None).items()
                        if k != "excon_languages"}, excon_words=None)
    from dsl.names import web_url

    env.filters["web_url"] = web_url


@_hookimpl(trylast=True)  # type: ignore[untyped-decorator]
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    """excon's functions and limits on every served connection; last, so that its search
    escaping (Chinese one character per word, as the search tables index it: kb.publish.search)
    replaces Datasette's `escape_fts`. The decisions database's connections get the served
    knowledge base attached, read-only, as `kb`, for the queries joining the two."""
    from kb.publish.limits import limit_served_connection
    from kb.publish.metadata import DECISIONS_DB
    from kb.publish.search import escape_query
    from kb.screen.checks import tune_connection

    conn.create_function("escape_fts", 1, escape_query, deterministic=True)
    conn.create_function("excon_url_quote", 1, url_quote, deterministic=True)
    served = getattr(datasette, "excon_kb", None)
    if database == DECISIONS_DB and served is not None:
        conn.execute("ATTACH DATABASE ? AS kb", [f"file:{served[1]}?mode=ro&immutable=1"])
    tune_connection(conn)
    limit_served_connection(conn)
    conn.create_function("excon_match_score", 2, match_score, deterministic=True)
    conn.create_function("excon_party_key", 1, party_key, deterministic=True)


@hookimpl
def permission_allowed(actor: dict[str, Any] | None, action: str) -> bool | None:
    # the whole database file holds declarations and licences: never for anonymous visitors
    if action == "view-database-download" and not actor:
        return False
    return None


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.static_plugins("excon", "excon.css")]


@hookimpl
def extra_template_vars(template: str, database: str | None, table: str | None,
                        view_name: str, request: Any, datasette: Any) -> Any:
    words = language.template_vars(request)  # every page: the reader's language
    lang = words["lang"]
    if view_name == "table" and lang == "zh" and table in language.EXPLAINED:
        async def chinese() -> dict[str, Any]:  # findings' explanations in Chinese
            db = datasette.get_database(database)
            return {**words, "excon_words": await language.chinese_words(db)}

        return chinese
    if view_name != "row" or table not in ("rules", "instruments", "declarations") or \
            request is None:
        return words

    async def inner() -> dict[str, Any]:
        key = tilde_decode(request.url_vars.get("pks", ""))
        db = datasette.get_database(database)
        if table == "rules":
            return {**words, "excon_rule": await rule_page(datasette, db, db.name, key,
                                                           request, lang)}
        if table == "declarations":  # private: only analysts reach this page
            actor = str((request.actor or {}).get("id") or "")
            return {**words, "excon_declaration": await declaration_page(
                datasette, db, key, actor, lang)}
        return {**words, "excon_instrument": await instrument_page(db, key)}

    return inner


async def _rows(db: Any, sql: str, params: dict[str, Any] | list[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in (await db.execute(sql, params)).rows]


async def rule_page(datasette: Any, db: Any, database: str, name: str,
                    request: Any, lang: str = "en") -> dict[str, Any] | None:
    rows = await _rows(db, "SELECT * FROM rules WHERE name = ?", [name])
    if not rows:
        return None
    rule = rows[0]
    instrument = None
    provision = None
    if rule["instrument_id"]:
        found = await _rows(db, "SELECT id, title, title_zh, url, issuer, in_force "
                                "FROM instruments WHERE id = ?", [rule["instrument_id"]])
        instrument = found[0] if found else None
        if rule["provision"]:
            found = await _rows(db, "SELECT * FROM provisions WHERE instrument_id = ? AND "
                                    "provision = ?", [rule["instrument_id"], rule["provision"]])
            provision = found[0] if found else None
    amendments = await _rows(
        db, "SELECT * FROM amendments WHERE target_name = :rule OR (target_name = :instrument "
            "AND target_kind = 'instrument' AND (target_provision IS NULL "
            "OR target_provision = :provision)) ORDER BY valid_from, id",
        {"rule": name, "instrument": rule["instrument_id"] or "",
         "provision": rule["provision"] or ""})
    timeline = await _rows(db, "SELECT * FROM rule_timeline WHERE rule = ? ORDER BY seq",
                           [name])
    # its suspensions that ended by their own text: in force again from the next day
    lapsed = await _rows(
        db, "SELECT l.*, r.sources_checked FROM lapses AS l "
            "LEFT JOIN rulebooks AS r ON r.name = l.rulebook "
            "WHERE (l.target_kind = 'rule' AND l.target_name = :rule) "
            "OR (l.target_kind = 'instrument' AND l.target_name = :instrument "
            "AND (l.target_provision IS NULL OR l.target_provision = :provision)) "
            "ORDER BY l.resumes, l.id",
        {"rule": name, "instrument": rule["instrument_id"] or "",
         "provision": rule["provision"] or ""})
    checks = await _rows(db, "SELECT view, sql FROM rule_checks WHERE rule = ?", [name])
    examples = await _rows(
        db, "SELECT * FROM examples WHERE (';' || REPLACE(rules, ' ', '') || ';') LIKE ? "
            "ORDER BY id", [f"%;{name};%"])
    findings: dict[str, Any] | None = None
    if await datasette.permission_allowed(request.actor, "view-table",
                                          (database, "finding_details"), default=True):
        total = (await db.execute("SELECT COUNT(*) FROM finding_details WHERE rule = ?",
                                  [name])).rows[0][0]
        by_outcome = await _rows(db, "SELECT outcome, COUNT(*) AS n FROM finding_details "
                                     "WHERE rule = ? GROUP BY outcome ORDER BY n DESC", [name])
        latest = await _rows(db, "SELECT declaration_id, rule, outcome, declared_on, "
                                 "destination_country, explanation FROM finding_details "
                                 "WHERE rule = ? ORDER BY declared_on DESC, declaration_id "
                                 "LIMIT 20", [name])
        if lang == "zh":
            await language.in_chinese(db, latest)
        findings = {"total": total, "by_outcome": by_outcome, "latest": latest}
    return {
        "rule": rule, "instrument": instrument, "provision": provision,
        "amendments": amendments, "timeline": timeline, "lapsed": lapsed,
        "check": checks[0] if checks else None, "examples": examples, "findings": findings,
    }


async def instrument_page(db: Any, key: str) -> dict[str, Any] | None:
    rows = await _rows(db, "SELECT * FROM instruments WHERE id = ?", [key])
    if not rows:
        return None
    provisions = await _rows(db, "SELECT * FROM provisions WHERE instrument_id = ? "
                                 "ORDER BY rowid", [key])
    rules = await _rows(db, "SELECT name, title, outcome, provision FROM rules "
                            "WHERE instrument_id = ? ORDER BY name", [key])
    amendments = await _rows(db, "SELECT * FROM amendments WHERE instrument_id = ? "
                                 "ORDER BY id", [key])
    by_provision: dict[str | None, list[dict[str, Any]]] = {}
    for r in rules:
        by_provision.setdefault(r["provision"], []).append(r)
    # what later acts did to it: its clauses (through the rules resting on them) and its
    # listings, from the one resolved timeline in_force_on and the rule pages read
    changes = await _rows(
        db, "SELECT kind, name, provision, status, amended_by, valid_from, valid_until "
            "FROM law_timeline WHERE instrument = ? AND kind IN ('rule', 'list entry') "
            "AND status <> 'in force' ORDER BY provision, valid_from, kind, name", [key])
    clauses: dict[tuple[Any, ...], list[str]] = {}
    for c in changes:
        stretch = (c["provision"] or "", c["status"], c["amended_by"], c["valid_from"],
                   c["valid_until"], c["kind"])
        clauses.setdefault(stretch, []).append(c["name"])
    targeted = [a for a in await _rows(db, "SELECT * FROM amendments ORDER BY valid_from, id",
                                       []) if _names_instrument(a["target"] or "", key)]
    # suspensions of it that ended by their own text: it applies again, unless a later
    # decision the rulebook does not know extended them
    lapsed = await _rows(db, "SELECT l.*, r.sources_checked FROM lapses AS l "
                             "LEFT JOIN rulebooks AS r ON r.name = l.rulebook "
                             "WHERE l.target_name = ? ORDER BY l.resumes, l.id", [key])
    return {"instrument": rows[0], "provisions": provisions, "by_provision": by_provision,
            "amendments": amendments, "targeted": targeted, "lapsed": lapsed,
            "changes": [dict(zip(("provision", "status", "amended_by", "valid_from",
                                  "valid_until", "kind"), k, strict=True), names=names)
                        for k, names in clauses.items()]}


def _names_instrument(target: str, instrument: str) -> bool:
    """Whether an amendment's target text ("MOFCOM-2024-46 clause 2", "listings under
    MOFCOM-2025-21, listings under MOFCOM-2025-22") names the instrument."""
    for part in target.split(", "):
        words = part.removeprefix("listings under ").split(" ")
        if words[0] == instrument:
            return True
    return False


async def declaration_page(datasette: Any, db: Any, key: str, actor: str = "",
                           lang: str = "en") -> dict[str, Any] | None:
    """A declaration's findings as of the build (each with the decision standing on it, and
    the analyst's refused form if there is one), its licence draw-down and the listed parties
    its party names matched, with their scores."""
    from kb.publish.decisions import DECISIONS, DRAFTS_SQL, LABELS, current, drafts_since
    from kb.publish.metadata import DECISIONS_DB

    found = await _rows(db, "SELECT * FROM declarations WHERE id = ?", [key])
    if not found:
        return None
    declaration = found[0]
    findings = await _rows(
        db, "SELECT rule, outcome, severity, instrument, provision, explanation, basis, "
            "caveat, rulebook_version FROM finding_details WHERE declaration_id = ? "
            "ORDER BY rule, outcome", [key])
    licence = await _rows(
        db, "SELECT c.licence_no, c.covered, c.problem, c.drawn_kg, l.quantity_kg AS limit_kg, "
            "l.holder, l.kind, l.valid_from, l.valid_to FROM licence_cover AS c "
            "LEFT JOIN licences AS l ON l.licence_no = c.licence_no "
            "WHERE c.declaration_id = ?", [key])
    roles = {r: declaration.get(r) for r in ("exporter", "consignee", "end_user")}
    matches = []
    for role, name in roles.items():
        if not name:
            continue
        for m in await _rows(
                db, "SELECT n.party, n.alias, n.score, p.legal_name, p.country, "
                    "(SELECT group_concat(e.list || ' (' || e.instrument_id || ')', '; ') "
                    "FROM list_entries AS e WHERE e.party = n.party) AS listed_on "
                    "FROM listed_names AS n JOIN parties AS p ON p.name = n.party "
                    "WHERE n.name = ? ORDER BY n.score DESC, n.party", [name]):
            matches.append({"role": role.replace("_", " "), "name": name, **m})
    decided: list[dict[str, Any]] = []
    drafts: dict[str, dict[str, Any]] = {}
    if getattr(datasette, "excon_decisions", None) is not None:
        decided = await _rows(datasette.get_database(DECISIONS_DB),
                              "SELECT * FROM decision_log WHERE declaration_id = ? ORDER BY id",
                              [key])
        if actor:
            drafts = {d["rule"]: d for d in await _rows(
                datasette.get_database(DECISIONS_DB), DRAFTS_SQL, [actor, key, drafts_since()])}
    if lang == "zh":
        await language.in_chinese(db, findings, declaration)
    for f in findings:
        f["decision"] = current(decided, f)
        f["history"] = [d for d in decided if d["rule"] == f["rule"]]
        f["draft"] = drafts.get(f["rule"])
    return {"declaration": declaration, "findings": findings,
            "licence": licence[0] if licence else None, "matches": matches,
            "decisions": getattr(datasette, "excon_decisions", None) is not None,
            "choices": [(d, LABELS[d]) for d in DECISIONS]}


def _register_whole_module() -> None:
    """Datasette registers its plugins while `datasette.plugins` is first imported. When this
    module is imported before Datasette (`import kb.publish.datasette.guard` in a test or a
    tool), that import happens halfway through this one, and pluggy scans a module with none of
    the hooks below defined yet. Registered then, register it again now that it is whole."""
    import sys

    from datasette.plugins import pm

    module = sys.modules[__name__]
    if pm.is_registered(module):
        name = pm.get_name(module)
        pm.unregister(module)
        pm.register(module, name=name)


_register_whole_module()
