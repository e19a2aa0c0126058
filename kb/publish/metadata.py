"""Publishing: what the build writes for Datasette, and the access rules `excon serve` adds.

At build time (`publish`), the knowledge base gets:
- `finding_details`: the findings of the loaded declarations as of the build, with the
  declaration facts analysts facet and chart by (date, destination, item group, parties);
  `findings` stays the live view of the contract, this is its browsable snapshot, indexed;
- `rule_checks`: each rule's compiled SQL (what its page shows);
- `excon_metadata`: the Datasette metadata of this database, generated from the rulebooks and
  the schema (titles, descriptions, column docs, units, sources and licences, sorts, facets,
  labels, stored queries), rendered with Jinja2 where it is HTML.

`excon serve` reads that metadata back and adds the access rules (`access_metadata`): reference
data is public; everything derived from declarations, licences and parties needs a login.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import jinja2
from sqlite_utils import Database

from dsl.compile import CompiledRulebook
from dsl.model import law
from dsl.periods import item_controls, listing_periods
from dsl.periods import timeline as law_timeline
from dsl.rulebook import CheckedRulebook
from kb.inputs.reference import COUNTRIES_SOURCE, HS_SOURCE
from kb.publish.search import build_search, searched_tables
from kb.screen.history import Windows, group_key_tables
from kb.screen.statements import declaration_findings_query
from kb.screen.support import MATERIALISED, SUPPORT_TABLES, SUPPORT_VIEWS
from kb.store.rulebook_rows import iso_day, timeline
from kb.store.tables import SPECS

# Tables and views derived from the inputs (declarations, licences, trade parties): private.
PRIVATE_DERIVED = ("findings", "finding_details", "finding_changes", "licence_balances",
                   *SUPPORT_VIEWS,
                   *SUPPORT_TABLES, *MATERIALISED)
# Support tables nobody browses: hidden from the table lists (still reachable by URL if allowed).
HIDDEN = ("excon_metadata", "_sqlite_migrations", "listed_party_keys", "party_name_keys",
          "licence_items", "licence_agent_keys", "excon_settings", "list_entry_periods",
          "listed_names",
          "declaration_items", "licence_uses", "licence_cover", "judged_declarations",
          *SUPPORT_TABLES, *SUPPORT_VIEWS)

HS_LICENCE = ("ODC-PDDL-1.0", "https://opendatacommons.org/licenses/pddl/1-0/")
HS_URL = "https://github.com/datasets/harmonized-system"
COUNTRIES_LICENCE = ("LGPL-2.1 (pycountry; data from Debian iso-codes)",
                     "https://github.com/pycountry/pycountry/blob/main/LICENSE.txt")
# quantities are shown in kg or t by kb.publish.datasette.render_cell (pint wrote 6,333 kg
# as 6.333 Mg)
UNITS = {"purity_pct": "percent"}

FINDING_DETAILS_SQL = """
CREATE TABLE finding_details AS
SELECT f.declaration_id, d.declared_on, f.rule, f.outcome, f.severity, d.exporter,
       d.destination_country, f.instrument, f.provision, f.basis, f.explanation, f.caveat,
       f.rulebook_version, f.rulebook, f.jurisdiction,
       SUBSTR(d.declared_on, 1, 7) AS declared_month, d.consignee,
       d.end_user, d.hs_code, d.quantity_kg,
       (SELECT g.group_name FROM declaration_items AS di
          JOIN declarations AS dd ON dd.id = di.declaration_id
          JOIN item_group_members AS g ON g.item = di.item
         WHERE di.declaration_id = f.declaration_id
         ORDER BY (SELECT MAX(LENGTH(c.code)) FROM item_customs_codes AS c
                    WHERE c.item = di.item AND c.code = SUBSTR(dd.hs_code, 1, LENGTH(c.code)))
                  DESC,
                  (SELECT COUNT(*) FROM item_group_members AS m
                    WHERE m.group_name = g.group_name), g.group_name
         LIMIT 1) AS item_group
