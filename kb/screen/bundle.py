"""Self-contained bundles of the compiled checks, one per SQL engine, for tools that run them
without excon.

`excon export --dialect D --out DIR` writes, for SQLite, DuckDB, PostgreSQL or Spark:

- `schema.sql`: every table the checks read, with their keys and indexes where the engine
  uses them;
- `rulebook/*.csv` and `load-rulebook.sql`: the rulebook's and the reference rows;
- `load-inputs.sql`: loads `inputs/*.csv`, which `excon prepare` writes for a set of input
  files: the declarations, licences and parties as excon validated them, and the relations only
  Python computes (party-name keys, fuzzy matches of declared names against the lists, the
  links between parties, licence items);
- `derive.sql`: every other support relation and window, stored as a table (indexed on
  PostgreSQL and SQLite, cached on Spark), from the loaded inputs; run again after new inputs;
- `checks.sql`: one view per rule plus `findings` (on SQLite after the judged declarations'
  view; on DuckDB `findings` is a table `findings.sql` fills, and Spark's run.py writes each
  check's rows itself);
- `selfcheck.sql`: the `excon_selfcheck` view, and a statement that fails, naming what is
  wrong, when a table the checks need is empty or the prepared relations are not those of the
  loaded declarations;
- `manifest.json`: each table, its columns and types, where its rows come from, its file, and
  the order to run the scripts in; and `README.md` with the commands.

The CSV files have a header row, every text quoted, and an unquoted `\\N` for NULL.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any, cast

import sqlglot
from sqlglot import exp

from dsl.compile import CompiledRulebook, create_view
from kb.screen.engines import (
    CHECK_TABLES,
    INPUT_TABLES,
    LOCAL_SPARK_SQL_CONF,
    SPARK_SQL_CONF,
    TYPES,
    primary_key,
    secondary_indexes,
)
from kb.screen.statements import check_statements, derive_statements

RULEBOOK_TABLES = tuple(t for t in CHECK_TABLES if t not in INPUT_TABLES)
# The bundle's own record of what its inputs/ were prepared with (no check reads it: the
# self-check compares it with the bundle's rulebook version)
PREPARED = "excon_prepared"
BUNDLE_INPUTS = (*INPUT_TABLES, PREPARED)
BUNDLE_TABLES = (*CHECK_TABLES, PREPARED)


def _with_prepared(conn: sqlite3.Connection, version: str | None = None) -> None:
    """The screener's (temporary) `excon_prepared` table, holding `version` when given."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {PREPARED} (rulebook_version TEXT)")
    if version is not None:
        conn.execute(f"DELETE FROM {PREPARED}")
        conn.execute(f"INSERT INTO {PREPARED} VALUES (?)", [version])
SCRIPTS = ("schema.sql", "load-rulebook.sql", "load-inputs.sql", "derive.sql", "checks.sql",
           "selfcheck.sql")
# DuckDB plans a union of every check as one query in time that grows faster than the checks
# (see kb.screen.engines.duckdb_findings): there `findings` is a table that findings.sql fills check
# by check, to be run again after new inputs are loaded.
DUCKDB_SCRIPTS = (*SCRIPTS, "findings.sql")
NULL = "\\N"


# Spark reads the CSV files as temporary views, whose schema the load scripts give: no
# schema.sql; run.py runs the scripts and writes the findings check by check.
SPARK_SCRIPTS = SCRIPTS[1:]


def scripts(dialect: str) -> tuple[str, ...]:
    return {"duckdb": DUCKDB_SCRIPTS, "spark": SPARK_SCRIPTS}.get(dialect, SCRIPTS)


def csv_field(v: object) -> str:
    """A CSV field as the bundle writes it: every text quoted, so that the unquoted `\\N`
    is NULL and an empty text stays empty."""
    if v is None:
        return NULL
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace('"', '""') + '"'


