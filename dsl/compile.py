"""Compile a checked rulebook into SQL checks, built as sqlglot expression trees.

Each rule becomes a view `check_<rule>` with one row per finding, and `findings` is their
union, with the columns `declaration_id, rule, outcome, severity, instrument, provision,
explanation, rulebook_version`. Values are literals made by sqlglot; identifiers come from the
schema and the documented support relations below, never from rulebook text.

Conditions are three-valued: for each condition the compiler builds the SQL that makes it
certainly true (t) and certainly false (f); when neither holds, a fact the rule needs is
missing and the finding is `undetermined`, naming the missing fields — never a silent pass.

Support relations the checks read (the knowledge base creates them, `excon export` documents
them): `judged_declarations` (declarations with `judged_on`, the date the law is taken from,
and `unit_value`), `declaration_items` (declaration → matching item) and
`item_declarations` (the same by item), `licence_cover`
(declaration → whether its licence covers it, and why not), `party_name_keys` and
`listed_party_keys` (normalised names), `listed_matches` (declared names matching a listed
party, with each listing's period and the note a finding gives), `list_entry_periods`
(listings in force).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlglot
from sqlglot import exp

from dsl import ast
from dsl.diagnostics import Diagnostic
from dsl.periods import Control, Periods, item_controls, rule_periods
from dsl.rulebook import CheckedRulebook, Interval
from dsl.schema import UNIT_FACTORS, Schema

FINDING_COLUMNS = ("declaration_id", "rule", "outcome", "severity", "instrument", "provision",
                   "explanation", "rulebook_version")
OUTCOME_OF = {"prohibited": "prohibited", "licence required": "unlicensed",
              "undetermined": "undetermined", "risk": "risk"}
OUTCOME_RANK = {"prohibited": 0, "unlicensed": 1, "risk": 2, "undetermined": 3}
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


def _combine(parts: list[Truth], t: exp.Expression, f: exp.Expression) -> Truth:
    """and/or of parts: a field's guard survives only if every part that needs it is guarded.
    Complements combine (De Morgan holds in three-valued logic)."""
    missing = _merge(p.missing for p in parts)
    guards: dict[str, exp.Expression] = {}
    for name in missing:
        needing = [p for p in parts if name in p.missing]
        if all(name in p.guards for p in needing):
            guards[name] = _or(*(p.guards[name].copy() for p in needing))
    return Truth(t, f, missing, guards, all(p.complement for p in parts))


def _is_complement(truth: Truth) -> bool:
    """`truth.f` is written as `NOT truth.t`."""
    f = truth.f
    return truth.complement or (isinstance(f, exp.Not) and f.this.unnest() == truth.t.unnest())


TRUE = exp.true()
FALSE = exp.false()


def _col(name: str, table: str = D) -> exp.Column:
    return exp.column(name, table=table)


def whole(value: exp.Expression) -> exp.Expression:
    """A sum or count shown as a whole number, alike on every engine: first to the thousandth,
    so that the order in which an engine added the values does not show (one sums 101650.5 as
    101650.49999999, another as 101650.50000001), then halves up (ROUND of a double rounds them
    to even on PostgreSQL); a cast to an integer only once it is whole (it truncates on SQLite
    and rounds elsewhere). Windows are never negative."""
    thousandths = exp.Floor(this=exp.Add(this=exp.Mul(this=value, expression=_lit(1000)),
                                         expression=_lit(0.5)))
    return exp.Floor(this=exp.Add(this=exp.Div(this=thousandths, expression=_lit(1000)),
                                  expression=_lit(0.5)))


def _lit(value: object) -> exp.Expression:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _and(*parts: exp.Expression) -> exp.Expression:
    kept = [p for p in parts if p is not TRUE]
    if any(p is FALSE for p in kept):
        return FALSE
    if not kept:
        return TRUE
    return exp.and_(*kept) if len(kept) > 1 else kept[0]  # type: ignore[return-value]


def _or(*parts: exp.Expression) -> exp.Expression:
    kept = [p for p in parts if p is not FALSE]
    if any(p is TRUE for p in kept):
        return TRUE
    if not kept:
        return FALSE
    return exp.or_(*kept) if len(kept) > 1 else kept[0]  # type: ignore[return-value]


def _cheap_first(parts: Iterable[exp.Expression]) -> list[exp.Expression]:
    """The operands of an `and`/`or` with the tests of the row (and of relations already
    joined to it) before those that run a subquery: engines evaluate them left to right and
    stop at the first that decides, so a subquery runs only on the rows the cheap tests leave
    (the result is the same in any order)."""
    return sorted(parts, key=lambda p: p.find(exp.Subquery, exp.Exists, exp.Select) is not None)


def union_all(queries: Sequence[exp.Query]) -> exp.Query:
    """`q1 UNION ALL q2 …` of one or more queries."""
    query = queries[0]
    for q in queries[1:]:
        query = exp.union(query, q, distinct=False)
    return query


def _not(e: exp.Expression) -> exp.Expression:
    if e is TRUE:
        return FALSE
    if e is FALSE:
        return TRUE
    return exp.not_(e)


def _in(col: exp.Expression, values: Iterable[str]) -> exp.Expression:
    vals = sorted(set(values))
    if not vals:
        return FALSE
    return exp.In(this=col, expressions=[_lit(v) for v in vals])


def _is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=e, expression=exp.null())


def _not_null(e: exp.Expression) -> exp.Expression:
    return exp.not_(_is_null(e))


def in_force(periods: Periods, day: exp.Expression) -> exp.Expression:
    """`day` falls in one of the periods (ISO dates compare as text on every engine)."""
    parts = []
    for iv in periods.intervals:
        lo = exp.GTE(this=day.copy(), expression=_lit(iv.start.isoformat())) if iv.start \
            else TRUE
        hi = exp.LTE(this=day.copy(), expression=_lit(iv.end.isoformat())) if iv.end else TRUE
        parts.append(_and(lo, hi))
    return exp.paren(_or(*parts)) if len(parts) > 1 else (parts[0] if parts else FALSE)


def _interval_test(iv: Interval, day: exp.Expression) -> exp.Expression:
    return _and(
        exp.GTE(this=day.copy(), expression=_lit(iv.start.isoformat())) if iv.start else TRUE,
        exp.LTE(this=day.copy(), expression=_lit(iv.end.isoformat())) if iv.end else TRUE,
    )


# SQLite: `judged_declarations.row_key` is the declaration's rowid (see `for_dialect`)
ROW_KEY = "row_key"


def for_dialect(query: exp.Expression, dialect: str) -> exp.Expression:
    """The check as printed for `dialect`.

    On SQLite, a candidate set found in `declarations` (a country or a name, through its
    index) selects the rows' rowids and the check matches them with
    `judged_declarations.row_key`: the index already holds the rowid, so the set reads no
    row, and each candidate is then one probe by rowid instead of a probe of the id index
    followed by one by rowid.

    On DuckDB, the candidate sets select the judged declarations before the rule joins
    anything to them (`_candidates_first`)."""
    if dialect == "sqlite":
        return query.transform(_rowid_candidates)
    if dialect == "duckdb":
        return query.transform(_candidates_first)
    return query


def _candidates_first(node: exp.Expression) -> exp.Expression:
    """`FROM judged_declarations AS d LEFT JOIN … WHERE … AND d.id IN (candidates)` as
    `FROM (SELECT * FROM judged_declarations AS d WHERE d.id IN (candidates)) AS d LEFT JOIN
    … WHERE …`. DuckDB keeps a semi-join with a subquery above the joins of its query, so
    every declaration went through the rule's joins (its items, windows, relations) and the
    correlated tests before the few candidates were kept: at 1,000,000 demo declarations the
    checks took 10.9 s, 6.9 s with the candidates taken first (the same rows)."""
    if not isinstance(node, exp.Select):
        return node
    source = node.args.get("from_")
    where = node.args.get("where")
    if not (isinstance(source, exp.From) and isinstance(source.this, exp.Table)
            and source.this.name == "judged_declarations" and source.this.alias == D
            and where is not None and not isinstance(node.selects[0], exp.Star)):
        return node  # (`SELECT *`: the judged declarations this made, which the walk reaches)
    tests = ([t for t in where.this.flatten() if isinstance(t, exp.Expression)]
             if isinstance(where.this, exp.And) else [where.this])
    first = [t for t in tests if isinstance(t, exp.In) and isinstance(t.this, exp.Column)
             and t.this.table == D and t.this.name == "id"
             and isinstance(t.args.get("query"), exp.Subquery)]
    if not first:
        return node
    judged = (exp.select(exp.Star()).from_(exp.alias_(exp.to_table("judged_declarations"), D))
              .where(_and(*(t.copy() for t in first))))
    node.set("from_", exp.From(this=exp.alias_(judged.subquery(), D)))
    rest: list[exp.Expression] = [t.copy() for t in tests if not any(t is f for f in first)]
    node.set("where", exp.Where(this=_and(*rest)) if rest else None)
    return node


def _rowid_candidates(node: exp.Expression) -> exp.Expression:
    if not (isinstance(node, exp.In) and isinstance(node.this, exp.Column)
            and node.this.table == D and node.this.name == "id"
            and isinstance(node.args.get("query"), exp.Subquery)):
        return node
    query = node.args["query"].this.copy()
    branches = list(_branches(query))
    if not all(_selects_declaration_ids(b) for b in branches):
        return node
    for b in branches:
        assert isinstance(b, exp.Select)
        b.selects[0].replace(exp.column("rowid", table="x"))
    return exp.In(this=_col(ROW_KEY), query=exp.Subquery(this=query))


def _branches(query: exp.Expression) -> Iterator[exp.Expression]:
    if isinstance(query, exp.Union):
        yield from _branches(query.this)
        yield from _branches(query.expression)
    else:
        yield query


def _selects_declaration_ids(query: exp.Expression) -> bool:
    """`SELECT x.id FROM declarations AS x …`"""
    if not isinstance(query, exp.Select):
        return False
    key = _key_of(query)
    return key is not None and key.name == "id" and _reads_declarations(query)


@dataclass
class CompiledRule:
    name: str
    view: str
    query: exp.Select
    outcome: str

    def sql(self, dialect: str = "sqlite") -> str:
        return for_dialect(self.query, dialect).sql(dialect=dialect, pretty=True)


@dataclass
class CompiledRulebook:
    version: str
    rules: list[CompiledRule]
    periods: dict[str, Periods]
    # (link set (`dsl.graph.via_key`), subject field, other field or None for listed parties)
    # the checks follow, with the most hops any rule needs
    reach_needs: dict[tuple[str, str, str | None], int] = field(default_factory=dict)
    # windows over earlier declarations (`window_<n>`) and the other relations the checks
    # join (`mentions_<n>`, `links_<n>`), created before the checks
    windows: dict[str, exp.Select] = field(default_factory=dict)
    # of those, the ones with a unique key: its columns (an engine may store them by it)
    window_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def findings_query(self) -> exp.Query:
        selects = [exp.select(*FINDING_COLUMNS).from_(exp.to_table(r.view)) for r in self.rules]
        if not selects:
            cols = [exp.alias_(exp.cast(exp.null(), "TEXT"), c) for c in FINDING_COLUMNS]
            return exp.select(*cols).where(FALSE)
        return union_all(selects)

    def statements(self, dialect: str = "sqlite", windows: bool = True) -> list[str]:
        """CREATE VIEW statements for every check and for `findings`, in order; first, unless
        `windows` is false (an engine that stores them as tables), one for each window."""
        out = [create_view(name, q, dialect) for name, q in self.windows.items() if windows]
        out += [create_view(r.view, for_dialect(r.query, dialect), dialect) for r in self.rules]
        out.append(create_view("findings", self.findings_query(), dialect))
        return out


def create_view(name: str, query: exp.Expression | exp.Query, dialect: str) -> str:
    """CREATE VIEW, printed for `dialect`; on Spark a temporary view (a session's views over
    its registered inputs), replacing one of the same name."""
    spark = dialect == "spark"
    properties = exp.Properties(expressions=[exp.TemporaryProperty()]) if spark else None
    return exp.Create(this=exp.to_table(name), kind="VIEW", expression=query, replace=spark,
                      properties=properties).sql(dialect=dialect, pretty=True)


def view_name(rule: str) -> str:
    return "check_" + re.sub(r"[^0-9A-Za-z]+", "_", rule).strip("_").lower()


class Compiler:
    def __init__(self, rb: CheckedRulebook, schema: Schema) -> None:
        self.rb = rb
        self.schema = schema
        self.periods = rule_periods(rb)
        self.diags: list[Diagnostic] = []
        self.uses_items = False
        self.uses_days = False  # the rule reads `declaration_days` (windows, first seen)
        self.rulebook = ""  # of the rule being compiled
        # the declaration's party columns tested by `listed`: the lists and measures named
        self.listed_columns: dict[str, list[tuple[list[str], list[str]]]] = {}
        self.silent: set[str] = set()
        self.evidence: list[exp.Expression] = []  # notes naming what matched, or NULL
        self.reach_needs: dict[tuple[str, str, str | None], int] = {}
        self.windows: dict[str, exp.Select] = {}   # window_<n> → its relation
        self.window_keys: dict[str, tuple[str, ...]] = {}  # window_<n> → its unique key
        self.window_names: dict[str, str] = {}     # the relation's SQL → its name
        self.rule_windows: list[tuple[str, str, exp.Expression]] = []  # (name, alias, on)
        # a condition or aggregate node → (the ids of its relation's declarations, whether the
        # node is certainly false outside them)
        self.node_relations: dict[int, Candidates] = {}
        self.item_conditions: dict[str, ast.Condition] = {
            name: c.condition for name, it in rb.items.items()
            if (c := ast.first_attr(it, ast.ControlledIf)) is not None
        }

    def fail(self, node: object, what: str) -> Truth:
        span = getattr(node, "span", ast.NO_SPAN)
        self.diags.append(Diagnostic("E701", f"{what} cannot be compiled to SQL yet", span,
                                     "the rule is not checked until this is supported; "
                                     "see docs/language.md"))
        return Truth(FALSE, TRUE)

    # ------------------------------------------------------------ facts
    def field_sql(self, name: str) -> tuple[exp.Expression, bool, str]:
        """The column for a schema field, whether it may be missing, and its canonical name."""
        spec = self.schema.field(name)
        assert spec is not None  # the checker has rejected unknown fields
        return _col(spec.name), not spec.required, spec.name

    def judged_on(self) -> exp.Expression:
        return _col("judged_on")

    # ------------------------------------------------------------ conditions
    def truth(self, c: ast.Condition) -> Truth:
        result = self._truth(c)
        result.complement = _is_complement(result)
        return result

    def _truth(self, c: ast.Condition) -> Truth:
        if isinstance(c, ast.Parenthesised):
            return self.truth(c.part)
        if isinstance(c, ast.AllOf):
            parts = [self.truth(p) for p in c.parts]
            result = _combine(parts, _and(*_cheap_first(p.t for p in parts)),
                              _or(*_cheap_first(p.f for p in parts)))
            # `X is not missing and …X…`: when X is absent the whole is false, not unknown
            present = {self.field_sql(p.subject.name)[2] for p in c.parts
                       if isinstance(p, ast.IsMissing) and p.negated}
            result.missing = [m for m in result.missing if m not in present]
            return result
        if isinstance(c, ast.AnyOf):
            parts = [self.truth(p) for p in c.parts]
            return _combine(parts, _or(*_cheap_first(p.t for p in parts)),
                            _and(*_cheap_first(p.f for p in parts)))
        if isinstance(c, ast.Negation):
            inner = self.truth(c.part)
            return Truth(inner.f, inner.t, inner.missing, inner.guards, inner.complement)
        if isinstance(c, ast.ItemIn):
            return self.item_in(c)
        if isinstance(c, ast.InSet):
            return self.in_set(c)
        if isinstance(c, ast.IsMissing):
            col, _, _ = self.field_sql(c.subject.name)
            test = _not_null(col) if c.negated else _is_null(col)
            return Truth(test, _not(test))
        if isinstance(c, ast.Mentions):
            return self.mentions(c)
        if isinstance(c, ast.Listed):
            return self.listed(c)
        if isinstance(c, ast.Comparison):
            return self.comparison(c)
        if isinstance(c, ast.Related):
            return self.related(c)
        if isinstance(c, ast.FirstSeen):
            return self.first_seen(c)
        if isinstance(c, ast.InRange):
            return self.in_range(c)
        return self.fail(c, type(c).__name__.lower())  # pragma: no cover - every kind compiles

    def item_in(self, c: ast.ItemIn) -> Truth:
        """The declaration's matching item is one of these; the item's own thresholds apply."""
        self.uses_items = True
        items = self.rb.items_in(r.name for r in c.members)
        item = _col("item", "di")
        member = self.controlled(item, items)
        t_parts, f_parts, missing = [], [], []
        guards: dict[str, list[exp.Expression]] = {}
        for name in sorted(items):
            cond = self.item_conditions.get(name)
            if cond is None:
                continue
            inner = self.truth(cond)
            is_it = exp.EQ(this=item.copy(), expression=_lit(name))
            t_parts.append(_and(is_it, _not(inner.t)))
            f_parts.append(_and(is_it, inner.f))
            missing.extend(inner.missing)
            for m in inner.missing:  # the threshold's field matters only for this item
                guards.setdefault(m, []).append(exp.EQ(this=item.copy(), expression=_lit(name)))
        # certainly in: a member whose thresholds (if any) are met (false, not NULL, when the
        # declaration matches no item: a negated `item not in` must then be certainly true)
        known = _and(_not_null(item.copy()), member.copy())
        t = _and(known, *(_not(p) for p in t_parts)) if t_parts else known
        # certainly out: not a member, or a member whose thresholds are certainly not met
        f = _or(_not(_and(_not_null(item), member)), *f_parts)
        if c.negated:
            t, f = f, t
        return Truth(t, f, _merge([missing]), {m: _or(*g) for m, g in guards.items()})

    def controlled(self, item: exp.Expression, items: Iterable[str]) -> exp.Expression:
        """`item` is one of `items` and controlled on the judged date: the items with the same
        control periods share one test of the date."""
        controls = item_controls(self.rb)
        by_days: dict[tuple[Interval, ...], list[str]] = {}
        for name in sorted(items):
            days = _joined(controls.get(name, ()))
            if days:
                by_days.setdefault(days, []).append(name)
        parts = [_and(_in(item.copy(), names),
                      _or(*(_interval_test(iv, self.judged_on()) for iv in days)))
                 for days, names in sorted(by_days.items(), key=lambda x: x[1])]
        return exp.paren(_or(*parts)) if len(parts) > 1 else _or(*parts)

    def control_act(self, item: exp.Expression, items: Iterable[str],
                    part: str) -> exp.Expression:
        """The instrument (`part` "instrument") or provision that controls `item` on the
        judged date, NULL when none does."""
        acts: dict[tuple[str | None, Interval], list[str]] = {}
        controls = item_controls(self.rb)
        for name in sorted(items):
            for c in controls.get(name, ()):
                value = c.instrument if part == "instrument" else c.provision
                acts.setdefault((value, c.interval), []).append(name)
        case = exp.Case()
        for (value, iv), names in sorted(acts.items(), key=lambda x: (x[1], str(x[0][1]))):
            if value is not None:
                case = case.when(_and(_in(item.copy(), names),
                                      _interval_test(iv, self.judged_on())), _lit(value))
        return case if case.args.get("ifs") else exp.cast(exp.null(), "TEXT")

    def in_set(self, c: ast.InSet) -> Truth:
        spec = self.schema.field(c.subject.name)
        if spec is not None and spec.type == "code":
            return self.code_in(c)
        col, nullable, _ = self.field_sql(c.subject.name)
        parts = []
        codes = []
        for ref in c.members:
            if ref.name in self.rb.country_groups:
                members = self.rb.country_members.get(ref.name, frozenset())
                iv = self.rb.validity.get(ref.name, Interval(None, None))
                parts.append(_and(_in(col.copy(), members), _interval_test(iv, self.judged_on())))
            else:
                codes.append(ref.name)
        if codes:
            parts.append(_in(col.copy(), codes))
        test = exp.paren(_or(*parts)) if len(parts) > 1 else _or(*parts)
        present = _not_null(col.copy())
        t = _and(present, test) if nullable else test
        f = _and(present, _not(test)) if nullable else _not(test)
        if c.negated:
            t, f = f, t
        return Truth(t, f, [self.field_sql(c.subject.name)[2]] if nullable else [])

    def code_in(self, c: ast.InSet) -> Truth:
        """`hs_code in gallium`: the declared code matches a reference code of one of the
        items controlled on the judged date, whatever the item's thresholds (purity and the
        like) say."""
        test = self.item_exists(self.rb.items_in(r.name for r in c.members), c.any_time)
        if c.negated:
            return Truth(_not(test), test.copy())
        return Truth(test, _not(test.copy()))

    def item_exists(self, items: Iterable[str], any_time: bool = False) -> exp.Expression:
        """The declared code matches a reference code of one of the items controlled on the
        judged date (`any_time`: of one of the items)."""
        item = _col("item", "ci")
        return exp.Exists(this=(
            exp.select(_lit(1)).from_(exp.alias_(exp.to_table("declaration_items"), "ci"))
            .where(_and(exp.EQ(this=_col("declaration_id", "ci"), expression=_col("id")),
                        _in(item, items) if any_time else self.controlled(item, items)))))

    def mentions(self, c: ast.Mentions) -> Truth:
        col, nullable, name = self.field_sql(c.subject.name)
        words: list[str] = []
        for term in c.terms:
            if isinstance(term, ast.Text):
                words.append(term.value)
            else:
                for w in ast.attrs_of(self.rb.terms[term.name], ast.Words):
                    words.extend(x.value for x in w.words)
        # The declarations whose text mentions a word, with the first word it mentions: a
        # relation of its own (`mentions_<n>`), materialised once per build, so each check
        # joins it instead of searching every text for every word again. Each distinct text
        # is searched once (declarations repeat their goods descriptions: at 1,000,000 demo
        # declarations, 62 distinct texts: SQLite 1.6 s, DuckDB 0.15 s). OFFSET 0 keeps the
        # search above the DISTINCT: SQLite and DuckDB otherwise push the filter below it,
        # onto every row (24.6 s and 2.9 s; a DuckDB file hid it, its dictionary compression
        # evaluating the search once per distinct value).
        lowered = exp.Lower(this=_col("text", "t"))
        tests = [exp.GT(this=exp.StrPosition(this=lowered.copy(), substr=_lit(w.lower())),
                        expression=_lit(0)) for w in sorted(set(words))]
        matched = exp.Case()
        for word, t in zip(sorted(set(words)), tests, strict=True):
            matched = matched.when(t.copy(), _lit(word))
        texts = (exp.select(exp.alias_(_col(name, "x"), "text")).distinct()
                 .from_(exp.alias_(exp.to_table("declarations"), "x")).offset(0))
        words_of = (exp.select(_col("text", "t"), exp.alias_(matched, "word"))
                    .from_(exp.alias_(texts.subquery(), "t"))
                    .where(exp.paren(_or(*tests)) if len(tests) > 1 else _or(*tests)))
        relation = (exp.select(exp.alias_(_col("id", "m"), "declaration_id"),
                               _col("word", "w"))
                    .from_(exp.alias_(exp.to_table("declarations"), "m"))
                    .join(exp.alias_(words_of.subquery(), "w"),
                          on=exp.EQ(this=_col(name, "m"), expression=_col("text", "w"))))
        alias = self.relation(relation, "mentions",
                              exp.EQ(this=_col("declaration_id", "{alias}"),
                                     expression=_col("id")))
        self.note_relation(c, self.rule_windows[-1][0], not nullable)
        test = _not_null(_col("declaration_id", alias))
        self.evidence.append(exp.Case().when(test.copy(), exp.Concat(expressions=[
            _lit(f"; {c.subject.name.replace('_', ' ')} mentions '"), _col("word", alias),
            _lit("'")])))
        present = _not_null(col.copy())
        if nullable:
            return Truth(_and(present, test), _and(present, _not(test.copy())), [name])
        return Truth(test, _not(test.copy()))

    def note_relation(self, node: object, name: str, certain: bool,
                      hops: int | None = None, cost: int = 1) -> None:
        ids = (exp.select(exp.column("declaration_id", table="x"))
               .from_(exp.alias_(exp.to_table(name), "x")))
        if hops is not None:
            ids = ids.where(exp.LTE(this=exp.column("hops", table="x"), expression=_lit(hops)))
        self.node_relations[id(node)] = Candidates(ids, certain, cost)

    def join_table(self, table: str, on: exp.Expression) -> str:
        """Left-join a keyed table (at most one row per declaration) into the rule; `on` names
        it `{alias}`. Returns its alias."""
        alias = f"w{len(self.rule_windows) + 1}"
        self.rule_windows.append((table, alias, on.transform(_rename_alias(alias))))
        return alias

    def relation(self, query: exp.Select, kind: str, on: exp.Expression | None,
                 key: tuple[str, ...] | None = ("declaration_id",)) -> str:
        """Register a relation the rule joins (one row per declaration at most), shared by
        every rule that needs the same one; returns the alias the rule joins it under. `on`
        names the alias as the table `{alias}`; without `on` the relation is not joined (the
        rule queries it) and its name is returned. `key`: the columns no two rows share
        (None: several rows may be alike)."""
        sql = query.sql(dialect="sqlite")
        name = self.window_names.get(sql)
        if name is None:
            count = sum(1 for n in self.windows if n.startswith(kind + "_"))
            name = self.window_names[sql] = f"{kind}_{count + 1}"
            self.windows[name] = query
            if key is not None:
                self.window_keys[name] = key
        if on is None:
            return name
        alias = f"w{len(self.rule_windows) + 1}"
        self.rule_windows.append((name, alias, on.transform(_rename_alias(alias))))
        return alias

    def listed(self, c: ast.Listed) -> Truth:
        col, nullable, name = self.field_sql(c.subject.name)
        lists = [r.name for r in c.lists] or sorted(self.rb.lists)
        measures = [m.name for m in c.measures]
        self.listed_columns.setdefault(name, []).append((lists, measures))
        sub = (
            exp.select(_lit(1))
            .from_(exp.alias_(exp.to_table("listed_matches"), "k"))
            .where(_and(
                exp.EQ(this=_col("name", "k"), expression=col.copy()),
                self.list_match(lists, "k", "k", measures),
                *self.listed_on_date("k"),
            ))
        )
        # A non-correlated IN over the listed names is computed once per query, so the
        # correlated date test only runs for the few declarations whose name is listed.
        candidate = self.listed_candidate(col, lists)
        test = exp.paren(_and(candidate, exp.Exists(this=sub)))
        if nullable:
            present = _not_null(col.copy())
            return Truth(_and(present, test), _and(present, _not(test)), [name])
        return Truth(test, _not(test))

    def listed_candidate(self, col: exp.Expression, lists: list[str]) -> exp.Expression:
        """`col IN (names listed on these lists at any time)`: true for every name that can be
        listed on some date; an engine computes the set once and can probe an index with it."""
        names = (exp.select(_col("name", "k"))
                 .from_(exp.alias_(exp.to_table("listed_matches"), "k"))
                 .where(self.list_match(lists, "k", "k")))
        return exp.In(this=col.copy(), query=exp.Subquery(this=names))

    def list_match(self, lists: list[str], entry: str, name: str,
                   measures: Sequence[str] = ()) -> exp.Expression:
        """The entry is on one of `lists` (by a listing that imposes one of `measures`, when
        some are named) and the name's score reaches that list's `match threshold` (100, an
        exact match after normalisation, when the list sets none)."""
        by_threshold: dict[float, list[str]] = {}
        for lst in lists:
            t = ast.first_attr(self.rb.lists[lst], ast.MatchThreshold)
            by_threshold.setdefault(float(t.value) if t else 100.0, []).append(lst)
        parts = [_and(_in(_col("list", entry), names),
                      exp.GTE(this=_col("score", name), expression=_lit(threshold)))
                 for threshold, names in sorted(by_threshold.items())]
        test = exp.paren(_or(*parts)) if len(parts) > 1 else _or(*parts)
        return _and(test, _in(_col("measure", entry), measures)) if measures else test

    def related(self, c: ast.Related) -> Truth:
        """`A related to B|party listed on L [within N hops] [via links]`: a path in
        `party_reach` from A's normalised name to B's (or to a listed party's, listed on the
        judging date)."""
        from dsl.graph import via_key

        hops = c.hops or 1
        via = via_key(v.name for v in c.via)
        acol, anull, aname = self.field_sql(c.subject.name)
        need = (via, aname, self.field_sql(c.other.name)[2]
                if isinstance(c.other, ast.Ref) else None)
        self.reach_needs[need] = max(self.reach_needs.get(need, 0), hops)
        nullable = [(acol, aname)] if anull else []
        # The declarations whose parties are linked, with the path: a relation of its own
        # (`links_<n>`), materialised once per build from `party_reach`.
        base = (exp.select(exp.alias_(_col("id", "m"), "declaration_id"))
                .from_(exp.alias_(exp.to_table("party_reach"), "r"))
                .join(exp.alias_(exp.to_table("party_name_keys"), "ka"),
                      on=exp.EQ(this=_col("key", "ka"), expression=_col("a", "r")))
                .join(exp.alias_(exp.to_table("declarations"), "m"),
                      on=exp.EQ(this=_col(aname, "m"), expression=_col("name", "ka"))))
        who = c.subject.name.replace("_", " ")
        if isinstance(c.other, ast.Ref):
            bcol, bnull, bname = self.field_sql(c.other.name)
            nullable += [(bcol, bname)] if bnull else []
            relation = (base.select(exp.alias_(_col("hops", "r"), "hops"),
                                    exp.alias_(_col("path", "r"), "path"))
                        .join(exp.alias_(exp.to_table("party_name_keys"), "kb"),
                              on=_and(exp.EQ(this=_col("key", "kb"), expression=_col("b", "r")),
                                      exp.EQ(this=_col("name", "kb"),
                                             expression=_col(bname, "m"))))
                        .where(exp.EQ(this=_col("via", "r"), expression=_lit(via))))
            alias = self.relation(relation, "links", _and(
                exp.EQ(this=_col("declaration_id", "{alias}"), expression=_col("id")),
                exp.LTE(this=_col("hops", "{alias}"), expression=_lit(hops))))
            self.note_relation(c, self.rule_windows[-1][0], not nullable, hops, COST_PARTIES)
            test: exp.Expression = _not_null(_col("declaration_id", alias))
            self.evidence.append(exp.Case().when(test.copy(), exp.Concat(expressions=[
                _lit(f"; {who} is linked to {c.other.name.replace('_', ' ')} within {hops} "
                     f"hop{'s' if hops > 1 else ''}: "), _col("path", alias)])))
        else:
            lists = [r.name for r in c.other.lists] or sorted(self.rb.lists)
            relation = (base.select(exp.alias_(_col("party", "lk"), "party"),
                                    exp.alias_(_col("hops", "r"), "hops"),
                                    exp.alias_(_col("path", "r"), "path"))
                        .join(exp.alias_(exp.to_table("listed_party_keys"), "lk"),
                              on=exp.EQ(this=_col("key", "lk"), expression=_col("b", "r")))
                        .where(exp.EQ(this=_col("via", "r"), expression=_lit(via))))
            # a declaration's party may reach several listed parties, one by several paths
            name = self.relation(relation, "links", None, key=None)
            self.note_relation(c, name, not nullable, hops, COST_PARTIES)

            def listed(projection: exp.Expression) -> exp.Select:
                return (exp.select(projection)
                        .from_(exp.alias_(exp.to_table(name), "lr"))
                        .join(exp.alias_(exp.to_table("list_entry_periods"), "p"),
                              on=exp.EQ(this=_col("party", "p"), expression=_col("party", "lr")))
                        .where(_and(exp.EQ(this=_col("declaration_id", "lr"),
                                           expression=_col("id")),
                                    exp.LTE(this=_col("hops", "lr"), expression=_lit(hops)),
                                    _in(_col("list", "p"), lists),
                                    *self.listed_on_date("p"))))

            test = exp.Exists(this=listed(_lit(1)))
            note = listed(exp.Concat(expressions=[
                _lit(f"; {who} is linked to a party on "), _col("list", "p"),
                _lit(" (listed by "), _col("instrument_id", "p"),
                _lit(f") within {hops} hop{'s' if hops > 1 else ''}: "), _col("path", "lr")]))
            self.evidence.append(exp.Subquery(
                this=note.order_by(_col("hops", "lr"), _col("path", "lr")).limit(1)))
        if not nullable:
            return Truth(test, _not(test.copy()))
        present = _and(*(_not_null(col.copy()) for col, _ in nullable))
        return Truth(_and(present, test), _and(present.copy(), _not(test.copy())),
                     [name for _, name in nullable])

    def in_range(self, c: ast.InRange) -> Truth:
        """Inside one of the reference ranges (rulebook constants) that apply to the items."""
        col, nullable, name = self.field_sql(c.subject.name)
        ranges = self.rb.item_value_ranges(r.name for r in c.members)
        test = _or(*(exp.paren(_and(exp.GTE(this=col.copy(), expression=_lit(low)),
                                    exp.LTE(this=col.copy(), expression=_lit(high))))
                     for low, high in ranges))
        test = exp.paren(test) if len(ranges) > 1 else test
        if nullable:
            present = _not_null(col.copy())
            return Truth(_and(present, test), _and(present.copy(), _not(test.copy())), [name])
        return Truth(test, _not(test.copy()))

    def listed_on_date(self, entry: str) -> list[exp.Expression]:
        return [exp.GTE(this=self.judged_on(), expression=_col("valid_from", entry)),
                exp.paren(_or(_is_null(_col("valid_until", entry)),
                              exp.LTE(this=self.judged_on(),
                                      expression=_col("valid_until", entry))))]

    def first_seen(self, c: ast.FirstSeen) -> Truth:
        """The first declaration naming the party (in any role) is at most N-1 days before
        this one's date: within the N days ending on it."""
        self.uses_days = True
        col, nullable, name = self.field_sql(c.subject.name)
        # the party's key, then its first day: one row each (both keyed), joined once
        keys = self.join_table("party_name_keys",
                               exp.EQ(this=_col("name", "{alias}"), expression=col.copy()))
        seen = self.join_table("party_first_seen",
                               exp.EQ(this=_col("key", "{alias}"), expression=_col("key", keys)))
        test = exp.LT(this=exp.paren(exp.Sub(this=_col("day", "dd"),
                                             expression=_col("first_day", seen))),
                      expression=_lit(c.days))
        self.evidence.append(exp.Concat(expressions=[
            _lit(f"; {c.subject.name.replace('_', ' ')} first seen on "),
            _col("first_on", seen)]))
        if nullable:
            present = _not_null(col.copy())
            return Truth(_and(present, test), _and(present.copy(), _not(test.copy())), [name])
        return Truth(test, _not(test.copy()))

    def window(self, agg: ast.CountOf | ast.SumOf) -> exp.Expression:
        """`count of declarations` / `sum of F over declarations` within the N days ending on
        this declaration's date (this one and others of that day included) that share the named
        facts with it. Each distinct window is a relation of its own (`window_<n>`: one value
        per declaration, computed with a RANGE window function over the day numbers) that the
        knowledge base materialises once per build; the check joins it."""
        w = agg.window
        by_group = any(k.name == "group" for k in w.same)
        by_item = any(k.name == "item" for k in w.same)
        partition: list[exp.Expression] = []
        conds: list[exp.Expression] = []
        for key in w.same:
            if key.name == "group":
                partition.append(_col("mineral", "wd"))
                conds.append(exp.EQ(this=_col("rulebook", "wd"), expression=_lit(self.rulebook)))
            elif key.name == "item":
                partition.append(_col("item", "wi"))
            else:
                _, _, column = self.field_sql(key.name)
                partition.append(_col(column, "w"))
                conds.append(_not_null(_col(column, "w")))
        unit = ""
        if isinstance(agg, ast.CountOf):
            value: exp.Expression = exp.Count(this=exp.Star())
        else:
            _, _, column = self.field_sql(agg.field.name)
            value = exp.Sum(this=_col(column, "w"))
            unit = {"mass": " kg", "money": " USD"}.get(
                self.schema.field(column).dimension or "", "")  # type: ignore[union-attr]
        over = exp.Window(this=value, partition_by=partition or None,
                          order=exp.Order(expressions=[exp.Ordered(this=_col("day", "wd"))]),
                          spec=exp.WindowSpec(kind="RANGE", start=_lit(w.days - 1),
                                              start_side="PRECEDING", end="CURRENT ROW"))
        columns = [exp.alias_(_col("declaration_id", "wd"), "declaration_id")]
        if by_item:
            columns.append(exp.alias_(_col("item", "wi"), "item"))
        columns.append(exp.alias_(exp.Coalesce(this=over, expressions=[_lit(0)]), "value"))
        relation = (exp.select(*columns)
                    .from_(exp.alias_(exp.to_table("declaration_minerals" if by_group
                                                   else "declaration_days"), "wd"))
                    .join(exp.alias_(exp.to_table("declarations"), "w"),
                          on=exp.EQ(this=_col("id", "w"),
                                    expression=_col("declaration_id", "wd"))))
        if by_item:
            relation = relation.join(
                exp.alias_(exp.to_table("declaration_items"), "wi"),
                on=exp.EQ(this=_col("declaration_id", "wi"),
                          expression=_col("declaration_id", "wd")))
        if conds:
            relation = relation.where(_and(*conds))
        on = [exp.EQ(this=_col("declaration_id", "{alias}"), expression=_col("id"))]
        if by_item:
            self.uses_items = True
            on.append(exp.EQ(this=_col("item", "{alias}"), expression=_col("item", "di")))
        # a value per declaration, or per declaration and item
        alias = self.relation(relation, "window", _and(*on),
                              ("declaration_id", "item") if by_item else ("declaration_id",))
        if not by_item:  # by item, a declaration has a value per item
            self.note_relation(agg, self.rule_windows[-1][0], True)
        result = exp.Coalesce(this=_col("value", alias), expressions=[_lit(0)])
        from dsl.format import expression as text

        shown = exp.cast(exp.cast(whole(result.copy()), "BIGINT"), "TEXT")
        self.evidence.append(exp.Concat(expressions=[_lit(f"; {text(agg)}: "), shown,
                                                     _lit(unit)]))
        return result

    def candidate_filters(self, c: ast.Condition, unknown_silent: bool,
                          extra: Sequence[Candidates] = (),
                          force: exp.Expression | None = None) -> list[exp.Query]:
        """The candidate sets that restrict the rows of a rule whose condition is `c`: of each
        part of a top-level `and`, the set outside which the part is certainly false, or, when
        no unknown result can be reported, false or unknown. Each is a query of ids an engine
        answers from indexes or a materialised relation, its table aliased `x` (a
        one-declaration query drops these filters).

        Every candidate set is computed in full before the check runs, so only the cheapest
        kind is kept (see `Candidates.cost`); the others' tests still run on its rows."""
        parts = c.parts if isinstance(c, ast.AllOf) else (c,)
        found = [x for part in parts if (x := self._candidates(part)) is not None
                 and (x.certain or unknown_silent)] + list(extra)
        best = min((x.cost for x in found), default=None)
        chosen = [x.query for x in found if x.cost == best]
        if best is None or best >= COST_ITEMS:
            return chosen
        # `hs_code not in GROUP` reads only the narrow item matches, and no candidate set has
        # it: each chosen set applies it itself, so the rows it rejects are never read (a
        # positive code test costs the same probe there as on the row, and is left to it)
        codes = [self.code_in(p).t for p in parts if isinstance(p, ast.InSet) and p.negated
                 and self.schema.field(p.subject.name).type == "code"]  # type: ignore[union-attr]
        # Sets of the same cost are intersected in one query: the first (an index probe if
        # there is one) finds its rows, and each row must also be in the others (EXISTS, a
        # probe by key): no set is built in full only to be intersected.
        chosen.sort(key=lambda q: not _is_probe(q))
        keyed = [q for q in chosen if _key_of(q) is not None]
        out = [q for q in chosen if _key_of(q) is None]
        if not keyed:
            return out
        query, key = keyed[0], _key_of(keyed[0])
        assert key is not None
        for other in keyed[1:]:
            inner = other.transform(_x_as_y)
            inner_key = _key_of(other)
            assert isinstance(inner, exp.Select) and inner_key is not None
            query = query.where(exp.Exists(this=inner.where(exp.EQ(
                this=exp.column(inner_key.name, table="y"), expression=key.copy()))))

        def to_key(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and node.table == D and node.name == "id":
                return key.copy()
            if isinstance(node, exp.Column) and node.table == D and node.name == "judged_on":
                return _judged_on_x(None if isinstance(query, exp.Select)
                                    and _reads_declarations(query) else key)
            return node

        if _is_probe(query):
            # a country set or a name found through an index: a whole destination is a broad
            # set, so the item tests and the rule's periods narrow it before the checks run
            codes += [self.item_exists(self.rb.items_in(r.name for r in p.members),
                                       isinstance(p, ast.InSet) and p.any_time)
                      for p in parts if isinstance(p, ast.ItemIn | ast.InSet) and not p.negated
                      and (isinstance(p, ast.ItemIn) or self.schema.field(
                          p.subject.name).type == "code")]  # type: ignore[union-attr]
            if force is not None and force is not TRUE:
                codes.append(force)
        if codes:
            query = query.where(_and(*(t.copy().transform(to_key) for t in codes)))
        return [query, *out]

    def _candidates(self, c: ast.Condition) -> Candidates | None:
        if isinstance(c, ast.Parenthesised):
            return self._candidates(c.part)
        known = self.node_relations.get(id(c))
        if known is not None:  # the declarations of a materialised relation
            return known
        if isinstance(c, ast.InSet) and not c.negated:
            spec = self.schema.field(c.subject.name)
            assert spec is not None
            if spec.type == "country":
                test = self.in_set(c).t  # a plain test of the column
                if any(col.name == "judged_on" for col in test.find_all(exp.Column)):
                    return None  # a dated country group: the date is the judging one
                return Candidates(exp.select(exp.column("id", table="x"))
                                  .from_(exp.alias_(exp.to_table("declarations"), "x"))
                                  .where(test.transform(_to_x)),
                                  not self.field_sql(spec.name)[1], COST_COUNTRIES)
        if isinstance(c, ast.InRange):
            return _row_candidates(self.in_range(c), COST_VALUE_RANGE)
        if isinstance(c, ast.Comparison) and any(
                self.field_sql(f.name.name)[2] in CODE_RANGE for f in _fields(c)):
            # a row test against the declared code's reference range ("far above its typical
            # price"): selective by design, answered by one scan joined to the ranges
            return _row_candidates(self.comparison(c), COST_RELATION)
        if isinstance(c, ast.Comparison) and c.op in (">=", ">") and \
                isinstance(c.left, ast.CountOf | ast.SumOf) and \
                isinstance(c.right, ast.Quantity) and c.right.value > 0:
            window = self.node_relations.get(id(c.left))
            if window is not None:
                op = exp.GTE if c.op == ">=" else exp.GT
                value = float(c.right.value) * UNIT_FACTORS.get(c.right.unit or "", 1.0)
                return Candidates(window.query.where(op(this=exp.column("value", table="x"),
                                                        expression=_lit(value))),
                                  True, COST_RELATION)
        if isinstance(c, ast.Comparison) and c.op == "=" and \
                isinstance(c.left, ast.Field) and isinstance(c.right, ast.TextLiteral) and \
                self.field_sql(c.left.name.name)[2] in LICENCE_FACTS:
            # `exporter_on_licence = "agent"`: the few declarations whose licence use says so
            # (outside them the test is false, or unknown without a licence)
            name = self.field_sql(c.left.name.name)[2]
            return Candidates(
                exp.select(exp.column("declaration_id", table="x"))
                .from_(exp.alias_(exp.to_table("licence_uses"), "x"))
                .where(exp.EQ(this=exp.column(LICENCE_FACTS[name], table="x"),
                              expression=_lit(c.right.text.value))),
                name in self.silent, COST_RELATION)
        if isinstance(c, ast.Listed):
            spec = self.schema.field(c.subject.name)
            assert spec is not None
            column = exp.column(spec.name, table="x")
            lists = [r.name for r in c.lists] or sorted(self.rb.lists)
            return Candidates(exp.select(exp.column("id", table="x"))
                              .from_(exp.alias_(exp.to_table("declarations"), "x"))
                              .where(self.listed_candidate(column, lists)),
                              # outside the listed names the test is false, or unknown where
                              # the party is missing: a finding only if the rule reports that
                              not self.field_sql(spec.name)[1] or spec.name in self.silent,
                              COST_PARTIES)
        if isinstance(c, ast.InSet) and not c.negated and \
                self.schema.field(c.subject.name).type == "code":  # type: ignore[union-attr]
            items = self.rb.items_in(r.name for r in c.members)
            return Candidates(exp.select(exp.column("declaration_id", table="x"))
                              .from_(exp.alias_(exp.to_table("item_declarations"), "x"))
                              .where(_in(exp.column("item", table="x"), items)),
                              True, COST_ITEMS)
        if isinstance(c, ast.AnyOf):
            parts = [self._candidates(p) for p in c.parts]
            found = [p for p in parts if p is not None]
            if len(found) != len(parts):
                return None
            return Candidates(union_all([x.query for x in found]),
                              all(x.certain for x in found), max(x.cost for x in found))
        if isinstance(c, ast.AllOf):
            # `X is not missing and …X…`: where X is absent the whole is false, not unknown
            present = {self.field_sql(p.subject.name)[2] for p in c.parts
                       if isinstance(p, ast.IsMissing) and p.negated}
            found = [x._replace(certain=x.certain or self.field_sql(p.subject.name)[2] in present)
                     if isinstance(p, ast.InSet | ast.InRange | ast.Listed | ast.Mentions) else x
                     for p in c.parts if (x := self._candidates(p)) is not None]
            return min((x for x in found if x.certain), key=lambda x: x.cost,
                       default=min(found, key=lambda x: x.cost, default=None))
        return None

    def comparison(self, c: ast.Comparison) -> Truth:
        left, lmiss = self.expression(c.left)
        right, rmiss = self.expression(c.right)
        ops: dict[str, Callable[..., exp.Expression]] = {
            ">=": exp.GTE, "<=": exp.LTE, ">": exp.GT, "<": exp.LT, "=": exp.EQ, "!=": exp.NEQ}
        test = ops[c.op](this=left, expression=right)
        missing = _merge([lmiss, rmiss])
        if not missing:
            return Truth(test, _not(test.copy()))
        present = _and(*(_not_null(_col(m)) for m in missing))
        return Truth(_and(present, test), _and(present.copy(), _not(test.copy())), missing)

    def expression(self, e: ast.Expression) -> tuple[exp.Expression, list[str]]:
        if isinstance(e, ast.Field):
            col, nullable, name = self.field_sql(e.name.name)
            return col, [name] if nullable else []
        if isinstance(e, ast.Quantity):
            value = float(e.value) * UNIT_FACTORS.get(e.unit or "", 1.0)
            return _lit(int(value) if value == int(value) else value), []
        if isinstance(e, ast.DateLiteral):
            return _lit(e.date.text), []
        if isinstance(e, ast.TextLiteral):
            return _lit(e.text.value), []
        if isinstance(e, ast.Arithmetic):
            left, lm = self.expression(e.left)
            right, rm = self.expression(e.right)
            if e.op == "/":
                right = exp.Nullif(this=right, expression=_lit(0))
            node = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}[e.op](
                this=left, expression=right)
            return exp.paren(node), _merge([lm, rm])
        if isinstance(e, ast.CountOf | ast.SumOf):
            return self.window(e), []
        self.fail(e, type(e).__name__)  # pragma: no cover - every kind compiles
        return exp.null(), []

    # ------------------------------------------------------------ rules
    def explanation(self, rule: ast.Rule, cites_act: bool = False
                    ) -> tuple[list[exp.Expression], list[exp.Expression]]:
        """The sentence of a finding, as (head, tail): the rule's `explain` template, or a
        standard one. With `cites_act` the standard sentence names the act the finding cites
        between the two (the outer query fills it in: after 2024-12-01 a licence requirement
        on an announcement's items rests on the unified list), else the rule's own `per`."""
        tmpl = ast.first_attr(rule, ast.Explain)
        if tmpl is not None:
            return self.template(tmpl.template.value), []
        cite = ast.first_attr(rule, ast.Citation)
        where = (f"{cite.instrument.name}" + (f" {cite.provision}" if cite.provision else "")
                 ) if cite else ""
        title = rule.title.value if rule.title else rule.name.name
        parts = self.template("{item_title} (code {hs_code}) to {destination_country} on "
                              "{declared_on}" if self.uses_items else
                              "Declaration {id} to {destination_country} on {declared_on}")
        parts.append(_lit(f": {title[:1].lower() + title[1:]}"))
        tail: list[exp.Expression] = []
        if not cites_act:
            parts.append(_lit(f" ({where})"))
        if self.listed_columns:
            tail.append(exp.Coalesce(this=self.listed_party_note(), expressions=[_lit("")]))
        return parts, tail

    def evidence_notes(self) -> list[exp.Expression]:
        """What the rule's links, windows and first-seen dates found, each a '; …' note."""
        return [exp.Coalesce(this=e, expressions=[_lit("")]) for e in self.evidence]

    def listed_party_note(self) -> exp.Expression:
        """'; <role> matches <legal name> on <list> (listed by <instrument>; as '<alias>',
        score <score>)' for the best match in force on the lists (and measures) the rule names
        for that party, or NULL."""
        notes = []
        for column in self.listed_columns:
            sub = self.best_listing(column, exp.Concat(expressions=[
                _lit(f"; {column.replace('_', ' ')} matches "), _col("note", "m")]))
            notes.append(exp.Coalesce(this=exp.Subquery(this=sub), expressions=[_lit("")]))
        return exp.Concat(expressions=notes) if len(notes) > 1 else notes[0]

    def best_listing(self, column: str, projection: exp.Expression,
                     listed: list[tuple[list[str], list[str]]] | None = None) -> exp.Select:
        """`projection` of the best match of the party in `column` among the listings in
        force that a `listed` test of the rule on that column names."""
        tests = [self.list_match(lists, "m", "m", measures)
                 for lists, measures in (listed or self.listed_columns[column])]
        return (exp.select(projection)
                .from_(exp.alias_(exp.to_table("listed_matches"), "m"))
                .where(_and(exp.EQ(this=_col("name", "m"), expression=_col(column)),
                            exp.paren(_or(*tests)) if len(tests) > 1 else tests[0],
                            *self.listed_on_date("m")))
                .order_by(_col("position", "m"))
                .limit(1))

    def attribution(self, condition: ast.Condition, licence: bool, cite: ast.Citation | None
                    ) -> tuple[dict[str, exp.Expression], list[tuple[str, str]]]:
        """The act that makes this declaration's case a violation, as columns of the rule's
        facts, each evaluated once, and the (instrument, provision) pairs of those columns to
        take, first found first (the rule's own `per` when none is). A rule on listed parties
        cites the announcement (and entry) that listed the matched party; a licence
        requirement on items cites the act that controls the declaration's item on the judged
        date; any other rule, its own `per`."""
        nodes = listing_nodes(condition)
        columns: dict[str, exp.Expression] = {}
        pairs: list[tuple[str, str]] = []
        if nodes:
            for n, node in enumerate(nodes, 1):
                _, _, column = self.field_sql(node.subject.name)
                listed = [([r.name for r in node.lists] or sorted(self.rb.lists),
                           [m.name for m in node.measures])]
                for part, name in (("instrument_id", f"act_{n}"),
                                   ("provision", f"act_{n}_provision")):
                    columns[name] = exp.Subquery(this=self.best_listing(
                        column, _col(part, "m"), listed))
                pairs.append((f"act_{n}", f"act_{n}_provision"))
        elif licence and self.uses_items:
            items = sorted(required_items(condition, self.rb) or self.rb.items)
            item = _col("item", "di")
            columns["act_1"] = self.control_act(item, items, "instrument")
            columns["act_1_provision"] = self.control_act(item, items, "provision")
            pairs.append(("act_1", "act_1_provision"))
        return columns, pairs

    def missing_note(self, missing: list[str],
                     guards: dict[str, exp.Expression] | None = None) -> exp.Expression:
        names = []
        for m in missing:
            absent: exp.Expression = _is_null(_col(m))
            if guards and m in guards:
                absent = _and(absent, exp.paren(guards[m].copy()))
            names.append(exp.Case().when(absent, _lit(f" {m}")).else_(_lit("")))
        return exp.Concat(expressions=[_lit("; cannot be judged, missing:"), *names]) if names \
            else _lit("; cannot be judged: a fact it needs is missing")

    def template(self, text: str) -> list[exp.Expression]:
        parts: list[exp.Expression] = []
        pos = 0
        for m in re.finditer(r"\{([^{}]*)\}", text):
            if m.start() > pos:
                parts.append(_lit(text[pos:m.start()]))
            parts.append(self.fact(m.group(1).strip()))
            pos = m.end()
        if pos < len(text):
            parts.append(_lit(text[pos:]))
        return parts

    def fact(self, name: str) -> exp.Expression:
        if name in ("item", "item_title") and self.uses_items:
            return exp.Coalesce(this=_col("title" if name == "item_title" else "name", "i"),
                                expressions=[_lit("an item")])
        if name == "control_code" and self.uses_items:
            return exp.Coalesce(this=_col("control_code", "i"), expressions=[_lit("?")])
        spec = self.schema.field(name)
        if spec is not None:
            value: exp.Expression = _col(spec.name)
            if spec.type == "number":
                value = exp.cast(value, "TEXT")
            return exp.Coalesce(this=value, expressions=[_lit("(not declared)")])
        # a fact this rule does not have (the checker allowed the name) stays visible as written
        return _lit(f"{{{name}}}")

    def rule(self, rule: ast.Rule) -> CompiledRule | None:
        then = ast.first_attr(rule, ast.Then)
        condition = self.rb.condition_of(rule)
        if then is None or condition is None or then.outcome.kind == "permitted":
            return None  # permissions produce no findings; they suppress what they override
        self.uses_items = False
        self.uses_days = False
        self.rulebook = self.rb.rulebook_of(rule.span.file) or ""
        self.rule_windows = []
        self.listed_columns = {}
        self.evidence = []
        # the facts whose absence gives no finding (`if missing … then no finding`)
        self.silent = {self.field_sql(p.field.name)[2]
                       for p in ast.attrs_of(rule, ast.IfMissing) if p.outcome is None}
        truth = self.truth(condition)
        name = rule.name.name
        cite = ast.first_attr(rule, ast.Citation)
        outcome_word = OUTCOME_OF.get(then.outcome.kind, then.outcome.kind)
        licence = then.outcome.kind == "licence required"
        judged = self.judged_on()
        force = in_force(self.periods[name], judged)
        suppress = [self.suppression(x) for x in self.suppressors(name)]
        # `if missing FIELD then …` replaces `undetermined` when that field is the one missing
        unknown_outcome: exp.Expression = _lit("undetermined")
        report_unknown: exp.Expression = TRUE
        for policy in ast.attrs_of(rule, ast.IfMissing):
            col, _, _ = self.field_sql(policy.field.name)
            if policy.outcome is None:
                report_unknown = _and(report_unknown, _not_null(col))
            else:
                unknown_outcome = exp.Case().when(
                    _is_null(col), _lit(OUTCOME_OF.get(policy.outcome.kind,
                                                       policy.outcome.kind))
                ).else_(unknown_outcome)
        # Inner query: each condition appears once, as the value `truth` (1 true, 0 false,
        # NULL unknown), so that no engine's planner has to expand nested and/or/not twice.
        acts, act_pairs = self.attribution(condition, licence, cite)
        cites_act = bool(act_pairs) and licence
        head, tail = self.explanation(rule, cites_act)
        tail += self.evidence_notes()
        statement = [exp.alias_(exp.Concat(expressions=head), "statement"),
                     exp.alias_(exp.Concat(expressions=tail or [_lit("")]), "statement_tail")] \
            if cites_act else [exp.alias_(exp.Concat(expressions=head + tail), "statement")]
        severity = _lit(then.outcome.severity) if then.outcome.severity else exp.null()
        facts = [
            exp.alias_(_col("id"), "declaration_id"),
            exp.alias_(exp.cast(truth.t, "INT") if truth.complement else
                       exp.Case().when(truth.t, _lit(1)).when(truth.f, _lit(0)).else_(
                           exp.cast(exp.null(), "INT")), "truth"),
            exp.alias_(exp.Case().when(_and(force, *(_not(x) for x in suppress)), _lit(1))
                       .else_(_lit(0)), "applies"),
            exp.alias_(exp.Case().when(report_unknown, _lit(1)).else_(_lit(0)),
                       "report_unknown"),
            exp.alias_(unknown_outcome, "unknown_outcome"),
            *statement,
            exp.alias_(self.missing_note(truth.missing, truth.guards), "missing_note"),
            *(exp.alias_(exp.cast(value, "TEXT"), name) for name, value in acts.items()),
        ]
        if licence:
            facts += [
                exp.alias_(exp.Coalesce(this=_col("covered", "lc"), expressions=[_lit(0)]),
                           "covered"),
                exp.alias_(exp.Coalesce(this=_col("problem", "lc"),
                                        expressions=[_lit("none declared")]), "licence_problem"),
            ]
        facts.append(exp.alias_(_col("item", "di") if self.uses_items else
                                exp.cast(exp.null(), "TEXT"), "item"))
        inner = exp.select(*facts, copy=False).from_(
            exp.alias_(exp.to_table("judged_declarations"), D), copy=False)
        required = required_items(condition, self.rb)
        if self.uses_items:
            # When every finding needs one of a few items, start from those items' matches
            # (an inner join the engine can drive from the item index); otherwise keep every
            # declaration, matched or not.
            inner = inner.join(
                exp.alias_(exp.to_table("declaration_items"), "di"),
                on=_and(exp.EQ(this=_col("declaration_id", "di"), expression=_col("id")),
                        *([_in(_col("item", "di"), required)] if required is not None else [])),
                join_type="INNER" if required is not None else "LEFT", copy=False,
            ).join(exp.alias_(exp.to_table("items"), "i"),
                   on=exp.EQ(this=_col("name", "i"), expression=_col("item", "di")),
                   join_type="LEFT", copy=False)
        if self.uses_days:
            inner = inner.join(
                exp.alias_(exp.to_table("declaration_days"), "dd"),
                on=exp.EQ(this=_col("declaration_id", "dd"), expression=_col("id")),
                join_type="LEFT", copy=False)
        for window, alias, on in self.rule_windows:
            inner = inner.join(exp.alias_(exp.to_table(window), alias), on=on,
                               join_type="LEFT", copy=False)
        if licence:
            inner = inner.join(
                exp.alias_(exp.to_table("licence_cover"), "lc"),
                on=exp.EQ(this=_col("declaration_id", "lc"), expression=_col("id")),
                join_type="LEFT", copy=False)
        # rows where the condition is certainly false never make a finding: drop them early
        inner = inner.where(_and(force.copy(), _not(truth.f.copy())), copy=False)
        if licence:  # nor do declarations a licence covers (before their explanation is built)
            inner = inner.where(exp.EQ(this=exp.Coalesce(this=_col("covered", "lc"),
                                                         expressions=[_lit(0)]),
                                       expression=_lit(0)), copy=False)
        # When no unknown result can be reported (every fact the condition may lack has an
        # `if missing … then no finding`), only rows where it can be true matter: restrict
        # them by a test the engine answers from indexes.
        silent = self.silent
        extra = []
        if licence and required is not None:
            # a licence requirement finds nothing where a licence covers the declaration:
            # start from the matches of its items that no licence covers
            extra.append(Candidates(
                exp.select(exp.column("declaration_id", table="x"))
                .from_(exp.alias_(exp.to_table("item_declarations"), "x"))
                .join(exp.alias_(exp.to_table("licence_cover"), "xl"),
                      on=exp.EQ(this=_col("declaration_id", "xl"),
                                expression=_col("declaration_id", "x")), join_type="LEFT")
                .where(_and(_in(_col("item", "x"), required),
                            exp.EQ(this=exp.Coalesce(this=_col("covered", "xl"),
                                                     expressions=[_lit(0)]),
                                   expression=_lit(0)))), True, COST_RELATION))
        filters = self.candidate_filters(condition, set(truth.missing) <= silent, extra, force)
        for query in filters:
            inner = inner.where(exp.In(this=_col("id"), query=exp.Subquery(this=query)),
                                copy=False)
        if required is not None and any(
                all(isinstance(b, exp.Select) and _is_probe(b) for b in _branches(q))  # type: ignore[arg-type]
                for q in filters):
            # a few declarations found through an index (listed names, a country): start from
            # them, not from every match of the items (`item is dual-use`: all of them)
            for join in inner.args.get("joins", []):
                if join.this.alias_or_name == "di":
                    join.set("kind", None)
                    join.set("side", "LEFT")

        # OFFSET 0 keeps `facts` a subquery of its own: merged into the query above, each
        # reference to `truth` would evaluate the whole condition again
        inner = inner.offset(0, copy=False)

        def c(name: str) -> exp.Column:
            return exp.column(name, table="facts")

        own = (_lit(cite.instrument.name if cite else None),
               exp.cast(_lit(str(cite.provision) if cite and cite.provision else None), "TEXT"))
        act_instrument: exp.Expression = own[0]
        act_provision: exp.Expression = own[1]
        if act_pairs:
            act_instrument = exp.Coalesce(this=c(act_pairs[0][0]),
                                          expressions=[*(c(i) for i, _ in act_pairs[1:]), own[0]])
            case = exp.Case()
            for ins, prov in act_pairs:
                case = case.when(_not_null(c(ins)), c(prov))
            act_provision = case.else_(own[1])
        is_true = exp.EQ(this=c("truth"), expression=_lit(1))
        is_unknown = _and(_is_null(c("truth")),
                          exp.EQ(this=c("report_unknown"), expression=_lit(1)))
        not_covered = exp.EQ(this=c("covered"), expression=_lit(0)) if licence else TRUE
        licence_note = [_lit("; licence: "), c("licence_problem")] if licence else []
        outcome = exp.Case().when(is_true.copy(), _lit(outcome_word)).else_(
            c("unknown_outcome"))
        said: list[exp.Expression] = [c("statement")]
        if cites_act:  # " (ACT [provision])" between the sentence's head and its notes
            said += [_lit(" ("), exp.Coalesce(this=act_instrument.copy(), expressions=[_lit("")]),
                     exp.Case().when(_not_null(act_provision.copy()), exp.Concat(
                         expressions=[_lit(" "), act_provision.copy()])).else_(_lit("")),
                     _lit(")"), c("statement_tail")]
        # the sentence once, then the licence note (a finding) or what is missing (unknown)
        explanation = exp.Concat(expressions=[*said, exp.Case().when(
            is_true.copy(), exp.Concat(expressions=licence_note) if licence_note else _lit("")
        ).else_(c("missing_note"))])
        rank = exp.Window(this=exp.RowNumber(), partition_by=[c("declaration_id")],
                          order=exp.Order(expressions=[
                              exp.Ordered(this=exp.Case().when(is_true.copy(), _lit(0))
                                          .else_(_lit(1))),
                              exp.Ordered(this=c("item"))]))
        findings = exp.select(
            exp.alias_(c("declaration_id"), "declaration_id"),
            exp.alias_(_lit(name), "rule"),
            exp.alias_(outcome, "outcome"),
            exp.alias_(exp.cast(severity, "TEXT"), "severity"),
            exp.alias_(act_instrument, "instrument"),
            exp.alias_(act_provision, "provision"),
            exp.alias_(explanation, "explanation"),
            exp.alias_(_lit(self.rb.version), "rulebook_version"),
            *([exp.alias_(rank, "finding_rank")] if self.uses_items else []),
            copy=False,
        ).from_(exp.alias_(exp.Subquery(this=inner), "facts", copy=False), copy=False).where(
            _and(exp.EQ(this=c("applies"), expression=_lit(1)),
                 exp.paren(_or(is_true, is_unknown)), not_covered), copy=False)
        if not self.uses_items:
            # every relation `facts` joins has one row per declaration at most: one finding
            # each already, nothing to rank
            return CompiledRule(name, view_name(name), findings, outcome_word)
        # one finding per declaration (a row per matching item): the most serious outcome,
        # then the first item
        select = exp.select(*FINDING_COLUMNS).from_(
            exp.alias_(exp.Subquery(this=findings), "ranked", copy=False), copy=False).where(
            exp.EQ(this=exp.column("finding_rank"), expression=_lit(1)), copy=False)
        return CompiledRule(name, view_name(name), select, outcome_word)

    def suppressors(self, name: str) -> list[ast.Rule | ast.Exception_]:
        return self.rb.suppressors(name)

    def suppression(self, decl: ast.Rule | ast.Exception_) -> exp.Expression:
        """Certainly true that the exception or permission applies, and it is in force."""
        condition = self.rb.condition_of(decl)
        uses, evidence = self.uses_items, self.evidence
        self.evidence = []  # an exception's links and windows are not the finding's evidence
        t = self.truth(condition).t if condition else TRUE
        self.uses_items = uses or self.uses_items
        self.evidence = evidence
        return exp.paren(_and(in_force(self.periods[decl.name.name], self.judged_on()), t))