FROM findings AS f JOIN declarations AS d ON d.id = f.declaration_id
"""

# The findings table's indexes. The filters analysts and the dashboard's links use (a rule, a
# destination or an exporter, with a date range) have covering indexes: the count and the five
# facet counts of a filtered page read the index alone (at 1,000,000 declarations an exporter's
# page went from 165 ms to 23 ms uncached).
_FACETS = ("outcome", "rule", "instrument", "destination_country", "item_group", "basis",
           "severity")
FINDING_DETAILS_INDEXES = (
    ("declaration_id",), ("declared_on",), ("outcome", "declared_on"), ("instrument",),
    ("item_group",),
    *((lead, "declared_on", *(f for f in _FACETS if f != lead))
      for lead in ("rule", "destination_country", "exporter")),
)

FINDING_DETAILS_COLUMNS = {
    "declaration_id": "Declaration line id",
    "rule": "Rule that made the finding",
    "outcome": "prohibited, presumption-of-denial, unlicensed, case-by-case, undetermined or "
               "risk",
    "severity": "For risk indicators: high, medium, low",
    "instrument": "The act that makes the case a violation: the announcement that listed the "
                  "matched party, the act controlling the item on the judged date (licence "
                  "requirements), or the rule's own instrument",
    "provision": "Provision (or entry) of that act",
    "explanation": "Why: the facts that matched, in a sentence",
    "basis": "What the finding rests on: settled; lapsed-by-text (a suspension that ended by "
             "its own text after the rulebook's sources were checked: a later decision may "
             "exist); unverified (a fact the rulebook marks unverified)",
    "caveat": "What to check, in words: the act, what lapsed and since when, or the "
              "unverified note",
    "rulebook_version": "Version hash of the rulebooks that made the finding",
    "rulebook": "Rulebook whose rule made the finding",
    "jurisdiction": "That rulebook's jurisdiction: a country, or the group of a union's "
                    "member states",
    "declared_on": "Declaration date",
    "declared_month": "Declaration month (YYYY-MM)",
    "exporter": "Exporter",
    "consignee": "Consignee",
    "end_user": "End user, if declared",
    "destination_country": "Destination country",
    "hs_code": "Declared customs code",
    "quantity_kg": "Net quantity, kg",
    "item_group": "Item group (mineral) of the declared item: the smallest group of the item "
                  "whose customs code matches most precisely",
}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("kb.publish", "datasette/snippets"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
)


def publish(db: Database, rb: CheckedRulebook, compiled: CompiledRulebook,
            built_at: str, previous: Path | None = None) -> None:
    """Write the publishing tables and the metadata into a knowledge base being built;
    `previous`, the knowledge base it replaces, for the findings that changed since."""
    db.execute("DROP TABLE IF EXISTS finding_details")
    db.execute(FINDING_DETAILS_SQL)
    for columns in FINDING_DETAILS_INDEXES:
        db.execute(f"CREATE INDEX finding_details_{'_'.join(columns[:2])} "
                   f"ON finding_details ({', '.join(columns)})")
    db.execute("DROP TABLE IF EXISTS rule_checks")
    db.execute("CREATE TABLE rule_checks (rule TEXT PRIMARY KEY REFERENCES rules(name), "
               "view TEXT NOT NULL, sql TEXT NOT NULL)")
    db.conn.executemany("INSERT INTO rule_checks VALUES (?, ?, ?)",
                        [(r.name, r.view, r.sql("sqlite")) for r in compiled.rules])
    db.execute("DROP TABLE IF EXISTS rule_timeline")
    db.execute("CREATE TABLE rule_timeline (rule TEXT NOT NULL REFERENCES rules(name), "
               "seq INTEGER NOT NULL, valid_from TEXT, valid_until TEXT, status TEXT NOT NULL, "
               "instrument TEXT, PRIMARY KEY (rule, seq))")
    db.conn.executemany("INSERT INTO rule_timeline VALUES (?, ?, ?, ?, ?, ?)",
                        [(rule, seq, *segment) for rule, periods in sorted(compiled.periods.items())
                         for seq, segment in enumerate(timeline(periods), 1)])
    db.execute("DROP TABLE IF EXISTS law_timeline")
    db.execute("CREATE TABLE law_timeline (kind TEXT NOT NULL, name TEXT NOT NULL, "
               "title TEXT, status TEXT NOT NULL, amended_by TEXT, instrument TEXT, "
               "provision TEXT, detail TEXT, valid_from TEXT, valid_until TEXT)")
    db.conn.executemany("INSERT INTO law_timeline VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        law_rows(db, rb, compiled))
    db.execute("CREATE INDEX law_timeline_kind_name ON law_timeline (kind, name)")
    # a table, not a stored query: its pages are paged, sorted and faceted like any table's
    # (the query stopped at 2,000 of 3,248 licences on one 201,000-pixel page); rows in the
    # order an analyst reads them, least remaining first, unlimited licences last
    db.execute("DROP TABLE IF EXISTS licence_balances")
    db.execute(f"CREATE TABLE licence_balances AS {LICENCE_BALANCES_SQL}")
    for column in ("holder", "kind", "destination_country"):
        db.execute(f"CREATE INDEX licence_balances_{column} ON licence_balances ({column})")
    since = record_changes(db, previous)
    build_search(db)
    db.execute("DROP TABLE IF EXISTS excon_metadata")
    db.execute("CREATE TABLE excon_metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    meta = database_metadata(db, rb, compiled, built_at, since)
    db.execute("INSERT INTO excon_metadata VALUES ('database', ?)",
               [json.dumps(meta, ensure_ascii=False, sort_keys=True)])


FINDING_CHANGES_COLUMNS = {
    "change": "appeared (new in this build), disappeared (no longer made) or changed "
              "(another outcome, instrument or explanation)",
    "declaration_id": "Declaration line id",
    "rule": "Rule that made the finding",
    "outcome": "Outcome in this build (empty if it disappeared)",
    "previous_outcome": "Outcome in the previous build (empty if it appeared)",
    "instrument": "Act the finding cites in this build",
    "previous_instrument": "Act it cited in the previous build",
    "explanation": "Why, in this build",
    "previous_explanation": "Why, in the previous build",
    "declared_on": "Declaration date",
    "destination_country": "Destination country",
    "exporter": "Exporter",
}

_CHANGE_KEY = "n.declaration_id = o.declaration_id AND n.rule = o.rule"
FINDING_CHANGES_SQL = f"""
CREATE TABLE finding_changes AS
SELECT 'appeared' AS change, n.declaration_id, n.rule, n.outcome, NULL AS previous_outcome,
       n.instrument, NULL AS previous_instrument, n.explanation,
       NULL AS previous_explanation, n.declared_on, n.destination_country, n.exporter
