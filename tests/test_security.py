"""Red-team tests of `excon serve`: sessions, login abuse, resource limits, information
leaks, headers, and spreadsheet-safe CSV. Where the behaviour is the server's (cookies,
logins, rate limits), a real `excon serve` process answers; the rest uses the same Datasette
app in-process."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from kb.publish.auth import ITERATIONS, hash_password
from kb.publish.datasette.guard import MAX_PARAM, CsvCells
from kb.publish.metadata import access_metadata, private_names
from kb.publish.result_cache import ResultCache
from kb.publish.serve import datasette_app, snapshot
from tests.conftest import RULEBOOKS
from tests.serving import PASSWORD, Server

ANALYST = "analyst"


@pytest.fixture(scope="module")
def ds(demo_kb: Path) -> Iterator[Any]:
    with snapshot(demo_kb) as served:
        yield datasette_app(served, {ANALYST: hash_password(PASSWORD, iterations=1000)})


@pytest.fixture(scope="module")
def server(demo_kb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("security")
    credentials = folder / "credentials"
    credentials.write_text(f"{ANALYST}:{hash_password(PASSWORD)}\n"
                           f"bob:{hash_password('bob password')}\n", encoding="utf-8")
    running = Server(demo_kb, credentials=credentials,
                     args=("--sessions", str(folder / "sessions.db")))
    running.credentials = credentials  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        running.stop()


def get(ds: Any, path: str, user: str | None = None, **kwargs: Any) -> Any:
    cookies = {"ds_actor": ds.excon_auth.session_cookie(ds, user)} if user else {}
    return asyncio.run(ds.client.get(path, cookies=cookies, **kwargs))


def fresh(server: Server) -> Any:
    import http.cookiejar

    return server.client(http.cookiejar.CookieJar())


def cookie_header(headers: dict[str, str], name: str = "ds_actor") -> str:
    found = [c for c in headers.get("set-cookie", "").split("\n") if c.startswith(f"{name}=")]
    assert found, headers
    return found[0]


# --- sessions ---------------------------------------------------------------------------------

def test_the_login_cookie_is_httponly_samesite_lax_and_expires_in_8_hours(
        server: Server) -> None:
    status, headers, _ = server.login(opener=fresh(server))
    assert status == 302
    cookie = cookie_header(headers)
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "max-age", "path"} <= flags
    assert "samesite=lax" in cookie.lower() and "Max-Age=28800" in cookie
    assert "secure" not in flags  # plain HTTP on loopback: a Secure cookie would be dropped


def test_behind_an_https_proxy_the_cookie_is_secure_and_hsts_is_sent(
        demo_kb: Path, tmp_path: Path) -> None:
    proxied = Server(demo_kb, args=("--https-proxy", "--session-hours", "1",
                                    "--sessions", str(tmp_path / "s.db")))
    try:
        status, headers, _ = proxied.login()
        cookie = cookie_header(headers)
        assert status == 302 and "Secure" in cookie and "Max-Age=3600" in cookie
        assert "max-age=" in proxied.request("/")[1]["strict-transport-security"]
    finally:
        proxied.stop()


def test_logging_out_revokes_the_session_so_a_replayed_cookie_is_refused(
        server: Server) -> None:
    opener = fresh(server)
    _, headers, _ = server.login(opener=opener)
    stolen = cookie_header(headers).split(";")[0]
    private = "/kb/declarations.json?_size=1"
    assert server.request(private, headers={"Cookie": stolen}, opener=fresh(server))[0] == 200
    token = server.csrf_token(opener)
    status, headers, _ = server.request(
        "/-/logout", urllib.parse.urlencode({"csrftoken": token}).encode(), opener=opener)
    assert status == 302 and "Max-Age=0" in cookie_header(headers)
    assert server.request(private, headers={"Cookie": stolen}, opener=fresh(server))[0] == 403


def test_an_analyst_removed_from_the_credentials_file_is_refused_at_once(
        server: Server) -> None:
    _, headers, _ = server.login("bob", "bob password", opener=fresh(server))
    bob = {"Cookie": cookie_header(headers).split(";")[0]}
    private = "/kb/findings.json?_size=1"
    assert server.request(private, headers=bob, opener=fresh(server))[0] == 200
    credentials: Path = server.credentials  # type: ignore[attr-defined]
    kept = [line for line in credentials.read_text().splitlines() if not line.startswith("bob:")]
    credentials.write_text("\n".join(kept) + "\n", encoding="utf-8")
    time.sleep(1.5)  # the file is looked at again at most once a second
    assert server.request(private, headers=bob, opener=fresh(server))[0] == 403
    assert server.login("bob", "bob password", opener=fresh(server))[0] == 401


def test_a_password_change_ends_the_sessions_opened_with_the_old_one(server: Server) -> None:
    """Re-adding an analyst with a new password revived their old cookie: a session now holds
    a mark of the credential it was opened with."""
    credentials: Path = server.credentials  # type: ignore[attr-defined]
    others = [line for line in credentials.read_text().splitlines()
              if not line.startswith("bob:")]

    def bob_with(password: str) -> None:
        credentials.write_text("\n".join([*others, f"bob:{hash_password(password)}"]) + "\n",
                               encoding="utf-8")
        time.sleep(1.5)  # the file is looked at again at most once a second

    bob_with("old password")
    _, headers, _ = server.login("bob", "old password", opener=fresh(server))
    bob = {"Cookie": cookie_header(headers).split(";")[0]}
    private = "/kb/findings.json?_size=1"
    assert server.request(private, headers=bob, opener=fresh(server))[0] == 200
    bob_with("new password")
    assert server.request(private, headers=bob, opener=fresh(server))[0] == 403
    assert server.login("bob", "new password", opener=fresh(server))[0] == 302


def test_the_sessions_file_and_its_companions_are_owner_only(tmp_path: Path) -> None:
    from kb.publish.auth import SessionStore

    path = tmp_path / "sessions.db"
    store = SessionStore(path)
    store.create("a", "mark")
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert file.exists() and file.stat().st_mode & 0o777 == 0o600, file


def test_login_checks_the_csrf_token(server: Server) -> None:
    fields = urllib.parse.urlencode({"username": ANALYST, "password": PASSWORD}).encode()
    status, headers, _ = server.request("/-/login", fields, opener=fresh(server))
    assert status == 403
    assert "ds_actor=" not in headers.get("set-cookie", "")


def test_a_cookie_signed_by_the_server_but_without_a_session_is_refused(ds: Any) -> None:
    """Datasette alone accepts any `ds_actor` it signed; excon asks its session store."""
    forged = ds.sign({"a": {"id": ANALYST}}, "actor")
    assert asyncio.run(ds.client.get("/kb/declarations.json", cookies={
        "ds_actor": forged})).status_code == 403
    assert get(ds, "/kb/declarations.json", ANALYST).status_code == 200


# --- login abuse ------------------------------------------------------------------------------

def test_failed_logins_are_rate_limited_per_address_and_per_analyst(demo_kb: Path,
                                                                   tmp_path: Path) -> None:
    """Behind a proxy (whose X-Forwarded-For names the client): five failures from one
    address hold back any name from it; five failures for one name, from five addresses,
    hold that name back from those addresses, but the analyst's right password from an
    address of their own still logs in (a flood from elsewhere once locked them out). A
    held-back attempt is refused slowly (429, with Retry-After) without checking the
    password, even the right one."""
    limited = Server(demo_kb, args=("--https-proxy", "--sessions", str(tmp_path / "s.db")))
    opener = fresh(limited)
    token = limited.csrf_token(opener)

    def attempt(user: str, password: str, address: str) -> tuple[int, dict[str, str], str]:
        return limited.login(user, password, opener, token, {"X-Forwarded-For": address})

    try:
        assert [attempt(f"guess{i}", "x", "10.0.0.1")[0] for i in range(5)] == [401] * 5
        started = time.monotonic()
        status, headers, body = attempt(ANALYST, PASSWORD, "10.0.0.1")
        assert status == 429 and "Too many failed logins" in body
        assert int(headers["retry-after"]) >= 1 and time.monotonic() - started >= 0.5
        assert attempt(ANALYST, PASSWORD, "10.0.0.2")[0] == 302  # another address is fine
        assert [attempt(ANALYST, "x", f"10.0.1.{i}")[0] for i in range(5)] == [401] * 5
        assert attempt(ANALYST, "y", "10.0.1.0")[0] == 429  # an attacker's address is held
        assert attempt(ANALYST, PASSWORD, "10.0.2.1")[0] == 302  # the analyst is not
        assert attempt("bob", "x", "10.0.2.1")[0] == 401  # another name is checked
    finally:
        limited.stop()


def test_an_unknown_user_costs_a_full_password_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from kb.publish import auth

    rounds: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counted(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        rounds.append(iterations)
        return real(name, password, salt, 1)

    monkeypatch.setattr(auth.hashlib, "pbkdf2_hmac", counted)
    known = auth.Credentials.of({ANALYST: hash_password("pw")})
    assert auth.check_password(known, "nobody", "pw") is False
    assert auth.check_password(known, ANALYST, "wrong") is False
    assert rounds[-2:] == [ITERATIONS, ITERATIONS]


def test_the_store_delays_grow_and_reset_after_a_success(tmp_path: Path) -> None:
    from kb.publish.auth import FREE_FAILURES, SessionStore

    store = SessionStore(tmp_path / "s.db")
    keys = ["user:a", "address:1.2.3.4"]
    for _ in range(FREE_FAILURES - 1):
        store.failed(keys)
    assert store.wait_s(keys) == 0
    waits = []
    for _ in range(3):
        store.failed(keys)
        waits.append(store.wait_s(keys))
    assert 0 < waits[0] < waits[1] < waits[2] <= 4.0
    store.succeeded("user:a")
    assert store.wait_s(["user:a"]) == 0 and store.wait_s(["address:1.2.3.4"]) > 0


# --- resource limits --------------------------------------------------------------------------

def test_a_value_over_the_length_limit_is_an_error_not_a_gigabyte(ds: Any) -> None:
    response = get(ds, "/kb.json?sql=select+zeroblob(1000000000)+as+x", ANALYST)
    assert response.status_code == 400 and "too big" in response.text
    small = get(ds, "/kb.json?sql=select+length(zeroblob(1000))+as+n&_shape=array", ANALYST)
    assert small.json() == [{"n": 1000}]


def test_a_printf_width_is_stopped_at_once_not_after_the_time_limit(ds: Any) -> None:
    """SQLite's printf pads in a loop of its own, which the time limit cannot interrupt:
    `printf('%.*c', 1e9, 'x')` ran 5 s past the 3 s limit before giving NULL."""
    for sql in ("select printf('%.*c', 1000000000, 'x') as x",
                "select format('%1000000000d', 1) as x"):
        started = time.perf_counter()
        response = get(ds, "/kb.json?_shape=array&sql=" + urllib.parse.quote(sql), ANALYST)
        assert response.json() == [{"x": None}], response.text[:200]
        assert time.perf_counter() - started < 1
    ordinary = "select printf('%5.1f %s %*d', 3.14159, 'kg', 4, 7) as x"
    assert get(ds, "/kb.json?_shape=array&sql=" + urllib.parse.quote(ordinary),
               ANALYST).json() == [{"x": "  3.1 kg    7"}]


def test_a_response_over_its_byte_budget_stops_without_growing_the_worker(ds: Any) -> None:
    """400 values of 999,000 bytes each (each under the value limit) once made a 533 MB JSON
    answer and a 2.8 GB worker; the rows of one query now stop at 32 MB."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sql = ("with recursive n(i) as (select 1 union all select i + 1 from n where i < 400) "
           "select randomblob(999000) as b from n")
    response = get(ds, "/kb.json?sql=" + urllib.parse.quote(sql), ANALYST)
    assert response.status_code == 400 and "over 32 MB" in response.text
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert grown < 300, f"the worker grew by {grown:.0f} MB"
    # the knowledge base's own biggest page is far below the budget
    assert get(ds, "/kb/finding_details.json?_size=max", ANALYST).status_code == 200