CODE_RANGE = {"code_value_low": "low", "code_value_high": "high"}  # of code_value_ranges
LICENCE_FACTS = {"exporter_on_licence": "exporter_role"}  # of licence_uses


def _fields(e: ast.Comparison | ast.Expression) -> list[ast.Field]:
    """The fields an arithmetic comparison or expression reads."""
    if isinstance(e, ast.Field):
        return [e]
    if isinstance(e, ast.Comparison | ast.Arithmetic):
        return [*_fields(e.left), *_fields(e.right)]
    return []


def _row_candidates(truth: Truth, cost: int) -> Candidates | None:
    """The declarations where a test of the declaration's own columns (and of its code's
    reference range) can be true: one scan of `declarations`, joined to `code_value_ranges`
    when the test reads it. None when the test reads anything else (a judging date, another
    relation)."""
    columns = list(truth.t.find_all(exp.Column))
    if any(col.table != D or col.name == "judged_on" for col in columns):
        return None
    query = exp.select(exp.column("id", table="x")).from_(
        exp.alias_(exp.to_table("declarations"), "x"))
    if any(col.name in CODE_RANGE for col in columns):
        query = query.join(exp.alias_(exp.to_table("code_value_ranges"), "r"),
                           on=exp.EQ(this=exp.column("hs_code", table="r"),
                                     expression=exp.column("hs_code", table="x")))
    return Candidates(query.where(truth.t.copy().transform(_to_x)), not truth.missing, cost)


