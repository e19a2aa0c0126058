"""The percentiles of a code's unit values learnt from a knowledge base's history, read from
its indexes (`kb.screen.value_ranges`), are those of the whole population, exactly."""

from __future__ import annotations

import sqlite3

from hypothesis import event, given, settings
from hypothesis import strategies as st

from kb.screen.value_ranges import (
    CODE_VALUE_RANGES,
    history_value_ranges,
    order_statistic,
    unit_value_indexes,
)

# few distinct values, so that ties are common (the ranks then fall inside runs of equals)
values = st.lists(st.integers(0, 6).map(float), max_size=40)


@given(values, values, st.data())
@settings(max_examples=300, deadline=None)
def test_a_rank_of_the_history_and_the_added_values_reads_only_a_window(
        history: list[float], added: list[float], data: st.DataObject) -> None:
    population = sorted(history + added)
    if not population:
        return
    rank = data.draw(st.integers(0, len(population) - 1))
    stored = sorted(history)
    reads: list[tuple[int, int]] = []

    def window(first: int, last: int) -> list[float]:
        reads.append((first, last))
        return stored[first:last + 1]

    assert order_statistic(rank, len(stored), window, added) == population[rank]
    assert all(last - first <= len(added) for first, last in reads)


def _declarations(conn: sqlite3.Connection, schema: str,
                  rows: list[tuple[str, str, float | None, float | None]]) -> None:
    conn.execute(f"CREATE TABLE {schema}.declarations (id TEXT PRIMARY KEY, hs_code TEXT, "
                 "quantity_kg REAL, value_usd REAL)")
    conn.executemany(f"INSERT INTO {schema}.declarations VALUES (?, ?, ?, ?)", rows)


@given(st.lists(st.tuples(st.sampled_from(["7201100000", "7201200000", "72012000",
                                           "9403600000"]),
                          st.sampled_from([None, 0.0, 0.5, 1.0, 3.0, 7.0, 10.0, 42.0, 250.0]),
                          st.integers(0, 5000).map(lambda v: float(v) if v % 13 else None)),
                min_size=40, max_size=150),
       st.integers(0, 150), st.integers(0, 10))
@settings(max_examples=100, deadline=None)
def test_the_ranges_read_from_the_indexes_are_those_of_the_whole_population(
        rows: list[tuple[str, float | None, float | None]], split: int, again: int) -> None:
    """Loaded declarations (some replacing the history's of the same id) against a history
    with `unit_value_indexes`: the ranges `CODE_VALUE_RANGES` gives over all of them."""
    numbered = [(f"D{i:04d}", *row) for i, row in enumerate(rows)]
    history, loaded = numbered[:split], numbered[split:]
    loaded += [(i, code, q, (v or 0) * 3 or None) for i, code, q, v in history[:again]]
    conn = sqlite3.connect(":memory:")
    conn.execute("ATTACH DATABASE ':memory:' AS history")
    _declarations(conn, "history", history)
    _declarations(conn, "main", loaded)
    unit_value_indexes(conn, "history")
    conn.execute("CREATE TABLE unit_values (code TEXT, low REAL, high REAL, unit TEXT, "
                 "source TEXT)")
    conn.execute("INSERT INTO unit_values VALUES ('720211', 1, 2, 'USD/t', 'a table')")
    conn.execute("CREATE TABLE value_range_codes (value_range TEXT, code TEXT, low REAL, "
                 "high REAL)")
    conn.execute("INSERT INTO value_range_codes VALUES ('furniture', '9403', 0.5, 9)")
    everything = """SELECT * FROM main.declarations UNION ALL SELECT * FROM
                    history.declarations WHERE id NOT IN (SELECT id FROM main.declarations)"""
    conn.execute(f"CREATE TEMP VIEW everything AS {everything}")
    whole = conn.execute(CODE_VALUE_RANGES.replace("declarations AS d", "temp.everything AS d"))
    expected = sorted(r for r in whole if r[0] in {code for _, code, _, _ in loaded})
    assert sorted(history_value_ranges(conn, [code for _, code, _, _ in loaded])) == expected
    event("a range learnt from history" if any(
        basis and basis.startswith("history") for *_, basis in expected) else "none learnt")
