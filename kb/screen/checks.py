"""Install the compiled checks in a knowledge base: the support relations they read, the
`check_<rule>` views and `findings`.

The support relations are fixed SQL (no rulebook text in them), parsed and printed by sqlglot
per dialect like the checks. Derived tables are filled from the rulebook and the declarations
in Python: normalised party names and the in-force periods of listings.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast

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
from dsl.graph import PartyFacts, PartyGraph, parse_via
from dsl.model import law
from dsl.names import PartyMatcher, party_key
from dsl.periods import listing_periods
from dsl.rulebook import CheckedRulebook
from kb.screen.value_ranges import CODE_VALUE_RANGES
from kb.store.schema import declaration_schema

SUPPORT_TABLES = {
    "excon_settings": "CREATE TABLE excon_settings (as_of TEXT)",
    "licence_items": "CREATE TABLE licence_items (licence_no TEXT NOT NULL, entry TEXT NOT NULL,"
                     " PRIMARY KEY (licence_no, entry))",
    "party_name_keys": "CREATE TABLE party_name_keys (name TEXT PRIMARY KEY, key TEXT NOT NULL)",
    # each licence's agents by their normalised key (a licence names its agents in one column)
    "licence_agent_keys": "CREATE TABLE licence_agent_keys (licence_no TEXT NOT NULL, "
                          "key TEXT NOT NULL, PRIMARY KEY (licence_no, key))",
    "listed_party_keys": "CREATE TABLE listed_party_keys (party TEXT NOT NULL, key TEXT NOT NULL,"
                         " PRIMARY KEY (key, party))",
    # Each listing's in-force periods (amendments applied), one row per measure it imposes
    # (`measure` NULL: a listing that imposes none), with the act that made it.
    "list_entry_periods": "CREATE TABLE list_entry_periods (party TEXT NOT NULL, list TEXT NOT "
                          "NULL, instrument_id TEXT NOT NULL, provision TEXT, measure TEXT, "
                          "valid_from TEXT, valid_until TEXT)",
    # Declared names matching a listed party (dsl.names.PartyMatcher): the spelling on the
    # list it matched best and the score; the checks apply each list's `match threshold`.
    "listed_names": "CREATE TABLE listed_names (name TEXT NOT NULL, party TEXT NOT NULL, "
                    "alias TEXT NOT NULL, score REAL NOT NULL, score_text TEXT NOT NULL, "
                    "PRIMARY KEY (name, party))",
    # Parties reachable from each declared party through the links `via` (dsl.graph).
    "party_reach": "CREATE TABLE party_reach (via TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL,"
                   " hops INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (a, via, b))",
    # Which links the compiled rules follow, between which parties of a declaration (`other`
    # NULL: to listed parties), and how far (filled from the rulebook).
    "party_reach_needs": "CREATE TABLE party_reach_needs (via TEXT NOT NULL, subject TEXT NOT "
                         "NULL, other TEXT, hops INTEGER NOT NULL)",
    # Reference unit values (USD/kg) of customs codes, from the rulebook's `value range`s.
    "value_range_codes": "CREATE TABLE value_range_codes (value_range TEXT NOT NULL, code TEXT "
                         "NOT NULL, low REAL NOT NULL, high REAL NOT NULL, "
                         "PRIMARY KEY (code, value_range))",
    # The compiled rulebook's windows over earlier declarations and other relations (their
    # SQLite queries, and the columns of their unique key, comma-separated, if they have
    # one), which `materialise` turns into tables.
    "excon_windows": "CREATE TABLE excon_windows (name TEXT PRIMARY KEY, sql TEXT NOT NULL, "
                     "unique_key TEXT)",
    # Declared names of linked parties and their connected group of links (scratch space of
    # the link search; a table of its own so that a screening runs no DDL).
    "excon_party_groups": "CREATE TABLE excon_party_groups (name TEXT PRIMARY KEY, "
                          "grp TEXT NOT NULL)",
    # Each item's mineral: its smallest group (windows `with same group`).
    "item_minerals": "CREATE TABLE item_minerals (item TEXT NOT NULL, rulebook TEXT NOT NULL, "
                     "mineral TEXT NOT NULL, PRIMARY KEY (item, rulebook))",
}

# On SQLite, the support tables probed by their primary key are stored clustered by it
# (WITHOUT ROWID; sqlglot does not print that clause, so it is added to our own DDL here):
# a probe by key is then one B-tree descent, where a rowid table needs one in the key's index
# and another in the table. Their rows are short, as such tables should be.
CLUSTERED = frozenset({"licence_items", "licence_agent_keys", "party_name_keys",
                       "listed_party_keys", "listed_names",
                       "party_reach", "value_range_codes", "excon_party_groups",
                       "item_minerals"})



def _decimal_text(value: str, places: int) -> str:
    """SQL for `value` as text, rounded half up to `places` decimals, trailing zeros dropped
    (100.5 -> '100.5', 1200 -> '1200', 0.25 -> '0.25'), the same on every engine: integer
    arithmetic on the rounded units, not an engine's float formatting."""
    scale = 10 ** places
    units = f"CAST(FLOOR(({value}) * {scale} + 0.5) AS BIGINT)"
    whole = f"CAST(FLOOR({units} / {float(scale)}) AS BIGINT)"
    frac = f"({units} - {scale} * {whole})"
    cases = [f"WHEN {frac} = 0 THEN ''"]
    for trailing in range(places - 1, -1, -1):  # the fewest digits that show the fraction
        step = 10 ** trailing
        digits = places - trailing
        pad = " ".join(f"WHEN {frac} < {10 ** k * step} THEN '{'0' * (digits - k)}'"
                       for k in range(1, digits))
        shown = f"CAST(CAST({frac} / {step} AS BIGINT) AS TEXT)"
        cases.append(f"WHEN {frac} % {step} = 0 THEN '.' || "
                     + (f"CASE {pad} ELSE '' END || " if pad else "") + shown)
    return f"(CAST({whole} AS TEXT) || CASE {' '.join(cases)} END)"


