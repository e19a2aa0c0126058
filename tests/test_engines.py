"""Moving the knowledge base's rows into DuckDB: big tables go through its CSV reader, and
nothing may change on the way (NULL and '' stay apart, text that looks like a NULL marker,
quotes, newlines, Unicode, floats to the last bit)."""

from __future__ import annotations

import sqlite3

from kb.engines import BULK_ROWS, copy_to_duckdb


def test_bulk_copy_to_duckdb_is_exact() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE declarations (id TEXT, v REAL, t TEXT, n INTEGER)")
    texts = [None, "", "\\N", "NULL", 'he said "hi", then\nleft', "镓, 99.99 %", "a\\b"]
    rows = [(f"d{i}", None if i % 7 == 0 else i / 3, texts[i % len(texts)], i)
            for i in range(BULK_ROWS * 3)]
    conn.executemany("INSERT INTO declarations VALUES (?, ?, ?, ?)", rows)
    duck = copy_to_duckdb(conn, ("declarations",))
    assert duck.execute("SELECT * FROM declarations ORDER BY n").fetchall() == rows


def test_small_tables_copy_row_by_row() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE items (name TEXT, title TEXT)")
    conn.executemany("INSERT INTO items VALUES (?, ?)", [("a", None), ("b", "")])
    duck = copy_to_duckdb(conn, ("items",))
    assert duck.execute("SELECT * FROM items ORDER BY name").fetchall() == [("a", None), ("b", "")]
