"""Install the compiled checks in a knowledge base: the support relations they read, the
`check_<rule>` views and `findings`.

The support relations are fixed SQL (no rulebook text in them), parsed and printed by sqlglot
per dialect like the checks. Derived tables are filled from the rulebook and the declarations
in Python: normalised party names and the in-force periods of listings.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import sqlglot
from sqlglot import exp
from sqlite_utils import Database

from dsl import ast
from dsl.check import CheckedRulebook
from dsl.compile import CompiledRulebook, compile_rulebook, union_all
from dsl.diagnostics import Diagnostic
from dsl.names import party_key
from dsl.periods import listing_periods
from kb.schema import declaration_schema

SUPPORT_TABLES = {
    "excon_settings": "CREATE TABLE excon_settings (as_of TEXT)",
    "licence_items": "CREATE TABLE licence_items (licence_no TEXT NOT NULL, entry TEXT NOT NULL,"
                     " PRIMARY KEY (licence_no, entry))",
    "party_name_keys": "CREATE TABLE party_name_keys (name TEXT PRIMARY KEY, key TEXT NOT NULL)",
    "listed_party_keys": "CREATE TABLE listed_party_keys (party TEXT NOT NULL, key TEXT NOT NULL,"
                         " PRIMARY KEY (key, party))",
    "list_entry_periods": "CREATE TABLE list_entry_periods (party TEXT NOT NULL, list TEXT NOT "
                          "NULL, instrument_id TEXT NOT NULL, valid_from TEXT, valid_until TEXT)",
}

SUPPORT_VIEWS = {
    # The date each declaration is judged by: its own date, or one `as of` date for all.
    "judged_declarations": """
        SELECT d.*, COALESCE((SELECT s.as_of FROM excon_settings AS s), d.declared_on)
                 AS judged_on,
               d.value_usd / NULLIF(d.quantity_kg, 0) AS unit_value
        FROM declarations AS d""",
    # Declared party names that match a listed party after normalisation.
    "listed_names": """
        SELECT k.name AS name, lk.party AS party
        FROM party_name_keys AS k JOIN listed_party_keys AS lk ON lk.key = k.key""",
    # A declaration matches an item through its customs code: exactly for a 10-digit reference
    # code, by prefix for an 8-digit tariff line or a 6-digit HS subheading.
    "declaration_items": """
        SELECT d.id AS declaration_id, c.item AS item
        FROM declarations AS d JOIN item_customs_codes AS c ON c.code = d.hs_code
        UNION
        SELECT d.id, c.item FROM declarations AS d JOIN item_customs_codes AS c
          ON LENGTH(c.code) = 8 AND c.code = SUBSTRING(d.hs_code, 1, 8)
        UNION
        SELECT d.id, c.item FROM declarations AS d JOIN item_customs_codes AS c
          ON LENGTH(c.code) = 6 AND c.code = SUBSTRING(d.hs_code, 1, 6)""",
    # Each declaration that names a licence: does the licence fit it, and how much has been
    # drawn on the licence by fitting declarations up to and including this one, in date order.
    "licence_uses": """
        SELECT d.id AS declaration_id, d.licence_no AS licence_no, d.declared_on AS declared_on,
               d.quantity_kg AS quantity_kg, l.licence_no AS found, l.valid_from AS valid_from,
               l.valid_to AS valid_to, l.quantity_kg AS limit_kg,
               CASE WHEN l.holder = d.exporter THEN 1 ELSE 0 END AS holder_ok,
               CASE WHEN l.destination_country IS NULL
                      OR l.destination_country = d.destination_country THEN 1 ELSE 0 END
                 AS destination_ok,
               CASE WHEN l.end_user IS NULL OR l.end_user = d.end_user THEN 1 ELSE 0 END
                 AS end_user_ok,
               CASE WHEN d.declared_on >= l.valid_from AND d.declared_on <= l.valid_to
                    THEN 1 ELSE 0 END AS date_ok,
               CASE WHEN EXISTS (
                   SELECT 1 FROM licence_items AS li
                   WHERE li.licence_no = l.licence_no AND (
                     li.entry = d.hs_code
                     OR (LENGTH(li.entry) < 10
                         AND li.entry = SUBSTRING(d.hs_code, 1, LENGTH(li.entry)))
                     OR EXISTS (
                       SELECT 1 FROM declaration_items AS di JOIN items AS i ON i.name = di.item
                       WHERE di.declaration_id = d.id
                         AND (li.entry = i.control_code OR li.entry = i.name
                              OR EXISTS (SELECT 1 FROM item_group_members AS g
                                         WHERE g.item = i.name AND g.group_name = li.entry)))))
                    THEN 1 ELSE 0 END AS item_ok
        FROM declarations AS d LEFT JOIN licences AS l ON l.licence_no = d.licence_no
        WHERE d.licence_no IS NOT NULL""",
    "licence_cover": """
        SELECT u.declaration_id, u.licence_no,
               CASE WHEN u.found IS NULL OR u.date_ok = 0 OR u.holder_ok = 0
                         OR u.destination_ok = 0 OR u.end_user_ok = 0 OR u.item_ok = 0
                         OR (u.limit_kg IS NOT NULL AND u.drawn_kg > u.limit_kg) THEN 0
                    ELSE 1 END AS covered,
               CASE WHEN u.found IS NULL THEN 'licence ' || u.licence_no || ' is unknown'
                    WHEN u.date_ok = 0 THEN 'licence ' || u.licence_no || ' is valid from '
                         || u.valid_from || ' to ' || u.valid_to || ', not on ' || u.declared_on
                    WHEN u.holder_ok = 0 THEN 'licence ' || u.licence_no
                         || ' is held by another exporter'
                    WHEN u.destination_ok = 0 THEN 'licence ' || u.licence_no
                         || ' is for another destination'
                    WHEN u.end_user_ok = 0 THEN 'licence ' || u.licence_no
                         || ' is for another end user'
                    WHEN u.item_ok = 0 THEN 'licence ' || u.licence_no
                         || ' does not cover this item'
                    WHEN u.limit_kg IS NOT NULL AND u.drawn_kg > u.limit_kg
                    THEN 'licence ' || u.licence_no || ' quantity exhausted: '
                         || CAST(CAST(u.drawn_kg AS BIGINT) AS TEXT) || ' of '
                         || CAST(CAST(u.limit_kg AS BIGINT) AS TEXT) || ' kg'
               END AS problem,
               u.drawn_kg
        FROM (
          SELECT v.*, SUM(CASE WHEN v.found IS NOT NULL AND v.date_ok = 1 AND v.holder_ok = 1
                                    AND v.destination_ok = 1 AND v.end_user_ok = 1
                                    AND v.item_ok = 1 THEN v.quantity_kg ELSE 0 END)
                      OVER (PARTITION BY v.licence_no ORDER BY v.declared_on, v.declaration_id
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS drawn_kg
          FROM licence_uses AS v) AS u""",
}


def support_statements(dialect: str = "sqlite") -> list[str]:
    """DDL of the support tables and views, printed for one SQL dialect."""
    out = [sqlglot.transpile(sql, read="sqlite", write=dialect)[0]
           for sql in SUPPORT_TABLES.values()]
    for name, body in SUPPORT_VIEWS.items():
        select = sqlglot.parse_one(body, read="sqlite")
        out.append(f"CREATE VIEW {name} AS\n" + select.sql(dialect=dialect, pretty=True))
    return out


# Support relations that depend only on the inputs and the rulebook, not on the judging date:
# SQLite materialises them once per build or screening instead of recomputing them per check.
MATERIALISED = {"listed_names": ("name",), "declaration_items": ("declaration_id", "item"),
                "licence_uses": ("declaration_id",), "licence_cover": ("declaration_id",)}


@cache
def _sqlite_select(name: str) -> str:
    return sqlglot.parse_one(SUPPORT_VIEWS[name], read="sqlite").sql(dialect="sqlite")


def materialise(db: Database) -> None:
    """Replace the input-derived support views by tables holding their rows, indexed.

    The first call turns each view into an indexed table; later calls refill the tables in
    place, so the compiled views stay prepared (a screening of one declaration pays no DDL)."""
    for name, key in MATERIALISED.items():
        kind = db.execute("SELECT type FROM sqlite_master WHERE name = ?", [name]).fetchone()
        if kind is not None and kind[0] == "table":
            db.execute(f"DELETE FROM {name}")
            db.execute(f"INSERT INTO {name} {_sqlite_select(name)}")
            continue
        if kind is not None:
            db.execute(f"DROP VIEW {name}")
        db.execute(f"CREATE TABLE {name} AS {_sqlite_select(name)}")
        for column in key:
            db.execute(f"CREATE INDEX {name}_{column} ON {name} ({column})")


def compile_checks(rb: CheckedRulebook) -> tuple[CompiledRulebook, list[Diagnostic]]:
    return compile_rulebook(rb, declaration_schema())


def fill_support(db: Database, rb: CheckedRulebook) -> None:
    """Rows of the derived support tables that depend on the rulebook."""
    conn = db.conn
    keys: list[tuple[str, str]] = []
    for name, party in sorted(rb.parties.items()):
        names = {party.title.value}
        for a in ast.attrs_of(party, ast.Alias):
            names |= {n.value for n in a.names}
        keys.extend((name, k) for k in sorted({party_key(n) for n in names}))
    conn.executemany("INSERT OR IGNORE INTO listed_party_keys (party, key) VALUES (?, ?)", keys)
    rows = []
    for lp in listing_periods(rb):
        for iv in lp.periods.intervals:
            rows.append((lp.party, lp.list, lp.instrument,
                         iv.start.isoformat() if iv.start else None,
                         iv.end.isoformat() if iv.end else None))
    conn.executemany("INSERT INTO list_entry_periods VALUES (?, ?, ?, ?, ?)", rows)


def refresh_inputs(db: Database) -> None:
    """Derived rows that depend on the declarations and licences: party keys, licence items."""
    conn = db.conn
    conn.execute("DELETE FROM party_name_keys")
    names: Iterable[tuple[str]] = conn.execute(
        "SELECT consignee FROM declarations UNION SELECT end_user FROM declarations "
        "WHERE end_user IS NOT NULL UNION SELECT exporter FROM declarations").fetchall()
    conn.executemany("INSERT INTO party_name_keys (name, key) VALUES (?, ?)",
                     ((n, party_key(n)) for (n,) in names))
    conn.execute("DELETE FROM licence_items")
    licences = conn.execute("SELECT licence_no, items FROM licences").fetchall()
    conn.executemany(
        "INSERT OR IGNORE INTO licence_items (licence_no, entry) VALUES (?, ?)",
        ((no, entry) for no, items in licences for entry in str(items).split(";") if entry))
    materialise(db)


def install(db: Database, rb: CheckedRulebook) -> tuple[CompiledRulebook, list[Diagnostic]]:
    """Create the support relations and the compiled views; fill the rulebook-derived rows."""
    for sql in support_statements("sqlite"):
        db.execute(sql)
    fill_support(db, rb)
    compiled, diags = compile_checks(rb)
    for sql in compiled.statements("sqlite"):
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
                any(t.name == "declarations" and t.alias_or_name == "x"
                    for t in node.args["query"].find_all(exp.Table)):
            return exp.true()
        return node

    selects = [r.query.transform(one) for r in compiled.rules]
    if not selects:
        return compiled.findings_query().sql(dialect=dialect, pretty=True)
    ordered = exp.select("*").from_(exp.Subquery(this=union_all(selects), alias="f")).order_by(
        "rule")
    return ordered.sql(dialect=dialect, pretty=True)
