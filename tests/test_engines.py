"""Moving the knowledge base's rows to another engine (Arrow batches to DuckDB and Spark):
nothing may change on the way (NULL and '' stay apart, text that looks like a NULL marker,
quotes, newlines, Unicode, floats to the last bit, a whole number in a REAL column)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kb.screen.engines import copy_to_duckdb, secondary_indexes
from kb.store.arrow import arrow_batches
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

    from kb.inputs import demo
    from kb.inputs.load import load_csv
    from kb.screen.engines import DuckRows, create_tables
    from kb.store.tables import MIGRATIONS

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


# Cells the validators accept only after stripping or reject, beside plain ones: Unicode
# spaces at either end, control and zero-width characters, numbers Python's float() reads
# but DuckDB's SQL tests do not, impossible and padded dates, customs codes with dots, and
# for licences kinds in capitals, unknown items, empty entries and validity ending early.
HOSTILE_CELLS = [
    "", " ", "  x ", "\u00a0x", "x\u00a0", "\tx", "x\x01y", "x\x7f", "\u3000x", "x\u2003",
    "x\u200b", "\u0301x", "\ufeffx", "名字", "\U0001f600", "a,b", 'q"uote', "1e3", "1_000",
    " 5", "-1", "inf", "nan", "0", "0.0", "1.", ".5", "\u0663", "100", "100.5", "1" * 20,
    "500000001", "2023-02-30", "2023-2-1", " 2023-01-01", "0000-01-01", "2031-05-05",
    "2019-01-01", "7601.10.0000", "76011000 ", "760110000", " us", "us", "XX", "CN ",
    "energy_density=150 Wh/kg", "energy_density=150", "bogus=1",
    "graphite_type=natural; energy_density=1 kWh/kg", "INDIVIDUAL", " General", "genera",
    "gallium-metal", "gallium-metal; 2811.29.40", "unobtainium", "gallium-metal;;", "123",
    "Agent A; Agent B"]


def _two_loads(table: str, path: Path, reject_future: bool
               ) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """The same file validated row by row into DuckDB (`DuckRows`) and by DuckDB's reader
    (`load_csv_duckdb`), each into a knowledge base with the rulebooks (whose items a
    licence may name): each as (report, the rows DuckDB holds, the rejections kept)."""
    import duckdb

    from kb.inputs.contracts import CONTRACTS
    from kb.inputs.duckdb_reader import load_csv_duckdb
    from kb.inputs.load import load_csv
    from kb.screen import Screener
    from kb.screen.engines import DuckRows, create_tables

    out = []
    for reader in ("python", "duckdb"):
        db = Screener([RULEBOOKS]).db
        duck = duckdb.connect()
        create_tables(duck, db.conn, "duckdb", (table,))
        if reader == "python":
            sink = DuckRows(duck, db.conn, table, rows=500)
            report = load_csv(db, table, path, today="2030-01-01",
                              reject_future=reject_future, rows_to=sink)
            sink.close()
        else:
            got = load_csv_duckdb(db, duck, table, path, today="2030-01-01",
                                  reject_future=reject_future)
            assert got is not None, "DuckDB's reader declined a plain CSV file"
            report = got
        out.append((
            (report.loaded, report.rejected_rows, report.problems, report.future_rows,
             report.first_future_line, report.sha256),
            duck.execute(f"SELECT * FROM {table} ORDER BY {CONTRACTS[table].key}").fetchall(),
            db.conn.execute('SELECT line, "column", value, expected, row FROM rejected_rows '
                            "ORDER BY id").fetchall()))
    return out[0], out[1]


@pytest.mark.parametrize(("table", "layout", "reject_future"), [
    ("declarations", "as generated", False), ("declarations", "as generated", True),
    ("declarations", "columns reversed, CRLF", False),
    ("declarations", "no optional columns", True),
    ("licences", "as generated", False), ("licences", "columns reversed, CRLF", False),
    ("licences", "no optional columns", False)])
def test_duckdbs_reader_keeps_and_rejects_what_the_row_by_row_load_does(
        tmp_path: Path, table: str, layout: str, reject_future: bool) -> None:
    """`excon screen --engine duckdb` reads a plain CSV file with DuckDB's reader and validates
    it in SQL, the validators deciding every cell a SQL test does not accept: the rows, values
    (floats to the last bit), rejections with their lines and reasons (the row check across
    fields, the licences' vocabulary, repeated keys, dates after today) and the report are
    those of the row-by-row load."""
    import csv
    import io
    import random

    from kb.inputs import demo

    files = demo.write(demo.generate(1_200, seed=5, rulebooks=[RULEBOOKS]), tmp_path / "csv")
    header, *rows = list(csv.reader(io.StringIO(
        files[table].read_text(encoding="utf-8"), newline="")))
    pick = random.Random(f"{table}{layout}{reject_future}")
    for row in rows:
        for _ in range(pick.choice([0, 0, 1, 2])):
            row[pick.randrange(len(header))] = pick.choice(HOSTILE_CELLS)
    rows += [list(pick.choice(rows)) for _ in range(15)]  # repeated keys
    if table == "licences":  # validity ending before it starts; an item no rulebook names
        for row in rows[:: len(rows) // 5]:
            row[header.index("valid_to")] = "2000-01-01"
        for row in rows[3:: len(rows) // 5]:
            row[header.index("items")] = "gallium-metal;unobtainium"
    columns = list(range(len(header)))
    if layout.startswith("columns reversed"):
        columns.reverse()
    elif layout == "no optional columns":
        columns = [i for i, h in enumerate(header) if h not in ("end_use", "parameters",
                                                                 "agents")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if "CRLF" in layout else "\n")
    writer.writerows([[r[i] for i in columns] for r in [header, *rows]])
    path = tmp_path / f"{table}.csv"
    path.write_bytes(out.getvalue().encode("utf-8"))

    row_by_row, duckdb_reader = _two_loads(table, path, reject_future)
    assert duckdb_reader == row_by_row
    (loaded, rejected, *_), _, reasons = row_by_row
    assert rejected > 30 and loaded > 100 and len(reasons) >= rejected  # the test bites
    columns_named = {r[1] for r in reasons}
    expected = {r[3] for r in reasons}
    if table == "declarations":
        assert columns_named >= {"id", "declared_on", "hs_code", "quantity_kg",
                                 "consignee_country"}
    else:
        assert columns_named >= {"licence_no", "kind", "items", "valid_to"}
        assert any("no rulebook names 'unobtainium'" in e for e in expected)
        assert any(e.startswith("a date on or after valid_from") for e in expected)


@pytest.mark.parametrize("change", ["a quoted line break", "a byte order mark",
                                    "bytes that are not UTF-8", "a row one field short",
                                    "a blank line"])
def test_files_duckdbs_reader_would_read_otherwise_go_row_by_row(
        tmp_path: Path, change: str) -> None:
    """A file DuckDB's reader would split or decode differently from Python's (or whose
    problem only the row-by-row load can place on its line) is declined, with nothing
    changed; the screening then loads it row by row."""
    import duckdb
    from sqlite_utils import Database

    from kb.inputs import demo
    from kb.inputs.duckdb_reader import load_csv_duckdb
    from kb.screen.engines import create_tables
    from kb.store.tables import MIGRATIONS

    files = demo.write(demo.generate(50, seed=5, rulebooks=[RULEBOOKS]), tmp_path / "csv")
    data = files["declarations"].read_bytes()
    lines = data.split(b"\n")
    row = lines[3]
    changed = {
        "a quoted line break": row + b'"x\ny"',
        "a byte order mark": row,
        "bytes that are not UTF-8": row.replace(b",", b",\xff", 1),
        "a row one field short": row.rsplit(b",", 1)[0],
        "a blank line": row + b"\n",
    }[change]
    data = b"\n".join([*lines[:3], changed, *lines[4:]])
    if change == "a quoted line break":  # the break inside the row's last (quoted) field
        data = data.replace(changed, row.rsplit(b",", 1)[0] + b',"x\ny"')
    if change == "a byte order mark":
        data = b"\xef\xbb\xbf" + data
    path = tmp_path / "declarations.csv"
    path.write_bytes(data)
    db = Database(memory=True)
    MIGRATIONS.apply(db)
    duck = duckdb.connect()
    create_tables(duck, db.conn, "duckdb", ("declarations",))
    duck.execute("INSERT INTO declarations (id) VALUES ('kept')")
    assert load_csv_duckdb(db, duck, "declarations", path) is None
    assert duck.execute("SELECT id FROM declarations").fetchall() == [("kept",)]
    assert duck.execute("SELECT COUNT(*) FROM duckdb_tables() WHERE temporary").fetchone() \
        == (0,)


def test_duckdb_keeps_to_its_memory_limit_and_spills_into_a_folder_of_its_own(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A screening's DuckDB takes `EXCON_DUCKDB_MEMORY_LIMIT` (else a third of the machine's
    memory, not DuckDB's 80 %), and writes what does not fit into a temporary folder that goes
    with it, not into `.tmp` in the working directory; a limit that is not a size is an
    error that names the setting."""
    from kb.screen import Screener
    from tests.test_compile import decl

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXCON_DUCKDB_MEMORY_LIMIT", "1GB")
    screener = Screener([RULEBOOKS])
    screener.screen([decl("d", "2024-06-01", to="US")], engine="duckdb")
    duck = screener.engines["duckdb"]
    limit, spill = duck.execute("SELECT current_setting('memory_limit'), "
                                "current_setting('temp_directory')").fetchall()[0]
    assert limit in ("953.6 MiB", "1.0 GiB", "1000.0 MiB"), limit
    assert Path(spill).is_absolute() and not Path(spill).is_relative_to(tmp_path)
    screener.close()
    del duck, screener
    import gc

    gc.collect()
    assert not Path(spill).exists()
    monkeypatch.delenv("EXCON_DUCKDB_MEMORY_LIMIT")
    fresh = copy_to_duckdb(sqlite3.connect(":memory:"), ())
    [(default,)] = fresh.execute("SELECT current_setting('memory_limit')").fetchall()
    import os

    third = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 3
    value, unit = default.split()
    assert float(value) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit] == \
        pytest.approx(third, rel=0.05), default
    monkeypatch.setenv("EXCON_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="EXCON_DUCKDB_MEMORY_LIMIT='lots'"):
        copy_to_duckdb(sqlite3.connect(":memory:"), ())
