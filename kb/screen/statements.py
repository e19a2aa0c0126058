"""The SQL of the support relations and the checks, per engine, built as sqlglot trees, and
their installation into a screener's database.

Apart from `kb.screen.checks` (the support relations' definitions and the rows a screening
derives from its inputs) so that a screener started from excon's cache (`kb.screen.start`),
which keeps these statements' results, imports neither sqlglot nor the rules compiler.
"""

from __future__ import annotations

from typing import cast

import sqlglot
from sqlglot import exp
from sqlite_utils import Database

from dsl.cache import cached_json, cached_statements
from dsl.compile import (
    ROW_KEY,
    CompiledRulebook,
    compile_rulebook,
    create_view,
    fold_case,
    union_all,
)
from dsl.diagnostics import Diagnostic
from dsl.model import law
from dsl.names import party_key
from dsl.periods import listing_periods
from dsl.rulebook import CheckedRulebook
from kb.screen.support import (
    CLUSTERED,
    JUDGED_VIEWS,
    MATERIALISED,
    SUPPORT_TABLES,
    SUPPORT_VIEWS,
    Stored,
    modules_digest,
)
from kb.store.schema import declaration_schema


def day_number(date: exp.Expression) -> exp.Expression:
    """Days from 1970-01-01 to an ISO date, as each dialect computes date differences."""
    return exp.DateDiff(this=exp.cast(date, "DATE"),
                        expression=exp.cast(exp.Literal.string("1970-01-01"), "DATE"),
                        unit=exp.var("DAY"))


