"""Screening against a knowledge base's history, and adding declarations to it.

`Screener(db=kb.db)` judges the declarations it loads as the next ones in the knowledge base
(attached read-only as `history`). Most relations the checks read are made from each loaded
declaration alone. Four look at other declarations, and each needs only part of the history:

- a window (`count of declarations within N days with same F`, `sum of …`): the history's
  declarations of the N days up to the loaded ones that share F with one of them (all of those
  days' declarations when a window names no fact);
- a licence's draw-down (`licence_walk`): the history's uses of the licences the loaded
  declarations name;
- unit values learnt from history (`code_value_ranges`): the sizes of the prefixes the loaded
  codes fall back on and the history's values around the ranks of their percentiles, read
  from indexes (`kb.screen.value_ranges`; from a knowledge base built without them, every
  declaration under the loaded codes' headings);
- first-seen dates (`party_first_seen`): the knowledge base's own, where earlier.

While such a relation is made, temporary tables (`HistoryTables`, made once per screener)
hold the loaded rows and that part of the history, and the relation's query reads them
instead of its inputs (`declarations`, `declaration_days`, …), taking the history's derived
rows (days, groups, items, licence uses) as the knowledge base stores them instead of deriving
them again; no declaration of the history is screened. A loaded declaration whose id
the history has replaces it there. The findings are those a screening of the history and the
loaded declarations together gives for the loaded ones (tests/test_incremental.py).

`add_to_knowledge_base` then writes the loaded declarations, their derived rows and their
findings into the knowledge base in one transaction: all of them, or nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dsl.cache import cached_json
from kb.screen.value_ranges import (
    has_unit_value_indexes,
    history_value_ranges,
    unit_value_indexes,
)

if TYPE_CHECKING:
    from sqlglot import exp

    from dsl.compile import CompiledRulebook

EPOCH = dt.date(1970, 1, 1)  # day numbers count from it (`kb.screen.statements.day_number`)
# the derived relations a window reads, besides the declarations (by declaration id)
WINDOW_INPUTS = ("declaration_days", "declaration_minerals", "declaration_items")
CAP = 5000  # rows a way of finding a window's history is counted to, to choose the fewer


class HistoryError(Exception):
    """The knowledge base cannot serve as history (built by another version of excon)."""


def window_reach(query: exp.Expression) -> tuple[int, tuple[str, ...], bool] | None:
    """How far a compiled window relation looks back: its days (this one's included), the
    declaration fields its declarations share (`with same …`), and whether they share a group
    (`with same group`: a mineral of the rulebook). An item is not counted: more history is
    read than the window keeps, never less. None for a relation that is not a window over
    earlier declarations (`mentions_<n>`, `links_<n>`)."""
    from sqlglot import exp

    for window in query.find_all(exp.Window):
        spec = window.args.get("spec")
        if spec is None or spec.args.get("kind") != "RANGE":
            continue
        days = int(spec.args["start"].name) + 1
        keys = [c for c in window.args.get("partition_by") or () if isinstance(c, exp.Column)]
        fields = tuple(sorted({c.name for c in keys if c.table == "w"}))
        return days, fields, any(c.table == "wd" and c.name == "mineral" for c in keys)
    return None


class Windows:
    """How far each window of a compiled rulebook looks back (`window_reach`) and the derived
    relations it reads: worked out once per rulebook, not per screening."""

    def __init__(self, compiled: CompiledRulebook) -> None:
        from sqlglot import exp

        self.reach = {name: r for name, q in compiled.windows.items()
                      if (r := window_reach(q)) is not None}
        self.inputs = {name: sorted({t.name for t in compiled.windows[name].find_all(exp.Table)}
                                    & set(WINDOW_INPUTS)) for name in self.reach}
        self.reads = {name: _declaration_columns(compiled.windows[name]) for name in self.reach}


def _declaration_columns(query: exp.Expression) -> frozenset[str] | None:
    """The columns of `declarations` a window's query reads (None: it cannot tell)."""
    from sqlglot import exp

    aliases = {t.alias_or_name for t in query.find_all(exp.Table) if t.name == "declarations"}
    columns = list(query.find_all(exp.Column))
    if any(not c.table for c in columns) or any(
            not isinstance(star.parent, exp.Count) for star in query.find_all(exp.Star)):
        return None
    return frozenset(c.name for c in columns if c.table in aliases)


def history_indexes(conn: sqlite3.Connection, windows: Windows) -> list[str]:
    """The indexes through which a screening against a knowledge base finds the history it
    needs without reading the rest (made by `excon build`; returns their names):

    - the declarations by the facts each window shares and the date, holding the id
      (`excon_window__<facts>`): a window's history is read from them alone
      (`History._history_rows`);
    - the licences' uses by licence (`excon_licence_uses__licence_no`): a licence's walk
      continues from its earlier uses;
    - the declarations by each prefix length of their code and their unit value
      (`kb.screen.value_ranges.unit_value_indexes`);
    - for a window by group that shares facts, a table of the declarations by group, facts
      and day (`group_key_tables`; `excon add` adds to it)."""
    made = []
    for fields in sorted({reach[1] for reach in windows.reach.values() if reach[1]}):
        name = "excon_window__" + "__".join(fields)  # schema field names, not the user's
        columns = ", ".join(f'"{f}"' for f in fields)
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON declarations "
                     f"({columns}, declared_on, id)")
        made.append(name)
    conn.execute("CREATE INDEX IF NOT EXISTS excon_licence_uses__licence_no "
                 "ON licence_uses (licence_no)")
    for name, (fields, values) in group_key_tables(windows).items():
        columns = ", ".join([*(f'"{f}" TEXT NOT NULL' for f in fields),
                             "day INTEGER NOT NULL", "declaration_id TEXT NOT NULL",
                             *(f'"{v}"' for v in values)])  # as the declarations hold them
        keys = ", ".join(f'"{f}"' for f in fields)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (rulebook TEXT NOT NULL, "
                     f"mineral TEXT NOT NULL, {columns}, "
                     f"PRIMARY KEY (rulebook, mineral, {keys}, day, declaration_id)) "
                     "WITHOUT ROWID")
        made.append(name)
    add_group_keys(conn, "main")
    return [*made, "excon_licence_uses__licence_no", *unit_value_indexes(conn)]