# What each table holds, for the manifest.
SOURCES = {
    "declarations": "the declarations file, as excon validated it (excon prepare)",
    "licences": "the licences file, as excon validated it (excon prepare)",
    "trade_parties": "the parties file, as excon validated it (excon prepare)",
    "excon_settings": "one row with the date every declaration is judged by, or none "
                      "(excon prepare --as-of)",
    "licence_items": "each licence's items, split from its items column (excon prepare)",
    "licence_agent_keys": "each licence's agents by their normalised key (excon prepare; "
                          "Python: case, script, legal forms)",
    "party_name_keys": "each declared and listed party name with its normalised key "
                       "(excon prepare; Python: case, script, legal forms)",
    "listed_names": "declared names matching a listed party, with the score (excon prepare; "
                    "Python: fuzzy matching)",
    "party_reach": "parties linked by address, telephone or ownership within the hops the "
                   "rules ask (excon prepare; Python: the party graph)",
    "unit_values": "a published unit-value table, if one is given (excon prepare "
                   "--unit-values)",
    PREPARED: "the rulebook version excon prepare prepared inputs/ with (the self-check "
              "refuses another than the bundle's)",
}


def _ident(name: str, dialect: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """The table's columns and their SQLite types, in order."""
    return [(str(c[1]), str(c[2]).upper()) for c in
            conn.execute(f'PRAGMA table_info("{table}")')]  # names are ours


def write_csv(conn: sqlite3.Connection, table: str, path: Path) -> int:
    """The table's rows, header first; returns how many."""
    cursor = conn.execute(f'SELECT * FROM "{table}"')  # names are ours, not the user's
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(csv_field(c) for c, _ in columns(conn, table)) + "\n")
        for batch in iter(lambda: cursor.fetchmany(50_000), []):
            f.writelines(",".join(map(csv_field, row)) + "\n" for row in batch)
            n += len(batch)
    return n


def _drop(kind: str, name: str, dialect: str) -> str:
    """`DROP kind IF EXISTS name` (on PostgreSQL with what depends on it: the check views,
    which checks.sql makes again)."""
    return exp.Drop(tables=[exp.to_table(name)], kind=kind, exists=True,
                    cascade=dialect == "postgres").sql(dialect=dialect) + ";"


def schema_sql(conn: sqlite3.Connection, dialect: str) -> str:
    """Every table the checks read, made anew (each script can be run again: the bundle's
    scripts from the top start over, and load-inputs.sql, derive.sql, checks.sql and
    selfcheck.sql alone screen new inputs). On PostgreSQL and SQLite with its primary key and
    the indexes excon's own tables have (the declarations' by country, party and code: the
    checks' candidate sets and probes use them); DuckDB's hash joins need none."""
    statements = []
    for table in BUNDLE_TABLES:
        cols = columns(conn, table)
        defs: list[exp.Expression] = [
            exp.ColumnDef(this=exp.to_identifier(c, quoted=True),
                          kind=exp.DataType.build(TYPES[dialect].get(t, "TEXT"),
                                                  dialect=dialect))
            for c, t in cols]
        key = primary_key(conn, table)
        if key and dialect != "duckdb":
            defs.append(exp.PrimaryKey(expressions=[exp.to_identifier(c, quoted=True)
                                                    for c in key]))
        create = exp.Create(this=exp.Schema(this=exp.to_table(table), expressions=defs),
                            kind="TABLE")
        statements.append(_drop("TABLE", table, dialect) + "\n"
                          + create.sql(dialect=dialect, pretty=True) + ";")
        if dialect != "duckdb":
            statements += [sql + ";" for sql in secondary_indexes(conn, table)]
    return "\n\n".join(statements) + "\n"


