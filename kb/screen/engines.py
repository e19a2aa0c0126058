"""Run the compiled checks on other engines: the same rulebook gives the same findings.

The inputs are loaded and validated into a screener's SQLite knowledge base, as for every
screening, with the relations only Python computes (party keys, fuzzy matches, links). The
tables the checks read are then copied to the engine — to DuckDB as Arrow batches (DuckDB's
SQLite scanner is an extension downloaded at run time, which fails offline), to PostgreSQL
with COPY — and the engine derives every support relation and window itself, as tables
(`kb.screen.statements.derive_statements`), before the checks run, all printed in its dialect
from the same sqlglot trees.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import weakref
from typing import Any

from dsl.compile import CompiledRulebook
from kb.screen.spark_run import run_statement
from kb.screen.statements import check_statements, derive_statements, derived_relations
from kb.screen.support import DUCKDB_LICENCE_ITEMS, JUDGED_VIEWS
from kb.store.arrow import arrow_batches, arrow_schema

# Each engine's column types for SQLite's declared types ("": none declared).
TYPES = {
    "duckdb": {"TEXT": "VARCHAR", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "INTEGER": "BIGINT",
               "": "VARCHAR"},
    "postgres": {"TEXT": "TEXT", "FLOAT": "DOUBLE PRECISION", "REAL": "DOUBLE PRECISION",
                 "INTEGER": "BIGINT", "": "TEXT"},
    "sqlite": {"TEXT": "TEXT", "FLOAT": "REAL", "REAL": "REAL", "INTEGER": "INTEGER",
               "": "TEXT"},
    "spark": {"TEXT": "STRING", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "INTEGER": "BIGINT",
              "": "STRING"},
}
# the tables the checks read
CHECK_TABLES = ("declarations", "licences", "trade_parties", "items", "item_customs_codes",
                "item_group_members", "excon_settings", "licence_items", "licence_agent_keys",
                "party_name_keys",
                "listed_party_keys", "list_entry_periods", "parties", "listed_names",
                "party_reach", "item_minerals", "value_range_codes", "unit_values")
# of those, the ones that change with each screening (the rest come from the rulebook)
INPUT_TABLES = ("declarations", "licences", "trade_parties", "excon_settings", "licence_items",
                "licence_agent_keys", "party_name_keys", "listed_names", "party_reach",
                "unit_values")


def create_tables(target: Any, conn: sqlite3.Connection, dialect: str,
                  tables: tuple[str, ...] = CHECK_TABLES) -> None:
    """The tables the checks read, empty, on a DuckDB or PostgreSQL connection, with the
    columns and types of the screener's SQLite tables (on PostgreSQL with their primary
    keys: its plans probe them by key, where DuckDB's hash joins need no index)."""
    types = TYPES[dialect]
    for table in tables:
        cols = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        defs = [f'"{c[1]}" {types.get(str(c[2]).upper(), types[""])}' for c in cols]
        key = primary_key(conn, table)
        if key and dialect == "postgres":
            defs.append(f"PRIMARY KEY ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in key)})")
        target.execute(f'CREATE TABLE "{table}" ({", ".join(defs)})')  # names are ours


def primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    """The SQLite table's primary-key columns, in key order."""
    cols = conn.execute(f'PRAGMA table_info("{table}")').fetchall()  # names are ours
    return [str(c[1]) for c in sorted(cols, key=lambda c: c[5]) if c[5]]


def secondary_indexes(conn: sqlite3.Connection, table: str) -> list[str]:
    """CREATE INDEX statements for the SQLite table's indexes other than its key's (the
    declarations' by country, party and code, which the checks' candidate sets read)."""
    out = []
    for _, index, unique, origin, *_ in conn.execute(f'PRAGMA index_list("{table}")'):
        if origin == "c" and not unique:
            columns = [str(c[2]) for c in conn.execute(f'PRAGMA index_info("{index}")')]
            out.append(f'CREATE INDEX "{index}" ON "{table}" '  # names are ours
                       f'({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)})')
    return out


def copy_to_duckdb(conn: sqlite3.Connection, tables: tuple[str, ...] = CHECK_TABLES) -> Any:
    """A DuckDB connection in memory holding a copy of the tables."""
    import duckdb

    duck = duckdb.connect()
    configure_duckdb(duck)
    create_tables(duck, conn, "duckdb", tables)
    for table in tables:
        duck_insert(duck, conn, table)
    return duck


def duck_insert(duck: Any, conn: sqlite3.Connection, table: str, schema: Any = None) -> None:
    for batch in arrow_batches(conn, table, schema=schema):
        duck.register("excon_rows", batch)
        try:
            duck.execute(f'INSERT INTO "{table}" SELECT * FROM excon_rows')  # names are ours
        finally:
            duck.unregister("excon_rows")