def _fits(drawn: str, amount: str, limit: str, slack: float) -> str:
    """SQL: 1 when `amount` more fits under `limit` (none: no limit) after `drawn`."""
    return (f"CASE WHEN {limit} IS NULL OR {drawn} + {amount} <= {limit} + {slack} "
            "THEN 1 ELSE 0 END")


def _accepted(drawn_kg: str, drawn_usd: str) -> str:
    """SQL: 1 when the use `f` fits what is left of both of its licence's limits."""
    return (f"CASE WHEN {_fits(drawn_kg, 'f.quantity_kg', 'f.limit_kg', 0.0005)} = 1 "
            f"AND {_fits(drawn_usd, 'f.value_usd', 'f.limit_usd', 0.005)} = 1 THEN 1 ELSE 0 END")


# what the walk had drawn before the next use: before the previous one, plus what the previous
# one took (nothing when it was refused)
_DRAWN_KG = "(w.before_kg + w.took_kg)"
_DRAWN_USD = "(w.before_usd + w.took_usd)"

SUPPORT_VIEWS = {
    # The typical unit value (USD/kg) of each declared customs code (kb.screen.value_ranges).
    "code_value_ranges": CODE_VALUE_RANGES,
    # Each declared name matching a listed party (`listed_names`) with each listing of that
    # party: the list, the listing's period, the note a finding gives, and the matches'
    # order for that note (best score first, then legal name, list, instrument). One probe
    # by name answers `X is listed on L` and names the match, instead of a join per row.
    "listed_matches": """
        SELECT k.name AS name, k.party AS party, e.list AS list,
               e.instrument_id AS instrument_id, e.provision AS provision,
               e.measure AS measure, e.valid_from AS valid_from,
               e.valid_until AS valid_until, k.score AS score,
               p.legal_name || ' on ' || e.list || ' (listed by ' || e.instrument_id
                 || COALESCE(' ' || e.provision, '')
                 || COALESCE('; ' || e.measure, '')
                 || '; as ''' || k.alias || ''', score ' || k.score_text || ')' AS note,
               ROW_NUMBER() OVER (PARTITION BY k.name
                                  ORDER BY k.score DESC, p.legal_name, e.list,
                                           e.instrument_id, e.provision, e.measure,
                                           e.valid_from) AS position
        FROM listed_names AS k
        JOIN list_entry_periods AS e ON e.party = k.party
        LEFT JOIN parties AS p ON p.name = k.party""",
    # A declaration matches an item through its customs code: exactly for a 10-digit reference
    # code, by prefix for an 8-digit tariff line or a 6-digit HS subheading. The most precise
    # match decides: a code that an item lists exactly (samarium metal, 2805301910) is that item
    # only, not also every item whose shorter line contains it (holmium's 2805.30.19); an
    # 8-digit line likewise hides the 6-digit subheadings.
    "declaration_items": """
        SELECT d.id AS declaration_id, c.item AS item
        FROM declarations AS d JOIN item_customs_codes AS c ON c.code = d.hs_code
        UNION
        SELECT d.id, c.item FROM declarations AS d JOIN item_customs_codes AS c
          ON LENGTH(c.code) = 8 AND c.code = SUBSTRING(d.hs_code, 1, 8)
        WHERE NOT EXISTS (SELECT 1 FROM item_customs_codes AS x
                          WHERE x.code = d.hs_code AND x.rulebook = c.rulebook)
        UNION
        SELECT d.id, c.item FROM declarations AS d JOIN item_customs_codes AS c
          ON LENGTH(c.code) = 6 AND c.code = SUBSTRING(d.hs_code, 1, 6)
        WHERE NOT EXISTS (SELECT 1 FROM item_customs_codes AS x
                          WHERE x.code = d.hs_code AND x.rulebook = c.rulebook)
          AND NOT EXISTS (SELECT 1 FROM item_customs_codes AS x
                          WHERE x.code = SUBSTRING(d.hs_code, 1, 8)
                            AND x.rulebook = c.rulebook)""",
    # The same matches by item: the candidate sets of checks that need some items read it.
    # SQLite stores it clustered by item (`MATERIALISED`), so such a set is one range of it
    # per item, where the item index of `declaration_items` would lead to a row of the table
    # per match, wherever it lies.
    "item_declarations": """
        SELECT di.item AS item, di.declaration_id AS declaration_id
        FROM declaration_items AS di""",
    # Each declaration that names a licence: does the licence fit it (its dates, who holds it
    # or is named as its agent, destination, end user, items)? Names are compared by their
    # normalised key (`party_name_keys`: case, punctuation, legal forms, Chinese in pinyin), as
    # the lists are, so a licence for "Infineon Technologies AG" covers "INFINEON TECHNOLOGIES
    # AG"; `exporter_role` says how the licence names the exporter.
    "licence_uses": """
        SELECT d.id AS declaration_id, d.licence_no AS licence_no, d.declared_on AS declared_on,
               d.quantity_kg AS quantity_kg, d.value_usd AS value_usd,
               l.licence_no AS found, l.valid_from AS valid_from,
               l.valid_to AS valid_to, l.quantity_kg AS limit_kg, l.value_usd AS limit_usd,
               CASE WHEN l.licence_no IS NULL THEN 0
                    WHEN l.holder = d.exporter OR kh.key = ke.key THEN 1
                    WHEN EXISTS (SELECT 1 FROM licence_agent_keys AS la
                                 WHERE la.licence_no = l.licence_no AND la.key = ke.key)
                    THEN 1 ELSE 0 END AS holder_ok,
               CASE WHEN l.licence_no IS NULL THEN NULL
                    WHEN l.holder = d.exporter OR kh.key = ke.key THEN 'holder'
                    WHEN EXISTS (SELECT 1 FROM licence_agent_keys AS la
                                 WHERE la.licence_no = l.licence_no AND la.key = ke.key)
                    THEN 'agent'
                    ELSE 'not named' END AS exporter_role,
               CASE WHEN l.destination_country IS NULL
                      OR l.destination_country = d.destination_country THEN 1 ELSE 0 END
                 AS destination_ok,
               CASE WHEN l.end_user IS NULL OR l.end_user = d.end_user OR kl.key = ku.key
                    THEN 1 ELSE 0 END AS end_user_ok,
               CASE WHEN d.declared_on >= l.valid_from AND d.declared_on <= l.valid_to
                    THEN 1 ELSE 0 END AS date_ok,
               CASE WHEN EXISTS (
                   SELECT 1 FROM licence_items AS li
                   WHERE li.licence_no = l.licence_no AND (
                     li.entry = d.hs_code
                     OR (LENGTH(li.entry) < 10
                         AND li.entry = SUBSTRING(d.hs_code, 1, LENGTH(li.entry)))))
                    -- apart, so that an engine can join the entries to the declaration's items
                    -- (PostgreSQL runs one subplan per row for a correlated test in an OR)
                    OR EXISTS (
                   SELECT 1 FROM licence_items AS li
                   JOIN declaration_items AS di ON di.declaration_id = d.id
                   JOIN items AS i ON i.name = di.item
                   WHERE li.licence_no = l.licence_no
                     AND (li.entry = i.control_code OR li.entry = i.name
                          OR EXISTS (SELECT 1 FROM item_group_members AS g
                                     WHERE g.item = i.name AND g.group_name = li.entry)))
                    THEN 1 ELSE 0 END AS item_ok
        FROM declarations AS d LEFT JOIN licences AS l ON l.licence_no = d.licence_no
        LEFT JOIN party_name_keys AS ke ON ke.name = d.exporter
        LEFT JOIN party_name_keys AS kh ON kh.name = l.holder
        LEFT JOIN party_name_keys AS ku ON ku.name = d.end_user
        LEFT JOIN party_name_keys AS kl ON kl.name = l.end_user
        WHERE d.licence_no IS NOT NULL""",
    # Each declaration's day number (days since 1970-01-01), for windows over earlier
    # declarations and first-seen dates. EXCON_DAY is printed per dialect.
    "declaration_days": """
        SELECT d.id AS declaration_id, EXCON_DAY(d.declared_on) AS day
        FROM declarations AS d""",
    # Each declaration's mineral in each rulebook that groups its item (windows `with same
    # group`), with its day number.
    "declaration_minerals": """
        SELECT di.declaration_id AS declaration_id, m.rulebook AS rulebook,
               MIN(m.mineral) AS mineral, dd.day AS day
        FROM declaration_items AS di
        JOIN item_minerals AS m ON m.item = di.item
        JOIN declaration_days AS dd ON dd.declaration_id = di.declaration_id
        GROUP BY di.declaration_id, m.rulebook, dd.day""",
    # The first declaration naming each party (by normalised name), in any role.
    "party_first_seen": """
        SELECT k.key AS key, MIN(x.declared_on) AS first_on, MIN(x.day) AS first_day
        FROM (SELECT d.exporter AS name, d.declared_on AS declared_on, dd.day AS day
                FROM declarations AS d JOIN declaration_days AS dd ON dd.declaration_id = d.id
              UNION ALL
              SELECT d.consignee, d.declared_on, dd.day
                FROM declarations AS d JOIN declaration_days AS dd ON dd.declaration_id = d.id
              UNION ALL
              SELECT d.end_user, d.declared_on, dd.day
                FROM declarations AS d JOIN declaration_days AS dd ON dd.declaration_id = d.id
               WHERE d.end_user IS NOT NULL) AS x
        JOIN party_name_keys AS k ON k.name = x.name
        GROUP BY k.key""",
    # The walk itself (see `licence_cover`): a relation of its own, its WITH at the top of its
    # query (Spark loses the walk's columns when a recursive WITH sits inside a join).
    "licence_walk": f"""
      WITH RECURSIVE fits AS (
        SELECT v.declaration_id AS declaration_id, v.licence_no AS licence_no,
               v.quantity_kg AS quantity_kg, COALESCE(v.value_usd, 0) AS value_usd,
               v.limit_kg AS limit_kg, v.limit_usd AS limit_usd,
               ROW_NUMBER() OVER (PARTITION BY v.licence_no
                                  ORDER BY v.declared_on, v.declaration_id) AS n
        FROM licence_uses AS v
        WHERE v.found IS NOT NULL AND v.date_ok = 1 AND v.holder_ok = 1
          AND v.destination_ok = 1 AND v.end_user_ok = 1 AND v.item_ok = 1),
      walk AS (
        SELECT f.licence_no AS licence_no, f.n AS n, f.declaration_id AS declaration_id,
               CAST(0 AS DOUBLE) AS before_kg, CAST(0 AS DOUBLE) AS before_usd,
               {_fits("0", "f.quantity_kg", "f.limit_kg", 0.0005)} AS kg_ok,
               {_fits("0", "f.value_usd", "f.limit_usd", 0.005)} AS usd_ok,
               {_accepted("0", "0")} AS accepted,
               CASE WHEN {_accepted("0", "0")} = 1 THEN f.quantity_kg ELSE 0 END AS took_kg,
               CASE WHEN {_accepted("0", "0")} = 1 THEN f.value_usd ELSE 0 END AS took_usd
        FROM fits AS f WHERE f.n = 1
        UNION ALL
        SELECT f.licence_no, f.n, f.declaration_id,
               w.before_kg + w.took_kg, w.before_usd + w.took_usd,
               {_fits(_DRAWN_KG, "f.quantity_kg", "f.limit_kg", 0.0005)},
               {_fits(_DRAWN_USD, "f.value_usd", "f.limit_usd", 0.005)},
               {_accepted(_DRAWN_KG, _DRAWN_USD)},
               CASE WHEN {_accepted(_DRAWN_KG, _DRAWN_USD)} = 1 THEN f.quantity_kg
                    ELSE 0 END,
               CASE WHEN {_accepted(_DRAWN_KG, _DRAWN_USD)} = 1 THEN f.value_usd
                    ELSE 0 END
        FROM walk AS w
        JOIN fits AS f ON f.licence_no = w.licence_no AND f.n = w.n + 1)
      SELECT * FROM walk""",
    # Whether the licence covers each declaration that names it. The declarations it fits draw
    # it down in date order (then by id); one that would take it past its quantity or value
    # limit is refused and draws nothing, so a later one that fits what is left is covered. A
    # walk per licence, one step per use (recursive: no running sum can skip the refused).
    # A sum is compared with a limit to the gram (half a gram, half a cent, of slack), so the
    # order an engine adds in cannot refuse a shipment that exactly fills the licence; the text
    # shows kilograms to the gram and dollars to the cent, trailing zeros dropped.
    "licence_cover": f"""
        SELECT u.declaration_id, u.licence_no,
               CASE WHEN u.found IS NULL OR u.date_ok = 0 OR u.holder_ok = 0
                         OR u.destination_ok = 0 OR u.end_user_ok = 0 OR u.item_ok = 0
                         OR w.accepted = 0 THEN 0
                    ELSE 1 END AS covered,
               CASE WHEN u.found IS NULL THEN 'licence ' || u.licence_no || ' is unknown'
                    WHEN u.date_ok = 0 THEN 'licence ' || u.licence_no || ' is valid from '
                         || u.valid_from || ' to ' || u.valid_to || ', not on ' || u.declared_on
                    WHEN u.holder_ok = 0 THEN 'licence ' || u.licence_no
                         || ' is held by another exporter and does not name this one'
                    WHEN u.destination_ok = 0 THEN 'licence ' || u.licence_no
                         || ' is for another destination'
                    WHEN u.end_user_ok = 0 THEN 'licence ' || u.licence_no
                         || ' is for another end user'
                    WHEN u.item_ok = 0 THEN 'licence ' || u.licence_no
                         || ' does not cover this item'
                    WHEN w.kg_ok = 0
                    THEN 'licence ' || u.licence_no || ' quantity exhausted: '
                         || {_decimal_text("w.before_kg + u.quantity_kg", 3)} || ' of '
                         || {_decimal_text("u.limit_kg", 3)} || ' kg'
                    WHEN w.usd_ok = 0
                    THEN 'licence ' || u.licence_no || ' value exhausted: '
                         || {_decimal_text("w.before_usd + u.value_usd", 2)} || ' of '
                         || {_decimal_text("u.limit_usd", 2)} || ' USD'
               END AS problem,
               w.before_kg + CASE WHEN w.accepted = 1 THEN u.quantity_kg ELSE 0 END
                 AS drawn_kg,
               w.before_usd + CASE WHEN w.accepted = 1 THEN u.value_usd ELSE 0 END
                 AS drawn_usd
        FROM licence_uses AS u
        LEFT JOIN licence_walk AS w ON w.declaration_id = u.declaration_id""",
    # The date each declaration is judged by: its own date, or one `as of` date for all. (Last:
    # it reads licence_uses, which an engine that binds views when they are created must have
    # made first.)
    "judged_declarations": """
        SELECT d.*, COALESCE((SELECT s.as_of FROM excon_settings AS s), d.declared_on)
                 AS judged_on,
               d.value_usd / NULLIF(d.quantity_kg, 0) AS unit_value,
               r.low AS code_value_low, r.high AS code_value_high,
               lu.exporter_role AS exporter_on_licence
        FROM declarations AS d
        LEFT JOIN code_value_ranges AS r ON r.hs_code = d.hs_code
        LEFT JOIN licence_uses AS lu ON lu.declaration_id = d.id""",
}


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

    return cached_json(f"support statements {dialect}", _modules_digest(), make,
                       lambda s: isinstance(s, str), "support")