def view_select(name: str, dialect: str | None = None) -> exp.Expression:
    """The support view's query as a tree (EXCON_DAY(x) becomes `day_number(x)`); for SQLite,
    the judged declarations with the rowid the checks' candidate sets select there
    (dsl.compile.for_dialect)."""
    def day(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.upper() == "EXCON_DAY":
            return day_number(node.expressions[0])
        return node

    select = sqlglot.parse_one(SUPPORT_VIEWS[name], read="sqlite").transform(day)
    if name == "judged_declarations" and dialect == "sqlite":
        assert isinstance(select, exp.Select)
        select = select.select(exp.alias_(exp.column("rowid", table="d"), ROW_KEY))
    return select


def support_statements(dialect: str = "sqlite") -> list[str]:
    """DDL of the support tables and views, printed for one SQL dialect: kept in excon's
    cache under a digest of the modules that define them (parsing and printing them took a
    third of a screener's start)."""
    def make() -> list[str]:
        out = [sqlglot.transpile(sql, read="sqlite", write=dialect)[0]
               + (" WITHOUT ROWID" if dialect == "sqlite" and name in CLUSTERED else "")
               for name, sql in SUPPORT_TABLES.items()]
        return out + [create_view(name, view_select(name, dialect), dialect)
                      for name in SUPPORT_VIEWS]

    return cached_json(f"support statements {dialect}", modules_digest(), make,
                       lambda s: isinstance(s, str), "support")

def derived_relations(compiled: CompiledRulebook,
                      dialect: str = "sqlite") -> list[tuple[str, exp.Expression, Stored]]:
    """The relations derived from the inputs that every check shares, in the order they are
    made (each reads only the inputs, the rulebook and those before it): the support
    relations of MATERIALISED, the compiled rulebook's windows, and on engines other than
    SQLite the judged declarations."""
    out: list[tuple[str, exp.Expression, Stored]] = [
        (name, view_select(name), stored) for name, stored in MATERIALISED.items()]
    out += [(name, fold_case(query, dialect), Stored(compiled.window_keys[name])
             if name in compiled.window_keys else Stored(None, (("declaration_id",),)))
            for name, query in sorted(compiled.windows.items())]
    if dialect != "sqlite":
        out += [(name, view_select(name), Stored(("id",), (("declared_on",),)))
                for name in JUDGED_VIEWS]
    return out


def derive_statements(compiled: CompiledRulebook, dialect: str) -> list[str]:
    """Statements that store every derived relation as a table on `dialect`, filled from the
    loaded inputs, so that no check derives one again per row; run again after new inputs.

    - DuckDB: a table per relation (its columnar scans and hash joins need no index).
    - PostgreSQL: a table per relation with a B-tree index on its key and on the columns
      checks probe it by, then ANALYZE, so the planner knows its size before the checks run
      (the checks' views depend on the tables: dropping one drops them, `CASCADE`).
    - Spark: a cached temporary view per relation (`CACHE TABLE … AS`), computed once in the
      executors' memory, after dropping the one an earlier screening in the session made.
    - SQLite: a table per relation with the same indexes (excon's own SQLite files store them
      clustered by key; see `materialise`)."""
    out: list[str] = []
    for name, query, stored in derived_relations(compiled, dialect):
        table = exp.to_table(name)
        if dialect == "spark":
            # a view of the same name, from an earlier screening in this session, dropped
            # (and its cache freed): `CACHE TABLE … AS` does not replace one
            out.append(f"DROP VIEW IF EXISTS {name}")
            out.append(exp.Cache(this=table, lazy=False, expression=query).sql(
                dialect="spark", pretty=True))
            continue
        drop = sqlglot.parse_one(f"DROP TABLE IF EXISTS {name}"  # our name
                                 + (" CASCADE" if dialect == "postgres" else ""),
                                 read="postgres")
        create = exp.Create(this=table, kind="TABLE", expression=query,
                            replace=dialect == "duckdb")
        out += [create.sql(dialect=dialect, pretty=True)] if dialect == "duckdb" else \
            [drop.sql(dialect=dialect), create.sql(dialect=dialect, pretty=True)]
        if dialect in ("postgres", "sqlite"):
            for columns in ((stored.key,) if stored.key else ()) + stored.indexes:
                index = exp.Create(
                    this=exp.Index(this=exp.to_identifier(f"{name}_{'_'.join(columns)}"),
                                   table=table,
                                   params=exp.IndexParameters(
                                       columns=[exp.column(c) for c in columns])),
                    kind="INDEX")
                out.append(index.sql(dialect=dialect))
        if dialect == "postgres":
            out.append(f"ANALYZE {name}")  # our name
    return out


def check_statements(compiled: CompiledRulebook, dialect: str) -> list[str]:
    """The views over the derived relations: one per rule and `findings` (on SQLite first the
    judged declarations)."""
    views = [create_view(name, view_select(name, dialect), dialect)
             for name in JUDGED_VIEWS if dialect == "sqlite"]
    return views + cached_statements(f"{dialect} checks", compiled.version,
                                     lambda: compiled.statements(dialect, windows=False))

def compile_checks(rb: CheckedRulebook) -> tuple[CompiledRulebook, list[Diagnostic]]:
    return compile_rulebook(rb, declaration_schema())


def fill_support(db: Database, rb: CheckedRulebook, compiled: CompiledRulebook) -> None:
    """Rows of the derived support tables that depend on the rulebook."""
    conn = db.conn

    def party_keys() -> list[list[str]]:  # (the Chinese names' keys load pypinyin's tables)
        return [[name, k] for name, party in sorted(law(rb).parties.items())
                for k in sorted({party_key(n) for n in party.spellings})]
    keys = cached_json("listed party keys", rb.version, party_keys, lambda r: isinstance(
        r, list) and len(r) == 2 and all(isinstance(x, str) for x in r), "keys")
    conn.executemany("INSERT OR IGNORE INTO listed_party_keys (party, key) VALUES (?, ?)", keys)
    rows = []
    for lp in listing_periods(rb):
        for iv in lp.periods.intervals:
            for measure in lp.measures or (None,):
                rows.append((lp.party, lp.list, lp.instrument, lp.provision, measure,
                             iv.start.isoformat() if iv.start else None,
                             iv.end.isoformat() if iv.end else None))
    conn.executemany("INSERT INTO list_entry_periods VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO value_range_codes (value_range, code, low, high) "
                     "VALUES (?, ?, ?, ?)", rb.value_range_rows())
    conn.executemany("INSERT INTO item_minerals (item, rulebook, mineral) VALUES (?, ?, ?)",
                     rb.mineral_rows())
    conn.executemany("INSERT INTO excon_windows (name, sql, unique_key) VALUES (?, ?, ?)",
                     [(name, q.sql(dialect="sqlite"), ",".join(compiled.window_keys[name])
                       if name in compiled.window_keys else None)
                      for name, q in compiled.windows.items()])
    conn.executemany("INSERT INTO party_reach_needs (via, subject, other, hops) "
                     "VALUES (?, ?, ?, ?)",
                     sorted(((*k, hops) for k, hops in compiled.reach_needs.items()),
                            key=str))

def install(db: Database, rb: CheckedRulebook, compiled: CompiledRulebook | None = None
            ) -> tuple[CompiledRulebook, list[Diagnostic]]:
    """Create the support relations and the compiled views; fill the rulebook-derived rows.
    `compiled`: the rulebook's checks when they were compiled already (`dsl.load` does)."""
    for sql in support_statements("sqlite"):
        db.execute(sql)
    diags: list[Diagnostic] = []
    if compiled is None:
        compiled, diags = compile_checks(rb)
    fill_support(db, rb, compiled)
    # (their SQL from excon's cache when this rulebook was compiled before: printing the
    # checks is most of a screener's start)
    for sql in cached_statements("sqlite views", compiled.version,
                                 lambda: compiled.statements("sqlite")):
        db.execute(sql)
    return compiled, diags

def declaration_findings_query(compiled: CompiledRulebook, dialect: str = "sqlite") -> str:
    """The findings of one declaration (`:declaration_id`), judged as of `:as_of` (empty or
    NULL: the declaration's own date), as one statement with named parameters.

    A read-only server cannot set `excon_settings`, so each check's `judged_declarations` is
    replaced by the same relation with the date taken from the parameter, restricted to the
    one declaration (built from the trees, not by editing SQL text)."""
    judged = sqlglot.parse_one(SUPPORT_VIEWS["judged_declarations"], read="sqlite")
    assert isinstance(judged, exp.Select)

    def as_of(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Subquery) and node.find(exp.Table) is not None and \
                node.find(exp.Table).name == "excon_settings":  # type: ignore[union-attr]
            return exp.Nullif(this=exp.Placeholder(this="as_of"),
                              expression=exp.Literal.string(""))
        return node

    judged = judged.transform(as_of)
    assert isinstance(judged, exp.Select)
    judged = judged.where(
        exp.EQ(this=exp.column("id", table="d"),
               expression=exp.Placeholder(this="declaration_id")))

    def one(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name == "judged_declarations":
            return exp.Subquery(this=judged.copy(), alias=exp.TableAlias(
                this=exp.to_identifier(node.alias_or_name)))
        # a check's candidate filter (`d.id IN (SELECT x.id FROM declarations AS x …)`) is
        # for scans of every declaration; with one declaration its own tests decide
        if isinstance(node, exp.In) and isinstance(node.args.get("query"), exp.Subquery) and \
                any(t.alias_or_name == "x" for t in node.args["query"].find_all(exp.Table)):
            return exp.true()
        return node

    selects = [cast(exp.Query, r.query.transform(one)) for r in compiled.rules]
    if not selects:
        return compiled.findings_query().sql(dialect=dialect, pretty=True)
    ordered = exp.select("*").from_(exp.Subquery(this=union_all(selects), alias="f")).order_by(
        "rule")
    return ordered.sql(dialect=dialect, pretty=True)