FROM main.finding_details AS n
WHERE NOT EXISTS (SELECT 1 FROM previous.finding_details AS o WHERE {_CHANGE_KEY})
UNION ALL
SELECT 'disappeared', o.declaration_id, o.rule, NULL, o.outcome, NULL, o.instrument, NULL,
       o.explanation, o.declared_on, o.destination_country, o.exporter
FROM previous.finding_details AS o
WHERE NOT EXISTS (SELECT 1 FROM main.finding_details AS n WHERE {_CHANGE_KEY})
UNION ALL
SELECT 'changed', n.declaration_id, n.rule, n.outcome, o.outcome, n.instrument, o.instrument,
       n.explanation, o.explanation, n.declared_on, n.destination_country, n.exporter
FROM main.finding_details AS n JOIN previous.finding_details AS o ON {_CHANGE_KEY}
WHERE n.outcome IS NOT o.outcome OR n.instrument IS NOT o.instrument
   OR n.explanation IS NOT o.explanation
"""


def record_changes(db: Database, previous: Path | None) -> dict[str, Any] | None:
    """`finding_changes`: the findings that appeared, disappeared or changed since the build
    this one replaces (the re-screening queue after a list announcement, say), keyed by
    declaration and rule. What it was compared with (the previous build's time and rulebook
    version), or None for a first build (the table is then empty)."""
    db.execute("DROP TABLE IF EXISTS finding_changes")
    since = None
    if previous is not None and previous.is_file():
        db.execute("ATTACH DATABASE ? AS previous", [str(previous)])
        try:
            try:
                have = {r[0] for r in db.execute(
                    "SELECT name FROM previous.sqlite_master WHERE type = 'table'")}
            except sqlite3.DatabaseError:  # not a database: nothing to compare with
                have = set()
            if {"finding_details", "runs"} <= have:
                db.execute(FINDING_CHANGES_SQL)
                run = db.execute("SELECT started_at, rulebook_version FROM previous.runs "
                                 "ORDER BY id DESC LIMIT 1").fetchone()
                since = {"built_at": run[0] if run else None,
                         "version": run[1] if run else None}
        finally:
            db.conn.commit()
            db.execute("DETACH DATABASE previous")
    if since is None:
        db.execute("CREATE TABLE finding_changes AS SELECT * FROM (SELECT NULL AS change, "
                   + ", ".join(f"NULL AS {c}" for c in list(FINDING_CHANGES_COLUMNS)[1:])
                   + ") WHERE 0")
    for columns in (("change", "declared_on"), ("declaration_id",), ("rule",)):
        db.execute(f"CREATE INDEX finding_changes_{'_'.join(columns)} "
                   f"ON finding_changes ({', '.join(columns)})")
    return since


def law_rows(db: Database, rb: CheckedRulebook,
             compiled: CompiledRulebook) -> list[tuple[Any, ...]]:
    """Every stretch of the law's life, one source of truth for `in_force_on`: rules (and
    exceptions) in force, suspended, repealed or expired; listings with the measures they
    impose; the acts that control each item."""
    rows: list[tuple[Any, ...]] = []
    model = law(rb)
    rules = {r[0]: r[1:] for r in db.execute(
        "SELECT name, title, instrument_id, provision, outcome FROM rules").fetchall()}
    for name, periods in sorted(compiled.periods.items()):
        title, instrument, provision, outcome = rules.get(name, (name, None, None, None))
        for t in law_timeline(periods):
            rows.append(("rule", name, title or name, t.status, t.instrument, instrument,
                         provision, outcome, iso_day(t.start), iso_day(t.end)))
    for lp in listing_periods(rb):
        title = model.parties[lp.party].legal_name
        measures = ", ".join(lp.measures) or "no measures"
        for t in law_timeline(lp.periods):
            rows.append(("list entry", lp.party, title, t.status, t.instrument, lp.instrument,
                         lp.provision, f"{lp.list}: {measures}", iso_day(t.start), iso_day(t.end)))
    for item, controls in sorted(item_controls(rb).items()):
        for c in controls:
            rows.append(("item", item, model.items[item].title, "controlled", None,
                         c.instrument, c.provision, None, iso_day(c.start), iso_day(c.end)))
    return rows


def database_metadata(db: Database, rb: CheckedRulebook, compiled: CompiledRulebook,
                      built_at: str, since: dict[str, Any] | None = None) -> dict[str, Any]:
    rulebooks = [dict(zip(("name", "title"), r, strict=True))
                 for r in db.execute("SELECT name, title FROM rulebooks ORDER BY name")]
    counts = {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]  # names are ours
              for t in ("instruments", "rules", "items", "parties", "declarations",
                        "finding_details")}
    tables: dict[str, Any] = {}
    for spec in SPECS.values():
        tables[spec.name] = {
            "title": spec.name.replace("_", " ").capitalize(),
            "description": spec.doc,
            "columns": {c.name: c.doc for c in spec.columns},
        }
        units = {c: u for c, u in UNITS.items() if c in spec.column_names}
        if units:
            tables[spec.name]["units"] = units
    for name in ("hs_sections", "hs_codes"):
        tables[name] |= {"source": HS_SOURCE, "source_url": HS_URL,
                         "license": HS_LICENCE[0], "license_url": HS_LICENCE[1]}
    tables["countries"] |= {"source": COUNTRIES_SOURCE,
                            "source_url": "https://pypi.org/project/pycountry/",
                            "license": COUNTRIES_LICENCE[0],
                            "license_url": COUNTRIES_LICENCE[1]}
    labels = {"instruments": "title", "items": "title", "parties": "legal_name",
              "countries": "name", "rules": "title", "hs_codes": "description",
              "item_groups": "title", "country_groups": "title", "party_lists": "title",
              "rulebooks": "title", "hs_sections": "name"}
    for table, column in labels.items():
        tables[table]["label_column"] = column
    for table in searched_tables():  # kb.publish.search: Chinese, pinyin and English
        tables[table]["fts_table"] = f"{table}_fts"
    presentation: dict[str, dict[str, Any]] = {
        "instruments": {"sort": "in_force", "facets": ["issuer", "confidence"]},
        "provisions": {"facets": ["instrument_id"]},
        "items": {"facets": ["instrument_id", "confidence"]},
        "item_customs_codes": {"facets": ["item"]},
        "rules": {"facets": ["outcome", "instrument_id", "kind", "rulebook"]},
        "parties": {"facets": ["country"]},
        "amendments": {"facets": ["action", "instrument_id"]},
        "list_entries": {"facets": ["list", "instrument_id"]},
        "declarations": {"sort_desc": "declared_on", "facets": ["destination_country"]},
        "licences": {"sort": "valid_to", "facets": ["kind", "destination_country"]},
        "rejected_rows": {"facets": ["file", "column"]},
        "runs": {"sort_desc": "id"},
    }
    for table, extra in presentation.items():
        columns = set(SPECS[table].column_names)
        keep = {k: v for k, v in extra.items()
                if (v in columns if isinstance(v, str) else all(c in columns for c in v))}
        tables[table] |= keep
    tables["finding_details"] = {
        "title": "Findings",
        "description": "Findings of the loaded declarations as of the build, with the legal "
                       "reason for each and the declaration facts to filter by. The live "
                       "view of the contract is `findings`.",
        "columns": FINDING_DETAILS_COLUMNS,
        # no `units` here: Datasette converts every unit cell through pint, a quarter of this
        # page's time; the column description says kg
        "sort_desc": "declared_on",
        # what an analyst reads first leads: the declaration, its date, the rule and
        # outcome, severity, exporter and destination (the explanation after them)
        "facets": ["outcome", "severity", "rule", "basis", "instrument",
                   "destination_country", "item_group"],
    }
    compared = (f"the previous build ({since['built_at']}, rulebook version "
                f"{since['version']})" if since else "no previous build: this is the first")
    tables["finding_changes"] = {
        "title": "Findings new since the last build",
        "description": f"Findings that appeared, disappeared or changed compared with "
                       f"{compared}: the re-screening queue after a rulebook or list change.",
        "columns": FINDING_CHANGES_COLUMNS,
        "sort_desc": "declared_on",
        "facets": ["change", "rule", "outcome", "destination_country"],
    }
    tables["licence_balances"] = {
        "title": "Licences and their remaining quantity",
        "description": "Quantity drawn by covered declarations, in date order, and what "
                       "remains (for licences with a limit); least remaining first.",
        "facets": ["kind", "destination_country"], "label_column": "licence_no"}
    tables["findings"] = {"title": "Findings (live view)",
                          "description": "The union of the check views, computed on read."}
    tables["rule_timeline"] = {"title": "Rule timeline",
                               "description": "When each rule was in force, suspended, "
                                              "repealed or expired (inclusive dates)",
                               "facets": ["status", "instrument"]}
    tables["law_timeline"] = {"title": "The law over time",
                              "description": "Every stretch of time a rule, a list entry or "
                                             "an item control was in force, suspended, "
                                             "repealed or lifted (and by which act), with the "
                                             "instrument it rests on (inclusive dates)",
                              "facets": ["kind", "status", "instrument"],
                              "sort": "valid_from", "label_column": "title"}
    tables["rule_checks"] = {"title": "Compiled checks",
                             "description": "Each rule's check as SQLite SQL (a view)",
                             "label_column": "view"}
    for r in compiled.rules:
        tables[r.view] = {"title": f"Check: {r.name}",
                          "description": f"Findings of rule {r.name} (compiled view)"}
    for name in (*HIDDEN, *compiled.windows, *group_key_tables(Windows(compiled))):
        tables.setdefault(name, {})["hidden"] = True
    description = _env.get_template("database.html.j2").render(
        rulebooks=rulebooks, counts=counts, built_at=built_at, version=rb.version,
        unverified=len(rb.unverified))
    return {
        "title": "excon: export-control knowledge base",
        "description_html": description,
        "tables": tables,
        "queries": stored_queries(compiled),
    }


def stored_queries(compiled: CompiledRulebook) -> dict[str, Any]:
    """Canned queries with named parameters (private ones get an `allow` block at serve)."""
    return {
        "declaration_findings": {
            "title": "Findings for a declaration, as of a date",
            "description": "Every finding for one declaration line, judged by the law in force "
                           "on as_of (leave it empty for the declaration's own date).",
            "sql": declaration_findings_query(compiled),
            "params": ["declaration_id", "as_of"],
            "hide_sql": True,  # every check, inlined: long; each rule's page shows its own
        },
        "in_force_on": {
            "title": "What was in force on a date",
            "description": "Rules, list entries and item controls on a date: in force, "
                           "suspended, repealed or lifted (and by which act), each with the "
                           "instrument it rests on; the same periods the checks and the rule "
                           "pages use.",
            "sql": IN_FORCE_SQL,
            "params": ["date"],
        },
        "findings_by_instrument": {
            "title": "Findings by instrument and month",
            "description": "How many findings each instrument produced per month and outcome.",
            "sql": "SELECT instrument, declared_month AS month, outcome, COUNT(*) AS findings "
                   "FROM finding_details GROUP BY instrument, declared_month, outcome "
                   "ORDER BY month, instrument, outcome",
        },
        "new_since_last_build": {
            "title": "Findings new since the last build",
            "description": "How many findings each rule gained, lost or changed compared "
                           "with the build this one replaced, by outcome.",
            "sql": "SELECT change, rule, COALESCE(outcome, previous_outcome) AS outcome, "
                   "COUNT(*) AS findings FROM finding_changes GROUP BY 1, 2, 3 "
                   "ORDER BY 1, 4 DESC",
        },
        "findings_by_rule": {
            "title": "Findings by rule and month",
            "description": "How many findings each rule produced per month and outcome.",
            "sql": "SELECT rule, declared_month AS month, outcome, COUNT(*) AS findings "
                   "FROM finding_details GROUP BY rule, declared_month, outcome "
                   "ORDER BY month, rule, outcome",
        },
        "party_search": {
            "title": "Party search with match scores",
            "description": "Listed parties and aliases whose normalised name resembles the "
                           "name searched for (score 0–100, best first).",
            "sql": PARTY_SEARCH_SQL,
            "params": ["name", "min_score"],
        },
    }


PRIVATE_QUERIES = ("declaration_findings", "findings_by_instrument",
                   "findings_by_rule", "new_since_last_build")

IN_FORCE_SQL = """
SELECT kind, name, title, status, amended_by, instrument, provision, detail, valid_from,
       valid_until