class Stored(NamedTuple):
    """How SQLite stores a materialised relation: clustered by its primary key (unique; a
    WITHOUT ROWID table, so a probe by key is one B-tree descent, not one in an index and one
    in the table, and a check that reads nothing from the relation drops its LEFT JOIN), or,
    without one, as a rowid table; and its other indexes."""
    key: tuple[str, ...] | None
    indexes: tuple[tuple[str, ...], ...] = ()


# Support relations that depend only on the inputs and the rulebook, not on the judging date:
# SQLite materialises them once per build or screening instead of recomputing them per check.
MATERIALISED: dict[str, Stored] = {
    "code_value_ranges": Stored(("hs_code",)),
    # a declaration's matches are probed by declaration. Not clustered, and no index has the
    # item: with the item in a key, SQLite probes a declaration's matches once per item of a
    # check's `item IN (…)` list instead of once. Scans by item read `item_declarations`.
    "declaration_items": Stored(None, (("declaration_id",),)),
    "item_declarations": Stored(("item", "declaration_id")),
    "declaration_days": Stored(("declaration_id",), (("day",),)),
    "declaration_minerals": Stored(("declaration_id", "rulebook"),
                                   (("rulebook", "mineral", "day"),)),
    "party_first_seen": Stored(("key",)),
    "listed_matches": Stored(("name", "position")),
    # probed by declaration; scanned by how the licence names the exporter (`exporter_on_licence
    # = "agent"`: the few declarations an agent made under another's licence)
    "licence_uses": Stored(("declaration_id",), (("exporter_role",),)),
    "licence_walk": Stored(("declaration_id",)),
    # probed by declaration; the licences' balances read it by licence (without an index a
    # build of 1,000,000 declarations spent more than 15 minutes on them)
    "licence_cover": Stored(("declaration_id",), (("licence_no",),)),
}


