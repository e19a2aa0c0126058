"""DuckDB's reader of a declarations or licences file, for a screening on DuckDB: DuckDB's CSV
reader and SQL tests accept the plain forms, the validators of `fields` decide every other
cell, with the same rows, rejections and report as the row-by-row load.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kb.inputs.contracts import KNOWN_COUNTRIES, contract_for
from kb.inputs.csv_files import (
    CSV_FIELD_LIMIT,
    MAX_FIELD,
    NOT_UTF8,
    REJECT_SQL,
    checked_header,
    keep_problem,
    rejection,
    unknown_columns,
)
from kb.inputs.fields import (
    MAX_QUANTITY_KG,
    country_field,
    date_field,
    hs_code_field,
    key_field,
    number_field,
    optional_country_field,
    optional_field,
    optional_number_field,
    percent_field,
    quantity_field,
    required_field,
    unknown_entries,
)
from kb.inputs.report import LoadReport, Problem

# ---------------------------------------------------------------- DuckDB's reader
# A screening on DuckDB reads its declarations and licences files with DuckDB's CSV reader
# and validates them there, column by column, in SQL. Each SQL test accepts only a plain
# form of what the field's validator accepts and gives the same value for it (a text with
# printable ends and no control character, a date YYYY-MM-DD, digits with a decimal point, a
# known country code); a cell it does not accept goes through the validator, which is the
# authority, as on the row-by-row path. Fields with few distinct values and no SQL test
# (parameters, licence kinds, items and agents) go through the validator once per distinct
# value. A file DuckDB's reader would read differently from Python's (quoted line breaks,
# blank lines, a byte order mark, bytes that are not UTF-8, a row of the wrong width, a field
# over MAX_FIELD) returns None: the caller then loads it row by row, which names each
# problem's line.

_ENDS = r"[\p{L}\p{M}\p{N}\p{P}\p{S}]"  # never whitespace to Python's str.strip
_TEXT = (f"regexp_full_match(@v, '{_ENDS}("
         r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*"  # no control character (CONTROL)
         f"{_ENDS})?')")
_DECIMAL = "regexp_full_match(@v, '[0-9]{1,15}([.][0-9]{1,15})?')"
_DOUBLE = "TRY_CAST(@v AS DOUBLE)"
_COUNTRY = f"@v IN ({', '.join(repr(c) for c in sorted(KNOWN_COUNTRIES))})"
_OR_EMPTY = "(@v = '' OR {})"

# validator -> (its value, whether the SQL test accepts it), of a cell `@v` ('' when empty)
SQL_CHECKS: dict[Callable[[str], Any], tuple[str, str]] = {
    required_field: ("@v", _TEXT),
    key_field: ("@v", f"{_TEXT} AND strpos(@v, chr(10)) = 0 AND strpos(@v, chr(13)) = 0"),
    optional_field: ("NULLIF(@v, '')", _OR_EMPTY.format(_TEXT)),
    date_field: ("@v", "regexp_full_match(@v, '[0-9]{4}-[0-9]{2}-[0-9]{2}') AND "
                  "@v >= '0001-01-01' AND TRY_CAST(@v AS DATE) IS NOT NULL"),
    country_field: ("@v", _COUNTRY),
    optional_country_field: ("NULLIF(@v, '')", _OR_EMPTY.format(_COUNTRY)),
    hs_code_field: ("@v", "regexp_full_match(@v, '[0-9]{8}([0-9]{2})?')"),
    number_field: (_DOUBLE, _DECIMAL),  # 15 digits at most: never above MAX_NUMBER
    optional_number_field: (f"CASE WHEN @v <> '' THEN {_DOUBLE} END", _OR_EMPTY.format(_DECIMAL)),
    percent_field: (f"CASE WHEN @v <> '' THEN {_DOUBLE} END",
               _OR_EMPTY.format(f"{_DECIMAL} AND {_DOUBLE} <= 100")),
    quantity_field: (_DOUBLE, f"{_DECIMAL} AND {_DOUBLE} > 0 AND {_DOUBLE} <= {MAX_QUANTITY_KG!r}"),
}


def load_csv_duckdb(db: Database, duck: Any, table: str, source: str | Path,
                    name: str | None = None, run_id: int | None = None,
                    keep_problems: int = 20, today: str | None = None,
                    reject_future: bool = False) -> LoadReport | None:
    """`load_csv` into the DuckDB connection `duck`'s `table` (typed as the knowledge base's
    table), with DuckDB's reader: the same rows, values, rejections (kept in `rejected_rows`
    with their line and reason) and report. None when the file needs the row-by-row path
    (see above); nothing is then changed."""
    import duckdb
    import pyarrow as pa

    from kb.store.arrow import arrow_schema

    contract = contract_for(db.conn, table)
    path = Path(source)
    name = name or str(source)
    today = today or dt.datetime.now(dt.UTC).date().isoformat()
    sha, lines, last = hashlib.sha256(), 0, b""
    try:
        with path.open("rb") as f:
            start = f.read(3)
            if start == b"\xef\xbb\xbf":
                return None
            f.seek(0)
            for chunk in iter(lambda: f.read(1 << 22), b""):
                sha.update(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            f.seek(0)
            reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape",
                                                 newline=""), strict=True)
            try:
                first_row = next(reader, None)
            except csv.Error:
                return None
            if reader.line_num > 1 or any(NOT_UTF8.search(h) for h in first_row or []):
                return None
    except OSError:
        return None
    header, wanted, positions = checked_header(contract, first_row, name)
    width = len(header)
    raw = [f"c{i}" for i in range(width)]  # the file's columns, under names of ours
    kinds = [SQL_CHECKS.get(v) for _, v in contract.fields]
    derived_from = {of for _, of, _ in contract.derived}
    if any(kinds[wanted.index(f)] is not None for f in derived_from):
        return None  # a derived column is computed in Python, from a field validated there
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in raw)
    try:
        duck.execute("CREATE OR REPLACE TEMP TABLE excon_raw AS SELECT * FROM read_csv(?, "
                     f"columns = {{{columns}}}, "
                     "header = false, skip = 1, auto_detect = false, delim = ',', "
                     "quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
                     f"max_line_size = {CSV_FIELD_LIMIT * max(width, 1)})", [str(path)])
    except duckdb.Error:
        return None
    rows, longest = duck.execute(
        "SELECT COUNT(*), MAX(GREATEST(" + ", ".join(f"LENGTH(COALESCE({c}, ''))" for c in raw)
        + ")) FROM excon_raw").fetchone()
    if rows + 1 != lines + (last not in (b"\n", b"")) or (longest or 0) > MAX_FIELD:
        duck.execute("DROP TABLE excon_raw")
        return None

    def cell(pos: int | None) -> str:
        return "''" if pos is None else f"COALESCE(r.c{pos}, '')"

    types = {f.name: f.type for f in arrow_schema(db.conn, table)}
    stored = wanted + [n for n, _, _ in contract.derived]
    values, tests, joins = [], [], []
    for k, ((field_name, validator), pos, kind) in enumerate(
            zip(contract.fields, positions, kinds, strict=True)):
        if kind is not None:
            values.append(kind[0].replace("@v", cell(pos)))
            tests.append(kind[1].replace("@v", cell(pos)))
            continue
        # the validator on each distinct text (and what is derived from its value)
        texts = [t for (t,) in duck.execute(f"SELECT DISTINCT {cell(pos)} FROM excon_raw AS r")
                 .fetchall()]
        mapped: dict[str, list[Any]] = {"text": [], "ok": [], field_name: []}
        for n, of, _ in contract.derived:
            if of == field_name:
                mapped[n] = []
        for t in texts:
            try:
                value, ok = validator(t), True
            except ValueError:
                value, ok = None, False
            mapped["text"].append(t)
            mapped["ok"].append(ok)
            mapped[field_name].append(value)
            for n, of, derive in contract.derived:
                if of == field_name:
                    mapped[n].append(derive(value) if value is not None else None)
        duck.register(f"excon_map_{k}", pa.table(
            {c: pa.array(v, type=pa.string() if c == "text" else pa.bool_() if c == "ok"
                         else types[c]) for c, v in mapped.items()}))
        joins.append(f"LEFT JOIN excon_map_{k} AS m{k} ON m{k}.text = {cell(pos)}")
        values.append(f"m{k}.{field_name}")
        tests.append(f"m{k}.ok")
    for n, of, _ in contract.derived:
        values.append(f"m{wanted.index(of)}.{n}")
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE excon_checked AS SELECT r.rowid AS row, "
        + ", ".join(f"{v} AS {c}" for v, c in zip(values, stored, strict=True))
        + f", ({' AND '.join(f'COALESCE({t}, false)' for t in tests)}) AS ok "
        f"FROM excon_raw AS r {' '.join(joins)}")
    for k in range(len(kinds)):
        if kinds[k] is None:
            duck.unregister(f"excon_map_{k}")

    report = LoadReport(table, name, today=today, sha256=sha.hexdigest(),
                        unknown_columns=unknown_columns(contract, header))
    bad: dict[int, list[Problem]] = {}
    fixed: list[list[Any]] = []
    # the cells a SQL test did not accept, through the validators as on the row-by-row path
    for row, *cells in duck.execute(
            f"SELECT c.row, {', '.join(f'r.{c}' for c in raw)} FROM excon_checked AS c "
            "JOIN excon_raw AS r ON r.rowid = c.row WHERE NOT c.ok ORDER BY c.row").fetchall():
        line = row + 2
        got: list[Any] = []
        for (field_name, validator), pos in zip(contract.fields, positions, strict=True):
            text = (cells[pos] or "") if pos is not None else ""
            try:
                got.append(validator(text))
            except ValueError as e:
                bad.setdefault(row, []).append(Problem(line, field_name, text, str(e)))
        if row not in bad:
            got += [derive(got[wanted.index(of)]) if got[wanted.index(of)] is not None
                    else None for _, of, derive in contract.derived]
            fixed.append([row, *got])
    duck.register("excon_fixed", pa.table(
        {c: pa.array([f[k] for f in fixed], type=pa.int64() if c == "row" else types[c])
         for k, c in enumerate(["row", *stored])}))
    duck.execute("CREATE OR REPLACE TEMP TABLE excon_good AS SELECT * FROM (SELECT "
                 f"{', '.join(['row', *stored])} FROM excon_checked WHERE ok UNION ALL "
                 "SELECT * FROM excon_fixed)")
    duck.unregister("excon_fixed")
    # Checks across the fields of rows valid field by field, in the row-by-row load's order:
    # the contract's row check, dates after today, the vocabulary, then repeated keys. Each
    # (row, column, its value or None: the file's cell, expected) joins `excon_rejected`.
    later: list[tuple[int, str, str | None, str]] = []
    duck.execute("CREATE OR REPLACE TEMP TABLE excon_rejected (row BIGINT)")

    def exclude(rows: list[int]) -> None:
        if rows:
            duck.register("excon_rows", pa.table({"row": pa.array(rows, type=pa.int64())}))
            duck.execute("INSERT INTO excon_rejected SELECT row FROM excon_rows")
            duck.unregister("excon_rows")

    def reject(found: Sequence[tuple[int, str, str | None, str]]) -> None:
        later.extend(found)
        exclude([f[0] for f in found])

    exclude(sorted(bad))  # rejected field by field

    kept = "FROM excon_good WHERE row NOT IN (SELECT row FROM excon_rejected)"
    if contract.row_check is not None:
        found = []
        for row, *vals in duck.execute(f"SELECT row, {', '.join(stored)} FROM excon_good "
                                       "ORDER BY row").fetchall():
            wrong = contract.row_check(dict(zip(stored, vals, strict=True)))
            if wrong is not None:
                found.append((row, wrong[0], None, wrong[1]))
        reject(found)
    if contract.not_future:
        date = contract.not_future  # a field name of the contract's, not the file's
        future = duck.execute(f"SELECT row, {date} {kept} AND {date} > ? ORDER BY row",
                              [today]).fetchall()
        if reject_future:
            reject([(row, date, d, f"a date not after today ({today})") for row, d in future])
        elif future:
            report.future_rows, report.first_future_line = len(future), future[0][0] + 2
    vocabulary = contract.vocabulary[1](db.conn) if contract.vocabulary else frozenset()
    if vocabulary and contract.vocabulary:
        column = contract.vocabulary[0]
        unknown = {entries: why for (entries,) in duck.execute(
            f"SELECT DISTINCT {column} {kept}").fetchall()
            if (why := unknown_entries(entries, vocabulary))}
        if unknown:
            reject([(row, column, None, unknown[v]) for row, v in duck.execute(
                f"SELECT row, {column} {kept} ORDER BY row").fetchall() if v in unknown])
    key = contract.key
    reject([(row, key, k, f"a unique {key}; line {first + 2} has it")
            for row, k, first in duck.execute(
                f"SELECT row, {key}, first FROM (SELECT row, {key}, MIN(row) OVER "
                f"(PARTITION BY {key}) AS first {kept}) WHERE row > first "
                "ORDER BY row").fetchall()])
    duck.execute(f'DELETE FROM "{table}"')  # names are ours
    duck.execute(f'INSERT INTO "{table}" ({", ".join(stored)}) SELECT {", ".join(stored)} '
                 f"{kept} ORDER BY row")
    report.loaded = duck.execute(f"SELECT COUNT(*) {kept}").fetchone()[0]
    rejected = []
    if bad or later:
        raws = {row: cells for row, *cells in duck.execute(
            f"SELECT rowid, {', '.join(cell(k) for k in range(width))} FROM excon_raw AS r "
            "WHERE rowid IN (SELECT row FROM excon_rejected)").fetchall()}
        for row, column, value, expected in later:
            if value is None:
                pos = positions[wanted.index(column)]
                value = raws[row][pos] if pos is not None else ""
            bad[row] = [Problem(row + 2, column, value, expected)]
        for row in sorted(bad):
            report.rejected_rows += 1
            for p in bad[row]:
                rejected.append(rejection(run_id, name, p, header, raws[row]))
                keep_problem(report, p, keep_problems)
    for temp in ("excon_raw", "excon_checked", "excon_good", "excon_rejected"):
        duck.execute(f"DROP TABLE {temp}")
    conn = db.conn
    if conn.in_transaction:
        conn.commit()
    with conn:
        conn.executemany(REJECT_SQL, rejected)
    return report