FROM law_timeline
WHERE (valid_from IS NULL OR valid_from <= :date)
  AND (valid_until IS NULL OR valid_until >= :date)
ORDER BY kind, name, instrument
"""

LICENCE_BALANCES_SQL = """
SELECT l.licence_no, l.holder, l.kind, l.items, l.destination_country, l.valid_from,
       l.valid_to, l.quantity_kg AS limit_kg,
       COALESCE(MAX(CASE WHEN c.covered = 1 THEN c.drawn_kg END), 0) AS drawn_kg,
       CASE WHEN l.quantity_kg IS NULL THEN NULL
            ELSE l.quantity_kg - COALESCE(MAX(CASE WHEN c.covered = 1 THEN c.drawn_kg END), 0)
       END AS remaining_kg,
       COUNT(c.declaration_id) AS declarations,
       SUM(CASE WHEN c.covered = 0 THEN 1 ELSE 0 END) AS not_covered
FROM licences AS l LEFT JOIN licence_cover AS c ON c.licence_no = l.licence_no
GROUP BY l.licence_no
ORDER BY remaining_kg IS NULL, remaining_kg, l.licence_no
"""

PARTY_SEARCH_SQL = """
SELECT p.name AS party, n.name AS matched_name, p.legal_name, p.country,
       excon_match_score(:name, n.name) AS score,
       (SELECT group_concat(e.list || ' (' || e.instrument_id || ')', '; ')
          FROM list_entries AS e WHERE e.party = p.name) AS listed_on