# The support views that depend on the judging date: excon's SQLite files keep them as views
# (a served file is judged as of any date); the other engines store them with the rest, since
# a screening loads its date (`excon_settings`) with its inputs.
JUDGED_VIEWS = tuple(name for name in SUPPORT_VIEWS if name not in MATERIALISED)


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


@cache
def _sqlite_select(name: str) -> str:
    return _sqlite_selects()[name]


@cache
def _sqlite_selects() -> dict[str, str]:
    """The materialised support views' queries, printed for SQLite: once a process, and kept in
    excon's cache under a digest of the modules that define them for the next."""
    names = list(MATERIALISED)
    return dict(zip(names, cached_json(
        "support selects", _modules_digest(),
        lambda: [view_select(n).sql(dialect="sqlite") for n in names],
        lambda s: isinstance(s, str), "support"), strict=True))


@cache
def _modules_digest() -> str:
    """A digest of this module and of the one the ranges' query is in: what the support
    relations' SQL is made from (with excon's language code, `dsl.cache`)."""
    return hashlib.sha256(b"".join(
        Path(__file__).with_name(f).read_bytes() for f in ("checks.py", "value_ranges.py"))
    ).hexdigest()


def materialise(db: Database, history: Any = None) -> None:
    """Replace the input-derived support views, and the rulebook's windows, by tables holding
    their rows, stored as `Stored` says.

    The first call turns each view into a table; later calls refill the tables in place, so
    the compiled views stay prepared (a screening of one declaration pays no DDL). `history`
    (a `kb.screen.history.History`): the relations that look at other declarations are made
    over the loaded ones and the part of a knowledge base's history each needs."""
    relations: list[tuple[str, str, Stored]] = [
        (name, _sqlite_select(name), stored) for name, stored in MATERIALISED.items()]
    relations += [(name, sql, Stored(tuple(key.split(",")))
                   if key else Stored(None, (("declaration_id",),)))
                  for name, sql, key in db.execute(
                      "SELECT name, sql, unique_key FROM excon_windows ORDER BY name")]
    kinds = dict(db.execute("SELECT name, type FROM sqlite_master WHERE type IN "
                            "('table', 'view')").fetchall())
    for name, select, stored in relations:  # names and queries are ours, not the user's
        kind = kinds.get(name)
        if kind == "table":
            db.execute(f"DELETE FROM {name}")
            if history is not None and history.fill(name):
                continue
            db.execute(f"INSERT INTO {name} "
                       f"{select if history is None else history.query(name, select)}")
            continue
        if kind is not None:
            db.execute(f"DROP VIEW {name}")
        if stored.key is None:
            db.execute(f"CREATE TABLE {name} AS {select}")
        else:
            # the columns and their declared types, as CREATE TABLE … AS SELECT gives them
            db.execute(f"CREATE TEMP TABLE excon_shape AS SELECT * FROM ({select}) LIMIT 0")
            definition = ", ".join(f'"{c}" {t}'.rstrip() for _, c, t, *_ in
                                   db.execute("PRAGMA temp.table_info(excon_shape)"))
            db.execute("DROP TABLE temp.excon_shape")
            key = ", ".join(stored.key)
            db.execute(f"CREATE TABLE {name} ({definition}, PRIMARY KEY ({key})) WITHOUT ROWID")
            # in key order: each row is appended to the clustered tree, none splits a page
            db.execute(f"INSERT INTO {name} SELECT * FROM ({select}) ORDER BY {key}")
        for columns in stored.indexes:
            db.execute(f"CREATE INDEX {name}_{'_'.join(columns)} ON {name} "
                       f"({', '.join(columns)})")
    if history is not None:
        history.finish()