def _key_of(query: exp.Query) -> exp.Column | None:
    """The declaration key a candidate query selects (`x.id`, `x.declaration_id`), unless it is
    a compound query."""
    first = query.selects[0] if isinstance(query, exp.Select) else None
    return first if isinstance(first, exp.Column) and first.table == "x" else None


def _reads_declarations(query: exp.Select) -> bool:
    """The query's own FROM is `declarations`."""
    source = query.args.get("from_")
    return isinstance(source, exp.From) and source.this.name == "declarations"


def _is_probe(query: exp.Query) -> bool:
    """A candidate set found through an index of `declarations` (a country set, names)."""
    return isinstance(query, exp.Select) and _reads_declarations(query) and \
        not query.args.get("joins")


def _x_as_y(node: exp.Expression) -> exp.Expression:
    """The candidate query's table `x` renamed `y` (nested inside another candidate query)."""
    if isinstance(node, exp.Column) and node.table == "x":
        return exp.column(node.name, table="y")
    if isinstance(node, exp.Table) and node.alias == "x":
        return exp.to_table(node.name, alias="y")
    return node


def _rename_alias(alias: str) -> Callable[[exp.Expression], exp.Expression]:
    """A transform naming the table `{alias}` of a join condition `alias`."""

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.table == "{alias}":
            return exp.column(node.name, table=alias)
        return node

    return rename


