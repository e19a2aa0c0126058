"""The compiler's conditions: each condition becomes SQL that makes it certainly true and SQL
that makes it certainly false (items, codes, sets, mentions, listings, relations, ranges,
first-seen dates, windows, comparisons), with the candidate declarations a check can start
from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from sqlglot import exp

from dsl import ast
from dsl.compile.parties import PartyCompiler
from dsl.compile.sql import (
    COST_COUNTRIES,
    COST_ITEMS,
    COST_PARTIES,
    COST_RELATION,
    COST_VALUE_RANGE,
    TRUE,
    Candidates,
    D,
    Truth,
    and_,
    as_,
    cast,
    cheap_first,
    col_,
    combine,
    in_,
    interval_test,
    is_complement,
    is_null,
    is_probe,
    key_of,
    lit,
    merge,
    not_,
    not_null,
    or_,
    paren,
    reads_declarations,
    table,
    union_all,
    whole,
)
from dsl.format import reaches_text
from dsl.names import mention_forms
from dsl.periods import Control, item_controls, parameter_periods
from dsl.rulebook import Interval, parameter_test, parameter_text
from dsl.schema import UNIT_FACTORS


class ConditionCompiler(PartyCompiler):
    """Conditions as three-valued SQL, and the candidates a check starts from."""

    # ------------------------------------------------------------ conditions
    def truth(self, c: ast.Condition) -> Truth:
        result = self._truth(c)
        result.complement = is_complement(result)
        return result

    def _truth(self, c: ast.Condition) -> Truth:
        if isinstance(c, ast.Parenthesised):
            return self.truth(c.part)
        if isinstance(c, ast.AllOf):
            parts = [self.truth(p) for p in c.parts]
            result = combine(parts, and_(*cheap_first(p.t for p in parts)),
                              or_(*cheap_first(p.f for p in parts)))
            # `X is not missing and …X…`: when X is absent the whole is false, not unknown
            present = {self.field_sql(p.subject.name)[2] for p in c.parts
                       if isinstance(p, ast.IsMissing) and p.negated}
            result.missing = [m for m in result.missing if m not in present]
            return result
        if isinstance(c, ast.AnyOf):
            parts = []
            for p in c.parts:
                # what a branch matched is evidence only where that branch holds
                before = len(self.evidence)
                part = self.truth(p)
                self.evidence[before:] = [exp.Case().when(part.t.copy(), e, copy=False)
                                          for e in self.evidence[before:]]
                parts.append(part)
            return combine(parts, or_(*cheap_first(p.t for p in parts)),
                            and_(*cheap_first(p.f for p in parts)))
        if isinstance(c, ast.Negation):
            inner = self.truth(c.part)
            return Truth(inner.f, inner.t, inner.missing, inner.guards, inner.complement)
        if isinstance(c, ast.ItemIn):
            return self.item_in(c)
        if isinstance(c, ast.InSet):
            return self.in_set(c)
        if isinstance(c, ast.CodeUnder):  # the declared code begins with one of these
            col, _, _ = self.field_sql(c.subject.name)
            tests = [exp.Like(this=col.copy(), expression=lit(f"{x.digits}%"))
                     for x in c.codes]  # digits: no wildcard but the trailing one
            test: exp.Expression = paren(or_(*tests)) if len(tests) > 1 else tests[0]
            return Truth(test, not_(test.copy()))
        if isinstance(c, ast.IsMissing):
            col, _, _ = self.field_sql(c.subject.name)
            test = not_null(col) if c.negated else is_null(col)
            return Truth(test, not_(test))
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
        if isinstance(c, ast.Reaches):
            return self.reaches(c)
        return self.fail(c, type(c).__name__.lower())  # pragma: no cover - every kind compiles

    def item_in(self, c: ast.ItemIn) -> Truth:
        """The declaration's matching item is one of these; the item's own thresholds apply."""
        self.uses_items = True
        items = self.rb.items_in(r.name for r in c.members)
        item = col_("item", "di")
        member = self.controlled(item, items)
        t_parts, f_parts, missing = [], [], []
        guards: dict[str, list[exp.Expression]] = {}
        for name in sorted(items):
            cond = self.item_conditions.get(name)
            if cond is None:
                continue
            inner = self.truth(cond)
            is_it = exp.EQ(this=item.copy(), expression=lit(name))
            t_parts.append(and_(is_it, not_(inner.t)))
            f_parts.append(and_(is_it, inner.f))
            missing.extend(inner.missing)
            for m in inner.missing:  # the threshold's field matters only for this item
                guards.setdefault(m, []).append(exp.EQ(this=item.copy(), expression=lit(name)))
        # certainly in: a member whose thresholds (if any) are met (false, not NULL, when the
        # declaration matches no item: a negated `item not in` must then be certainly true)
        known = and_(not_null(item.copy()), member.copy())
        t = and_(known, *(not_(p) for p in t_parts)) if t_parts else known
        # certainly out: not a member, or a member whose thresholds are certainly not met
        f = or_(not_(and_(not_null(item), member)), *f_parts)
        if c.negated:
            t, f = f, t
        return Truth(t, f, merge([missing]), {m: or_(*g) for m, g in guards.items()})

    def controlled(self, item: exp.Expression, items: Iterable[str]) -> exp.Expression:
        """`item` is one of `items` and controlled on the judged date: the items with the same
        control periods share one test of the date."""
        controls = item_controls(self.rb)
        by_days: dict[tuple[Interval, ...], list[str]] = {}
        for name in sorted(items):
            days = _joined(controls.get(name, ()))
            if days:
                by_days.setdefault(days, []).append(name)
        parts = [and_(in_(item.copy(), names),
                      or_(*(interval_test(iv, self.judged_on()) for iv in days)))
                 for days, names in sorted(by_days.items(), key=lambda x: x[1])]
        return paren(or_(*parts)) if len(parts) > 1 else or_(*parts)

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
                case = case.when(and_(in_(item.copy(), names),
                                      interval_test(iv, self.judged_on())), lit(value), copy=False)
        return case if case.args.get("ifs") else cast(exp.null(), "TEXT")

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
                parts.append(and_(in_(col.copy(), members), interval_test(iv, self.judged_on())))
            else:
                codes.append(ref.name)
        if codes:
            parts.append(in_(col.copy(), codes))
        test = paren(or_(*parts)) if len(parts) > 1 else or_(*parts)
        present = not_null(col.copy())
        t = and_(present, test) if nullable else test
        f = and_(present, not_(test)) if nullable else not_(test)
        if c.negated:
            t, f = f, t
        return Truth(t, f, [self.field_sql(c.subject.name)[2]] if nullable else [])

    def code_in(self, c: ast.InSet) -> Truth:
        """`hs_code in gallium`: the declared code matches a reference code of one of the
        items controlled on the judged date, whatever the item's thresholds (purity and the
        like) say."""
        test = self.item_exists(self.rb.items_in(r.name for r in c.members), c.any_time)
        if c.negated:
            return Truth(not_(test), test.copy())
        return Truth(test, not_(test.copy()))

    def item_exists(self, items: Iterable[str], any_time: bool = False) -> exp.Expression:
        """The declared code matches a reference code of one of the items controlled on the
        judged date (`any_time`: of one of the items)."""
        item = col_("item", "ci")
        return exp.Exists(this=(
            exp.select(lit(1)).from_(as_(table("declaration_items"), "ci"))
            .where(and_(exp.EQ(this=col_("declaration_id", "ci"), expression=col_("id")),
                        in_(item, items) if any_time else self.controlled(item, items)))))

    def mentions(self, c: ast.Mentions) -> Truth:
        col, nullable, name = self.field_sql(c.subject.name)
        # The words by the items their terms stand for (`for GROUP`): such a word counts only
        # on the days one of those items is controlled. The evidence names the word and, for
        # a word of named terms, the terms' title (which mineral's name matched).
        classes: dict[frozenset[str] | None, dict[str, str]] = {}
        for term in c.terms:
            if isinstance(term, ast.Text):
                classes.setdefault(None, {}).setdefault(term.value.lower(), f"'{term.value}'")
                continue
            decl = self.rb.terms[term.name]
            words = classes.setdefault(self.rb.stands_for(decl), {})
            for w in ast.attrs_of(decl, ast.Words):
                for x in w.words:
                    words.setdefault(x.value.lower(), f"'{x.value}' ({decl.title.value})")
        ordered = sorted(classes.items(), key=lambda kv: (kv[0] is not None,
                                                          sorted(kv[0] or ())))
        # The declarations whose text mentions a word, with the first word it mentions (per
        # class of words): a relation of its own (`mentions_<n>`), materialised once per
        # build, so each check joins it instead of searching every text for every word again.
        # Each distinct text is searched once (declarations repeat their goods descriptions:
        # at 1,000,000 demo declarations, 62 distinct texts: SQLite 1.6 s, DuckDB 0.15 s).
        # OFFSET 0 keeps the search above the DISTINCT: SQLite and DuckDB otherwise push the
        # filter below it, onto every row (24.6 s and 2.9 s; a DuckDB file hid it, its
        # dictionary compression evaluating the search once per distinct value). OFFSET 0 on
        # the texts' words too: PostgreSQL otherwise pulls that subquery up into the join and
        # looks for every word in each declaration's text instead of in each distinct one
        # (70 s of one relation at 1,000,000 demo declarations).
        lowered = exp.Lower(this=col_("text", "t"))

        def found(word: str) -> exp.Expression:
            """The text holds one of the word's forms (see `mention_forms`)."""
            tests = [exp.GT(this=exp.StrPosition(this=lowered.copy(), substr=lit(form)),
                            expression=lit(0)) for form in mention_forms(word)]
            return paren(or_(*tests)) if len(tests) > 1 else tests[0]

        columns = []
        for n, (_, words) in enumerate(ordered):
            matched = exp.Case()
            for word in sorted(words):
                matched = matched.when(found(word), lit(words[word]), copy=False)
            columns.append(as_(matched, "word" if n == 0 else f"word_{n + 1}"))
        every = sorted({w for _, words in ordered for w in words})
        tests = [found(w) for w in every]
        texts = (exp.select(as_(col_(name, "x"), "text")).distinct()
                 .from_(as_(table("declarations"), "x")).offset(0))
        words_of = (exp.select(col_("text", "t"), *columns)
                    .from_(as_(texts.subquery(), "t"))
                    .where(paren(or_(*tests)) if len(tests) > 1 else or_(*tests))
                    .offset(0))
        relation = (exp.select(as_(col_("id", "m"), "declaration_id"),
                               *(col_(cl.alias, "w") for cl in columns))
                    .from_(as_(table("declarations"), "m"))
                    .join(as_(words_of.subquery(), "w"),
                          on=exp.EQ(this=col_(name, "m"), expression=col_("text", "w"))))
        alias = self.relation(relation, "mentions",
                              exp.EQ(this=col_("declaration_id", "{alias}"),
                                     expression=col_("id")))
        self.note_relation(c, self.rule_windows[-1][0], not nullable)
        parts = []
        evidence = exp.Case()
        for (gate, _), cl in zip(ordered, columns, strict=True):
            part = not_null(col_(cl.alias, alias))
            if gate is not None:
                part = and_(part, self.controlled_any(gate))
            parts.append(part)
            mentions = lit(f"; {c.subject.name.replace('_', ' ')} mentions ")
            evidence = evidence.when(part.copy(), exp.Concat(
                expressions=[mentions, col_(cl.alias, alias)]), copy=False)
        self.evidence.append(evidence)
        test = paren(or_(*parts)) if len(parts) > 1 else parts[0]
        present = not_null(col.copy())
        if nullable:
            return Truth(and_(present, test), and_(present, not_(test.copy())), [name])
        return Truth(test, not_(test.copy()))

    def controlled_any(self, items: Iterable[str]) -> exp.Expression:
        """One of `items` is controlled on the judged date (FALSE when none ever is)."""
        controls = item_controls(self.rb)
        days = _union(x.interval for i in items for x in controls.get(i, ()))
        if not days:
            return exp.false()
        tests = [interval_test(iv, self.judged_on()) for iv in days]
        return paren(or_(*tests)) if len(tests) > 1 else tests[0]

    def in_range(self, c: ast.InRange) -> Truth:
        """Inside one of the reference ranges (rulebook constants) that apply to the items."""
        col, nullable, name = self.field_sql(c.subject.name)
        # a range counts while an item it stands for is controlled; ranges alike in all but
        # their name are tested once, and the evidence names the first that holds
        ranges: dict[tuple[float, float, exp.Expression], list[str]] = {}
        gates: dict[frozenset[str] | None, exp.Expression] = {}
        for vr, low, high, items in self.rb.value_ranges_for(r.name for r in c.members):
            if items not in gates:
                gates[items] = TRUE if items is None else self.controlled_any(items)
            ranges.setdefault((low, high, gates[items]), []).append(vr)
        parts = []
        evidence = exp.Case()
        for (low, high, gate), names in ranges.items():
            part = and_(exp.GTE(this=col.copy(), expression=lit(low)),
                        exp.LTE(this=col.copy(), expression=lit(high)),
                        *([] if gate is TRUE else [gate.copy()]))
            parts.append(paren(part))
            title = self.rb.value_ranges[names[0]].title.value
            evidence = evidence.when(part.copy(), lit(
                f"; {c.subject.name.replace('_', ' ')} inside the range of {title} "
                f"({_number(low)} to {_number(high)} USD/kg)"), copy=False)
        if parts:
            self.evidence.append(evidence)
        test = or_(*parts) if parts else exp.false()
        test = paren(test) if len(parts) > 1 else test
        if nullable:
            present = not_null(col.copy())
            return Truth(and_(present, test), and_(present.copy(), not_(test.copy())), [name])
        return Truth(test, not_(test.copy()))

    def window(self, agg: ast.CountOf | ast.SumOf) -> exp.Expression:
        """`count of declarations` / `sum of F over declarations` within the N days ending on
        this declaration's date (this one and others of that day included) that share the named
        facts with it. Each distinct window is a relation of its own (`window_<n>`: one value
        per declaration, computed with a RANGE window function over the day numbers) that the
        knowledge base materialises once per build; the check joins it."""
        w = agg.window
        if w.parameter is not None:
            return self.window_of_parameter(agg)
        by_group = any(k.name == "group" for k in w.same)
        by_item = any(k.name == "item" for k in w.same)
        partition: list[exp.Expression] = []
        conds: list[exp.Expression] = []
        for key in w.same:
            if key.name == "group":
                partition.append(col_("mineral", "wd"))
                conds.append(exp.EQ(this=col_("rulebook", "wd"), expression=lit(self.rulebook)))
            elif key.name == "item":
                partition.append(col_("item", "wi"))
            else:
                _, _, column = self.field_sql(key.name)
                partition.append(col_(column, "w"))
                conds.append(not_null(col_(column, "w")))
        unit = ""
        if isinstance(agg, ast.CountOf):
            value: exp.Expression = exp.Count(this=exp.Star())
        else:
            _, _, column = self.field_sql(agg.field.name)
            value = exp.Sum(this=col_(column, "w"))
            unit = {"mass": " kg", "money": " USD"}.get(
                self.schema.field(column).dimension or "", "")  # type: ignore[union-attr]
        over = exp.Window(this=value, partition_by=partition or None,
                          order=exp.Order(expressions=[exp.Ordered(this=col_("day", "wd"))]),
                          spec=exp.WindowSpec(kind="RANGE", start=lit(w.days - 1),
                                              start_side="PRECEDING", end="CURRENT ROW"))
        columns = [as_(col_("declaration_id", "wd"), "declaration_id")]
        if by_item:
            columns.append(as_(col_("item", "wi"), "item"))
        columns.append(as_(exp.Coalesce(this=over, expressions=[lit(0)]), "value"))
        relation = (exp.select(*columns)
                    .from_(as_(exp.to_table("declaration_minerals" if by_group
                                                   else "declaration_days"), "wd"))
                    .join(as_(table("declarations"), "w"),
                          on=exp.EQ(this=col_("id", "w"),
                                    expression=col_("declaration_id", "wd"))))
        if by_item:
            relation = relation.join(
                as_(table("declaration_items"), "wi"),
                on=exp.EQ(this=col_("declaration_id", "wi"),
                          expression=col_("declaration_id", "wd")))
        if conds:
            relation = relation.where(and_(*conds))
        on = [exp.EQ(this=col_("declaration_id", "{alias}"), expression=col_("id"))]
        if by_item:
            self.uses_items = True
            on.append(exp.EQ(this=col_("item", "{alias}"), expression=col_("item", "di")))
        # a value per declaration, or per declaration and item
        alias = self.relation(relation, "window", and_(*on),
                              ("declaration_id", "item") if by_item else ("declaration_id",))
        if not by_item:  # by item, a declaration has a value per item
            self.note_relation(agg, self.rule_windows[-1][0], True)
        result = exp.Coalesce(this=col_("value", alias), expressions=[lit(0)])
        from dsl.format import expression as text

        shown = cast(cast(whole(result.copy()), "BIGINT"), "TEXT")
        self.evidence.append(exp.Concat(expressions=[lit(f"; {text(agg)}: "), shown,
                                                     lit(unit)]))
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
        chosen.sort(key=lambda q: not is_probe(q))
        keyed = [q for q in chosen if key_of(q) is not None]
        out = [q for q in chosen if key_of(q) is None]
        if not keyed:
            return out
        query, key = keyed[0], key_of(keyed[0])
        assert key is not None
        for other in keyed[1:]:
            inner = other.transform(_x_as_y)
            inner_key = key_of(other)
            assert isinstance(inner, exp.Select) and inner_key is not None
            query = query.where(exp.Exists(this=inner.where(exp.EQ(
                this=exp.column(inner_key.name, table="y"), expression=key.copy()))))

        def to_key(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and node.table == D and node.name == "id":
                return key.copy()
            if isinstance(node, exp.Column) and node.table == D and node.name == "judged_on":
                return _judged_on_x(None if isinstance(query, exp.Select)
                                    and reads_declarations(query) else key)
            return node

        if is_probe(query):
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
            query = query.where(and_(*(t.copy().transform(to_key) for t in codes)))
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
                                  .from_(as_(table("declarations"), "x"))
                                  .where(test.transform(_to_x)),
                                  not self.field_sql(spec.name)[1], COST_COUNTRIES)
        if isinstance(c, ast.IsMissing) and c.negated and self.field_sql(c.subject.name)[1]:
            # `export_country is not missing`: the declarations that state an optional fact,
            # as dear as an item's matches: chosen where nothing cheaper is (an `or` branch)
            col, _, _ = self.field_sql(c.subject.name)
            return Candidates(exp.select(exp.column("id", table="x"))
                              .from_(as_(table("declarations"), "x"))
                              .where(not_null(col.copy().transform(_to_x))), True, COST_ITEMS)
        if isinstance(c, ast.InRange):
            return _row_candidates(self.in_range(c), COST_VALUE_RANGE)
        if isinstance(c, ast.Reaches):  # one value on every day: the comparison it stands for
            periods = parameter_periods(self.rb, c.parameter.name)
            if len(periods) == 1 and periods[0][0].start is None and periods[0][0].end is None:
                return self._candidates(parameter_test(c, periods[0][1]))
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
                                                        expression=lit(value))),
                                  True, COST_RELATION)
        if isinstance(c, ast.Comparison) and c.op == "=" and \
                isinstance(c.left, ast.Field) and isinstance(c.right, ast.TextLiteral) and \
                self.field_sql(c.left.name.name)[2] in LICENCE_FACTS:
            # `exporter_on_licence = "agent"`: the few declarations whose licence use says so
            # (outside them the test is false, or unknown without a licence)
            name = self.field_sql(c.left.name.name)[2]
            return Candidates(
                exp.select(exp.column("declaration_id", table="x"))
                .from_(as_(table("licence_uses"), "x"))
                .where(exp.EQ(this=exp.column(LICENCE_FACTS[name], table="x"),
                              expression=lit(c.right.text.value))),
                name in self.silent, COST_RELATION)
        if isinstance(c, ast.Listed):
            spec = self.schema.field(c.subject.name)
            assert spec is not None
            column = exp.column(spec.name, table="x")
            lists = [r.name for r in c.lists] or sorted(self.rb.lists)
            return Candidates(exp.select(exp.column("id", table="x"))
                              .from_(as_(table("declarations"), "x"))
                              .where(self.listed_candidate(column, lists)),
                              # outside the listed names the test is false, or unknown where
                              # the party is missing: a finding only if the rule reports that
                              not self.field_sql(spec.name)[1] or spec.name in self.silent,
                              COST_PARTIES)
        if isinstance(c, ast.InSet) and not c.negated and \
                self.schema.field(c.subject.name).type == "code":  # type: ignore[union-attr]
            items = self.rb.items_in(r.name for r in c.members)
            return Candidates(exp.select(exp.column("declaration_id", table="x"))
                              .from_(as_(table("item_declarations"), "x"))
                              .where(in_(exp.column("item", table="x"), items)),
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

    def window_of_parameter(self, agg: ast.CountOf | ast.SumOf) -> exp.Expression:
        """`within P`: the window of the length in force on the judged date, each length a
        window relation of its own; on a day no length applies, no declarations (0)."""
        w = agg.window
        assert w.parameter is not None
        value, evidence = exp.Case(), exp.Case()
        periods = parameter_periods(self.rb, w.parameter.name)
        for iv, v, _ in periods:
            fixed = replace(agg, window=replace(w, days=int(v.value), parameter=None))
            when = interval_test(iv, self.judged_on())
            value = value.when(when, self.window(fixed), copy=False)
            evidence = evidence.when(when.copy(), self.evidence.pop(), copy=False)
            # (keyed by id: `fixed` is gone after this, its id free for another node)
            noted = self.node_relations.pop(id(fixed), None)
            if noted is not None and len(periods) == 1 and iv.start is None and iv.end is None:
                self.node_relations[id(agg)] = noted  # one length on every day: its window
        value.set("default", lit(0))
        self.evidence.append(evidence)
        return value

    def reaches(self, c: ast.Reaches) -> Truth:
        """The value meets the parameter's value in force on the judged date (false on a day
        no value applies); the evidence names the value that held, with its period, after
        the values of the aggregates compared (each stated once)."""
        t_parts: list[exp.Expression] = []
        f_parts: list[exp.Expression] = []
        missing: list[str] = []
        evidence = exp.Case()
        for iv, v, cite in parameter_periods(self.rb, c.parameter.name):
            mark = len(self.evidence)
            truth = self.comparison(parameter_test(c, v))
            if t_parts:  # the aggregates' values are stated once, by the first value's test
                del self.evidence[mark:]
            when = interval_test(iv, self.judged_on())
            t_parts.append(and_(when, truth.t))
            f_parts.append(or_(not_(when.copy()), truth.f))
            missing = merge([missing, truth.missing])
            evidence = evidence.when(t_parts[-1].copy(), lit(
                f"; {reaches_text(c)} ({parameter_text(iv, v, cite)})"), copy=False)
        if t_parts:
            self.evidence.append(evidence)
        t = paren(or_(*t_parts)) if len(t_parts) > 1 else (t_parts[0] if t_parts
                                                              else exp.false())
        f = and_(*f_parts) if f_parts else TRUE
        return Truth(t, f, missing)

    def comparison(self, c: ast.Comparison) -> Truth:
        left, lmiss = self.expression(c.left)
        right, rmiss = self.expression(c.right)
        ops: dict[str, Callable[..., exp.Expression]] = {
            ">=": exp.GTE, "<=": exp.LTE, ">": exp.GT, "<": exp.LT, "=": exp.EQ, "!=": exp.NEQ}
        test = ops[c.op](this=left, expression=right)
        missing = merge([lmiss, rmiss])
        if not missing:
            return Truth(test, not_(test.copy()))
        present = and_(*(not_null(col_(m)) for m in missing))
        return Truth(and_(present, test), and_(present.copy(), not_(test.copy())), missing)

    def expression(self, e: ast.Expression) -> tuple[exp.Expression, list[str]]:
        if isinstance(e, ast.Field):
            col, nullable, name = self.field_sql(e.name.name)
            return col, [name] if nullable else []
        if isinstance(e, ast.Quantity):
            value = float(e.value) * UNIT_FACTORS.get(e.unit or "", 1.0)
            return lit(int(value) if value == int(value) else value), []
        if isinstance(e, ast.DateLiteral):
            return lit(e.date.text), []
        if isinstance(e, ast.TextLiteral):
            return lit(e.text.value), []
        if isinstance(e, ast.Arithmetic):
            left, lm = self.expression(e.left)
            right, rm = self.expression(e.right)
            if e.op == "/":
                right = exp.Nullif(this=right, expression=lit(0))
            node = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}[e.op](
                this=left, expression=right)
            return paren(node), merge([lm, rm])
        if isinstance(e, ast.CountOf | ast.SumOf):
            return self.window(e), []
        self.fail(e, type(e).__name__)  # pragma: no cover - every kind compiles
        return exp.null(), []


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
        as_(table("declarations"), "x"))
    if any(col.name in CODE_RANGE for col in columns):
        query = query.join(as_(table("code_value_ranges"), "r"),
                           on=exp.EQ(this=exp.column("hs_code", table="r"),
                                     expression=exp.column("hs_code", table="x")))
    return Candidates(query.where(truth.t.copy().transform(_to_x)), not truth.missing, cost)