def group_key_tables(windows: Windows) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each set of facts a window by group shares (`with same group, F`): the table of
    the knowledge base's declarations by group, those facts and day, with the other columns
    such windows read (quantity, value), so that their history is read from it alone
    (`history_indexes`). Neither the facts' index nor the groups' finds such a window's
    history quickly: a destination's declarations of a year run to tens of thousands, a
    mineral's to as many; those of one mineral to one destination, to hundreds. Returns each
    table's name, facts and other columns."""
    out = {}
    for fields in sorted({r[1] for r in windows.reach.values() if r[2] and r[1]}):
        reads = [windows.reads[n] for n, r in windows.reach.items() if r[2] and r[1] == fields]
        known = [r for r in reads if r is not None]
        values = set().union(*known) - {"id", *fields} if len(known) == len(reads) else set()
        out["excon_group_window__" + "__".join(fields)] = (fields, tuple(sorted(values)))
    return out  # (schema field names, not the user's)


def add_group_keys(conn: sqlite3.Connection, source: str) -> None:
    """Rows of the declarations in schema `source` (the knowledge base's own, or an add's)
    into the knowledge base's `group_key_tables`, which name their facts before `day` and the
    other columns after `declaration_id`."""
    for (name,) in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' "
                                "AND name LIKE 'excon\\_group\\_window\\_\\_%' ESCAPE '\\'"
                                ).fetchall():
        columns = [c[1] for c in conn.execute(f'PRAGMA main.table_info("{name}")')]
        day, at = columns.index("day"), columns.index("declaration_id")
        fields, values = columns[2:day], columns[at + 1:]
        conn.execute(f"""
            INSERT OR IGNORE INTO main.{name}
            SELECT x.rulebook, x.mineral, {', '.join(f'd."{f}"' for f in fields)}, x.day,
                   {', '.join(['x.declaration_id', *(f'd."{v}"' for v in values)])}
            FROM {source}.declaration_minerals AS x
            JOIN {source}.declarations AS d ON d.id = x.declaration_id
            WHERE x.mineral IS NOT NULL
              AND {' AND '.join(f'd."{f}" IS NOT NULL' for f in fields)}""")