FROM (SELECT name AS party, legal_name AS name FROM parties
      UNION SELECT party, alias FROM party_aliases) AS n
JOIN parties AS p ON p.name = n.party
WHERE excon_match_score(:name, n.name) >= COALESCE(CAST(NULLIF(:min_score, '') AS REAL), 60)
ORDER BY score DESC, p.name
"""


# Bookkeeping of the build and of SQLite: hidden, and for analysts only.
INTERNAL_TABLES = ("excon_metadata", "excon_settings", "excon_windows", "excon_party_groups",
                   "excon_rulebook_sources", "_sqlite_migrations", "sqlite_stat1",
                   "sqlite_stat4")


def private_names(db: Database) -> list[str]:
    """Every table and view that holds or derives from the inputs."""
    names = {s.name for s in SPECS.values() if not s.public} | set(PRIVATE_DERIVED)
    names |= {r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'view' AND name LIKE 'check\\_%' "
        "ESCAPE '\\'")}
    names |= {r[0] for r in db.execute("SELECT name FROM excon_windows")}
    names |= {r[0] for r in db.execute(  # kb.screen.history.group_key_tables
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name LIKE 'excon\\_group\\_window\\_\\_%' ESCAPE '\\'")}
    return sorted(names)


DECISIONS_DB = "decisions"


def decisions_metadata() -> dict[str, Any]:
    """The decisions database's metadata (kb.publish.decisions): analysts only, with its queries."""
    from kb.publish.decisions import TO_REVIEW_SQL, UNDECIDED_SQL

    return {
        "title": "Decisions on findings",
        "description": "What analysts decided about findings: confirmed, cleared (false "
                       "positive), escalated, or released under a licence, with the reason, "
                       "who and when. Kept apart from the knowledge base: rebuilds never "
                       "touch it. The log is only ever appended to.",
        "allow": {"id": "*"},
        "tables": {
            # an analyst's refused forms, shown again on the declaration page only
            "decision_drafts": {"hidden": True, "allow": False},
            "decision_log": {
                "title": "Decision log (append-only)",
                "description": "Every decision ever recorded, oldest first; never updated "
                               "or deleted. A finding's decision is the latest for its "
                               "declaration and rule.",
                "sort_desc": "id", "facets": ["decision", "actor", "rule"],
                "columns": {"rulebook_version": "Version of the rulebooks that made the "
                                                "finding when it was decided",
                            "outcome": "The finding's outcome when it was decided",
                            "explanation": "The finding's explanation when it was decided"},
            },
            "decisions": {"title": "Standing decisions",
                          "description": "The latest decision on each finding."},
        },
        "queries": {
            "to_review": {
                "title": "Decisions to review",
                "description": "Decisions whose finding has changed since: its explanation "
                               "differs, or the current build no longer makes it. 100 a "
                               "page, newest first (page: 1, 2, …).",
                "sql": TO_REVIEW_SQL, "params": ["page"],
            },
            "undecided": {
                "title": "Findings without a decision",
                "description": "Findings of the current build nobody has decided on yet "
                               "(outcome: leave empty for all), 100 a page, latest first "
                               "(page: 1, 2, …).",
                "sql": UNDECIDED_SQL, "params": ["outcome", "page"],
            },
        },
    }