def _x_as_y(node: exp.Expression) -> exp.Expression:
    """The candidate query's table `x` renamed `y` (nested inside another candidate query)."""
    if isinstance(node, exp.Column) and node.table == "x":
        return exp.column(node.name, table="y")
    if isinstance(node, exp.Table) and node.alias == "x":
        return exp.to_table(node.name, alias="y")
    return node


def _judged_on_x(key: exp.Expression | None = None) -> exp.Expression:
    """The judging date of the candidate query's declaration `x` (as `judged_declarations`
    has it: the `as of` date when one is set, else the declaration's own), read from `x` when
    it is a row of `declarations`, else from the declaration with that `key`."""
    own: exp.Expression = exp.column("declared_on", table="x")
    if key is not None:
        own = exp.Subquery(this=exp.select(exp.column("declared_on", table="j")).from_(
            as_(table("declarations"), "j")).where(
            exp.EQ(this=exp.column("id", table="j"), expression=key.copy())))
    return exp.Coalesce(this=exp.Subquery(this=exp.select(exp.column("as_of", table="s")).from_(
        as_(table("excon_settings"), "s"))), expressions=[own])


def _to_x(node: exp.Expression) -> exp.Expression:
    """A column of the judged declaration `d`, as one of the candidate query's `x` (the
    derived unit value computed from its columns)."""
    if isinstance(node, exp.Column) and node.table == D:
        if node.name == "unit_value":
            return paren(exp.Div(this=exp.column("value_usd", table="x"),
                                     expression=exp.Nullif(
                                         this=exp.column("quantity_kg", table="x"),
                                         expression=lit(0))))
        if node.name in CODE_RANGE:
            return exp.column(CODE_RANGE[node.name], table="r")
        return exp.column(node.name, table="x")
    return node


def _union(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """The days of several intervals, overlapping or adjacent ones joined, sorted."""
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda iv: iv.start or dt.date.min):
        last = out[-1] if out else None
        if last is not None and (last.end is None or iv.start is None or
                                 (iv.start - last.end).days <= 1):
            end = None if last.end is None or iv.end is None else max(last.end, iv.end)
            out[-1] = Interval(last.start, end)
        else:
            out.append(iv)
    return tuple(out)


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


def _number(value: float) -> str:
    return f"{value:g}"
