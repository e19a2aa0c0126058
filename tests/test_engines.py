"""Moving the knowledge base's rows to another engine (Arrow batches to DuckDB and Spark):
nothing may change on the way (NULL and '' stay apart, text that looks like a NULL marker,
quotes, newlines, Unicode, floats to the last bit, a whole number in a REAL column)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kb.engines import arrow_batches, copy_to_duckdb, secondary_indexes
from tests.conftest import RULEBOOKS

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


def test_declarations_validated_straight_into_duckdb_are_those_sqlite_keeps(
        tmp_path: Path) -> None:
    """A screening on DuckDB validates the declarations straight into it (DuckRows): the rows
    DuckDB gets are exactly those a load into SQLite keeps, with the same types, and the
    rejected rows are kept with their reasons in both cases."""
    import duckdb
    from sqlite_utils import Database

    from kb import demo
    from kb.engines import DuckRows, create_tables
    from kb.load import load_csv
    from kb.tables import MIGRATIONS

    files = demo.write(demo.generate(1_200, seed=5, rulebooks=[RULEBOOKS]), tmp_path / "csv")
    lines = files["declarations"].read_text(encoding="utf-8").splitlines(keepends=True)
    broken = lines[3].split(",")
    broken[1] = "31/02/2025"  # declared_on
    lines[3] = ",".join(broken)
    lines.append(lines[7])  # a repeated id
    path = tmp_path / "declarations.csv"
    path.write_text("".join(lines), encoding="utf-8")

    def kb() -> Database:
        db = Database(memory=True)
        MIGRATIONS.apply(db)
        return db

    into_sqlite, into_duckdb = kb(), kb()
    report = load_csv(into_sqlite, "declarations", path, today="2030-01-01")
    duck = duckdb.connect()
    create_tables(duck, into_duckdb.conn, "duckdb", ("declarations",))
    sink = DuckRows(duck, into_duckdb.conn, "declarations", rows=500)
    direct = load_csv(into_duckdb, "declarations", path, today="2030-01-01", rows_to=sink)
    sink.close()

    assert (direct.loaded, direct.rejected_rows) == (report.loaded, report.rejected_rows)
    assert report.rejected_rows == 2 and report.loaded == len(lines) - 3
    kept = into_sqlite.conn.execute("SELECT * FROM declarations ORDER BY id").fetchall()
    assert duck.execute("SELECT * FROM declarations ORDER BY id").fetchall() == kept
    assert into_duckdb.conn.execute("SELECT COUNT(*) FROM declarations").fetchone() == (0,)
    reasons = "SELECT line, \"column\", value, expected FROM rejected_rows ORDER BY line"
    assert into_duckdb.conn.execute(reasons).fetchall() == \
        into_sqlite.conn.execute(reasons).fetchall()
