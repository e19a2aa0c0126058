"""The typical unit value (USD/kg) of each declared customs code (`code_value_ranges`), and how
a screening against a knowledge base's history finds it without reading that history whole.

A code's range is the first of:
1. a published unit value (`excon build --unit-values`) for the longest code that is a prefix
   of it;
2. the rulebook's `value range` for the longest such code;
3. its history: the 5th to 95th percentile (NTILE(20): top of the first twentieth, bottom of
   the last) of the unit values of every declaration under the longest of its 10-, 8-, 6- and
   4-digit prefixes with at least 30 of them (customs codes have 8 or 10 digits).

`CODE_VALUE_RANGES` is that relation as one query over `declarations`: a build and a
screening without history make it so, on every engine. A screening against a knowledge base
(`kb.screen.history.History`) would have to rank every declaration of the history under the
loaded codes' headings at each call (63,000 for cotton T-shirts, 47 ms of a declaration
screened alone against 1,000,000). `excon build` therefore keeps an index of the declarations
by each prefix length and unit value (`unit_value_indexes`), and `history_value_ranges` reads
from it only the sizes of the prefixes and the few history values around the two ranks a
percentile takes, merged with the loaded declarations' own: the same rows, exactly
(tests/test_incremental.py compares them with a screening of everything).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence

LEVELS = (10, 8, 6, 4)  # the prefix lengths a code falls back on, longest first
MINIMUM = 30  # declarations a prefix needs for its percentiles to stand for the code
TILES = 20  # NTILE(20): the 5th and 95th percentiles

# the reference ranges of each code in `codes` (published, then the rulebook's), best first
_RANGES = """
          SELECT x.hs_code AS hs_code, v.low AS low, v.high AS high, v.basis AS basis,
                 ROW_NUMBER() OVER (PARTITION BY x.hs_code
                                    ORDER BY v.rank, LENGTH(v.code) DESC, v.basis) AS position
          FROM codes AS x
          JOIN (SELECT u.code AS code, 0 AS rank,
                       u.low * (CASE WHEN u.unit = 'USD/t' THEN 0.001 ELSE 1 END) AS low,
                       u.high * (CASE WHEN u.unit = 'USD/t' THEN 0.001 ELSE 1 END) AS high,
                       'published unit value ' || u.code || ' (' || u.source || ')' AS basis
                FROM unit_values AS u
                UNION ALL
                SELECT r.code AS code, 1 AS rank, r.low AS low, r.high AS high,
                       'value range ' || r.value_range AS basis
                FROM value_range_codes AS r) AS v
            ON v.code = SUBSTRING(x.hs_code, 1, LENGTH(v.code))"""

# Only the populations of the prefixes some code falls back on are ranked.
CODE_VALUE_RANGES = f"""
        WITH codes AS (
          SELECT d.hs_code AS hs_code,
                 COUNT(CASE WHEN d.quantity_kg > 0 AND d.value_usd IS NOT NULL THEN 1 END)
                   AS n
          FROM declarations AS d GROUP BY d.hs_code),
        ranges AS ({_RANGES}),
        prefixes AS (
          SELECT DISTINCT c.hs_code AS hs_code, SUBSTRING(c.hs_code, 1, l.len) AS prefix
          FROM codes AS c
          CROSS JOIN (SELECT 10 AS len UNION ALL SELECT 8 UNION ALL SELECT 6
                      UNION ALL SELECT 4) AS l),
        sizes AS (
          SELECT p.prefix AS prefix, SUM(c.n) AS n
          FROM prefixes AS p JOIN codes AS c ON c.hs_code = p.hs_code
          GROUP BY p.prefix),
        fallback AS (
          SELECT p.hs_code AS hs_code, p.prefix AS prefix,
                 ROW_NUMBER() OVER (PARTITION BY p.hs_code
                                    ORDER BY LENGTH(p.prefix) DESC) AS position
          FROM prefixes AS p JOIN sizes AS z ON z.prefix = p.prefix
          WHERE z.n >= {MINIMUM}
            AND NOT EXISTS (SELECT 1 FROM ranges AS r WHERE r.hs_code = p.hs_code)),
        tiles AS (
          SELECT m.prefix AS prefix, d.value_usd / d.quantity_kg AS uv,
                 NTILE({TILES}) OVER (PARTITION BY m.prefix
                                      ORDER BY d.value_usd / d.quantity_kg) AS tile
          FROM (SELECT DISTINCT p.hs_code AS member, p.prefix AS prefix
                FROM prefixes AS p
                JOIN (SELECT DISTINCT f.prefix AS prefix FROM fallback AS f
                      WHERE f.position = 1) AS used ON used.prefix = p.prefix) AS m
          JOIN declarations AS d ON d.hs_code = m.member
          WHERE d.quantity_kg > 0 AND d.value_usd IS NOT NULL),
        history AS (
          SELECT t.prefix AS prefix, COUNT(*) AS n,
                 MAX(CASE WHEN t.tile = 1 THEN t.uv END) AS p05,
                 MIN(CASE WHEN t.tile = {TILES} THEN t.uv END) AS p95
          FROM tiles AS t GROUP BY t.prefix)
        SELECT c.hs_code AS hs_code, COALESCE(r.low, h.p05) AS low,
               COALESCE(r.high, h.p95) AS high,
               COALESCE(r.basis, 'history of ' || CAST(h.n AS TEXT) || ' declarations under '
                                 || f.prefix) AS basis
        FROM codes AS c
        LEFT JOIN ranges AS r ON r.hs_code = c.hs_code AND r.position = 1
        LEFT JOIN fallback AS f ON f.hs_code = c.hs_code AND f.position = 1
        LEFT JOIN history AS h ON h.prefix = f.prefix"""

# the declarations a range learnt from history counts, and their unit value: the same
# expressions as CODE_VALUE_RANGES', which SQLite matches against the indexes' own
_VALID = "quantity_kg > 0 AND value_usd IS NOT NULL"
_UNIT_VALUE = "value_usd / quantity_kg"


def _index(length: int) -> str:
    return f"excon_unit_values__{length}"


def unit_value_indexes(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    """Indexes of a knowledge base's declarations by each prefix length of their code and
    their unit value (those with a quantity and a value only): a prefix's size and the values
    at given ranks are read from them without reading its declarations. Made by `excon
    build`; returns their names."""
    for length in LEVELS:
        # the columns after the two it is ordered by make it covering: SQLite 3.40 reads a
        # row for every entry of an index on expressions that lacks their columns
        conn.execute(f"CREATE INDEX IF NOT EXISTS {schema}.{_index(length)} ON declarations "
                     f"(SUBSTR(hs_code, 1, {length}), {_UNIT_VALUE}, hs_code, quantity_kg, "
                     f"value_usd) WHERE {_VALID}")
    return [_index(length) for length in LEVELS]


def has_unit_value_indexes(conn: sqlite3.Connection, schema: str) -> bool:
    """Whether the database attached as `schema` has `unit_value_indexes` (a knowledge base
    built before they were made has not: its ranges are made from its rows)."""
    names = {r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'index'")}  # our schema name
    return all(_index(length) in names for length in LEVELS)


def order_statistic(rank: int, size: int, window: Callable[[int, int], list[float]],
                    added: Sequence[float]) -> float:
    """The value at 0-based `rank` of the sorted population H + `added`, where H holds `size`
    values read in ascending order through `window(first, last)` (H[first..last]).

    Only H[rank − |added| .. rank] is read: the population is three runs, each sorted and
    none overlapping the next — the unread values before the window with the added ones below
    its first value, the window's with the added ones between its first and last, and the
    unread values after it with the added ones above its last — and at most `rank` values lie
    in the first run, at least `rank` + 1 in the first two."""
    if size == 0:
        return sorted(added)[rank]
    first, last = max(0, rank - len(added)), min(size - 1, rank)
    read = window(first, last)
    low, high = read[0], read[-1]
    below = sorted(v for v in added if v < low)
    inside = sorted([*read, *(v for v in added if low <= v <= high)])
    above = sorted(v for v in added if v > high)
    position = rank - first - len(below)
    if position < 0:  # only when nothing of H lies before the window (first == 0)
        return below[rank]
    if position < len(inside):
        return inside[position]
    return above[position - len(inside)]  # only when nothing of H lies after it


def _by_prefix(rows: Iterable[tuple[str, float]]) -> dict[str, list[float]]:
    """Unit values by each prefix their code falls back on."""
    out: dict[str, list[float]] = {}
    for code, value in rows:
        for prefix in {code[:length] for length in LEVELS}:
            out.setdefault(prefix, []).append(value)
    return out


def history_value_ranges(conn: sqlite3.Connection,
                         codes: Sequence[str]) -> list[tuple[object, ...]]:
    """`CODE_VALUE_RANGES`' rows for `codes`, over the loaded declarations
    (`main.declarations`) and the knowledge base's (`history.declarations`, with
    `unit_value_indexes`), a loaded declaration replacing the history's of the same id."""
    reference = {code: (low, high, basis) for code, low, high, basis in conn.execute(
        "WITH codes AS (SELECT value AS hs_code FROM json_each(?)), "  # no table: no DDL
        f"ranges AS ({_RANGES}) SELECT hs_code, low, high, basis FROM ranges "
        "WHERE position = 1", [json.dumps(sorted(set(codes)))])}
    # the loaded declarations' values; the history's they replace are left out of it by rowid
    added = _by_prefix(conn.execute(
        f"SELECT hs_code, {_UNIT_VALUE} FROM main.declarations WHERE {_VALID}"))
    history = StoredValues(conn, [rowid for (rowid,) in conn.execute(
        "SELECT rowid FROM history.declarations WHERE id IN (SELECT id FROM main.declarations)")])
    sizes: dict[str, int] = {}
    chosen: dict[str, str] = {}  # code → the prefix it falls back on
    waiting = sorted({c for c in codes if c not in reference})
    for length in LEVELS:  # the longest prefix with enough declarations, counted as needed
        wanted = {c[:length] for c in waiting} - set(sizes)
        for prefix, n in history.sizes(wanted).items():
            sizes[prefix] = n + len(added.get(prefix, ()))
        chosen |= {c: c[:length] for c in waiting if sizes[c[:length]] >= MINIMUM}
        waiting = [c for c in waiting if c not in chosen]
    learnt = {prefix: _percentiles(history, prefix, sizes[prefix], added.get(prefix, []))
              for prefix in set(chosen.values())}
    out: list[tuple[object, ...]] = []
    for code in sorted(set(codes)):
        if code in reference:
            out.append((code, *reference[code]))
        elif code in chosen:
            prefix = chosen[code]
            out.append((code, *learnt[prefix],
                        f"history of {sizes[prefix]} declarations under {prefix}"))
        else:
            out.append((code, None, None, None))
    return out


