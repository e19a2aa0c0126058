"""SQLite tables as Arrow: the schema of a table's declared column types, and its rows as
record batches. The other engines (DuckDB, Spark) and DuckDB's reader of the inputs read
the knowledge base's rows in these types."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

# a column's declared SQLite type -> its Arrow type
ARROW_TYPES = {"TEXT": "string", "FLOAT": "float64", "REAL": "float64", "INTEGER": "int64",
               "": "string"}


def arrow_batches(conn: sqlite3.Connection, table: str, rows: int = 100_000,
                  schema: Any = None) -> Iterator[Any]:
    """The table's rows as Arrow record batches, typed by the columns' declared types (or by
    `schema`): Arrow's columns go to DuckDB and Spark without a row-by-row insert."""
    import pyarrow as pa

    schema = schema or arrow_schema(conn, table)
    cursor = conn.execute(f'SELECT * FROM "{table}"')  # names are ours, not the user's
    for chunk in iter(lambda: cursor.fetchmany(rows), []):
        columns = list(zip(*chunk, strict=True))
        yield pa.record_batch([pa.array(columns[i], type=f.type) for i, f in enumerate(schema)],
                              schema=schema)


def arrow_schema(conn: sqlite3.Connection, table: str) -> Any:
    import pyarrow as pa

    return pa.schema([(str(c[1]), getattr(pa, ARROW_TYPES.get(str(c[2]).upper(), "string"))())
                      for c in conn.execute(f'PRAGMA table_info("{table}")')])