def tune_connection(conn: sqlite3.Connection) -> None:
    """The settings every connection that runs the checks over a knowledge-base file uses:
    the file memory-mapped (a check probes declarations by key all over the table; mapped
    pages are read without a system call each) and a 64 MiB page cache (the default is 2)."""
    conn.execute("PRAGMA mmap_size = 1073741824")
    conn.execute("PRAGMA cache_size = -65536")


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


def refresh_inputs(db: Database, derive: bool = True, declarations: Any = None,
                   licences_kept: bool = False, history: Any = None,
                   kept: dict[str, Any] | None = None) -> None:
    """Derived rows that depend on the declarations, licences and parties: party keys, listed
    names (fuzzy matches), links between parties, licence items; then, unless `derive` is
    false (the checks run on another engine, which derives them itself), the relations SQL
    derives (`materialise`). `declarations`: the DuckDB connection holding the declarations,
    when a screening loaded them there (`kb.screen.engines.DuckRows`) instead of into `db`; the
    licence items are then made on DuckDB (`DUCKDB_LICENCE_ITEMS`). `licences_kept`: the
    licences and the rows derived from them alone (licence items, agents' keys) are those of
    the last refresh (a screener's standing licences: 190,000 licence items split again for
    each single declaration made a call 300 ms). `history`: the knowledge base whose
    declarations come before the loaded ones (`kb.screen.history.History`). `kept`: what a
    screener keeps from one screening to the next, made from its standing licences
    (`licences` true) and trade parties (`parties` true) alone: the names licences give, the
    graph of links between parties."""
    conn = db.conn
    source = conn if declarations is None else declarations
    kept = kept if kept is not None else {}
    names = [n for (n,) in source.execute(
        "SELECT consignee FROM declarations UNION SELECT end_user FROM declarations "
        "WHERE end_user IS NOT NULL UNION SELECT exporter FROM declarations").fetchall()]
    licensed: list[Any] | None = None
    if kept.get("licence_keys"):  # the standing licences' names keep their keys (see
        # `stand_licence_keys`): only the declared names of the last screening go
        conn.execute("DELETE FROM party_name_keys WHERE name IN "
                     "(SELECT value FROM json_each(?))", [json.dumps(kept["declared_names"])])
        fresh = [n for n in names if n not in kept["licence_names"]]
        conn.executemany("INSERT INTO party_name_keys (name, key) VALUES (?, ?)",
                         ((n, party_key(n)) for n in fresh))
        kept["declared_names"] = fresh
    else:
        conn.execute("DELETE FROM party_name_keys")
        # the holders and end users licences name: licences match names by key too
        holders = kept.get("licence_names") if kept.get("licences") else None
        if holders is None:
            licensed = source.execute("SELECT licence_no, holder, agents, end_user "
                                      "FROM licences").fetchall()
            holders = frozenset(n for row in licensed for n in (row[1], row[3]) if n)
        named = holders - set(names)
        conn.executemany("INSERT INTO party_name_keys (name, key) VALUES (?, ?)",
                         ((n, party_key(n)) for n in [*names, *sorted(named)]))
    if not licences_kept:  # on DuckDB, DUCKDB_LICENCE_ITEMS splits the items
        fill_licence_rows(conn, licensed, items=declarations is None)
    _fill_listed_names(conn, names)
    _fill_party_reach(conn, source, names, kept)
    if derive:
        materialise(db, history)