def test_bad_parameters_are_400_not_500(ds: Any) -> None:
    for path in ("/kb/rules.json?_shape=bogus", "/kb/rules?_sort=no_such_column",
                 "/kb/rules.json?_sort_desc=no_such_column",
                 "/kb/rules.json?_sort=name&_sort_desc=name",
                 f"/kb/rules.json?name={'x' * (MAX_PARAM + 1)}",
                 f"/kb/declaration_findings.json?declaration_id={'x' * (MAX_PARAM + 1)}",
                 "/kb/rules.json?" + "&".join(f"_facet=c{i}" for i in range(6))):
        response = get(ds, path)
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
    assert get(ds, "/kb/rules.json?x=" + "y" * 32_769).status_code == 414
    assert get(ds, "/kb/rules.json?_sort=name&_shape=array").status_code == 200


def test_the_result_cache_keeps_within_its_byte_budget(ds: Any, demo_kb: Path) -> None:
    db = ds.databases["kb"]
    cache = ResultCache(db, Path(db.path), lambda conn: ds._prepare_connection(conn, "kb"),
                        budget_bytes=30_000)
    sql = ("SELECT declaration_id, rule, explanation FROM finding_details "
           "ORDER BY declaration_id, rule LIMIT :n OFFSET :o")

    async def fill() -> None:
        for o in range(0, 200, 5):
            await cache.execute(sql, {"n": 5, "o": o})
        await cache.execute(sql, {"n": 200, "o": 0})  # over a tenth of the budget

    asyncio.run(fill())
    info = cache.info()
    assert 0 < info["bytes"] <= 30_000 and 0 < info["results"] < 40, info
    assert info["misses"] == 41
    assert (sql, (("n", 200), ("o", 0)), False, None) not in cache._results


