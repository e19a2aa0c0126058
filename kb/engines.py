"""Run the compiled checks on other engines: the same rulebook gives the same findings.

DuckDB: the knowledge base's tables are copied from SQLite through Python (DuckDB's SQLite
scanner is an extension downloaded at run time, which fails offline), then the support views
and the checks are created from the same sqlglot trees, printed in DuckDB's dialect.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from dsl.compile import CompiledRulebook
from kb.checks import SUPPORT_VIEWS, support_statements

_TYPES = {"TEXT": "VARCHAR", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "INTEGER": "BIGINT",
          "": "VARCHAR"}
# the tables the checks read
CHECK_TABLES = ("declarations", "licences", "trade_parties", "items", "item_customs_codes",
                "item_group_members", "excon_settings", "licence_items", "party_name_keys",
                "listed_party_keys", "list_entry_periods", "parties", "listed_names",
                "party_reach", "item_minerals", "value_range_codes", "unit_values")
# of those, the ones that change with each screening (the rest come from the rulebook)
INPUT_TABLES = ("declarations", "licences", "trade_parties", "excon_settings", "licence_items",
                "party_name_keys", "listed_names", "party_reach", "unit_values")


def copy_to_duckdb(conn: sqlite3.Connection, tables: tuple[str, ...] = CHECK_TABLES) -> Any:
    import duckdb

    duck = duckdb.connect()
    for table in tables:
        cols = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        ddl = ", ".join(f'"{c[1]}" {_TYPES.get(str(c[2]).upper(), "VARCHAR")}' for c in cols)
        duck.execute(f'CREATE TABLE "{table}" ({ddl})')
        _duck_insert(duck, conn, table)
    return duck


BULK_ROWS = 5_000  # above this, rows go to DuckDB through its CSV reader (executemany is slow)
_NULL = "\\N"


def _duck_insert(duck: Any, conn: sqlite3.Connection, table: str) -> None:
    cursor = conn.execute(f'SELECT * FROM "{table}"')  # names are ours, not the user's
    first = cursor.fetchmany(BULK_ROWS + 1)
    if not first:
        return
    if len(first) <= BULK_ROWS:
        marks = ", ".join("?" for _ in first[0])
        duck.executemany(f'INSERT INTO "{table}" VALUES ({marks})', first)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{table}.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            for batch in (first, *iter(lambda: cursor.fetchmany(100_000), [])):
                f.writelines(",".join(map(csv_field, row)) + "\n" for row in batch)
        # every text is quoted, so only the unquoted marker is NULL ('' stays '')
        duck.execute(f"COPY \"{table}\" FROM '{path}' (FORMAT csv, HEADER false, "
                     f"NULLSTR '{_NULL}', ALLOW_QUOTED_NULLS false, QUOTE '\"', ESCAPE '\"')")


def csv_field(v: object) -> str:
    if v is None:
        return _NULL
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace('"', '""') + '"'


_PG_TYPES = {"TEXT": "TEXT", "FLOAT": "DOUBLE PRECISION", "REAL": "DOUBLE PRECISION",
             "INTEGER": "BIGINT", "": "TEXT"}


def postgres_findings(conn: sqlite3.Connection, compiled: CompiledRulebook, dsn: str,
                      cache: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """The same checks on PostgreSQL, in a schema of their own. Without a `cache` the schema
    is dropped afterwards; with one (a Screener's) it is kept with the rulebook's tables and the
    views, each call fills the input tables inside a transaction and rolls it back, and
    `close_engines` drops it."""
    import secrets

    import psycopg

    key = f"postgres:{dsn}"
    held = cache.get(key) if cache is not None else None
    if held is None:
        pg = psycopg.connect(dsn, autocommit=True)
        schema = f"excon_{secrets.token_hex(6)}"
        pg.execute(f"CREATE SCHEMA {schema}")
        pg.execute(f"SET search_path TO {schema}")
        # JIT-compiling the wide check expressions costs seconds and saves nothing here
        pg.execute("SET jit = off")
        for table in CHECK_TABLES:
            cols = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            ddl = ", ".join(f'"{c[1]}" {_PG_TYPES.get(str(c[2]).upper(), "TEXT")}'
                            for c in cols)
            pg.execute(f'CREATE TABLE "{table}" ({ddl})')
            if table not in INPUT_TABLES:
                _pg_insert(pg, conn, table)
                # statistics now, not whenever autovacuum gets to it: the planner's choices
                # (and a check's time, seconds or many minutes) must not depend on that
                pg.execute(f'ANALYZE "{table}"')
        views = support_statements("postgres")[-len(SUPPORT_VIEWS):]
        for sql in [*views, *compiled.statements("postgres")]:
            pg.execute(sql)
        held = (pg, schema)
    pg, schema = held
    try:
        with pg.transaction(force_rollback=True):
            for table in INPUT_TABLES:
                _pg_insert(pg, conn, table)
                pg.execute(f'ANALYZE "{table}"')  # inside the transaction: rolled back too
            result = pg.execute("SELECT * FROM findings ORDER BY declaration_id, rule, outcome")
            return [tuple(r) for r in result.fetchall()]
    finally:
        if cache is not None:
            cache[key] = held
        else:
            _drop(pg, schema)


def _pg_insert(pg: Any, conn: sqlite3.Connection, table: str) -> None:
    rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()  # names are ours
    if rows:
        marks = ", ".join("%s" for _ in rows[0])
        with pg.cursor() as cur:
            cur.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)


def _drop(pg: Any, schema: str) -> None:
    try:
        pg.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        pg.close()


def close_engines(cache: dict[str, Any]) -> None:
    """Drop the PostgreSQL schemas and close the connections a Screener's cache holds."""
    for key, held in list(cache.items()):
        del cache[key]
        with contextlib.suppress(Exception):  # a server already gone has nothing to drop
            if key.startswith("postgres:"):
                _drop(*held)
            else:
                held.close()


def duckdb_findings(conn: sqlite3.Connection, compiled: CompiledRulebook,
                    cache: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """The checks on DuckDB. With a `cache` (a Screener's), the rulebook's tables and the
    views are made once and each call only replaces the input tables' rows."""
    duck = cache.get("duckdb") if cache is not None else None
    if duck is None:
        duck = copy_to_duckdb(conn)
        views = support_statements("duckdb")[-len(SUPPORT_VIEWS):]
        for sql in [*views, *compiled.statements("duckdb")]:
            duck.execute(sql)
        if cache is not None:
            cache["duckdb"] = duck
    else:
        for table in INPUT_TABLES:
            duck.execute(f'DELETE FROM "{table}"')  # names are ours
            _duck_insert(duck, conn, table)
    # Each check on its own, the rows merged here in `findings`' order: DuckDB plans a union
    # of every check as one query, in time that grows faster than the checks (13 s for this
    # rulebook against 1.7 s for the checks one by one, on a handful of declarations).
    rows_out: list[tuple[Any, ...]] = sorted(
        (tuple(row) for rule in compiled.rules
         for row in duck.execute(f'SELECT * FROM "{rule.view}"').fetchall()),  # our names
        key=lambda row: (row[0], row[1], row[2]))
    if cache is None:
        duck.close()
    return rows_out