def stand_licence_keys(conn: sqlite3.Connection, kept: dict[str, Any]) -> None:
    """For a screener's standing licences: the keys of the names they give (holders, end
    users) put in `party_name_keys` once, to stay there while each screening adds and removes
    its declared names' (`refresh_inputs`; the keys of 20,000 names made again at each call
    took 35 ms of a declaration screened alone)."""
    holders = sorted({n for row in conn.execute("SELECT holder, end_user FROM licences")
                      for n in row if n})
    conn.execute("DELETE FROM party_name_keys")
    conn.executemany("INSERT INTO party_name_keys (name, key) VALUES (?, ?)",
                     ((n, party_key(n)) for n in holders))
    kept |= {"licence_names": frozenset(holders), "licence_keys": True, "declared_names": []}


def fill_licence_rows(conn: sqlite3.Connection, licensed: list[Any] | None = None,
                      items: bool = True) -> None:
    """The rows derived from the licences alone: each agent's name key and (unless `items`
    is false) each licence's `;`-separated item entries. `licensed`: the licences' (number,
    holder, agents, end user), when read already."""
    if licensed is None:
        licensed = conn.execute("SELECT licence_no, holder, agents, end_user FROM licences"
                                ).fetchall()
    conn.execute("DELETE FROM licence_agent_keys")
    conn.executemany(
        "INSERT OR IGNORE INTO licence_agent_keys (licence_no, key) VALUES (?, ?)",
        ((no, party_key(a)) for no, _, agents, _ in licensed
         for a in str(agents or "").split(";") if a))
    conn.execute("DELETE FROM licence_items")
    if items:
        licences = conn.execute("SELECT licence_no, items FROM licences").fetchall()
        conn.executemany(
            "INSERT OR IGNORE INTO licence_items (licence_no, entry) VALUES (?, ?)",
            ((no, entry) for no, items in licences for entry in str(items).split(";") if entry))