def load_sql(conn: sqlite3.Connection, tables: tuple[str, ...], folder: str,
             dialect: str) -> str:
    """Statements that load `folder/<table>.csv` into each table, run from the bundle's
    folder: `COPY` on DuckDB, psql's `\\copy` on PostgreSQL, the sqlite3 shell's `.import`
    through a staging table on SQLite (which reads every field as text: `\\N` becomes NULL).
    Each table is emptied first: loading new inputs replaces the old ones (it appended
    them, duplicates and all, when a DuckDB bundle's inputs were loaded again)."""
    out = []
    for table in tables:
        path = f"{folder}/{table}.csv"
        name = _ident(table, dialect)
        if dialect != "spark":  # Spark's views over the files are replaced
            out.append(f"DELETE FROM {name};")
        if dialect == "duckdb":
            out.append(f"COPY {name} FROM '{path}' (FORMAT csv, HEADER true, NULLSTR '\\N', "
                       "ALLOW_QUOTED_NULLS false, QUOTE '\"', ESCAPE '\"');")
        elif dialect == "spark":
            typed = ", ".join(f"{_ident(c, 'spark')} {TYPES['spark'].get(t, 'STRING')}"
                              for c, t in columns(conn, table))
            # run.py puts the bundle's folder before each path (Spark resolves relative paths
            # against its working directory, which spark-submit does not set)
            out.append(f"CREATE OR REPLACE TEMPORARY VIEW {name} ({typed}) USING csv OPTIONS "
                       f"(path '{path}', header 'true', nullValue '\\\\N', quote '\"', "
                       "escape '\"', multiLine 'true', mode 'FAILFAST');")
        elif dialect == "postgres":
            out.append(f"\\copy {name} FROM '{path}' WITH (FORMAT csv, HEADER true, "
                       "NULL '\\N')")
        else:
            staging = f"excon_load_{table}"
            cols = [c for c, _ in columns(conn, table)]
            insert = exp.insert(
                exp.select(*(exp.Nullif(this=exp.column(c, quoted=True),
                                        expression=exp.Literal.string(NULL)) for c in cols))
                .from_(exp.to_table(staging)),
                exp.to_table(table), columns=[exp.to_identifier(c, quoted=True) for c in cols])
            out += [f"DROP TABLE IF EXISTS {staging};",
                    f".import --csv {path} {staging}",
                    insert.sql(dialect="sqlite") + ";",
                    f"DROP TABLE {staging};"]
    return "\n".join(out) + "\n"


def derive_sql(compiled: CompiledRulebook, dialect: str) -> str:
    return "\n\n".join(s + ";" for s in derive_statements(compiled, dialect)) + "\n"


def checks_sql(compiled: CompiledRulebook, dialect: str) -> str:
    checks = check_statements(compiled, dialect)
    if dialect == "duckdb":
        checks = checks[:-1]  # `findings` is findings.sql's table there
    elif dialect == "spark":
        # run.py writes each check's findings: a `findings` view over them all is never read,
        # and Spark took over a minute to analyse it when it was created
        checks = checks[:-1]
    # the views of an earlier run go first, `findings` (which reads the others) before them
    names = [s.split(None, 3)[2] for s in checks if s.startswith("CREATE VIEW ")]
    head = "".join(_drop("VIEW", n, dialect) + "\n" for n in reversed(names))
    head += "\n" if head else ""
    if dialect == "postgres":
        # JIT-compiling the wide check expressions costs seconds to minutes and saves nothing
        # (the findings query took 20-40 times longer with it): off for the scripts' session;
        # the README gives the reading session the same setting
        head = f"SET jit = {POSTGRES_SETTINGS['jit']};\n\n" + head
    return head + "\n\n".join(s + ";" for s in checks) + "\n"


# What PostgreSQL needs set for the checks, in the scripts and in the session that reads them.
POSTGRES_SETTINGS = {"jit": "off"}


def findings_sql(compiled: CompiledRulebook) -> str:
    """DuckDB: `findings` as a table, filled by each check in turn."""
    first, *rest = [exp.select("*").from_(exp.to_table(r.view)) for r in compiled.rules]
    create = exp.Create(this=exp.to_table("findings"), kind="TABLE", replace=True,
                        expression=first)
    inserts = [exp.insert(q, "findings") for q in rest]
    return "\n".join(s.sql(dialect="duckdb") + ";" for s in [create, *inserts]) + "\n"