# --- information leaks ------------------------------------------------------------------------

def test_debug_pages_are_gone_and_server_details_are_for_analysts(ds: Any) -> None:
    for page in ("/-/allow-debug", "/-/messages", "/-/patterns", "/-/threads",
                 "/-/threads.json", "/-/permissions"):
        assert get(ds, page).status_code == 404, page
        assert get(ds, page, ANALYST).status_code == 404, page
    for page in ("/-/databases.json", "/-/versions.json", "/-/metadata.json",
                 "/-/plugins.json", "/-/settings.json"):
        assert get(ds, page).status_code == 403, page
        assert get(ds, page, ANALYST).status_code == 200, page


def test_anonymous_visitors_see_no_figure_of_what_they_may_not_see(ds: Any) -> None:
    """Only the declarations count is public: not the findings count, the file's size or
    how many tables are hidden; and no link that leads to a 403."""
    anonymous, analyst = get(ds, "/kb.json").json(), get(ds, "/kb.json", ANALYST).json()
    assert "size" not in anonymous and "hidden_count" not in anonymous
    assert analyst["size"] > 0 and analyst["hidden_count"] > 0
    assert anonymous["tables"]  # the rest of the answer is intact
    for page in ("/", "/kb"):
        text = get(ds, page).text
        assert "declarations screened" in text and " findings." not in text, page
        assert "/-/dashboards/findings" not in text and "/kb/finding_details" not in text
    assert "/-/dashboards/findings" in get(ds, "/", ANALYST).text


