"""The rows a screening derives from its inputs, into the support relations the compiled
checks read (`kb.screen.support`): in Python, normalised party names, fuzzy matches of listed
names and the links between parties; in SQL, the relations stored as tables (`materialise`).
"""

from __future__ import annotations

import json
import sqlite3
from functools import cache, lru_cache
from typing import Any

from sqlite_utils import Database

from dsl.cache import cached_json, cached_object
from dsl.graph import PartyFacts, PartyGraph, parse_via
from dsl.names import PartyMatcher, party_key
from kb.screen.support import MATERIALISED, Stored, modules_digest


@cache
def _sqlite_select(name: str) -> str:
    return _sqlite_selects()[name]


@cache
def _sqlite_selects() -> dict[str, str]:
    """The materialised support views' queries, printed for SQLite: once a process, and kept in
    excon's cache under a digest of the modules that define them for the next."""
    names = list(MATERIALISED)
    return dict(zip(names, cached_json(
        "support selects", modules_digest(),
        lambda: _printed(names), lambda s: isinstance(s, str), "support"), strict=True))


def _printed(names: list[str]) -> list[str]:
    from kb.screen.statements import view_select  # (sqlglot: only when the cache has none)

    return [view_select(n).sql(dialect="sqlite") for n in names]


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
    """The matcher over the listed spellings (the same for every screening of a rulebook):
    once a process, and kept in excon's cache for the next (keying the listed parties'
    Chinese names loads pypinyin's tables, half a second)."""
    return cached_object("matchers", json.dumps(spellings).encode(),
                         lambda: PartyMatcher(spellings), PartyMatcher)


@lru_cache(maxsize=4)
def _graph(facts: tuple[PartyFacts, ...], same: tuple[tuple[str, str], ...]) -> PartyGraph:
    """The party graph (the same for screenings with the same parties): once a process, and
    kept in excon's cache for the next (a screener over a knowledge base of 29,000 trade
    parties spent 2.5 s of its first screening making it)."""
    made_from = json.dumps([[[f.name, f.address, f.phone, f.parent, f.share_pct]
                             for f in facts], same]).encode()
    return cached_object("graphs", made_from, lambda: PartyGraph(facts, dict(same)), PartyGraph)