class HistoryTables:
    """The temporary tables a screener against a knowledge base refills at each screening,
    and the relations' queries rewritten to read them: made once, when the screener attaches
    the knowledge base. A screening then runs no DDL: SQLite keeps every statement prepared
    (a table or view made in a screening changes the schema, so that each call prepared the
    findings query again and its rollback read both schemas anew: 150 ms of a declaration
    screened alone against 1,000,000)."""

    def __init__(self, conn: sqlite3.Connection, windows: Windows) -> None:
        self.conn, self.windows = conn, windows
        self.keys = {reach: k for k, reach in enumerate(sorted(set(windows.reach.values())), 1)}
        self.columns = {t: self._columns(t) for t in ("declarations", "licence_uses",
                                                      *WINDOW_INPUTS)}
        self.indexed = has_unit_value_indexes(conn, "history")
        have = {r[0] for r in conn.execute("SELECT name FROM history.sqlite_master "
                                           "WHERE type = 'table'")}
        self.group_keys = {fields: name for name, (fields, _) in
                           group_key_tables(windows).items()
                           if name in have}  # (a knowledge base built before them: none)
        self.queries: dict[str, str] = {}
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS excon_code_groups "
                     "(prefix TEXT PRIMARY KEY)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS excon_groups (rulebook TEXT, mineral TEXT,"
                     " PRIMARY KEY (rulebook, mineral)) WITHOUT ROWID")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS excon_history_values "
                     "(hs_code TEXT, quantity_kg REAL, value_usd REAL)")
        self._like("excon_history_licence_uses", "licence_uses")
        # the declarations' columns each reach's windows read, in the table's order (a
        # year's declarations of a mineral to a destination copied whole took 11 ms)
        everything = self.columns["declarations"].split(", ")
        self.reads: dict[int, str] = {}
        for reach, k in self.keys.items():
            reads = [windows.reads[n] for n, r in windows.reach.items() if r == reach]
            wanted = None if None in reads else {"id"}.union(*reads)  # type: ignore[arg-type]
            self.reads[k] = ", ".join(c for c in everything
                                      if wanted is None or c.strip('"') in wanted)
        # the reaches whose declarations are read from their key table alone (it holds every
        # column their windows read)
        self.alone: dict[int, str] = {}
        for (_, fields, by_group), k in self.keys.items():
            name = self.group_keys.get(fields) if by_group else None
            if name is not None:
                held = {"id", *(c[1] for c in conn.execute(
                    f'PRAGMA history.table_info("{name}")'))}
                if {c.strip('"') for c in self.reads[k].split(", ")} <= held:
                    self.alone[k] = name
        for reach, k in self.keys.items():
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS excon_h{k}_ids "
                         "(id TEXT PRIMARY KEY) WITHOUT ROWID")
            self._like(f"excon_h{k}_declarations", "declarations", "id", self.reads[k])
            for table in sorted({t for name, r in windows.reach.items() if r == reach
                                 for t in windows.inputs[name]}):
                self._like(f"excon_h{k}_{table}", table, "declaration_id")
        conn.commit()

    def _columns(self, table: str) -> str:
        """The screener's columns of `table`, which the knowledge base's must have."""
        mine = [c[1] for c in self.conn.execute(f'PRAGMA main.table_info("{table}")')]
        theirs = {c[1] for c in self.conn.execute(f'PRAGMA history.table_info("{table}")')}
        missing = [c for c in mine if c not in theirs]
        if missing:
            raise HistoryError(f"the knowledge base's {table} has no {', '.join(missing)}: "
                               "it was built by another version of excon; build it again")
        return ", ".join(f'"{c}"' for c in mine)  # names from the schema, not the user

    def _like(self, name: str, table: str, key: str | None = None,
              columns: str | None = None) -> None:
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS "  # names are ours
                          f"SELECT {columns or self.columns[table]} FROM main.{table} LIMIT 0")
        if key:
            self.conn.execute(f"CREATE INDEX IF NOT EXISTS temp.{name}_{key} ON {name} ({key})")

    def query(self, name: str, select: str, tables: dict[str, str]) -> str:
        """`select` (the query of relation `name`) reading the temporary tables `tables`
        names instead of the inputs (once per relation, and kept in excon's cache: a screener
        started from it then parses no SQL)."""
        if name not in self.queries:
            self.queries[name] = cached_json(
                "history query", json.dumps([select, sorted(tables.items())]),
                lambda: [_reading(select, tables)], lambda q: isinstance(q, str), "sql")[0]
        return self.queries[name]