def access_metadata(db: Database, database: str,
                    with_decisions: bool = False) -> dict[str, Any]:
    """The metadata `excon serve` gives Datasette: the build's metadata plus access rules
    (and the decisions database's, when it is served)."""
    row = db.execute("SELECT value FROM excon_metadata WHERE key = 'database'").fetchone()
    if row is None:
        raise ValueError("this database has no publishing metadata; rebuild it with "
                         "`excon build`")
    meta: dict[str, Any] = json.loads(row[0])
    logged_in = {"id": "*"}
    meta["allow_sql"] = logged_in
    existing = set(db.table_names()) | set(db.view_names())
    for name in private_names(db):
        if name in existing:
            meta["tables"].setdefault(name, {})["allow"] = logged_in
    for name in PRIVATE_QUERIES:
        meta["queries"][name]["allow"] = logged_in
    for name in sorted(set(INTERNAL_TABLES) & existing):
        meta["tables"].setdefault(name, {}).update(hidden=True, allow=logged_in)
    top: dict[str, Any] = {
        "title": meta.pop("title"),
        "description_html": meta["description_html"],
        "databases": {database: meta,
                      **({DECISIONS_DB: decisions_metadata()} if with_decisions else {})},
        "plugins": {
            "datasette-dashboards": dashboards(database),
        },
    }
    return top


