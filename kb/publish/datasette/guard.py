"""What `excon serve` puts between the network and Datasette: logins with server-side
sessions, limits on requests, hidden debug pages, security headers, and CSV cells that a
spreadsheet will not run.

Installed on a Datasette by `install(ds, …)` (kb.publish.serve does it); a Datasette without it (a
plain `datasette kb.db`) has no logins at all, so nobody reads a private table there.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
import math
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from datasette.utils import baseconv
from datasette.utils.asgi import Response
from itsdangerous import BadSignature

from kb.publish.auth import (
    MAX_PASSWORD,
    Credentials,
    SessionStore,
    check_password,
    credential_mark,
)
from kb.screen.screener import spreadsheet_safe

COOKIE = "ds_actor"
CSRF_COOKIE = "ds_csrftoken"
MAX_CONCURRENT_CHECKS = 2  # password checks at once per worker (each ~0.3 s of one core)
TARPIT_S = 5.0  # a refused login is answered after the wait left, at most this long
MAX_QUERY_STRING = 32_768  # bytes of a request's query string
MAX_PARAM = 1_000  # characters of one parameter's value (stored-query parameters, filters…)
MAX_SQL = 20_000  # characters of `sql=` (analysts only)
MAX_FACETS = 5  # `_facet` parameters on one anonymous request
SHAPES = frozenset({"arrays", "objects", "array", "object", "arrayfirst"})
# Debug pages: nobody's business on a published knowledge base.
HIDDEN = re.compile(r"^/-/(allow-debug|messages|patterns|threads|permissions)(\.json)?/?$")
# Pages that show server paths, versions and every table's columns: analysts only.
ANALYSTS_ONLY = re.compile(r"^/-/(databases|versions|plugins|settings|metadata|config)"
                           r"(\.json)?/?$")
CSP = ("default-src 'self'; script-src 'self'{eval}; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
# Vega (the dashboards' charts) compiles its expressions with Function(): those pages alone
# may evaluate code; no page may run inline script.
EVAL_PATHS = re.compile(r"^/-/dashboards(/|$)")


@dataclass
class Auth:
    credentials: Credentials
    store: SessionStore
    secure: bool = False  # served behind HTTPS: cookies only over HTTPS
    _checks: asyncio.Semaphore | None = field(default=None, repr=False)

    def checks(self) -> asyncio.Semaphore:
        if self._checks is None:  # one per worker, made inside its event loop
            self._checks = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)
        return self._checks

    def actor(self, datasette: Any, cookie: str | None) -> dict[str, str] | None:
        """The analyst a `ds_actor` cookie stands for, if its session is still valid."""
        if not cookie:
            return None
        try:
            decoded = datasette.unsign(cookie, "actor")
        except BadSignature:
            return None
        if not isinstance(decoded, dict) or not isinstance(decoded.get("a"), dict):
            return None
        user, sid, expires = decoded["a"].get("id"), decoded.get("s"), decoded.get("e")
        if not (isinstance(user, str) and isinstance(sid, str) and isinstance(expires, str)):
            return None
        if time.time() > int(baseconv.base62.decode(expires)):
            return None
        hashed = self.credentials.hash_of(user)
        if hashed is None or not self.store.valid(sid, user, credential_mark(hashed)):
            return None
        return {"id": user}

    def session_cookie(self, datasette: Any, user: str) -> str:
        """The signed value of a `ds_actor` cookie for a new session of `user`."""
        hashed = self.credentials.hash_of(user)
        if hashed is None:
            raise ValueError(f"no credential for {user!r}")
        sid, expires = self.store.create(user, credential_mark(hashed))
        value: str = datasette.sign({"a": {"id": user}, "s": sid,
                                     "e": baseconv.base62.encode(int(expires))}, "actor")
        return value

    def cookie(self, datasette: Any, response: Response, user: str) -> None:
        response.set_cookie(COOKIE, self.session_cookie(datasette, user),
                            max_age=int(self.store.lifetime_s), httponly=True,
                            samesite="lax", secure=self.secure)


def install(datasette: Any, credentials: Credentials, sessions: Path,
            session_hours: float, secure: bool) -> None:
    datasette.excon_auth = Auth(credentials, SessionStore(sessions, session_hours), secure)
    _no_inline_dashboard_script(datasette)


def _auth(datasette: Any) -> Auth | None:
    return getattr(datasette, "excon_auth", None)


def actor_from_request(datasette: Any, request: Any) -> dict[str, str] | None:
    auth = _auth(datasette)
    return auth.actor(datasette, request.cookies.get(COOKIE)) if auth else None


async def login(request: Any, datasette: Any) -> Response:
    """`/-/login`: the form, and a POST that checks the password (CSRF-checked by Datasette's
    asgi-csrf like every POST)."""
    auth = _auth(datasette)
    error, status, user = None, 200, ""
    if auth is None:
        error, status = "This server has no analyst logins.", 404
    elif request.method == "POST" and CSRF_COOKIE not in request.cookies:
        # asgi-csrf checks the form's token against this cookie, but lets a POST without
        # any cookie through (no session to ride on); a login needs the check all the same
        error, status = "The login form had expired: please log in again.", 403
    elif request.method == "POST":
        form = await request.post_vars()
        user = (form.get("username") or "")[:200]
        password = form.get("password") or ""
        address = (request.scope.get("client") or ("?",))[0]
        # Failures count per address, per name from that address, and per name from every
        # address. The last holds back only addresses that already failed for the name: a
        # flood of wrong passwords from elsewhere slows those addresses and never locks the
        # analyst out of their own (a botnet gets one try for the name per address).
        pair = f"pair:{user}|{address}"
        keys = [f"user:{user}", f"address:{address}", pair]
        held = keys if await asyncio.to_thread(auth.store.has_failed, pair) else keys[1:]
        wait = await asyncio.to_thread(auth.store.wait_s, held)
        if wait > 0:
            # the answer itself is slowed down (costing the server nothing while it waits),
            # so a client that floods by waiting for each answer makes few requests
            await asyncio.sleep(min(wait, TARPIT_S))
            retry = max(1, math.ceil(wait - min(wait, TARPIT_S)))
            page = await datasette.render_template(
                "login.html", {"error": f"Too many failed logins: try again in {retry} s.",
                               "username": user}, request=request)
            return Response.html(page, status=429, headers={"Retry-After": str(retry)})
        async with auth.checks():
            ok = await asyncio.to_thread(check_password, auth.credentials, user, password)
        if ok and len(password) <= MAX_PASSWORD:
            for key in (keys[0], pair):
                await asyncio.to_thread(auth.store.succeeded, key)
            response = Response.redirect(datasette.urls.instance())
            await asyncio.to_thread(auth.cookie, datasette, response, user)
            return response
        await asyncio.to_thread(auth.store.failed, keys)
        error, status = "Wrong user name or password.", 401
    page = await datasette.render_template("login.html", {"error": error, "username": user},
                                           request=request)
    return Response.html(page, status=status)


async def logout(request: Any, datasette: Any) -> Response:
    """`/-/logout`: a POST revokes the session on the server, so the cookie is dead even if
    someone kept a copy."""
    if request.method != "POST":
        if not request.actor:
            return Response.redirect(datasette.urls.instance())
        page = await datasette.render_template("logout.html", {"actor": request.actor},
                                               request=request)
        return Response.html(page)
    auth = _auth(datasette)
    cookie = request.cookies.get(COOKIE)
    if auth and cookie:
        try:
            sid = datasette.unsign(cookie, "actor").get("s")
        except (BadSignature, AttributeError):
            sid = None
        if isinstance(sid, str):
            await asyncio.to_thread(auth.store.revoke, sid)
    response = Response.redirect(datasette.urls.instance())
    response.set_cookie(COOKIE, "", expires=0, max_age=0, httponly=True, samesite="lax",
                        secure=bool(auth and auth.secure))
    datasette.add_message(request, "You are now logged out", datasette.WARNING)
    return response


ROUTES = [(r"^/-/login$", login), (r"^/-/logout$", logout)]


# --- requests --------------------------------------------------------------------------------

def refusal(datasette: Any, scope: dict[str, Any]) -> tuple[int, str] | None:
    """Why a request is refused before Datasette sees it (status, message), if it is."""
    path = scope.get("path", "")
    if HIDDEN.match(path):
        return 404, "Not found"
    raw = scope.get("query_string", b"")
    if len(raw) > MAX_QUERY_STRING:
        return 414, f"The query string is longer than {MAX_QUERY_STRING:,} bytes"
    # the session is looked up only where it matters (Datasette looks it up again later)
    if ANALYSTS_ONLY.match(path) and _actor_of_scope(datasette, scope) is None:
        return 403, "Log in to see this page"
    facets = 0
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        limit = MAX_SQL if key == "sql" else MAX_PARAM
        if len(value) > limit:
            return 400, f"The parameter {key!r} is longer than {limit:,} characters"
        if key == "_shape" and value not in SHAPES:
            return 400, f"_shape must be one of {', '.join(sorted(SHAPES))}"
        facets += key.startswith("_facet")
    if facets > MAX_FACETS and _actor_of_scope(datasette, scope) is None:
        return 400, f"At most {MAX_FACETS} facets per page without a login"
    return None


def _actor_of_scope(datasette: Any, scope: dict[str, Any]) -> dict[str, str] | None:
    auth = _auth(datasette)
    if auth is None:
        return None
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: no actor
                return None
            if COOKIE in jar:
                return auth.actor(datasette, jar[COOKIE].value)
    return None


def security_headers(path: str, secure: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy",
         CSP.format(eval=" 'unsafe-eval'" if EVAL_PATHS.match(path) else "").encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]
    if secure:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


class CsvCells:
    """Rewrites a CSV body as it streams, each cell through `spreadsheet_safe`: rows are cut
    at newlines outside quotes, so a cell split across chunks is rewritten whole."""

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.in_quotes = False
        self.scanned = 0

    def feed(self, chunk: bytes, last: bool = False) -> bytes:
        self.pending += self.decoder.decode(chunk, final=last)
        cut = len(self.pending) if last else self._last_row_end()
        if cut == 0:
            return b""
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        self.scanned = len(self.pending)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for row in csv.reader(io.StringIO(ready, newline="")):
            writer.writerow([cell if _NUMBER.match(cell) else spreadsheet_safe(cell)
                             for cell in row])
        return out.getvalue().encode("utf-8")

    def _last_row_end(self) -> int:
        """The end of the last whole row in `pending`, scanning only what is new."""
        end = 0
        for mark in _QUOTE_OR_NEWLINE.finditer(self.pending, self.scanned):
            if mark.group() == '"':
                self.in_quotes = not self.in_quotes
            elif not self.in_quotes:
                end = mark.end()
        self.scanned = len(self.pending)
        return end


_QUOTE_OR_NEWLINE = re.compile(r'["\n]')
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")  # never a formula


def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    def wrap(app: Any) -> Any:
        async def guarded(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                          send: Callable[[Any], Awaitable[None]]) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            auth = _auth(datasette)
            secure = bool(auth and auth.secure)
            headers = security_headers(scope.get("path", ""), secure)
            refused = refusal(datasette, scope)
            if refused is not None:
                status, message = refused
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        *headers]})
                await send({"type": "http.response.body", "body": message.encode() + b"\n"})
                return
            cells: CsvCells | None = None
            if _ANONYMOUS_STRIPPED.match(scope.get("path", "")) and \
                    _actor_of_scope(datasette, scope) is None:
                send = _without_private_figures(send)

            async def send_guarded(message: dict[str, Any]) -> None:
                nonlocal cells
                if message["type"] == "http.response.start":
                    ours = {k for k, _ in headers}
                    kept = [(k, v) for k, v in message.get("headers", [])
                            if k.lower() not in ours and not (
                                k.lower() == b"content-length" and _is_csv(message, scope))]
                    if _is_csv(message, scope):
                        cells = CsvCells()
                    message = {**message, "headers": [*kept, *headers]}
                elif message["type"] == "http.response.body" and cells is not None:
                    more = message.get("more_body", False)
                    message = {**message, "body": cells.feed(message.get("body", b""),
                                                              last=not more)}
                await send(message)

            await app(scope, receive, send_guarded)

        return guarded

    return wrap


# A database's JSON (`/kb.json`): for anonymous visitors without the figures that describe
# what they may not see (the file's size, how many tables are hidden).
_ANONYMOUS_STRIPPED = re.compile(r"^/[^/]+\.json$")
PRIVATE_FIGURES = ("size", "hidden_count")


def _without_private_figures(send: Callable[[Any], Awaitable[None]]
                             ) -> Callable[[Any], Awaitable[None]]:
    """`send` for a JSON answer held whole, then sent without PRIVATE_FIGURES."""
    start: dict[str, Any] = {}
    body: list[bytes] = []

    async def holding(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        data = b"".join(body)
        try:
            found = json.loads(data)
            if isinstance(found, dict) and start.get("status") == 200:
                for key in PRIVATE_FIGURES:
                    found.pop(key, None)
                data = json.dumps(found).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in start.get("headers", [])
                   if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return holding


def _is_csv(start: dict[str, Any], scope: dict[str, Any]) -> bool:
    for key, value in start.get("headers", []):
        if key.lower() == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            path: str = scope.get("path", "")
            return kind == b"text/csv" or (kind == b"text/plain" and path.endswith(".csv"))
    return False


def handle_exception(datasette: Any, request: Any, exception: Exception) -> Any:
    """Datasette reports a bad request parameter (`_sort` on no such column, `_sort` with
    `_sort_desc`…) as a DatasetteError of status 500: it is the client's error, a 400. A row
    page whose address has fewer key parts than the table's key (`/kb/list_entries/1` on a
    table keyed by three columns) fails binding the missing parts: no such row, a 404."""
    from datasette.handle_exception import handle_exception as render
    from datasette.utils.asgi import NotFound
    from datasette.views.base import DatasetteError

    if isinstance(exception, DatasetteError) and exception.status == 500:
        exception.status = 400
    if isinstance(exception, sqlite3.ProgrammingError) and \
            "supply a value for binding parameter" in str(exception):
        return render(datasette, request, NotFound(
            "No such row: the address does not give every column of the table's key"))
    return None


# --- templates -------------------------------------------------------------------------------

_INLINE = re.compile(r'<script type="text/javascript">.*?</script>', re.S)
_DASHBOARD_DATA = {
    "dashboard_view.html": ('{"charts": dashboard.charts, "query_string": query_string, '
                            '"absolute_url": absolute_url, "full_height": false, '
                            '"autorefresh": settings.autorefresh | d(none)}'),
    "dashboard_chart.html": ('{"charts": {slug: chart}, "query_string": query_string, '
                             '"absolute_url": absolute_url, "full_height": true, '
                             '"autorefresh": none}'),
}


def _no_inline_dashboard_script(datasette: Any) -> None:
    """datasette-dashboards renders its charts from an inline script and a button's onclick:
    serve its two pages with that data in a JSON block read by a static script instead. (And
    Datasette's base page says which language the page is in: `<html lang>`.)"""
    from jinja2 import BaseLoader, TemplateNotFound

    inner = datasette.jinja_env.loader

    class ScriptFree(BaseLoader):
        def get_source(self, environment: Any, template: str) -> Any:
            source, filename, uptodate = inner.get_source(environment, template)
            if "<!DOCTYPE html>\n<html>" in source:  # Datasette's base: the page's language
                source = source.replace("<!DOCTYPE html>\n<html>", "<!DOCTYPE html>\n<html "
                                        "lang=\"{{ lang|default('en') }}\">", 1)
            if template in _DASHBOARD_DATA or template == "dashboard_list.html":
                for shown in ("dashboard.title", "dashboard.description", "chart.title",
                              "dfilter.name"):  # in the reader's language
                    source = source.replace("{{ " + shown + " }}",
                                            "{{ _(" + shown + " or '') }}")
            if template in _DASHBOARD_DATA:
                data = _DASHBOARD_DATA[template]
                replaced, count = _INLINE.subn(
                    '<script type="application/json" id="excon-dashboard">{{ ' + data
                    + ' | tojson }}</script>\n  <script src="{{ urls.static_plugins('
                    '\'excon\', \'dashboard.js\') }}"></script>', source)
                replaced = replaced.replace('onclick="toggleFullscreen()"',
                                            "data-excon-fullscreen")
                if count != 1 or "onclick=" in replaced:
                    raise TemplateNotFound(f"{template}: datasette-dashboards changed its "
                                           "page; excon cannot serve it without inline script")
                source = replaced
            return source, filename, uptodate

        def list_templates(self) -> list[str]:
            templates: list[str] = inner.list_templates()
            return templates

    datasette.jinja_env.loader = ScriptFree()
