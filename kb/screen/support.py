"""The support relations the compiled checks read: their definitions, in SQLite's SQL.

The support relations are fixed SQL (no rulebook text in them), parsed and printed by sqlglot
per dialect like the checks (`kb.screen.statements`). `kb.screen.checks` fills the tables a
screening derives from its inputs in Python and stores the relations SQL derives.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import NamedTuple

from kb.screen.value_ranges import CODE_VALUE_RANGES

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


# `licence_items` on DuckDB, from the licences copied there: each licence's `;`-separated
# entries, once each (as refresh_inputs splits them for SQLite; 1.9 million rows for the
# 1,000,000 demo declarations' licences, which took 8 s to insert and copy over).
DUCKDB_LICENCE_ITEMS = (
    "INSERT INTO licence_items (licence_no, entry) SELECT DISTINCT licence_no, entry FROM "
    "(SELECT licence_no, UNNEST(STRING_SPLIT(items, ';')) AS entry FROM licences) "
    "WHERE entry <> ''")



@cache
def modules_digest() -> str:
    """A digest of this module, of the one that prints its SQL and of the one the ranges' query
    is in: what the support relations' SQL is made from (with excon's language code,
    `dsl.cache`)."""
    return hashlib.sha256(b"".join(
        Path(__file__).with_name(f).read_bytes()
        for f in ("support.py", "statements.py", "value_ranges.py"))
    ).hexdigest()