def _reading(select: str, tables: dict[str, str]) -> str:
    """`select` reading the temporary tables `tables` names instead of the inputs."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(select, read="sqlite")
    for node in list(tree.find_all(exp.Table)):
        if not node.db and node.name in tables:
            node.set("alias", node.args.get("alias") or exp.TableAlias(
                this=exp.to_identifier(node.name)))
            node.set("this", exp.to_identifier(tables[node.name]))
            node.set("db", exp.to_identifier("temp"))
    return tree.sql(dialect="sqlite")


class History:
    """The part of a knowledge base's history each relation of one screening needs (see the
    module's description), in the screener's `HistoryTables`. Made after the loaded
    declarations are in the screener's tables; `materialise` asks it for each relation it
    makes (`fill`, else `query`)."""

    def __init__(self, tables: HistoryTables, every_code: bool = False) -> None:
        self.tables = tables
        self.conn = conn = tables.conn
        self.every_code = every_code
        self.reach, self.inputs = tables.windows.reach, tables.windows.inputs
        self.made: set[int] = set()  # the reaches whose rows are in their tables
        self.filled: set[str] = set()  # their derived relations' tables filled
        span = conn.execute("SELECT MIN(declared_on), MAX(declared_on) "
                            "FROM main.declarations").fetchone()
        self.first: str | None = span[0] if span else None
        self.last: str | None = span[1] if span else None

    def fill(self, name: str) -> bool:
        """Fill the screener's table `name` itself, where it has a quicker way than the
        relation's query over the history: the unit-value ranges, from a knowledge base with
        `unit_value_indexes`. False: `query` it is."""
        if name != "code_value_ranges" or self.first is None or not self.tables.indexed:
            return False
        self._code_groups()
        # the loaded codes, and (`every_code`) the knowledge base's under the headings where
        # a range learnt from history moves
        codes = "SELECT hs_code FROM main.declarations WHERE hs_code IS NOT NULL"
        if self.every_code:
            codes += """ UNION SELECT c.hs_code FROM history.code_value_ranges AS c
                          JOIN temp.excon_code_groups AS g
                            ON c.hs_code >= g.prefix AND c.hs_code < g.prefix || ':'"""
        self.conn.executemany("INSERT INTO main.code_value_ranges VALUES (?, ?, ?, ?)",
                              history_value_ranges(self.conn, [
                                  c for (c,) in self.conn.execute(codes)]))
        return True

    def query(self, name: str, select: str) -> str:
        """The query that makes relation `name` (its own, `select`) over the loaded rows and
        the history it needs, which this fills into the temporary tables it reads."""
        if self.first is None:
            return select
        conn = self.conn
        if name == "code_value_ranges":  # a knowledge base without the unit-value indexes
            self._code_groups()
            conn.execute("DELETE FROM temp.excon_history_values")
            conn.execute("""
                INSERT INTO temp.excon_history_values
                SELECT hs_code, quantity_kg, value_usd FROM main.declarations UNION ALL
                SELECT h.hs_code, h.quantity_kg, h.value_usd
                FROM temp.excon_code_groups AS g JOIN history.declarations AS h
                  ON h.hs_code >= g.prefix AND h.hs_code < g.prefix || ':'
                WHERE h.id NOT IN (SELECT id FROM main.declarations)""")
            return self.tables.query(name, select, {"declarations": "excon_history_values"})
        if name == "licence_walk":
            columns = self.tables.columns["licence_uses"]
            conn.execute("DELETE FROM temp.excon_history_licence_uses")
            conn.execute(f"""
                INSERT INTO temp.excon_history_licence_uses
                SELECT {columns} FROM main.licence_uses UNION ALL
                SELECT {columns} FROM history.licence_uses
                WHERE licence_no IN (SELECT licence_no FROM main.declarations
                                     WHERE licence_no IS NOT NULL)
                  AND declaration_id NOT IN (SELECT id FROM main.declarations)""")
            return self.tables.query(name, select,
                                     {"licence_uses": "excon_history_licence_uses"})
        reach = self.reach.get(name)
        if reach is None:
            return select
        k = self._history_rows(*reach)
        for table in self.inputs[name]:
            self._history_table(k, table)
        return self.tables.query(name, select, {t: f"excon_h{k}_{t}"
                                                for t in ("declarations", *self.inputs[name])})

    def _code_groups(self) -> None:
        """The 4-digit headings whose declarations a unit-value range learnt from history
        reads (every prefix it falls back on is in its code's heading): those of the loaded
        codes that no published value or rulebook range covers, and (`every_code`, an add that
        writes the ranges that move) those of the loaded codes under which the knowledge
        base knows such a code."""
        def no_range(code: str) -> str:
            return f"""
                NOT EXISTS (SELECT 1 FROM main.value_range_codes AS r
                            WHERE r.code = SUBSTR({code}, 1, LENGTH(r.code)))
                AND NOT EXISTS (SELECT 1 FROM main.unit_values AS u
                                WHERE u.code = SUBSTR({code}, 1, LENGTH(u.code)))"""

        # with `every_code`, a heading also counts when a code the knowledge base knows under
        # it falls back on history: a new declaration moves that code's range too
        known = """
            OR EXISTS (SELECT 1 FROM history.code_value_ranges AS c
                       WHERE c.hs_code >= SUBSTR(d.hs_code, 1, 4)
                         AND c.hs_code < SUBSTR(d.hs_code, 1, 4) || ':'
                         AND """ + no_range("c.hs_code") + ")" if self.every_code else ""
        self.conn.execute("DELETE FROM temp.excon_code_groups")
        self.conn.execute(f"""
            INSERT INTO temp.excon_code_groups
            SELECT DISTINCT SUBSTR(d.hs_code, 1, 4) FROM main.declarations AS d
            WHERE d.hs_code IS NOT NULL AND ({no_range("d.hs_code")} {known})""")
        # kept past `finish`: `kb.build.add` writes the ranges of these headings

    def _history_rows(self, days: int, fields: tuple[str, ...], by_group: bool) -> int:
        """The reach's tables of the loaded declarations and the history's within `days` up
        to them that share `fields` (and, `by_group`, a group) with one (filled once per
        screening), found through indexes (`history_indexes`), not by reading every
        declaration: by the shared facts and the dates, or by the groups and the days,
        whichever costs less (a destination's declarations of a year run to tens of
        thousands, a mineral's to a few thousand; a consignee's from one exporter to a few),
        else by the days."""
        k = self.tables.keys[days, fields, by_group]
        if k in self.made:
            return k
        self.made.add(k)
        conn = self.conn
        first, last = conn.execute(
            "SELECT MIN(day), MAX(day) FROM main.declaration_days").fetchone()
        conn.execute(f"DELETE FROM temp.excon_h{k}_ids")
        if by_group and not self._loaded_groups():  # a window by group counts nothing of
            return self._fill_declarations(k)  # the history for declarations of no group
        days_on = [first - (days - 1), last]
        dates_on = [(EPOCH + dt.timedelta(days=day)).isoformat() for day in days_on]
        keys = ", ".join(f'"{f}"' for f in fields)
        shared = ", ".join(f'h."{f}"' for f in fields)
        # the candidates by the shared facts (an IN list, from the index alone: with a join
        # SQLite reads each row of the history it finds) and by the groups
        by_fields = f"""
            FROM history.declarations AS h
            WHERE ({shared}) IN (SELECT {keys} FROM main.declarations)
              AND h.declared_on BETWEEN ? AND ?"""
        by_groups = """
            FROM history.declaration_minerals AS x
            WHERE (x.rulebook, x.mineral) IN (SELECT rulebook, mineral FROM temp.excon_groups)
              AND x.day BETWEEN ? AND ?"""
        # a declaration found by its group is looked up then: it costs about two found by
        # the facts (an index entry each)
        if by_group and fields in self.tables.group_keys:  # by group, facts and day
            found = f"""
                FROM history.{self.tables.group_keys[fields]} AS t
                WHERE (t.rulebook, t.mineral, {', '.join(f't."{f}"' for f in fields)}) IN (
                        SELECT m.rulebook, m.mineral, {', '.join(f'd."{f}"' for f in fields)}
                        FROM main.declaration_minerals AS m
                        JOIN main.declarations AS d ON d.id = m.declaration_id
                        WHERE m.mineral IS NOT NULL)
                  AND t.day BETWEEN ? AND ?
                  AND t.declaration_id NOT IN (SELECT id FROM main.declarations)"""
            conn.execute(f"INSERT OR IGNORE INTO temp.excon_h{k}_ids "
                         f"SELECT t.declaration_id {found}", days_on)
            if k in self.tables.alone:  # its declarations too (once each: a declaration
                columns = self.tables.reads[k]  # may be in several groups)
                held = ", ".join("t.declaration_id" if c == '"id"' else f"t.{c}"
                                 for c in columns.split(", "))
                conn.execute(f"DELETE FROM temp.excon_h{k}_declarations")
                conn.execute(f"""
                    INSERT INTO temp.excon_h{k}_declarations
                    SELECT {columns} FROM main.declarations UNION ALL
                    SELECT DISTINCT {held} {found}""", days_on)
                return k
        elif by_group and (not fields or 2 * self._count(by_groups, days_on)
                           < self._count(by_fields, dates_on)):
            same = f"AND ({shared}) IN (SELECT {keys} FROM main.declarations)" \
                if fields else ""
            conn.execute(f"""
                INSERT OR IGNORE INTO temp.excon_h{k}_ids
                SELECT h.id FROM history.declaration_minerals AS x
                CROSS JOIN history.declarations AS h
                WHERE (x.rulebook, x.mineral) IN (SELECT rulebook, mineral
                                                  FROM temp.excon_groups)
                  AND x.day BETWEEN ? AND ? AND h.id = x.declaration_id {same}
                  AND h.id NOT IN (SELECT id FROM main.declarations)""", days_on)
        elif fields:
            groups = """
                AND EXISTS (SELECT 1 FROM history.declaration_minerals AS x
                            JOIN temp.excon_groups AS g
                              ON x.rulebook = g.rulebook AND x.mineral = g.mineral
                            WHERE x.declaration_id = h.id)""" if by_group else ""
            conn.execute(f"""
                INSERT OR IGNORE INTO temp.excon_h{k}_ids
                SELECT h.id {by_fields}
                  AND h.id NOT IN (SELECT id FROM main.declarations) {groups}""", dates_on)
        else:
            conn.execute(f"""
                INSERT OR IGNORE INTO temp.excon_h{k}_ids
                SELECT x.declaration_id FROM history.declaration_days AS x
                WHERE x.day BETWEEN ? AND ?
                  AND x.declaration_id NOT IN (SELECT id FROM main.declarations)""", days_on)
        return self._fill_declarations(k)

    def _count(self, found: str, on: Sequence[object]) -> int:
        """How many rows `found` finds, counted from its index up to `CAP`."""
        return int(self.conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 {found} LIMIT {CAP})",
                                     on).fetchone()[0])

    def _fill_declarations(self, k: int) -> int:
        """The reach's declarations: the loaded ones and the history's it found."""
        columns = self.tables.reads[k]
        self.conn.execute(f"DELETE FROM temp.excon_h{k}_declarations")
        self.conn.execute(f"""
            INSERT INTO temp.excon_h{k}_declarations
            SELECT {columns} FROM main.declarations UNION ALL
            SELECT {columns} FROM history.declarations
            WHERE id IN (SELECT id FROM temp.excon_h{k}_ids)""")
        return k

    def _loaded_groups(self) -> int:
        """The loaded declarations' groups (rulebook, mineral), keyed, once per screening;
        returns how many there are."""
        if "excon_groups" not in self.filled:
            self.conn.execute("DELETE FROM temp.excon_groups")
            self.conn.execute("INSERT INTO temp.excon_groups SELECT DISTINCT rulebook, mineral "
                              "FROM main.declaration_minerals WHERE mineral IS NOT NULL")
            self.filled.add("excon_groups")
        return int(self.conn.execute("SELECT COUNT(*) FROM temp.excon_groups").fetchone()[0])

    def _history_table(self, k: int, table: str) -> None:
        """A derived relation of the loaded declarations and those of `_history_rows`."""
        name = f"excon_h{k}_{table}"
        if name not in self.filled:
            columns = self.tables.columns[table]
            self.conn.execute(f"DELETE FROM temp.{name}")
            self.conn.execute(f"""
                INSERT INTO temp.{name}
                SELECT {columns} FROM main.{table} UNION ALL
                SELECT {columns} FROM history.{table}
                WHERE declaration_id IN (SELECT id FROM temp.excon_h{k}_ids)""")
            self.filled.add(name)

    def finish(self) -> None:
        """After every relation is made: first-seen dates from the knowledge base where
        earlier, and the history's rows dropped from the relations made over it (the
        temporary tables keep theirs until the next screening, or its rollback)."""
        if self.first is not None:
            self.conn.execute("""
                UPDATE party_first_seen SET first_on = h.first_on, first_day = h.first_day
                FROM history.party_first_seen AS h
                WHERE h.key = party_first_seen.key AND h.first_on < party_first_seen.first_on""")
            for name in ("licence_walk", *self.reach):
                self.conn.execute(f"DELETE FROM {name} WHERE declaration_id NOT IN "  # ours
                                  "(SELECT id FROM main.declarations)")