# A finding's level, for colour: the outcome, and a risk by its severity.
LEVEL_SQL = ("CASE WHEN outcome = 'risk' THEN 'risk: ' || COALESCE(severity, 'unrated') "
             "ELSE outcome END")
# Colours by severity: prohibited red, a presumption of denial red-orange, unlicensed orange,
# case-by-case amber, undetermined grey, risks in purple
# from dark (high) to light (low).
LEVEL_COLOURS = {"prohibited": "#c62828", "presumption-of-denial": "#d84315",
                 "unlicensed": "#ef6c00", "case-by-case": "#f9a825", "undetermined": "#9e9e9e",
                 "risk: high": "#6a1b9a", "risk: medium": "#9c64c8", "risk: low": "#cdb0e4",
                 "risk: unrated": "#e3d7ec"}
# The dashboard's filters, as optional SQL clauses (datasette-dashboards drops a [[ … ]] whose
# parameter is empty) on the findings, and as the findings table's filters in a chart's links.
DASHBOARD_FILTERS = {
    "date_start": ("declared_on >= :date_start", "declared_on__gte"),
    "date_end": ("declared_on <= :date_end", "declared_on__lte"),
    "rule": ("rule = :rule", "rule"),
    "destination": ("destination_country = :destination", "destination_country"),
    "exporter": ("exporter = :exporter", "exporter"),
}
_WHERE = "WHERE 1 = 1" + "".join(f" [[ AND {clause} ]]"
                                 for clause, _ in DASHBOARD_FILTERS.values())
_LINK_FILTERS = "".join(f" [[ || '&{arg}=' || excon_url_quote(:{name}) ]]"
                        for name, (_, arg) in DASHBOARD_FILTERS.items())