def postgres_findings(conn: sqlite3.Connection, compiled: CompiledRulebook, dsn: str,
                      cache: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """The same checks on PostgreSQL, in a schema of their own. Without a `cache` the schema
    is dropped afterwards; with one (a Screener's) it is kept with the rulebook's tables, and
    each call loads the inputs, derives the support relations as indexed tables and creates
    the checks' views inside a transaction that it rolls back; `close_engines` drops it."""
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
        create_tables(pg, conn, "postgres")
        for table in CHECK_TABLES:
            if table not in INPUT_TABLES:
                pg_insert(pg, conn, table)
                for sql in secondary_indexes(conn, table):
                    pg.execute(sql)
                # statistics now, not whenever autovacuum gets to it: the planner's choices
                # (and a check's time, seconds or many minutes) must not depend on that
                pg.execute(f'ANALYZE "{table}"')
        held = (pg, schema)
    pg, schema = held
    try:
        with pg.transaction(force_rollback=True):
            for table in INPUT_TABLES:
                pg_insert(pg, conn, table)
                for sql in secondary_indexes(conn, table):
                    pg.execute(sql)
                pg.execute(f'ANALYZE "{table}"')  # inside the transaction: rolled back too
            for sql in [*derive_statements(compiled, "postgres"),
                        *check_statements(compiled, "postgres")]:
                pg.execute(sql)
            result = pg.execute("SELECT * FROM findings ORDER BY declaration_id, rule, outcome")
            return [tuple(r) for r in result.fetchall()]
    finally:
        if cache is not None:
            cache[key] = held
        else:
            _drop(pg, schema)


def pg_insert(pg: Any, conn: sqlite3.Connection, table: str) -> None:
    """The table's rows into PostgreSQL with COPY (binary-safe: psycopg sends each row's
    values, so no text is parsed as SQL or CSV)."""
    cursor = conn.execute(f'SELECT * FROM "{table}"')  # names are ours
    with pg.cursor() as cur, cur.copy(f'COPY "{table}" FROM STDIN') as copy:
        for batch in iter(lambda: cursor.fetchmany(50_000), []):
            for row in batch:
                copy.write_row(row)


def _drop(pg: Any, schema: str) -> None:
    try:
        pg.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        pg.close()


def close_engines(cache: dict[str, Any]) -> None:
    """Drop the PostgreSQL schemas, close the connections and stop the Spark session a
    Screener's cache holds."""
    for key, held in list(cache.items()):
        del cache[key]
        with contextlib.suppress(Exception):  # a server already gone has nothing to drop
            if key.startswith("postgres:"):
                _drop(*held)
            elif key == "spark":
                held.stop()
            elif hasattr(held, "close"):
                held.close()


def duckdb_connection(conn: sqlite3.Connection, cache: dict[str, Any] | None = None) -> Any:
    """A DuckDB connection with the tables the checks read (empty when new): a Screener's
    (`cache`) is made once and kept for its screenings."""
    duck = cache.get("duckdb") if cache is not None else None
    if duck is None:
        import duckdb

        duck = duckdb.connect()
        duck.execute("SET enable_progress_bar = false")
        configure_duckdb(duck)
        create_tables(duck, conn, "duckdb")
        if cache is not None:
            cache["duckdb"] = duck
    return duck


# DuckDB's memory for a screening: `EXCON_DUCKDB_MEMORY_LIMIT` (DuckDB's size syntax: "8GB",
# "500MiB"), else a third of the machine's memory. DuckDB's own default (80 %) let 10,000,000
# demo declarations take 16.9 GB of this 23 GB machine; under a third (7.7 GB), 9.6 GB, in
# the same time, the same findings (bench/README.md, session 25): what does not fit goes to
# its temporary files.
MEMORY_LIMIT = "EXCON_DUCKDB_MEMORY_LIMIT"
_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def configure_duckdb(duck: Any) -> None:
    """A screening's DuckDB memory limit (`MEMORY_LIMIT`), and its temporary files (what does
    not fit) in a folder of its own, removed with the connection — not in a `.tmp` folder of
    the working directory, DuckDB's default for a database in memory."""
    limit = os.environ.get(MEMORY_LIMIT, "").strip()
    if limit and not _SIZE.fullmatch(limit):
        raise ValueError(f"{MEMORY_LIMIT}={limit!r}: expected a size such as 8GB or 500MiB")
    if not limit:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            limit = f"{total // 3 // 2**20}MiB"
    if limit:
        duck.execute(f"SET memory_limit = '{limit}'")  # a size, checked above
    spill = tempfile.mkdtemp(prefix="excon-duckdb-")
    duck.execute("SET temp_directory = ?", [spill])
    weakref.finalize(duck, shutil.rmtree, spill, True)


class DuckRows:
    """A load's validated rows straight into a DuckDB table (`kb.inputs.load.load_csv`'s `rows_to`),
    as Arrow batches of about `rows` rows, typed as the screener's SQLite table declares its
    columns: the declarations of an `--engine duckdb` screening never pass through SQLite
    (its insert, its index builds and the copy out took 40 % of the screening at 1,000,000
    declarations). DuckDB inserts a batch on a thread of its own while the next one is
    validated (it releases the GIL). `close()` writes the last batch and waits for it."""

    def __init__(self, duck: Any, conn: sqlite3.Connection, table: str,
                 rows: int = 100_000) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.duck, self.table, self.rows = duck, table, rows
        self.types = {f.name: f.type for f in arrow_schema(conn, table)}
        self.pending: list[Any] = []
        self.count = 0
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="excon-duckrows")
        self.inserting: Any = None
        duck.execute(f'DELETE FROM "{table}"')  # names are ours

    def __call__(self, columns: list[str], values: list[list[Any]]) -> None:
        import pyarrow as pa

        if not values or not values[0]:
            return
        self.pending.append(pa.table([pa.array(v, type=self.types[c])
                                      for c, v in zip(columns, values, strict=True)],
                                     names=columns))
        self.count += len(values[0])
        if self.count >= self.rows:
            self._write()

    def _write(self) -> None:
        import pyarrow as pa

        self._wait()
        if self.pending:
            rows = pa.concat_tables(self.pending)
            self.pending, self.count = [], 0
            self.inserting = self.writer.submit(self._insert, rows)

    def _insert(self, rows: Any) -> None:
        names = ", ".join(f'"{c}"' for c in rows.column_names)  # the contract's names
        cursor = self.duck.cursor()  # a connection's cursor per thread
        try:
            cursor.register("excon_rows", rows)
            cursor.execute(f'INSERT INTO "{self.table}" ({names}) SELECT {names} '
                           "FROM excon_rows")
        finally:
            cursor.close()

    def _wait(self) -> None:
        if self.inserting is not None:
            inserting, self.inserting = self.inserting, None
            inserting.result()  # an insert's error is raised here

    def close(self) -> None:
        try:
            self._write()
            self._wait()
        finally:
            self.writer.shutdown(wait=True)


