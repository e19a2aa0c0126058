"""The SQL every stage of the compiler builds with: the findings' columns and outcomes,
three-valued truths (`Truth`: certainly true, certainly false), and sqlglot tree helpers
(columns, literals, AND/OR/NOT, IN, NULL tests, in-force tests over periods).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlglot import exp

from dsl.findings import FINDING_OUTCOMES
from dsl.periods import Periods
from dsl.rulebook import Interval

# A rule's outcome -> its findings' outcome (see `dsl.rulebook.LICENSABLE` for the three that
# a licence covers).
OUTCOME_OF = {"prohibited": "prohibited", "licence required": "unlicensed",
              "presumption of denial": "presumption-of-denial",
              "case-by-case review": "case-by-case", "undetermined": "undetermined",
              "risk": "risk"}
OUTCOME_RANK = {o: n for n, o in enumerate(FINDING_OUTCOMES)}
DIALECTS = ("sqlite", "duckdb", "postgres")
# Functions a generated statement may call; the linter rejects anything else.
ALLOWED_FUNCTIONS = frozenset({
    "AND", "OR", "CASE", "IF", "CAST", "CONCAT", "COALESCE", "ROW_NUMBER", "EXISTS", "LOWER",
    "STR_POSITION", "NULLIF", "COUNT", "SUM", "ROUND", "FLOOR",
})

D = "d"  # alias of the judged declaration in every check


class CompileError(Exception):
    """A construct that cannot be compiled; carries diagnostics with spans."""


class Candidates(NamedTuple):
    """The declarations outside which part of a condition is certainly false (`certain`), or,
    if not certain, false or unknown; `cost` ranks the kinds of sets by how few rows they
    usually hold and how cheaply an engine finds them (lower first)."""

    query: exp.Query
    certain: bool
    cost: int


# The kinds of candidate sets, cheapest first: party links and listed names (a few parties,
# index probes); a materialised relation's rows past a threshold, a value far outside the
# declared code's range, and a country set (an index probe), whose sets are intersected; the
# items of a group; a unit value inside the ranges of whole minerals (about every declaration
# of those minerals).
COST_PARTIES, COST_RELATION, COST_COUNTRIES, COST_ITEMS, COST_VALUE_RANGE = 0, 1, 1, 2, 3


@dataclass
class Truth:
    """SQL for 'certainly true' and 'certainly false', and the fields whose absence matters."""

    t: exp.Expression
    f: exp.Expression
    missing: list[str] = field(default_factory=list)
    # a missing field that matters only in some cases (an item's threshold): when it does
    guards: dict[str, exp.Expression] = field(default_factory=dict)
    # `f` is `NOT t` in SQL's three-valued logic (no missing fact makes both false): the
    # truth value is then `t` itself, written once
    complement: bool = False


def combine(parts: list[Truth], t: exp.Expression, f: exp.Expression) -> Truth:
    """and/or of parts: a field's guard survives only if every part that needs it is guarded.
    Complements combine (De Morgan holds in three-valued logic)."""
    missing = merge(p.missing for p in parts)
    guards: dict[str, exp.Expression] = {}
    for name in missing:
        needing = [p for p in parts if name in p.missing]
        if all(name in p.guards for p in needing):
            guards[name] = or_(*(p.guards[name].copy() for p in needing))
    return Truth(t, f, missing, guards, all(p.complement for p in parts))


def is_complement(truth: Truth) -> bool:
    """`truth.f` is written as `NOT truth.t`."""
    f = truth.f
    return truth.complement or (isinstance(f, exp.Not) and f.this.unnest() == truth.t.unnest())


TRUE = exp.true()
FALSE = exp.false()


def col_(name: str, table: str = D) -> exp.Column:
    return exp.column(name, table=table)


def whole(value: exp.Expression) -> exp.Expression:
    """A sum or count shown as a whole number, alike on every engine: first to the thousandth,
    so that the order in which an engine added the values does not show (one sums 101650.5 as
    101650.49999999, another as 101650.50000001), then halves up (ROUND of a double rounds them
    to even on PostgreSQL); a cast to an integer only once it is whole (it truncates on SQLite
    and rounds elsewhere). Windows are never negative."""
    thousandths = exp.Floor(this=exp.Add(this=exp.Mul(this=value, expression=lit(1000)),
                                         expression=lit(0.5)))
    return exp.Floor(this=exp.Add(this=exp.Div(this=thousandths, expression=lit(1000)),
                                  expression=lit(0.5)))


def lit(value: object) -> exp.Expression:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def and_(*parts: exp.Expression) -> exp.Expression:
    kept = [p for p in parts if p is not TRUE]
    if any(p is FALSE for p in kept):
        return FALSE
    if not kept:
        return TRUE
    return exp.and_(*kept, copy=False) if len(kept) > 1 else kept[0]  # type: ignore[return-value]


def or_(*parts: exp.Expression) -> exp.Expression:
    kept = [p for p in parts if p is not FALSE]
    if any(p is TRUE for p in kept):
        return TRUE
    if not kept:
        return FALSE
    return exp.or_(*kept, copy=False) if len(kept) > 1 else kept[0]  # type: ignore[return-value]


def cheap_first(parts: Iterable[exp.Expression]) -> list[exp.Expression]:
    """The operands of an `and`/`or` with the tests of the row (and of relations already
    joined to it) before those that run a subquery: engines evaluate them left to right and
    stop at the first that decides, so a subquery runs only on the rows the cheap tests leave
    (the result is the same in any order)."""
    return sorted(parts, key=lambda p: p.find(exp.Subquery, exp.Exists, exp.Select) is not None)


def union_all(queries: Sequence[exp.Query]) -> exp.Query:
    """`q1 UNION ALL q2 …` of one or more queries (copies: the result shares no node with
    them). Each query is copied once; sqlglot's `union` copies both sides by default, which
    copied the growing union again at every step (3.6 s of the findings of one declaration)."""
    query = queries[0].copy()
    for q in queries[1:]:
        query = exp.union(query, q.copy(), distinct=False, copy=False)
    return query


def not_(e: exp.Expression) -> exp.Expression:
    if e is TRUE:
        return FALSE
    if e is FALSE:
        return TRUE
    return exp.not_(e, copy=False)


def in_(col: exp.Expression, values: Iterable[str]) -> exp.Expression:
    vals = sorted(set(values))
    if not vals:
        return FALSE
    return exp.In(this=col, expressions=[lit(v) for v in vals])


def is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=e, expression=exp.null())


def not_null(e: exp.Expression) -> exp.Expression:
    return exp.not_(is_null(e), copy=False)


# The types the compiler casts to, built once (sqlglot's `cast` parses its type's name, and
# copies the value cast, at every call: a large rulebook makes tens of thousands of casts).
_TYPES = {name: exp.DataType.build(name) for name in ("INT", "BIGINT", "TEXT")}


def cast(e: exp.Expression, to: str) -> exp.Expression:
    """CAST(e AS to), taking `e` as it is (not a copy); `e` itself when it is cast to `to`."""
    if isinstance(e, exp.Cast) and e.to == _TYPES[to]:
        return e
    return exp.Cast(this=e, to=_TYPES[to].copy())


def case(*whens: tuple[exp.Expression, exp.Expression],
         default: exp.Expression | None = None) -> exp.Case:
    """CASE WHEN c1 THEN v1 … ELSE default END, taking its parts as they are."""
    return exp.Case(ifs=[exp.If(this=c, true=v) for c, v in whens], default=default)


def join(query: exp.Select, source: exp.Expr, on: exp.Expr,
         kind: str = "LEFT") -> exp.Select:
    """`query` LEFT (or INNER) JOIN `source` ON `on`, in place: sqlglot's `join` parses its
    join type and copies its parts at every call."""
    query.append("joins", exp.Join(this=source, on=on,
                                   **({"side": "LEFT"} if kind == "LEFT" else {"kind": kind})))
    return query


def paren(e: exp.Expr) -> exp.Paren:
    """`(e)`, taking `e` as it is."""
    return exp.paren(e, copy=False)


def as_(e: exp.Expression, name: str) -> exp.Expr:
    """`e AS name`, taking `e` as it is: sqlglot's `alias_` copies it by default (most of a
    large rulebook's compile time went to copying expressions built a moment before)."""
    return exp.alias_(e, name, copy=False)