def _judged_on_x(key: exp.Expression | None = None) -> exp.Expression:
    """The judging date of the candidate query's declaration `x` (as `judged_declarations`
    has it: the `as of` date when one is set, else the declaration's own), read from `x` when
    it is a row of `declarations`, else from the declaration with that `key`."""
    own: exp.Expression = exp.column("declared_on", table="x")
    if key is not None:
        own = exp.Subquery(this=exp.select(exp.column("declared_on", table="j")).from_(
            exp.alias_(exp.to_table("declarations"), "j")).where(
            exp.EQ(this=exp.column("id", table="j"), expression=key.copy())))
    return exp.Coalesce(this=exp.Subquery(this=exp.select(exp.column("as_of", table="s")).from_(
        exp.alias_(exp.to_table("excon_settings"), "s"))), expressions=[own])


def _to_x(node: exp.Expression) -> exp.Expression:
    """A column of the judged declaration `d`, as one of the candidate query's `x` (the
    derived unit value computed from its columns)."""
    if isinstance(node, exp.Column) and node.table == D:
        if node.name == "unit_value":
            return exp.paren(exp.Div(this=exp.column("value_usd", table="x"),
                                     expression=exp.Nullif(
                                         this=exp.column("quantity_kg", table="x"),
                                         expression=_lit(0))))
        if node.name in CODE_RANGE:
            return exp.column(CODE_RANGE[node.name], table="r")
        return exp.column(node.name, table="x")
    return node


