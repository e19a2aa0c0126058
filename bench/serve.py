"""Datasette under load: a knowledge base with N demo declarations served by a real
`excon serve` process, 8 concurrent clients on loopback, logged in as an analyst.

Every page an analyst works with, each measured twice and reported apart:
- **cached**: the same URL each time, after an untimed first request: what a busy page costs
  once the server's result cache (kb.publish.result_cache) holds its queries;
- **uncached**: a URL no earlier request of the run has used (another declaration, rule,
  instrument, filter, date or search term each time), so every query of the page runs. A page
  with few variants (rules, instruments) is measured on as many unseen ones as there are; a
  page with none (the home page, the dashboard) has no uncached figure: its one first request
  is the only one the cache has not seen.
Reported: p50/p95 per page and kind. Target: p95 ≤ 300 ms with 1,000,000 declarations, for
both kinds.

Then a login flood (issue 19): a public rule page, fetched by one anonymous client, first alone
and then while 6 clients post wrong passwords to `/-/login` as fast as the server answers.
Reported: the page's p95 both ways and their ratio. Target: flooded ≤ 2 × unloaded.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.load import declarations_file
from bench.stats import fmt_range, percentile, spread

TARGET_P95_MS = 300.0
# the pages measured, cached and (those with variants) uncached: see the module's doc
PAGES = ("home page", "findings table + facets", "findings, dashboard filters",
         "findings dashboard", "declaration page", "stored query, one declaration",
         "rule page", "instrument page", "in force on a date", "search items",
         "findings new since the last build", "findings table, in Chinese",
         "declaration page, in Chinese")
UNCACHED_PAGES = tuple(p for p in PAGES if p not in ("home page", "findings dashboard",
                                                     "findings new since the last build"))
CLIENTS = 8
FLOODERS = 6
TARGET_FLOOD_RATIO = 2.0
PASSWORD = "bench analyst passphrase"


def login_cookie(base: str, user: str, password: str) -> str:
    """`ds_actor=…` for a login through the form, as a browser makes it."""
    import http.cookiejar
    import re
    import urllib.parse

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/-/login", timeout=60) as r:
        token = re.search(r'name="csrftoken" value="([^"]+)"', r.read().decode())
    assert token, "no CSRF token on the login form"
    fields = urllib.parse.urlencode({"username": user, "password": password,
                                     "csrftoken": token.group(1)}).encode()
    with opener.open(base + "/-/login", data=fields, timeout=60) as r:
        r.read()
    for c in jar:
        if c.name == "ds_actor":
            return f"ds_actor={c.value}"
    raise RuntimeError("the login failed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _built(n: int, cache: Path) -> Path:
    from kb.build import build

    decls = declarations_file(n, cache)
    db = cache / f"kb-serve-{n}.db"
    build(db, [Path("rulebooks")], decls, decls.parent / "licences.csv",
          decls.parent / "parties.csv")
    return db



def run(n: int = 1_000_000, requests_per_client: int = 25, rounds: int = 3,
        cache: Path | None = None) -> dict[str, Any]:
    import sqlite3

    from kb.publish.serve import default_workers

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    db = _built(n, cache)
    build_s = time.perf_counter() - t0
    KB = db.stem  # the served database's name in its URLs
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM declarations ORDER BY random() "
                                          "LIMIT 2000")]
        rules = [r[0] for r in conn.execute("SELECT DISTINCT rule FROM finding_details")]
        first, last = conn.execute("SELECT MIN(declared_on), MAX(declared_on) "
                                   "FROM finding_details").fetchone()
        instruments = [r[0] for r in conn.execute("SELECT id FROM instruments")]
        destinations = [r[0] for r in conn.execute(
            "SELECT DISTINCT destination_country FROM finding_details")]
        exporters = [r[0] for r in conn.execute(
            "SELECT exporter FROM finding_details ORDER BY random() LIMIT 2000")]
        terms = sorted({w for (t, z) in conn.execute("SELECT title, title_zh FROM items")
                        for w in [*(t or "").lower().split(), *(z or "")] if len(w) > 2
                        or "\u4e00" <= w <= "\u9fff"})
    days = (date.fromisoformat(last) - date.fromisoformat(first)).days
    asked: set[Any] = set()
    asked_lock = threading.Lock()

    def unseen(draw: Any) -> Any:
        """A value `draw()` gives that no request has used yet (None when there is none
        left after many tries: the pool is used up)."""
        with asked_lock:
            for _ in range(10_000):
                pick = draw()
                if pick not in asked:
                    asked.add(pick)
                    return pick
        return None

    def day(offset: int) -> str:
        return (date.fromisoformat(first) + timedelta(days=offset)).isoformat()

    def new_filter(rng: random.Random) -> str | None:
        """A rule and a date no request has used: its facet counts are not cached."""
        pick = unseen(lambda: ("filter", rng.choice(rules), rng.randrange(days + 1)))
        return pick and f"/{KB}/finding_details?rule={pick[1]}&declared_on__gte={day(pick[2])}"

    def new_dashboard_filter(rng: random.Random) -> str | None:
        """The dashboard's filters as the findings table gets them from a chart: a
        destination or an exporter, and a date range, never asked before."""
        def draw() -> tuple[Any, ...]:
            a, b = sorted((rng.randrange(days + 1), rng.randrange(days + 1)))
            return ("dashboard", rng.choice(destinations), rng.choice(exporters)
                    if rng.random() < 0.5 else None, a, b)
        pick = unseen(draw)
        if pick is None:
            return None
        exporter = f"&exporter={quote(pick[2])}" if pick[2] else ""
        return (f"/{KB}/finding_details?destination_country={pick[1]}{exporter}"
                f"&declared_on__gte={day(pick[3])}&declared_on__lte={day(pick[4])}")

    def one_of(kind: str, pool: list[str], path: str) -> Any:
        def make(rng: random.Random) -> str | None:
            pick = unseen(lambda: (kind, rng.choice(pool)))
            return pick and path.format(quote(pick[1], safe=""))
        return make

    def new_date(rng: random.Random) -> str | None:
        pick = unseen(lambda: ("date", rng.randrange(-400, days + 400)))
        return pick and f"/{KB}/in_force_on?date={day(pick[1])}"

    def fixed(path: str) -> Any:
        return lambda rng: path

    # page: (the same URL each time, a URL no request has used or None)
    pages: dict[str, tuple[Any, Any]] = {
        "home page": (fixed("/"), None),
        "findings table + facets": (fixed(f"/{KB}/finding_details"), new_filter),
        "findings, dashboard filters": (
            fixed(f"/{KB}/finding_details?destination_country=US&declared_on__gte="
                  f"{day(days // 2)}"), new_dashboard_filter),
        "findings dashboard": (fixed("/-/dashboards/findings"), None),
        "declaration page": (fixed(f"/{KB}/declarations/{ids[0]}"),
                             one_of("declaration", ids, f"/{KB}/declarations/{{}}")),
        "stored query, one declaration": (
            fixed(f"/{KB}/declaration_findings?declaration_id={ids[0]}&as_of="),
            one_of("judged", ids, f"/{KB}/declaration_findings?declaration_id={{}}&as_of=")),
        "rule page": (fixed(f"/{KB}/rules/ga-ge-licence"),
                      one_of("rule", rules, f"/{KB}/rules/{{}}")),
        "instrument page": (fixed(f"/{KB}/instruments/MOFCOM-2024-46"),
                            one_of("instrument", instruments, f"/{KB}/instruments/{{}}")),
        "in force on a date": (fixed(f"/{KB}/in_force_on?date=2026-01-15"), new_date),
        "search items": (fixed(f"/{KB}/items?_search=%E9%95%93"),
                         one_of("search", terms, f"/{KB}/items?_search={{}}")),
        "findings new since the last build": (fixed(f"/{KB}/finding_changes"), None),
        # the same pages in Chinese (`?_lang=zh`: the explanations written in Chinese too)
        "findings table, in Chinese": (
            fixed(f"/{KB}/finding_details?_lang=zh"),
            lambda rng: (lambda u: u and u + "&_lang=zh")(new_filter(rng))),
        "declaration page, in Chinese": (
            fixed(f"/{KB}/declarations/{ids[0]}?_lang=zh"),
            one_of("declaration-zh", ids, f"/{KB}/declarations/{{}}?_lang=zh")),
    }

    from kb.publish.auth import hash_password

    port = _free_port()
    env = dict(os.environ, DATASETTE_SECRET=secrets.token_hex(16),
               EXCON_CREDENTIALS=f"analyst:{hash_password(PASSWORD)}")
    workers = default_workers()  # as `excon serve` runs by default: one per CPU
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--db", str(db),
                             "--port", str(port), "--workers", str(workers),
                             # sessions and failed logins of this run only
                             "--sessions", str(Path(tempfile.mkdtemp()) / "sessions.db")],
                            env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    base = root
    cookie = ""

    def fetch(path: str, anonymous: bool = False) -> float:
        request = urllib.request.Request(base + path,
                                         headers={} if anonymous else {"Cookie": cookie})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            assert response.status == 200, (path, response.status)
        return time.perf_counter() - start

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch(f"/{KB}/rules", anonymous=True)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("excon serve did not start") from None
                time.sleep(0.2)
        cookie = login_cookie(root, "analyst", PASSWORD)
        out: dict[str, Any] = {"declarations": n, "clients": CLIENTS, "workers": workers,
                               "build_s": build_s, "requests": {}, "uncached": {}}
        assert tuple(pages) == PAGES and {p for p in pages if pages[p][1]} == set(
            UNCACHED_PAGES)
        for label, (same, new) in pages.items():
            fetch(same(random.Random(-1)))  # warm the result cache for this URL
            out["requests"][label] = measure(fetch, same, rounds, requests_per_client)
            if new is not None:
                out["uncached"][label] = measure(fetch, new, rounds, requests_per_client)
        out["login_flood"] = login_flood(root, lambda: fetch(f"/{KB}/rules/ga-ge-licence",
                                                             anonymous=True), rounds)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def measure(fetch: Any, make: Any, rounds: int, per_client: int) -> dict[str, Any]:
    """CLIENTS threads, `per_client` requests each, `rounds` times: p50 and p95 (medians of
    the rounds). A client stops early when `make` has no unseen URL left."""
    p50s: list[float] = []
    p95s: list[float] = []
    count = 0
    for round_ in range(rounds):
        times: list[float] = []
        lock = threading.Lock()

        def client(seed: int, times: list[float] = times, lock: threading.Lock = lock) -> None:
            rng = random.Random(seed)
            for _ in range(per_client):
                path = make(rng)
                if path is None:
                    return
                t = fetch(path)
                with lock:
                    times.append(t)

        threads = [threading.Thread(target=client, args=(round_ * CLIENTS + i,))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if times:
            p50s.append(percentile(times, 0.5) * 1000)
            p95s.append(percentile(times, 0.95) * 1000)
            count += len(times)
    return {"count": count, "rounds": len(p95s), "p50_ms": statistics.median(p50s),
            "p95_ms": statistics.median(p95s), "p50_range": spread(p50s),
            "p95_range": spread(p95s)}


def login_flood(root: str, page: Any, rounds: int, requests: int = 60) -> dict[str, Any]:
    """The public page's p95, alone and while FLOODERS clients post wrong passwords."""
    import re
    import urllib.error
    import urllib.parse

    def p95(times: list[float]) -> float:
        return percentile(times, 0.95) * 1000

    stop = threading.Event()
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def flood(i: int) -> None:
        import http.cookiejar

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(root + "/-/login", timeout=60) as r:
            token = re.search(r'name="csrftoken" value="([^"]+)"', r.read().decode())
        assert token
        k = 0
        while not stop.is_set():
            k += 1
            fields = urllib.parse.urlencode({"username": f"analyst{'' if k % 2 else i}",
                                             "password": f"wrong {i} {k}",
                                             "csrftoken": token.group(1)}).encode()
            try:
                with opener.open(root + "/-/login", data=fields, timeout=60) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            with lock:
                answers[status] = answers.get(status, 0) + 1

    page()  # warm
    alone: list[float] = []
    flooded: list[float] = []
    for _ in range(rounds):
        alone.append(p95([page() for _ in range(requests)]))
        stop.clear()
        threads = [threading.Thread(target=flood, args=(i,)) for i in range(FLOODERS)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the flood is under way
        flooded.append(p95([page() for _ in range(requests)]))
        stop.set()
        for t in threads:
            t.join()
    unloaded, loaded = statistics.median(alone), statistics.median(flooded)
    return {"flooders": FLOODERS, "requests": requests, "rounds": rounds,
            "unloaded_p95_ms": unloaded, "flooded_p95_ms": loaded,
            "ratio": loaded / unloaded, "unloaded_range": spread(alone),
            "flooded_range": spread(flooded), "login_answers": answers}


def report(r: dict[str, Any]) -> str:
    lines = [f"Datasette: {r['declarations']:,} declarations (build {r['build_s']:.0f} s), "
             f"{r['clients']} concurrent clients on loopback, "
             f"{r.get('workers', 1)} server worker(s)"]
    for kind, measured in (("cached", r["requests"]), ("uncached", r.get("uncached", {}))):
        for label, x in measured.items():
            mark = "met" if x["p95_ms"] <= TARGET_P95_MS else "NOT met"
            lines.append(f"  {kind:8} {label:34} p50 {x['p50_ms']:7.1f} ms   p95 "
                         f"{x['p95_ms']:7.1f} ms ({fmt_range(x['p95_range'], digits=0)})   "
                         f"({x['count']} requests in {x['rounds']} rounds; target p95 ≤ "
                         f"{TARGET_P95_MS:g} ms: {mark})")
    f = r.get("login_flood")
    if f:
        mark = "met" if f["ratio"] <= TARGET_FLOOD_RATIO else "NOT met"
        answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(f["login_answers"].items()))
        lines.append(f"  public rule page during a login flood ({f['flooders']} clients posting "
                     f"wrong passwords): p95 {f['unloaded_p95_ms']:.1f} ms alone, "
                     f"{f['flooded_p95_ms']:.1f} ms flooded = {f['ratio']:.2f}× (target ≤ "
                     f"{TARGET_FLOOD_RATIO:g}×: {mark}); login answers {answers}")
    return "\n".join(lines)