def selfcheck_view(required: tuple[str, ...], version: str = "") -> exp.Expression:
    """One row per problem: a table the checks need that is empty, or declared names and
    licences the prepared relations do not know (they were prepared for other inputs)."""
    def problem(text: str, where: exp.Expression) -> exp.Select:
        return exp.select(exp.alias_(exp.Literal.string(text), "problem")).where(where)

    def empty(table: str) -> exp.Expression:
        return exp.Not(this=exp.Exists(this=exp.select("1").from_(table)))

    parts: list[exp.Select] = [
        problem(f"table {t} is empty: load the bundle's rows", empty(t)) for t in required]
    parts.append(problem("table declarations is empty: run excon prepare and load-inputs.sql",
                         empty("declarations")))
    unknown_names = cast(exp.Expression, sqlglot.condition("""
        EXISTS (SELECT 1 FROM declarations AS d
                WHERE NOT EXISTS (SELECT 1 FROM party_name_keys AS k WHERE k.name = d.exporter)
                   OR NOT EXISTS (SELECT 1 FROM party_name_keys AS k WHERE k.name = d.consignee)
                   OR (d.end_user IS NOT NULL AND NOT EXISTS (
                         SELECT 1 FROM party_name_keys AS k WHERE k.name = d.end_user)))"""))
    parts.append(problem("party_name_keys does not know every declared name: the prepared "
                         "relations are for other declarations (run excon prepare again)",
                         unknown_names))
    unknown_licences = cast(exp.Expression, sqlglot.condition("""
        EXISTS (SELECT 1 FROM licences AS l
                WHERE NOT EXISTS (SELECT 1 FROM licence_items AS i
                                  WHERE i.licence_no = l.licence_no))"""))
    parts.append(problem("licence_items has no items for some licences: the prepared "
                         "relations are for other licences (run excon prepare again)",
                         unknown_licences))
    if version:
        parts.append(problem("inputs/ records no rulebook version (excon_prepared.csv): "
                             "prepare them with excon prepare --bundle", empty(PREPARED)))
        parts.append(exp.select(exp.alias_(exp.DPipe(
            this=exp.DPipe(this=exp.Literal.string("inputs/ were prepared with rulebook "
                                                   "version "),
                           expression=exp.column("rulebook_version")),
            expression=exp.Literal.string(f", this bundle is rulebook version {version}: "
                                          "prepare them again with excon prepare --bundle")),
            "problem")).from_(PREPARED).where(exp.NEQ(
                this=exp.column("rulebook_version"), expression=exp.Literal.string(version))))
    for table, key in (("declarations", "id"), ("licences", "licence_no"),
                       ("trade_parties", "name")):
        twice = exp.Exists(this=exp.select("1").from_(table).group_by(key).having(
            exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))))
        parts.append(problem(f"table {table} has a {key} more than once: its inputs were "
                             "loaded twice, or the file repeats one (load-inputs.sql empties "
                             "the tables first)", twice))
    union: exp.Expression = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    return union


def selfcheck_sql(dialect: str, required: tuple[str, ...], version: str = "") -> str:
    view = ("" if dialect == "spark" else _drop("VIEW", "excon_selfcheck", dialect) + "\n") \
        + create_view("excon_selfcheck", selfcheck_view(required, version), dialect)
    fail = {
        # DuckDB's error() raises with the text
        "duckdb": "SELECT error('excon_selfcheck: ' || string_agg(problem, '; ')) "
                  "FROM excon_selfcheck HAVING COUNT(*) > 0;",
        "postgres": "DO $$ BEGIN IF EXISTS (SELECT 1 FROM excon_selfcheck) THEN RAISE "
                    "EXCEPTION 'excon_selfcheck: %', (SELECT string_agg(problem, '; ') FROM "
                    "excon_selfcheck); END IF; END $$;",
        "spark": "SELECT raise_error('excon_selfcheck: ' || concat_ws('; ', "
                 "collect_list(problem))) FROM excon_selfcheck HAVING COUNT(*) > 0;",
        # a trigger is SQLite's only way to raise an error
        "sqlite": "DROP TABLE IF EXISTS temp.excon_selfcheck_failed;\n"
                  "CREATE TEMP TABLE excon_selfcheck_failed (problem TEXT);\n"
                  "CREATE TEMP TRIGGER excon_selfcheck_fails BEFORE INSERT ON "
                  "excon_selfcheck_failed BEGIN SELECT RAISE(FAIL, 'excon_selfcheck: the "
                  "bundle is incomplete or stale, SELECT * FROM excon_selfcheck says why'); "
                  "END;\n"
                  "INSERT INTO excon_selfcheck_failed SELECT problem FROM excon_selfcheck;",
    }[dialect]
    return view + ";\n\n" + fail + "\n"