def listing_nodes(c: ast.Condition) -> list[ast.Listed] | None:
    """The `listed` tests one of which holds whenever the condition does (in the order
    written), or None when the condition can hold without a listing: then a finding rests on
    the listing of the party that matched."""
    if isinstance(c, ast.Parenthesised):
        return listing_nodes(c.part)
    if isinstance(c, ast.Listed):
        return [c]
    if isinstance(c, ast.AnyOf):
        found = [listing_nodes(p) for p in c.parts]
        return None if any(f is None for f in found) else [n for f in found for n in f or ()]
    if isinstance(c, ast.AllOf):
        return next((f for p in c.parts if (f := listing_nodes(p)) is not None), None)
    return None


def required_items(c: ast.Condition, rb: CheckedRulebook) -> frozenset[str] | None:
    """The items one of which a declaration must match for the condition to be true or
    unknown, when the condition says so at its top level (`item in …` and …); else None."""
    if isinstance(c, ast.Parenthesised):
        return required_items(c.part, rb)
    if isinstance(c, ast.ItemIn) and not c.negated:
        return rb.items_in(r.name for r in c.members)
    if isinstance(c, ast.AllOf):
        found = [s for p in c.parts if (s := required_items(p, rb)) is not None]
        if found:
            out = found[0]
            for s in found[1:]:
                out &= s
            return out
    return None