def duckdb_findings(conn: sqlite3.Connection, compiled: CompiledRulebook,
                    cache: dict[str, Any] | None = None,
                    made_here: tuple[str, ...] = (),
                    derived: bool = False) -> list[tuple[Any, ...]]:
    """The checks on DuckDB: the inputs copied over (as Arrow batches) but for the tables
    `made_here` (the declarations a load put there, `DuckRows`; the licence items, split
    here from the licences, `DUCKDB_LICENCE_ITEMS`), every derived relation stored as a table
    (`derive_statements`), then each check. With a `cache` (a Screener's), the rulebook's
    tables and the views are made once and each call replaces the input tables' rows and the
    derived tables. `derived`: the relations the screener's SQLite made (over a knowledge
    base's history, `kb.screen.history`) are copied instead of derived again; those that
    depend on the judging date are derived here from them."""
    duck = duckdb_connection(conn, cache)
    ready = cache is not None and cache.get("duckdb:ready", False)
    for table in INPUT_TABLES if ready else CHECK_TABLES:
        if table in made_here:
            continue
        if ready:
            duck.execute(f'DELETE FROM "{table}"')  # names are ours
        duck_insert(duck, conn, table)
    if "licence_items" in made_here:
        duck.execute("DELETE FROM licence_items")
        duck.execute(DUCKDB_LICENCE_ITEMS)
    if derived:
        copy_derived(duck, conn, compiled)
    else:
        for sql in derive_statements(compiled, "duckdb"):
            duck.execute(sql)
    if not ready:
        for sql in check_statements(compiled, "duckdb"):
            duck.execute(sql)
        if cache is not None:
            cache["duckdb:ready"] = True  # the rulebook's tables and the views are there
    # Each check on its own, the rows merged here in `findings`' order: DuckDB plans a union
    # of every check as one query, in time that grows faster than the checks.
    rows_out: list[tuple[Any, ...]] = sorted(
        (tuple(row) for rule in compiled.rules
         for row in duck.execute(f'SELECT * FROM "{rule.view}"').fetchall()),  # our names
        key=lambda row: (row[0], row[1], row[2]))
    if cache is None:
        duck.close()
    return rows_out


def copy_derived(duck: Any, conn: sqlite3.Connection, compiled: CompiledRulebook) -> None:
    """The derived relations as the screener's SQLite made them, as DuckDB tables of the
    types DuckDB gives their queries; those that depend on the judging date derived here."""
    from sqlglot import exp

    for name, query, _ in derived_relations(compiled, "duckdb"):
        made_there = name not in JUDGED_VIEWS
        shape = query.copy().limit(0) if made_there else query  # type: ignore[attr-defined]
        duck.execute(exp.Create(this=exp.to_table(name), kind="TABLE", expression=shape,
                                replace=True).sql(dialect="duckdb"))
        if made_there:  # typed as DuckDB types its query (SQLite declares none for some)
            duck_insert(duck, conn, name, duck_schema(duck, name))