def manifest(conn: sqlite3.Connection, compiled: CompiledRulebook, dialect: str,
             rows: dict[str, int]) -> dict[str, Any]:
    version = compiled.version
    return {
        "format": "excon-bundle/1",
        "dialect": dialect,
        "rulebook_version": version,
        "scripts": list(scripts(dialect)),
        "checks": [r.view for r in compiled.rules],
        **({"spark_conf": SPARK_SQL_CONF,
            # what run.py sets too when its master is local (one machine)
            "spark_local_conf": {k: v for k, v in LOCAL_SPARK_SQL_CONF.items()
                                 if k not in SPARK_SQL_CONF}} if dialect == "spark" else {}),
        **({"postgres_settings": POSTGRES_SETTINGS} if dialect == "postgres" else {}),
        "null": NULL,
        "tables": [
            {"name": t,
             "columns": [{"name": c, "type": TYPES[dialect].get(ty, "TEXT")}
                         for c, ty in columns(conn, t)],
             "source": SOURCES.get(t, "the rulebooks (excon export)"),
             "file": f"{'inputs' if t in BUNDLE_INPUTS else 'rulebook'}/{t}.csv",
             **({"rows": rows[t]} if t in rows else {})}
            for t in BUNDLE_TABLES],
    }


_RUN = {
    "sqlite": "sqlite3 -bail kb.sqlite {reads}",
    "duckdb": "python -c \"import duckdb; c = duckdb.connect('kb.duckdb'); "
              "[c.execute(open(f).read()) for f in {files}]\"",
    "postgres": "psql \"$DSN\" -v ON_ERROR_STOP=1 {files}",
    "spark": "spark-submit run.py",
}


def readme(dialect: str, version: str) -> str:
    order = scripts(dialect)
    files = " ".join(f"-f {s}" for s in order)
    reads = " ".join(f"'.read {s}'" for s in order)
    run = _RUN[dialect].format(files=files if dialect == "postgres" else list(order),
                               reads=reads)
    sqlite_null = (" (on SQLite a text that is exactly `\\N` loads as NULL)"
                   if dialect == "sqlite" else "")
    duck = (" On DuckDB `findings` is a table that findings.sql fills check by check (DuckDB "
            "plans one union of every check slowly): run it again after loading new inputs."
            if dialect == "duckdb" else "")
    union = "" if dialect == "spark" else ", with `findings` their union"
    where = {
        "postgres": "\n\n   The database `$DSN` names must exist (`createdb excon`, then "
                    "`DSN=postgresql:///excon`),\n   and psql must run in this folder: "
                    "load-*.sql read their CSV files by relative paths.",
        "duckdb": "\n\n   (Python's `duckdb` package is all it needs; no `duckdb` shell.)",
        "sqlite": "\n\n   (The `sqlite3` shell, version 3.32 or later, run in this folder.)",
    }.get(dialect, "")
    again = ", ".join(f"`{s}`" for s in order if s not in ("schema.sql", "load-rulebook.sql"))
    if dialect == "postgres":
        duck += (" PostgreSQL's JIT compiler makes the findings query 20 to 40 times slower on "
                 "these wide expressions: checks.sql turns it off for the scripts, and the "
                 "session that reads the findings should too (`PGOPTIONS='-c jit=off'`, or "
                 "`SET jit = off;` first; `ALTER DATABASE … SET jit = off` for every session).")
    query = {"sqlite": "sqlite3 kb.sqlite", "duckdb": "duckdb kb.duckdb",
             "postgres": "PGOPTIONS='-c jit=off' psql \"$DSN\""}.get(dialect)
    also = ""
    if dialect == "duckdb":
        sql = "SELECT * FROM findings ORDER BY declaration_id, rule, outcome"
        also = ("\n\n   or, without the `duckdb` shell:\n\n       python -c \"import duckdb; "
                f"print(duckdb.connect('kb.duckdb').sql('{sql}'))\"")
    read = (f"""       {query}
       SELECT * FROM findings ORDER BY declaration_id, rule, outcome;{also}""" if query else
            """       run.py writes them to findings/ as Parquet, one check at a time (Spark's
       optimizer runs out of memory on one plan for the union of every check); read them
       with Spark, DuckDB or pyarrow. It prints each script and check as it goes, and on a
       local master (one machine) it also turns adaptive query execution off (the
       manifest's `spark_local_conf`: 533 s at 2,000 declarations with it on, 207 s off).
       On a cluster, over Parquet:

           spark-submit --master yarn run.py --inputs hdfs:///excon/day/ --format parquet \\
               --out hdfs:///excon/findings/day/""")
    return f"""# excon checks for {dialect} (rulebook version {version})

This folder runs excon's compiled checks on {dialect} without excon: the tables, the
rulebook's rows, every support relation and one view per rule{union}.

1. Prepare the inputs (the one step that needs excon, for what only Python computes: party-name
   keys, fuzzy matches against the lists, links between parties), with the rulebooks this
   folder keeps in `rulebooks/` (another rulebook version is refused):

       excon prepare --bundle . --declarations declarations.csv --licences licences.csv \\
           --parties parties.csv

   It writes `inputs/` and `inputs/prepared.json` (the rulebook version and the files).

2. From this folder, create the tables, load the rows, create the checks and check the
   result (the last script fails, naming the problem, when a table is empty or `inputs/` was
   prepared for other declarations):

       {run}{where}

3. Read the findings:

{read}

`manifest.json` lists every table, its columns and types, where its rows come from and its
file; the scripts run in the order it gives.{duck}

Every script can be run again. The whole list from the top starts over; for another day's
inputs, prepare them into `inputs/` (step 1) and run {again} again: the input tables are
emptied before they are loaded, so new inputs replace the old ones, and the self-check fails
if a declaration, licence or party is there twice.

CSV files have a header row, every text quoted and an unquoted `\\N` for NULL{sqlite_null}.
The findings are the same, row for row and word for word, as `excon screen` gives for the
same files and rulebooks.
"""


