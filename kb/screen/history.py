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

While such a relation is made, temporary tables named as its inputs (`declarations`,
`declaration_days`, …) hold the loaded rows and that part of the history, taking the history's
derived rows (days, groups, items, licence uses) as the knowledge base stores them instead of
deriving them again; no declaration of the history is screened. A loaded declaration whose id
the history has replaces it there. The findings are those a screening of the history and the
loaded declarations together gives for the loaded ones (tests/test_incremental.py).

`add_to_knowledge_base` then writes the loaded declarations, their derived rows and their
findings into the knowledge base in one transaction: all of them, or nothing.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlglot import exp

from dsl.compile import CompiledRulebook
from kb.screen.value_ranges import has_unit_value_indexes, history_value_ranges

EPOCH = dt.date(1970, 1, 1)  # day numbers count from it (`kb.screen.checks.day_number`)
# the derived relations a window reads, besides the declarations (by declaration id)
WINDOW_INPUTS = ("declaration_days", "declaration_minerals", "declaration_items")


class HistoryError(Exception):
    """The knowledge base cannot serve as history (built by another version of excon)."""


def window_reach(query: exp.Expression) -> tuple[int, tuple[str, ...], bool] | None:
    """How far a compiled window relation looks back: its days (this one's included), the
    declaration fields its declarations share (`with same …`), and whether they share a group
    (`with same group`: a mineral of the rulebook). An item is not counted: more history is
    read than the window keeps, never less. None for a relation that is not a window over
    earlier declarations (`mentions_<n>`, `links_<n>`)."""
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
        self.reach = {name: r for name, q in compiled.windows.items()
                      if (r := window_reach(q)) is not None}
        self.inputs = {name: sorted({t.name for t in compiled.windows[name].find_all(exp.Table)}
                                    & set(WINDOW_INPUTS)) for name in self.reach}


def window_indexes(conn: sqlite3.Connection, windows: Windows) -> list[str]:
    """Indexes of a knowledge base's declarations by the facts each window shares and the
    date, holding the id: a screening against the knowledge base finds the history a window
    needs from them alone (`History._history_rows`), not by reading every declaration of the
    window's days. Made by `excon build`; returns their names."""
    made = []
    for fields in sorted({reach[1] for reach in windows.reach.values() if reach[1]}):
        name = "excon_window__" + "__".join(fields)  # schema field names, not the user's
        columns = ", ".join(f'"{f}"' for f in fields)
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON declarations "
                     f"({columns}, declared_on, id)")
        made.append(name)
    return made


