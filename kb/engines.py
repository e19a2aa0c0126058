"""Run the compiled checks on other engines: the same rulebook gives the same findings.

DuckDB: the knowledge base's tables are copied from SQLite through Python (DuckDB's SQLite
scanner is an extension downloaded at run time, which fails offline), then the support views
and the checks are created from the same sqlglot trees, printed in DuckDB's dialect.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from dsl.compile import CompiledRulebook
from kb.checks import SUPPORT_VIEWS, support_statements

_TYPES = {"TEXT": "VARCHAR", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "INTEGER": "BIGINT",
          "": "VARCHAR"}
# the tables the checks read
CHECK_TABLES = ("declarations", "licences", "trade_parties", "items", "item_customs_codes",
                "item_group_members", "excon_settings", "licence_items", "party_name_keys",
                "listed_party_keys", "list_entry_periods", "parties")


def copy_to_duckdb(conn: sqlite3.Connection, tables: tuple[str, ...] = CHECK_TABLES) -> Any:
    import duckdb

    duck = duckdb.connect()
    for table in tables:
        cols = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        ddl = ", ".join(f'"{c[1]}" {_TYPES.get(str(c[2]).upper(), "VARCHAR")}' for c in cols)
        duck.execute(f'CREATE TABLE "{table}" ({ddl})')
        rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
        if rows:
            marks = ", ".join("?" for _ in cols)
            duck.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
    return duck


_PG_TYPES = {"TEXT": "TEXT", "FLOAT": "DOUBLE PRECISION", "REAL": "DOUBLE PRECISION",
             "INTEGER": "BIGINT", "": "TEXT"}


def postgres_findings(conn: sqlite3.Connection, compiled: CompiledRulebook,
                      dsn: str) -> list[tuple[Any, ...]]:
    """The same checks on PostgreSQL, in a schema of their own that is dropped afterwards."""
    import secrets

    import psycopg

    schema = f"excon_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
        try:
            pg.execute(f"SET search_path TO {schema}")
            # JIT-compiling the wide check expressions costs seconds and saves nothing here
            pg.execute("SET jit = off")
            for table in CHECK_TABLES:
                cols = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
                ddl = ", ".join(f'"{c[1]}" {_PG_TYPES.get(str(c[2]).upper(), "TEXT")}'
                                for c in cols)
                pg.execute(f'CREATE TABLE "{table}" ({ddl})')
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                if rows:
                    marks = ", ".join("%s" for _ in cols)
                    with pg.cursor() as cur:
                        cur.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
            views = support_statements("postgres")[-len(SUPPORT_VIEWS):]
            for sql in [*views, *compiled.statements("postgres")]:
                pg.execute(sql)
            result = pg.execute("SELECT * FROM findings ORDER BY declaration_id, rule, outcome")
            return [tuple(r) for r in result.fetchall()]
        finally:
            pg.execute(f"DROP SCHEMA {schema} CASCADE")


def duckdb_findings(conn: sqlite3.Connection, compiled: CompiledRulebook) -> list[tuple[Any, ...]]:
    duck = copy_to_duckdb(conn)
    views = support_statements("duckdb")[-len(SUPPORT_VIEWS):]
    for sql in [*views, *compiled.statements("duckdb")]:
        duck.execute(sql)
    rows: list[tuple[Any, ...]] = duck.execute(
        "SELECT * FROM findings ORDER BY declaration_id, rule, outcome").fetchall()
    duck.close()
    return rows