def test_anonymous_visitors_see_no_private_or_internal_table(ds: Any, demo_kb: Path) -> None:
    conn = sqlite3.connect(demo_kb)
    from sqlite_utils import Database

    hidden = set(private_names(Database(conn))) | {"excon_metadata", "sqlite_stat1",
                                                    "_sqlite_migrations", "excon_windows"}
    listed = get(ds, "/kb.json").json()
    names = {t["name"] for t in listed["tables"]} | {v["name"] for v in listed["views"]}
    assert names and not (names & hidden), names & hidden
    page = get(ds, "/kb").text
    for name in ("declarations", "trade_parties", "excon_metadata", "sqlite_stat1"):
        assert f'href="/kb/{name}"' not in page, name
        assert get(ds, f"/kb/{name}.json").status_code == 403, name
    assert str(demo_kb.parent) not in get(ds, "/").text


def test_public_stored_queries_read_only_public_tables(demo_kb: Path) -> None:
    from sqlite_utils import Database

    db = Database(sqlite3.connect(demo_kb))
    private = set(private_names(db))
    queries = access_metadata(db, "kb")["databases"]["kb"]["queries"]
    public = {name: q for name, q in queries.items() if "allow" not in q}
    assert public, "no public stored query to check"
    for name, q in public.items():
        tree = sqlglot.parse_one(q["sql"], read="sqlite")
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        read = {t.name for t in tree.find_all(exp.Table)} - ctes
        assert read and not (read & private), (name, read & private)