# `licence_items` on DuckDB, from the licences copied there: each licence's `;`-separated
# entries, once each (as refresh_inputs splits them for SQLite; 1.9 million rows for the
# 1,000,000 demo declarations' licences, which took 8 s to insert and copy over).
DUCKDB_LICENCE_ITEMS = (
    "INSERT INTO licence_items (licence_no, entry) SELECT DISTINCT licence_no, entry FROM "
    "(SELECT licence_no, UNNEST(STRING_SPLIT(items, ';')) AS entry FROM licences) "
    "WHERE entry <> ''")


def _fill_listed_names(conn: sqlite3.Connection, names: list[str]) -> None:
    conn.execute("DELETE FROM listed_names")
    # legal names first: of two spellings with one key, a match names the legal one
    spellings = conn.execute(
        "SELECT name, legal_name FROM (SELECT name, legal_name, 0 AS k FROM parties UNION ALL "
        "SELECT party, alias, 1 FROM party_aliases) ORDER BY k, name, legal_name").fetchall()
    threshold = conn.execute(
        "SELECT MIN(COALESCE(match_threshold, 100)) FROM party_lists").fetchone()[0]
    if not spellings or threshold is None:
        return
    matcher = _matcher(tuple(spellings))
    conn.executemany("INSERT INTO listed_names (name, party, alias, score, score_text) "
                     "VALUES (?, ?, ?, ?, ?)",
                     ((m.name, m.party, m.alias, m.score, f"{m.score:.1f}")
                      for m in matcher.match_all(names, threshold)))