def write_bundle(conn: sqlite3.Connection, compiled: CompiledRulebook, dialect: str,
                 out: Path) -> dict[str, Any]:
    """The bundle for `dialect` in `out`, from a screener's knowledge base (`conn`: the
    rulebook's rows, no inputs)."""
    (out / "rulebook").mkdir(parents=True, exist_ok=True)
    (out / "inputs").mkdir(exist_ok=True)
    _with_prepared(conn)
    rows = {t: write_csv(conn, t, out / "rulebook" / f"{t}.csv") for t in RULEBOOK_TABLES}
    required = tuple(t for t in RULEBOOK_TABLES if rows[t])
    texts = {
        **({} if dialect == "spark" else {"schema.sql": schema_sql(conn, dialect)}),
        "load-rulebook.sql": load_sql(conn, RULEBOOK_TABLES, "rulebook", dialect),
        "load-inputs.sql": load_sql(conn, BUNDLE_INPUTS, "inputs", dialect),
        "derive.sql": derive_sql(compiled, dialect),
        "checks.sql": checks_sql(compiled, dialect),
        "selfcheck.sql": selfcheck_sql(dialect, required, compiled.version),
        "README.md": readme(dialect, compiled.version),
    }
    if dialect == "duckdb":
        texts["findings.sql"] = findings_sql(compiled)
    if dialect == "spark":
        texts["run.py"] = (Path(__file__).parent / "spark_run.py").read_text("utf-8")
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
    # the rulebooks themselves, for `excon prepare --bundle` (and for a reader of the law)
    from kb.screen.screener import write_kept_rulebooks

    shutil.rmtree(out / "rulebooks", ignore_errors=True)
    write_kept_rulebooks(conn, out / "rulebooks")
    found = manifest(conn, compiled, dialect, rows)
    (out / "manifest.json").write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return found


def write_inputs(conn: sqlite3.Connection, out: Path, version: str) -> dict[str, int]:
    """The input tables and the relations derived from them in Python, loaded into `conn`
    (a screener's knowledge base inside `Screener.loaded`), as `out/<table>.csv`, and the
    rulebook version they were prepared with (`excon_prepared.csv`)."""
    out.mkdir(parents=True, exist_ok=True)
    _with_prepared(conn, version)
    return {t: write_csv(conn, t, out / f"{t}.csv") for t in BUNDLE_INPUTS}
