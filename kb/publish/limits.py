"""Limits on what one served query may make, enforced inside the worker that runs it, next to
Datasette's time limit (`sql_time_limit_ms`, which SQLite checks between its own steps and so
cannot stop one function call that runs for seconds):

- **a value**: no text or blob over MAX_SERVED_VALUE bytes (SQLite's length limit):
  `zeroblob(1e9)`, a `replace` or `group_concat` that would grow past it fails at once with
  "string or blob too big";
- **printf widths**: `printf`/`format` with a width or precision over MAX_SERVED_VALUE gives
  NULL at once, as SQLite's own printf does for a result too big, but without first running
  a billion steps of its padding loop (`printf('%.*c', 1e9, 'x')` took 5 s past the limit);
- **a response**: the rows one query returns hold at most MAX_RESPONSE_BYTES bytes of values
  (text and blob lengths, plus 8 bytes a value): `randomblob(999000)` over 400 rows stops
  with an error after 32 MB instead of growing the worker by gigabytes. The knowledge base's
  own pages stay far below it (2,000 findings with their explanations are about 2 MB).
"""

from __future__ import annotations

import re
import sqlite3
import weakref
from typing import Any

MAX_SERVED_VALUE = 1_000_000  # bytes: the largest text or blob a served query may make
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # bytes of values in the rows of one query
# a conversion of SQLite's printf: flags, width, precision (a number or `*`: an argument)
_CONVERSION = re.compile(r"%[-+ 0#,!]*(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")


class ResponseTooBig(sqlite3.OperationalError):
    pass


def limit_served_connection(conn: sqlite3.Connection) -> None:
    """The limits above, on a connection Datasette serves (after its own preparation, which
    sets `sqlite3.Row` rows)."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_SERVED_VALUE)
    printf = _bounded_printf()
    for name in ("printf", "format"):
        conn.create_function(name, -1, printf, deterministic=True)
    conn.row_factory = _budgeted_rows(conn.row_factory or sqlite3.Row)


def _bounded_printf() -> Any:
    """SQLite's printf, computed on a private connection, after the widths and precisions it
    is asked for (written or taken from the arguments) are checked."""
    own = sqlite3.connect(":memory:", check_same_thread=False)
    own.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_SERVED_VALUE)

    def printf(fmt: Any = None, *args: Any) -> Any:
        if isinstance(fmt, str):
            rest = list(args)
            for width, precision, kind in _CONVERSION.findall(fmt):
                for size in (width, precision):
                    value = rest.pop(0) if size == "*" and rest else size
                    try:
                        if abs(int(float(value or 0))) > MAX_SERVED_VALUE:
                            return None  # as SQLite gives for a result too big
                    except (TypeError, ValueError):
                        pass
                if kind != "%" and rest:
                    rest.pop(0)
        marks = ", ".join("?" * (len(args) + 1))
        return own.execute(f"SELECT printf({marks})", (fmt, *args)).fetchone()[0]

    return printf


def _budgeted_rows(make: Any) -> Any:
    """A row factory that counts the bytes of each query's rows (per cursor) and stops the
    query past MAX_RESPONSE_BYTES."""
    state: dict[str, Any] = {"cursor": None, "bytes": 0}

    def row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Any:
        if state["cursor"] is None or state["cursor"]() is not cursor:
            state["cursor"], state["bytes"] = weakref.ref(cursor), 0
        state["bytes"] += sum(len(v) + 8 if isinstance(v, str | bytes) else 8 for v in values)
        if state["bytes"] > MAX_RESPONSE_BYTES:
            raise ResponseTooBig(f"the result is over {MAX_RESPONSE_BYTES // 2**20} MB; "
                                 "select fewer rows or smaller values")
        return make(cursor, values)

    return row
