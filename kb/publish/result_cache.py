"""Query results of the served snapshot, kept for the life of the server.

`excon serve` publishes an immutable snapshot: the same read query with the same parameters
returns the same rows for as long as the server runs, as long as it calls no function whose
value can change (`random()`, `date('now')`, `changes()`…). Datasette runs the same queries
over and over: every view of the findings table counts five facets over every finding (five
`GROUP BY`s, about 9 ms each with 66,537 findings from 1,000,000 declarations), and a busy
page is opened by many analysts at once.

`ResultCache` wraps one Datasette `Database`'s `execute`:
- a result is kept only when SQLite's own authorizer, asked while the statement is prepared
  (views included), reports no function outside the deterministic ones (built-in aggregates
  and window functions, and scalar functions flagged deterministic, except the date and time
  functions, which read the clock when given 'now');
- at most `max_rows` rows per result, and at most `budget_rows` rows and `budget_bytes` bytes
  (text and blob lengths, plus a few bytes per value) in all, least recently used first out:
  a result bigger than a tenth of the byte budget is not kept;
- concurrent requests for a result being computed wait for it instead of computing it again;
- errors (bad SQL, a query over its time limit) are never kept.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

# They read the clock when given 'now' (SQLite flags them deterministic for other arguments).
CLOCK_FUNCTIONS = frozenset({"date", "time", "datetime", "julianday", "strftime", "unixepoch",
                             "timediff"})
_DETERMINISTIC = 0x800  # SQLITE_DETERMINISTIC in PRAGMA function_list's flags


class ResultCache:
    def __init__(self, database: Any, path: Path, prepare: Callable[[sqlite3.Connection], None],
                 max_rows: int = 1000, budget_rows: int = 50_000,
                 budget_bytes: int = 64 * 1024 * 1024) -> None:
        self.database = database
        self.execute_uncached = database.execute
        self.max_rows = max_rows
        self.budget_rows = budget_rows
        self.budget_bytes = budget_bytes
        self.rows_held = 0
        self.bytes_held = 0
        self.hits = 0
        self.misses = 0
        self._results: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}
        self._verdicts: OrderedDict[str, bool] = OrderedDict()
        # a connection of its own, to prepare statements under an authorizer: Datasette's
        # connections keep prepared statements, which an authorizer would not see again
        self._conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True,
                                     check_same_thread=False, cached_statements=0)
        prepare(self._conn)
        self._lock = threading.Lock()
        self._stable = self._stable_functions()

    def install(self) -> ResultCache:
        self.database.execute = self.execute
        return self

    def _stable_functions(self) -> frozenset[str]:
        stable = set()
        for name, builtin, kind, _enc, _narg, flags in self._conn.execute(
                "PRAGMA function_list"):
            if name in CLOCK_FUNCTIONS:
                continue
            if (builtin and kind in ("a", "w")) or flags & _DETERMINISTIC:
                stable.add(name.lower())
        return frozenset(stable)

    def deterministic(self, sql: str, params: Any) -> bool:
        """Whether the statement calls only functions that always give the same value."""
        verdict = self._verdicts.get(sql)
        if verdict is not None:
            self._verdicts.move_to_end(sql)
            return verdict
        called: set[str] = set()

        def authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None,
                       _trigger: str | None) -> int:
            if action == sqlite3.SQLITE_FUNCTION and arg2:
                called.add(arg2.lower())
            elif action not in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ,
                                sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE):
                called.add(f"(action {action})")  # a PRAGMA, ATTACH…: not kept
            return sqlite3.SQLITE_OK

        with self._lock:
            self._conn.set_authorizer(authorizer)
            try:
                self._conn.execute("EXPLAIN " + sql, params if params is not None else {})
            except sqlite3.Error:
                called.add("(not prepared)")
            finally:
                self._conn.set_authorizer(None)
        verdict = called <= self._stable
        self._verdicts[sql] = verdict
        if len(self._verdicts) > 4096:
            self._verdicts.popitem(last=False)
        return verdict

    async def execute(self, sql: str, params: Any = None, truncate: bool = False,
                      custom_time_limit: int | None = None, page_size: int | None = None,
                      log_sql_errors: bool = True) -> Any:
        def uncached() -> Any:
            return self.execute_uncached(sql, params, truncate=truncate,
                                         custom_time_limit=custom_time_limit,
                                         page_size=page_size, log_sql_errors=log_sql_errors)

        key = _key(sql, params, truncate, page_size)
        if key is None:
            return await uncached()
        if key in self._results:
            self.hits += 1
            self._results.move_to_end(key)
            return self._results[key][0]
        if key in self._pending:
            self.hits += 1
            return await asyncio.shield(self._pending[key])
        self.misses += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            results = await uncached()
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no warning when nobody else waited
            raise
        else:
            future.set_result(results)
            if len(results.rows) <= self.max_rows and await asyncio.to_thread(
                    self.deterministic, sql, params):
                self._keep(key, results)
            return results
        finally:
            del self._pending[key]

    def _keep(self, key: Hashable, results: Any) -> None:
        size = result_bytes(results.rows)
        if size > self.budget_bytes // 10:
            return
        self._results[key] = (results, size)
        self.rows_held += max(len(results.rows), 1)
        self.bytes_held += size
        while (self.rows_held > self.budget_rows or self.bytes_held > self.budget_bytes) \
                and self._results:
            _, (old, old_size) = self._results.popitem(last=False)
            self.rows_held -= max(len(old.rows), 1)
            self.bytes_held -= old_size

    def info(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "results": len(self._results),
                "rows": self.rows_held, "bytes": self.bytes_held}


def result_bytes(rows: Any) -> int:
    """About what a result's values take: their text and blob lengths and 16 bytes each."""
    total = 0
    for row in rows:
        for value in row:
            total += 16 + (len(value) if isinstance(value, str | bytes) else 0)
    return total


def _key(sql: str, params: Any, truncate: bool, page_size: int | None) -> Hashable | None:
    if params is None:
        frozen: Hashable = ()
    elif isinstance(params, dict):
        frozen = tuple(sorted(params.items()))
    elif isinstance(params, list | tuple):
        frozen = tuple(params)
    else:
        return None
    try:
        hash(frozen)
    except TypeError:
        return None
    return (sql, frozen, truncate, page_size)