def dashboards(database: str) -> dict[str, Any]:
    """The findings dashboard (datasette-dashboards, Vega-Lite charts bundled with it): bars
    coloured by severity, each a link to the findings it counts (with the dashboard's
    filters), and the findings new since the last build."""
    findings = f"/{database}/finding_details?_sort_desc=declared_on"
    level = {"field": "level", "type": "nominal", "title": "outcome",
             "scale": {"domain": list(LEVEL_COLOURS), "range": list(LEVEL_COLOURS.values())}}

    def stacked(title: str, sql: str, category: str, colour: dict[str, Any]) -> dict[str, Any]:
        """Stacked bars of `findings` per `category` (months run along, others up); a bar
        links to its `href`."""
        count = {"field": "findings", "type": "quantitative"}
        if category == "month":
            axes = {"x": {"field": "month", "type": "ordinal"}, "y": count}
        else:
            axes = {"y": {"field": category, "type": "nominal", "sort": "-x"}, "x": count}
        return {"title": title, "db": database, "query": sql, "library": "vega-lite",
                "display": {"mark": {"type": "bar", "tooltip": True, "cursor": "pointer"},
                            "encoding": {**axes, "color": colour,
                                         "href": {"field": "href", "type": "nominal"}}}}

    outcome_link = "'&outcome=' || outcome || COALESCE('&severity=' || severity, '')"
    return {
        "findings": {
            "title": "Findings over time",
            "description": "Findings of the loaded declarations as of the build, coloured by "
                           "severity. Click a bar for the findings it counts.",
            "layout": [["by-outcome", "by-outcome"], ["by-destination", "by-group"],
                       ["changes", "changes"]],
            "filters": {
                "date_start": {"name": "Declared from", "type": "date"},
                "date_end": {"name": "Declared until", "type": "date"},
                "rule": {"name": "Rule", "type": "select", "db": database,
                         "query": "SELECT name FROM rules ORDER BY name"},
                "destination": {"name": "Destination", "type": "select", "db": database,
                                "query": "SELECT DISTINCT destination_country "
                                         "FROM finding_details ORDER BY 1"},
                "exporter": {"name": "Exporter (exact name)", "type": "text"},
            },
            "charts": {
                "by-outcome": stacked(
                    "Findings per month by outcome",
                    f"SELECT declared_month AS month, {LEVEL_SQL} AS level, "
                    f"COUNT(*) AS findings, '{findings}&declared_month=' || declared_month "
                    f"|| {outcome_link}{_LINK_FILTERS} AS href FROM finding_details {_WHERE} "
                    "GROUP BY declared_month, outcome, severity ORDER BY 1", "month", level),
                "by-destination": stacked(
                    "Findings by destination",
                    f"SELECT destination_country AS destination, {LEVEL_SQL} AS level, "
                    f"COUNT(*) AS findings, '{findings}&destination_country=' || "
                    f"destination_country || {outcome_link}{_LINK_FILTERS} AS href "
                    f"FROM finding_details {_WHERE} "
                    "GROUP BY destination_country, outcome, severity ORDER BY 3 DESC LIMIT 200",
                    "destination", level),
                "by-group": stacked(
                    "Findings per month by item group",
                    f"SELECT declared_month AS month, COALESCE(item_group, '(none)') AS "
                    f"item_group, COUNT(*) AS findings, '{findings}&declared_month=' || "
                    f"declared_month || COALESCE('&item_group=' || item_group, "
                    f"'&item_group__isnull=1'){_LINK_FILTERS} AS href "
                    f"FROM finding_details {_WHERE} GROUP BY 1, 2 ORDER BY 1", "month",
                    {"field": "item_group", "type": "nominal", "title": "item group"}),
                "changes": stacked(
                    "Findings new since the last build, by rule",
                    "SELECT rule, change, COUNT(*) AS findings, "
                    f"'/{database}/finding_changes?change=' || change || '&rule=' || rule "
                    "AS href FROM finding_changes GROUP BY 1, 2 "
                    # an empty chart said nothing: with no change, a row that says so
                    "UNION ALL SELECT 'no finding appeared, disappeared or changed since the "
                    "last build', 'none', 0, NULL WHERE NOT EXISTS (SELECT 1 FROM "
                    "finding_changes) ORDER BY 3 DESC", "rule",
                    {"field": "change", "type": "nominal",
                     "scale": {"domain": ["appeared", "changed", "disappeared", "none"],
                               "range": ["#c62828", "#ef6c00", "#2e7d32", "#9e9e9e"]}}),
            },
        },
    }