def table(name: str) -> exp.Table:
    """The table `name` (a plain identifier), without parsing it as sqlglot's `to_table` does."""
    return exp.Table(this=exp.to_identifier(name))


def in_force(periods: Periods, day: exp.Expression) -> exp.Expression:
    """`day` falls in one of the periods (ISO dates compare as text on every engine)."""
    parts = []
    for iv in periods.intervals:
        lo = exp.GTE(this=day.copy(), expression=lit(iv.start.isoformat())) if iv.start \
            else TRUE
        hi = exp.LTE(this=day.copy(), expression=lit(iv.end.isoformat())) if iv.end else TRUE
        parts.append(and_(lo, hi))
    return exp.paren(or_(*parts)) if len(parts) > 1 else (parts[0] if parts else FALSE)


def interval_test(iv: Interval, day: exp.Expression) -> exp.Expression:
    return and_(
        exp.GTE(this=day.copy(), expression=lit(iv.start.isoformat())) if iv.start else TRUE,
        exp.LTE(this=day.copy(), expression=lit(iv.end.isoformat())) if iv.end else TRUE,
    )


# SQLite: `judged_declarations.row_key` is the declaration's rowid (see `for_dialect`)
ROW_KEY = "row_key"


def key_of(query: exp.Query) -> exp.Column | None:
    """The declaration key a candidate query selects (`x.id`, `x.declaration_id`), unless it is
    a compound query."""
    first = query.selects[0] if isinstance(query, exp.Select) else None
    return first if isinstance(first, exp.Column) and first.table == "x" else None


def reads_declarations(query: exp.Select) -> bool:
    """The query's own FROM is `declarations`."""
    source = query.args.get("from_")
    return isinstance(source, exp.From) and source.this.name == "declarations"


def is_probe(query: exp.Query) -> bool:
    """A candidate set found through an index of `declarations` (a country set, names)."""
    return isinstance(query, exp.Select) and reads_declarations(query) and \
        not query.args.get("joins")


def merge(lists: Iterable[list[str]]) -> list[str]:
    out: list[str] = []
    for lst in lists:
        for x in lst:
            if x not in out:
                out.append(x)
    return out
