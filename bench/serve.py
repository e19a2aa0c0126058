"""Datasette under load: a knowledge base with N demo declarations served by a real
`excon serve` process, 8 concurrent clients on loopback, logged in as an analyst.

Four requests, each measured separately: the findings table with its facets (outcome, rule,
instrument, destination, item group); the same table filtered by a rule and a date that no
request has asked for before, so that the server's result cache cannot answer it (every query
of the page runs); a rule's page (with its findings summary); and the stored query that judges
one declaration (a different declaration each time). Reported: p50/p95 per request. Target
(issue 7): p95 ≤ 300 ms with 1,000,000 declarations.

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

from bench.load import declarations_file
from bench.stats import fmt_range, percentile, spread

TARGET_P95_MS = 300.0
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

    from kb.serve import default_workers

    cache = cache or Path(tempfile.gettempdir()) / "excon-bench"
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    db = _built(n, cache)
    build_s = time.perf_counter() - t0
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM declarations ORDER BY random() "
                                          "LIMIT 2000")]
        rules = [r[0] for r in conn.execute("SELECT DISTINCT rule FROM finding_details")]
        first, last = conn.execute("SELECT MIN(declared_on), MAX(declared_on) "
                                   "FROM finding_details").fetchone()
    days = (date.fromisoformat(last) - date.fromisoformat(first)).days
    asked: set[tuple[str, int]] = set()
    asked_lock = threading.Lock()

    def new_filter(rng: random.Random) -> str:
        """A rule and a date no request has used: its facet counts are not cached."""
        with asked_lock:
            while True:
                pick = (rng.choice(rules), rng.randrange(days + 1))
                if pick not in asked:
                    asked.add(pick)
                    break
        since = date.fromisoformat(first) + timedelta(days=pick[1])
        return f"/finding_details?rule={pick[0]}&declared_on__gte={since.isoformat()}"

    from kb.auth import hash_password

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
    base = f"{root}/{db.stem}"
    cookie = ""
    paths = {
        "findings table + facets": lambda rng: "/finding_details",
        "findings table, new filter each time": new_filter,
        "rule page": lambda rng: "/rules/ga-ge-licence",
        "stored query, one declaration": lambda rng: (
            f"/declaration_findings?declaration_id={rng.choice(ids)}&as_of="),
    }

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
                fetch("/rules", anonymous=True)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("excon serve did not start") from None
                time.sleep(0.2)
        cookie = login_cookie(root, "analyst", PASSWORD)
        out: dict[str, Any] = {"declarations": n, "clients": CLIENTS, "workers": workers,
                               "build_s": build_s, "requests": {}}
        for label, make in paths.items():
            fetch(make(random.Random(-1)))  # warm the page cache for this request
            p50s: list[float] = []
            p95s: list[float] = []
            count = 0
            for round_ in range(rounds):
                times: list[float] = []
                lock = threading.Lock()

                def client(seed: int, make: Any = make, times: list[float] = times,
                           lock: threading.Lock = lock) -> None:
                    rng = random.Random(seed)
                    for _ in range(requests_per_client):
                        t = fetch(make(rng))
                        with lock:
                            times.append(t)

                threads = [threading.Thread(target=client, args=(round_ * CLIENTS + i,))
                           for i in range(CLIENTS)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                p50s.append(percentile(times, 0.5) * 1000)
                p95s.append(percentile(times, 0.95) * 1000)
                count += len(times)
            out["requests"][label] = {"count": count, "rounds": rounds,
                                      "p50_ms": statistics.median(p50s),
                                      "p95_ms": statistics.median(p95s),
                                      "p50_range": spread(p50s), "p95_range": spread(p95s)}
        out["login_flood"] = login_flood(root, lambda: fetch("/rules/ga-ge-licence",
                                                             anonymous=True), rounds)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


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
    for label, x in r["requests"].items():
        mark = "met" if x["p95_ms"] <= TARGET_P95_MS else "NOT met"
        lines.append(f"  {label:38} p50 {x['p50_ms']:7.1f} ms   p95 {x['p95_ms']:7.1f} ms "
                     f"({fmt_range(x['p95_range'], digits=0)})   ({x['count']} requests in "
                     f"{x['rounds']} rounds; target p95 ≤ {TARGET_P95_MS:g} ms: {mark})")
    f = r.get("login_flood")
    if f:
        mark = "met" if f["ratio"] <= TARGET_FLOOD_RATIO else "NOT met"
        answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(f["login_answers"].items()))
        lines.append(f"  public rule page during a login flood ({f['flooders']} clients posting "
                     f"wrong passwords): p95 {f['unloaded_p95_ms']:.1f} ms alone, "
                     f"{f['flooded_p95_ms']:.1f} ms flooded = {f['ratio']:.2f}× (target ≤ "
                     f"{TARGET_FLOOD_RATIO:g}×: {mark}); login answers {answers}")
    return "\n".join(lines)