class History:
    """The part of a knowledge base's history each relation of one screening needs (see the
    module's description). Made after the loaded declarations are in the screener's tables;
    `shadowing(name)` is used by `materialise` around each relation it makes."""

    def __init__(self, conn: sqlite3.Connection, windows: Windows,
                 every_code: bool = False) -> None:
        self.conn = conn
        self.every_code = every_code
        self.reach, self.inputs = windows.reach, windows.inputs
        self.made: dict[tuple[int, tuple[str, ...], bool], int] = {}  # reach → its tables
        span = conn.execute("SELECT MIN(declared_on), MAX(declared_on) "
                            "FROM main.declarations").fetchone()
        self.first: str | None = span[0] if span else None
        self.last: str | None = span[1] if span else None
        self.temporary: list[str] = []
        self.indexed = has_unit_value_indexes(conn, "history")

    def columns(self, table: str) -> str:
        """The screener's columns of `table`, which the knowledge base's must have."""
        mine = [c[1] for c in self.conn.execute(f'PRAGMA main.table_info("{table}")')]
        theirs = {c[1] for c in self.conn.execute(f'PRAGMA history.table_info("{table}")')}
        missing = [c for c in mine if c not in theirs]
        if missing:
            raise HistoryError(f"the knowledge base's {table} has no {', '.join(missing)}: "
                               "it was built by another version of excon; build it again")
        return ", ".join(f'"{c}"' for c in mine)  # names from the schema, not the user

    def fill(self, name: str) -> bool:
        """Fill the screener's table `name` itself, where it has a quicker way than the
        relation's query over the history `shadowing` gives: the unit-value ranges, from a
        knowledge base with `unit_value_indexes` (one built before them has its ranges made
        from its rows). False: `shadowing` it is."""
        if name != "code_value_ranges" or self.first is None or not self.indexed:
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
                              history_value_ranges(self.conn, codes))
        return True

    @contextmanager
    def shadowing(self, name: str) -> Iterator[None]:
        """For the time `name` is made: temporary views, named as the inputs it reads, over
        the loaded rows and the history it needs."""
        views = self._views(name)
        try:
            for table, select in views.items():
                self.conn.execute(f"CREATE TEMP VIEW {table} AS {select}")  # names are ours
            yield
        finally:
            for table in views:
                self.conn.execute(f"DROP VIEW IF EXISTS temp.{table}")

    def _views(self, name: str) -> dict[str, str]:
        if self.first is None:
            return {}
        if name == "code_value_ranges":
            self._code_groups()
            columns = "hs_code, quantity_kg, value_usd"
            return {"declarations": f"""
                SELECT {columns} FROM main.declarations UNION ALL
                SELECT {', '.join(f'h.{c}' for c in columns.split(', '))}
                FROM temp.excon_code_groups AS g JOIN history.declarations AS h
                  ON h.hs_code >= g.prefix AND h.hs_code < g.prefix || ':'
                WHERE h.id NOT IN (SELECT id FROM main.declarations)"""}
        if name == "licence_walk":
            return {"licence_uses": f"""
                SELECT {self.columns('licence_uses')} FROM main.licence_uses UNION ALL
                SELECT {self.columns('licence_uses')} FROM history.licence_uses
                WHERE licence_no IN (SELECT licence_no FROM main.declarations
                                     WHERE licence_no IS NOT NULL)
                  AND declaration_id NOT IN (SELECT id FROM main.declarations)"""}
        reach = self.reach.get(name)
        if reach is None:
            return {}
        k = self._history_rows(*reach)
        return {"declarations": f"SELECT * FROM temp.excon_h{k}_declarations",
                **{t: f"SELECT * FROM temp.{self._history_table(k, t)}"
                   for t in self.inputs[name]}}

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
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS excon_code_groups "
                          "(prefix TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM temp.excon_code_groups")
        self.conn.execute(f"""
            INSERT INTO temp.excon_code_groups
            SELECT DISTINCT SUBSTR(d.hs_code, 1, 4) FROM main.declarations AS d
            WHERE d.hs_code IS NOT NULL AND ({no_range("d.hs_code")} {known})""")
        # kept past `finish`: `kb.build.add` writes the ranges of these headings

    def _history_rows(self, days: int, fields: tuple[str, ...], by_group: bool) -> int:
        """Temporary tables of the loaded declarations and the history's within `days` up to
        them that share `fields` (and, `by_group`, a group) with one, with their derived rows
        (made once per reach). The history's are found by the shared facts and the dates
        (`window_indexes`), else through its day numbers (by group and day, or by day: both
        indexed), not by reading every declaration."""
        if (days, fields, by_group) in self.made:
            return self.made[days, fields, by_group]
        k = len(self.made) + 1
        self.made[days, fields, by_group] = k
        first, last = self.conn.execute(
            "SELECT MIN(day), MAX(day) FROM main.declaration_days").fetchone()
        if by_group:  # the groups of the loaded declarations, each over the days
            found = """
                FROM (SELECT DISTINCT rulebook, mineral FROM main.declaration_minerals) AS g
                JOIN history.declaration_minerals AS x
                  ON x.rulebook = g.rulebook AND x.mineral = g.mineral
                 AND x.day BETWEEN ? AND ?"""
        else:
            found = "FROM history.declaration_days AS x WHERE x.day BETWEEN ? AND ?"
        conn = self.conn
        if fields:  # by the shared facts and the dates, from `window_indexes` alone (an IN
            # list: with a join SQLite reads each row of the history it finds)
            keys = ", ".join(f'"{f}"' for f in fields)
            groups = ""
            if by_group:
                self._loaded_groups()
                groups = """
                    AND EXISTS (SELECT 1 FROM history.declaration_minerals AS x
                                JOIN temp.excon_groups AS g
                                  ON x.rulebook = g.rulebook AND x.mineral = g.mineral
                                WHERE x.declaration_id = h.id)"""
            on = [(EPOCH + dt.timedelta(days=day)).isoformat()
                  for day in (first - (days - 1), last)]
            conn.execute(f"""
                CREATE TEMP TABLE excon_h{k}_ids AS
                SELECT DISTINCT h.id AS id FROM history.declarations AS h
                WHERE ({', '.join(f'h."{f}"' for f in fields)})
                      IN (SELECT {keys} FROM main.declarations)
                  AND h.declared_on BETWEEN ? AND ?
                  AND h.id NOT IN (SELECT id FROM main.declarations) {groups}""", on)
        else:
            conn.execute(f"""
                CREATE TEMP TABLE excon_h{k}_ids AS
                SELECT DISTINCT h.id AS id FROM (SELECT x.declaration_id {found}) AS c
                JOIN history.declarations AS h ON h.id = c.declaration_id
                WHERE h.id NOT IN (SELECT id FROM main.declarations)""",
                         [first - (days - 1), last])
        conn.execute(f"CREATE INDEX temp.excon_h{k}_ids_id ON excon_h{k}_ids (id)")
        columns = self.columns("declarations")
        conn.execute(f"""
            CREATE TEMP TABLE excon_h{k}_declarations AS
            SELECT {columns} FROM main.declarations UNION ALL
            SELECT {columns} FROM history.declarations
            WHERE id IN (SELECT id FROM temp.excon_h{k}_ids)""")
        conn.execute(f"CREATE INDEX temp.excon_h{k}_declarations_id "
                     f"ON excon_h{k}_declarations (id)")
        self.temporary += [f"excon_h{k}_ids", f"excon_h{k}_declarations"]
        return k

    def _loaded_groups(self) -> None:
        """The loaded declarations' groups (rulebook, mineral), keyed, once per screening."""
        if "excon_groups" not in self.temporary:
            self.conn.execute("CREATE TEMP TABLE excon_groups (rulebook TEXT, mineral TEXT, "
                              "PRIMARY KEY (rulebook, mineral)) WITHOUT ROWID")
            self.conn.execute("INSERT INTO temp.excon_groups SELECT DISTINCT rulebook, mineral "
                              "FROM main.declaration_minerals WHERE mineral IS NOT NULL")
            self.temporary.append("excon_groups")

    def _history_table(self, k: int, table: str) -> str:
        """A derived relation of the loaded declarations and those of `_history_rows`."""
        name = f"excon_h{k}_{table}"
        if name not in self.temporary:
            cols = self.columns(table)
            self.conn.execute(f"""
                CREATE TEMP TABLE {name} AS
                SELECT {cols} FROM main.{table} UNION ALL
                SELECT {cols} FROM history.{table}
                WHERE declaration_id IN (SELECT id FROM temp.excon_h{k}_ids)""")
            self.conn.execute(f"CREATE INDEX temp.{name}_id ON {name} (declaration_id)")
            self.temporary.append(name)
        return name

    def finish(self) -> None:
        """After every relation is made: first-seen dates from the knowledge base where
        earlier, the history's rows dropped from the relations made over it, and the
        temporary tables dropped."""
        conn = self.conn
        if self.first is not None:
            conn.execute("""
                UPDATE party_first_seen SET first_on = h.first_on, first_day = h.first_day
                FROM history.party_first_seen AS h
                WHERE h.key = party_first_seen.key AND h.first_on < party_first_seen.first_on""")
            for name in ("licence_walk", *self.reach):
                conn.execute(f"DELETE FROM {name} WHERE declaration_id NOT IN "  # our names
                             "(SELECT id FROM main.declarations)")
        for table in self.temporary:
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        self.temporary.clear()
        self.made.clear()