def duck_schema(duck: Any, table: str) -> Any:
    """An Arrow schema of a DuckDB table's columns: whole numbers, other numbers, text."""
    import pyarrow as pa

    def arrow_type(kind: str) -> Any:
        if kind.upper() in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "BOOLEAN"):
            return pa.int64()
        if kind.upper().startswith(("DOUBLE", "FLOAT", "REAL", "DECIMAL")):
            return pa.float64()
        return pa.string()

    return pa.schema([(name, arrow_type(kind)) for name, kind, *_ in
                      duck.execute(f'DESCRIBE "{table}"').fetchall()])  # our names


# Spark settings for the compiled checks, also set by the bundle's run.py: each check is one
# wide query, and compiling its expressions to Java (whole-stage code generation) costs more
# than it saves. A view (each derived relation's `CACHE TABLE … AS`, each check's view in the
# bundle) keeps its analysed plan, not its SQL text: by default Spark analyses a view's SQL
# again wherever a query reads it, and again for each view that reads it. On 2,000 demo
# declarations Spark's analyser and optimizer took 76.5 s of a 116 s screening, 34.7 s of it
# resolving views; with the plans kept, 23.2 s of 98.6 s, with the same findings. Every view
# is made again, in order, each time the scripts run, so none keeps the plan of an older one.
# A licence is drawn down by a recursive walk over its uses (`licence_cover`), one level per
# use: Spark's default limits (100 levels, 1,000,000 rows) would stop a licence used more than
# 100 times, or a million declarations under licence.
SPARK_SQL_CONF = {"spark.sql.codegen.wholeStage": "false",
                  "spark.sql.legacy.storeAnalyzedPlanForView": "true",
                  "spark.sql.cteRecursionLevelLimit": "-1",
                  "spark.sql.cteRecursionRowLimit": "-1"}
# A local session also plans once (no adaptive re-planning at run time): on the demo data the
# checks took 178 s with both on, 67 s with both off.
LOCAL_SPARK_SQL_CONF = {**SPARK_SQL_CONF, "spark.sql.adaptive.enabled": "false"}


def spark_session() -> Any:
    """A local Spark session (every core of this machine), for `--engine spark` and the
    tests; on a cluster the bundle's run.py is submitted with spark-submit instead."""
    import os

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[*]").appName("excon")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", "4g")
               # small memory pages: a check runs a dozen joins in one task, each sorting or
               # hashing in pages of its own; with the default size (tens of megabytes) the
               # 100,000 demo declarations ran out of memory at the second check
               .config("spark.buffer.pageSize", "2m")
               # a few partitions: the inputs of one machine, not a cluster's
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.session.timeZone", "UTC")
               .getOrCreate())
    for key, value in LOCAL_SPARK_SQL_CONF.items():
        session.conf.set(key, value)
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_register(spark: Any, conn: sqlite3.Connection) -> None:
    """Each table the checks read as a temporary view of a Spark session, its rows sent as
    Arrow batches."""
    import pyarrow as pa

    for table in CHECK_TABLES:
        batches = list(arrow_batches(conn, table))
        schema = batches[0].schema if batches else arrow_schema(conn, table)
        frame = spark.createDataFrame(pa.Table.from_batches(batches, schema=schema))
        frame.createOrReplaceTempView(table)


def spark_findings(conn: sqlite3.Connection, compiled: CompiledRulebook,
                   cache: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """The checks on Spark (a local session): each table the checks read becomes a temporary
    view over the rows sent as Arrow batches, every derived relation a cached view
    (`derive_statements`), then each check's query is collected."""
    spark = cache.get("spark") if cache is not None else None
    if spark is None:
        spark = spark_session()
        if cache is not None:
            cache["spark"] = spark
    spark_register(spark, conn)
    derive = derive_statements(compiled, "spark")
    for sql in derive:
        run_statement(spark, sql)
    # Each check's query on its own, as on DuckDB: Spark's optimizer runs out of memory on
    # the union of every check as one plan. No view is made: Spark analyses a view's query
    # when it is created and again when it is read (about 1 s per check), and the `findings`
    # view over them all took 22 s to create.
    rows = sorted((tuple(row) for rule in compiled.rules
                   for row in spark.sql(rule.sql("spark")).collect()),
                  key=lambda row: (row[0], row[1], row[2]))
    for sql in derive:
        if sql.startswith("DROP VIEW"):  # the cached relations' memory back
            spark.sql(sql)
    return rows