def _fill_party_reach(conn: sqlite3.Connection, source: Any, names: list[str],
                      kept: dict[str, Any]) -> None:
    """Paths between the parties the rules ask about: for `A related to B`, each pair of a
    declaration's A and B; for `A related to party listed on …`, every declared party near a
    listed one (searched from the listed parties). `source`: the connection holding the
    declarations (`conn`, or DuckDB's); `names`: the declared names. The graph, and what it
    reaches from the listed parties, is kept (`kept`) while the trade parties stand."""
    conn.execute("DELETE FROM party_reach")
    needs = conn.execute("SELECT via, subject, other, hops FROM party_reach_needs").fetchall()
    if not needs:
        return
    graph = kept.get("party_graph") if kept.get("parties") else None
    if graph is None:
        facts = [PartyFacts(*row) for row in conn.execute(
            "SELECT p.legal_name, p.address, p.phone, o.legal_name, p.owner_share_pct "
            "FROM parties AS p LEFT JOIN parties AS o ON o.name = p.owner UNION ALL "
            "SELECT name, address, phone, parent, NULL FROM trade_parties")]
        same = dict(conn.execute("SELECT a.alias, p.legal_name FROM party_aliases AS a "
                                 "JOIN parties AS p ON p.name = a.party").fetchall())
        graph = _graph(tuple(facts), tuple(sorted(same.items())))
        if kept.get("parties"):
            kept["party_graph"], kept["party_near"] = graph, {}
    near_of: dict[str, Any] = kept.get("party_near", {}) if kept.get("parties") else {}
    columns = {c[1] for c in conn.execute("PRAGMA table_info(declarations)")}
    listed = [n for (n,) in conn.execute(
        "SELECT DISTINCT p.legal_name FROM parties AS p JOIN list_entry_periods AS e "
        "ON e.party = p.name")]
    # each declared name's key, named by the first of its spellings (as party_name_keys has
    # them; names only licences give are never a declaration's party)
    declared: dict[str, str] = {}
    for name in sorted(names):
        declared.setdefault(party_key(name), name)
    rows = []
    for via, subject, other, hops in needs:
        links, threshold = parse_via(via)
        if other is not None:
            assert {subject, other} <= columns  # field names from the schema, never user text
            # only two parties in one connected group of links can be related: the pairs to
            # search are those the engine finds with the names of linked parties
            groups = [(name, group) for name in names
                      if (node := graph.node(name)) is not None
                and not (group := graph.component(node, frozenset(links), threshold)
                         ).startswith("=")]
            for a, b in _pairs_in_a_group(source, subject, other, groups):
                if (r := graph.related(a, b, links, hops, threshold)) is not None:
                    rows.append((via, party_key(a), party_key(b), r.hops, r.path))
            continue
        near = near_of.get(via)
        if near is None:
            near = near_of[via] = graph.reach_to(listed, links, hops, threshold)
        for key, name in declared.items():
            node = graph.node(name)
            for target, r in near.get(node or "", {}).items():
                rows.append((via, key, target, r.hops, r.path))
    conn.executemany("INSERT OR IGNORE INTO party_reach (via, a, b, hops, path) "
                     "VALUES (?, ?, ?, ?, ?)", rows)


def _pairs_in_a_group(source: Any, subject: str, other: str,
                      groups: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The declarations' distinct (subject, other) pairs of names in one connected group of
    parties (`groups`: name, group), sorted. On SQLite the few grouped names lead, through the
    declarations' party indexes; on DuckDB the distinct pairs are read in one scan and
    filtered here (its planner joined the groups to themselves first: 11 s and 8 GB at
    1,000,000 declarations)."""
    if isinstance(source, sqlite3.Connection):
        source.execute("DELETE FROM excon_party_groups")
        source.executemany("INSERT INTO excon_party_groups VALUES (?, ?)", groups)
        pairs = source.execute(
            f'SELECT DISTINCT d."{subject}", d."{other}" FROM excon_party_groups AS ga '
            f'JOIN declarations AS d ON d."{subject}" = ga.name '
            f'JOIN excon_party_groups AS gb ON gb.name = d."{other}" '
            f'WHERE gb.grp = ga.grp').fetchall()
    else:
        group_of = dict(groups)
        pairs = [(a, b) for a, b in source.execute(
            f'SELECT DISTINCT "{subject}", "{other}" FROM declarations').fetchall()
            if a in group_of and group_of[a] == group_of.get(b)]
    return sorted(pairs)


@lru_cache(maxsize=4)
def _matcher(spellings: tuple[tuple[str, str], ...]) -> PartyMatcher:
    """The matcher over the listed spellings (the same for every screening of a rulebook)."""
    return PartyMatcher(spellings)


@lru_cache(maxsize=4)
def _graph(facts: tuple[PartyFacts, ...], same: tuple[tuple[str, str], ...]) -> PartyGraph:
    """The party graph (the same for screenings with the same parties.csv)."""
    return PartyGraph(facts, dict(same))


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