def test_rulebook_source_paths_are_relative_to_the_rulebook_folder(tmp_path: Path) -> None:
    from kb.build import build

    db = tmp_path / "kb.db"
    build(db, [RULEBOOKS.resolve()])
    with sqlite3.connect(db) as conn:
        files = {r[0] for table in ("rules", "instruments", "items", "examples")
                 for r in conn.execute(f"SELECT DISTINCT source_file FROM {table}")}
    assert "cn-strategic-minerals/rules.excon" in files
    assert not [f for f in files if f.startswith("/") or str(RULEBOOKS) in f]


# --- headers and scripts ----------------------------------------------------------------------

PAGES = ["/", "/kb", "/kb/rules", "/kb/rules/ga-ge-licence", "/kb/instruments/MOFCOM-2023-23",
         "/kb/finding_details", "/kb/declaration_findings?declaration_id=x&as_of=",
         "/kb?sql=select+1", "/-/dashboards/findings", "/-/dashboards/findings/by-outcome",
         "/-/login"]


def test_every_page_has_a_csp_without_inline_script_and_runs_none(ds: Any) -> None:
    for path in PAGES:
        response = get(ds, path, ANALYST)
        assert response.status_code == 200, (path, response.status_code)
        csp = response.headers["content-security-policy"]
        scripts = re.search(r"script-src ([^;]*)", csp)
        assert scripts and "'unsafe-inline'" not in scripts.group(1), (path, csp)
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        for tag in re.findall(r"<script\b[^>]*>", response.text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", response.text), path


# --- spreadsheet-safe CSV ---------------------------------------------------------------------

def test_datasette_csv_cells_that_a_spreadsheet_would_run_are_neutralised(ds: Any) -> None:
    sql = ("select '=HYPERLINK(\"http://x\")' as a, '-5' as b, '@SUM(A1)' as c, "
           "'+1' as d, 'plain' as e, '-2+3' as f")
    for suffix in ("", "&_dl=1", "&_stream=on"):
        body = get(ds, f"/kb.csv?sql={urllib.parse.quote(sql)}{suffix}", ANALYST).text
        header, row = body.strip().splitlines()[:2]
        assert header == "a,b,c,d,e,f"
        assert row == "\"'=HYPERLINK(\"\"http://x\"\")\",-5,'@SUM(A1),+1,plain,'-2+3", row


def test_csv_cells_split_across_chunks_are_rewritten_whole() -> None:
    text = b'a,b\r\n"=1,\r\n2",x\r\n@y,"z ""q"""\r\n'
    for size in (1, 2, 3, 7):
        cells = CsvCells()
        out = b"".join(cells.feed(text[i:i + size]) for i in range(0, len(text), size))
        out += cells.feed(b"", last=True)
        assert out.decode() == 'a,b\r\n"\'=1,\r\n2",x\r\n\'@y,"z ""q"""\r\n', size