class StoredValues:
    """The history's unit values by prefix, through `unit_value_indexes`, less the rows whose
    rowids are `replaced` (their index entries hold the rowid: no row is read)."""

    def __init__(self, conn: sqlite3.Connection, replaced: list[int]) -> None:
        self.conn = conn
        self.params: list[object] = list(replaced)
        self.left_out = f" AND rowid NOT IN ({', '.join('?' * len(replaced))})" \
            if replaced else ""

    def _match(self, prefix_length: int) -> str:
        """The condition, as the index is defined (SQLite matches the expressions)."""
        return f"SUBSTR(hs_code, 1, {prefix_length}) = ? AND {_VALID}" + self.left_out

    def sizes(self, prefixes: Iterable[str]) -> dict[str, int]:
        """How many declarations of the history have a quantity and a value under each prefix
        (prefixes of a code have 4, 6, 8 or 10 digits: one index each), each counted from its
        index (one query each: grouped, SQLite sorted the counts in a temporary tree, 4 to 10
        times slower)."""
        return {prefix: int(self.conn.execute(
            f"SELECT COUNT(*) FROM history.declarations WHERE {self._match(len(prefix))}",
            [prefix, *self.params]).fetchone()[0]) for prefix in prefixes}

    def window(self, prefix: str, size: int, first: int, last: int) -> list[float]:
        """The `first`th to `last`th (0-based) smallest unit values of the `size` under
        `prefix`, read from the nearer end of the index."""
        ascending = first <= size - 1 - last
        rows = self.conn.execute(
            f"SELECT {_UNIT_VALUE} FROM history.declarations WHERE {self._match(len(prefix))} "
            f"ORDER BY {_UNIT_VALUE} {'' if ascending else 'DESC'} LIMIT ? OFFSET ?",
            [prefix, *self.params, last - first + 1,
             first if ascending else size - 1 - last]).fetchall()
        values = [v for (v,) in rows]
        return values if ascending else values[::-1]


def _percentiles(history: StoredValues, prefix: str, size: int,
                 added: list[float]) -> tuple[float, float]:
    """The top of the first twentieth and the bottom of the last of the unit values of the
    `size` declarations under `prefix` (NTILE(20) gives the first size % 20 twentieths one
    more)."""
    stored = size - len(added)

    def window(first: int, last: int) -> list[float]:
        return history.window(prefix, stored, first, last)

    q, r = divmod(size, TILES)
    return (order_statistic(q + (1 if r else 0) - 1, stored, window, added),
            order_statistic(size - q, stored, window, added))
