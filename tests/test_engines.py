"""Moving the knowledge base's rows to another engine (Arrow batches to DuckDB and Spark):
nothing may change on the way (NULL and '' stay apart, text that looks like a NULL marker,
quotes, newlines, Unicode, floats to the last bit, a whole number in a REAL column)."""

from __future__ import annotations

import sqlite3

from kb.engines import arrow_batches, copy_to_duckdb, secondary_indexes

TEXTS = [None, "", "\\N", "NULL", 'he said "hi", then\nleft', "镓, 99.99 %", "a\\b"]


def _declarations(n: int) -> tuple[sqlite3.Connection, list[tuple[object, ...]]]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE declarations (id TEXT, v REAL, t TEXT, n INTEGER)")
    rows = [(f"d{i}", None if i % 7 == 0 else (i if i % 5 == 0 else i / 3),
             TEXTS[i % len(TEXTS)], i) for i in range(n)]
    conn.executemany("INSERT INTO declarations VALUES (?, ?, ?, ?)", rows)
    return conn, rows


def test_copy_to_duckdb_is_exact() -> None:
    conn, rows = _declarations(2_500)
    duck = copy_to_duckdb(conn, ("declarations",))
    got = duck.execute("SELECT * FROM declarations ORDER BY n").fetchall()
    assert got == [(i, None if v is None else float(v), t, n) for i, v, t, n in rows]


def test_arrow_batches_cover_every_row_once_with_the_declared_types() -> None:
    conn, rows = _declarations(2_500)
    batches = list(arrow_batches(conn, "declarations", rows=1_000))
    assert [b.num_rows for b in batches] == [1_000, 1_000, 500]
    assert [str(t) for t in batches[0].schema.types] == ["string", "double", "string", "int64"]
    assert [r["id"] for b in batches for r in b.to_pylist()] == [r[0] for r in rows]


def test_an_empty_table_copies_as_empty() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE items (name TEXT, title TEXT)")
    duck = copy_to_duckdb(conn, ("items",))
    assert duck.execute("SELECT COUNT(*) FROM items").fetchone() == (0,)


def test_secondary_indexes_are_carried_over_without_the_key() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE licences (licence_no TEXT PRIMARY KEY, holder TEXT)")
    conn.execute("CREATE INDEX idx_licences_holder ON licences (holder)")
    assert secondary_indexes(conn, "licences") == [
        'CREATE INDEX "idx_licences_holder" ON "licences" ("holder")']