def _joined(controls: Iterable[Control]) -> tuple[Interval, ...]:
    """The days of an item's control stretches, adjacent stretches (of different acts) joined
    into one interval."""
    out: list[Interval] = []
    for c in controls:
        last = out[-1] if out else None
        if last is not None and last.end is not None and c.start is not None and \
                (c.start - last.end).days <= 1:
            out[-1] = Interval(last.start, c.end)
        else:
            out.append(c.interval)
    return tuple(out)


def _merge(lists: Iterable[list[str]]) -> list[str]:
    out: list[str] = []
    for lst in lists:
        for x in lst:
            if x not in out:
                out.append(x)
    return out


def compile_rulebook(rb: CheckedRulebook, schema: Schema) -> tuple[CompiledRulebook,
                                                                    list[Diagnostic]]:
    """Compile every rule; a construct that cannot compile is an E701 diagnostic. The result
    is kept on the rulebook (checking and installing a rulebook compile it once)."""
    cached = rb.compiled.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1], list(cached[2])
    compiler = Compiler(rb, schema)
    rules = []
    for decl in rb.rules.values():
        compiled = compiler.rule(decl)
        if compiled is not None:
            rules.append(compiled)
    result = CompiledRulebook(rb.version, rules, compiler.periods, compiler.reach_needs,
                              compiler.windows, compiler.window_keys)
    for c in rules:
        lint(c.query)
    rb.compiled[id(schema)] = (schema, result, list(compiler.diags))
    return result, compiler.diags


def lint(query: exp.Expression, reparse: bool = False) -> None:
    """Only allow-listed functions; with `reparse` (the test suite runs it on every rule of
    the repository's rulebooks), the printed SQL must also reparse to the same text."""
    for node in query.walk():
        if isinstance(node, exp.Func) and node.sql_name() not in ALLOWED_FUNCTIONS:
            raise CompileError(f"generated SQL calls {node.sql_name()}, which is not allowed")
    if not reparse:
        return
    text = query.sql(dialect="sqlite")
    again = sqlglot.parse_one(text, read="sqlite")
    if again.sql(dialect="sqlite") != text:
        raise CompileError("generated SQL does not reparse to itself")

