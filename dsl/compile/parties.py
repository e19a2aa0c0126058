"""The compiler's party conditions and the relations rules join: `listed` (fuzzy matches on
the lists, on the judging date), `related to` (paths in `party_reach`, under an ownership
threshold a parameter may set), `first seen`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from dsl import ast
from dsl.compile.facts import FactCompiler
from dsl.compile.sql import (
    COST_PARTIES,
    TRUE,
    Candidates,
    Truth,
    and_,
    as_,
    col_,
    in_,
    interval_test,
    is_null,
    lit,
    merge,
    not_,
    not_null,
    or_,
    paren,
    table,
)
from dsl.graph import OWNERSHIP, Threshold, via_key
from dsl.periods import parameter_periods
from dsl.rulebook import parameter_text


class RelationCompiler(FactCompiler):
    """The relations a rule joins or queries, shared by every rule that needs the same one."""

    def note_relation(self, node: object, name: str, certain: bool,
                      hops: int | None = None, cost: int = 1) -> None:
        ids = (exp.select(exp.column("declaration_id", table="x"))
               .from_(as_(exp.to_table(name), "x")))
        if hops is not None:
            ids = ids.where(exp.LTE(this=exp.column("hops", table="x"), expression=lit(hops)))
        self.node_relations[id(node)] = Candidates(ids, certain, cost)

    def join_table(self, table: str, on: exp.Expression) -> str:
        """Left-join a keyed table (at most one row per declaration) into the rule; `on` names
        it `{alias}`. Returns its alias."""
        alias = f"w{len(self.rule_windows) + 1}"
        self.rule_windows.append((table, alias, on.transform(rename_alias(alias))))
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
        self.rule_windows.append((name, alias, on.transform(rename_alias(alias))))
        return alias


class PartyCompiler(RelationCompiler):
    """Conditions on the parties of a declaration."""

    def listed(self, c: ast.Listed) -> Truth:
        col, nullable, name = self.field_sql(c.subject.name)
        lists = [r.name for r in c.lists] or sorted(self.rb.lists)
        measures = [m.name for m in c.measures]
        self.listed_columns.setdefault(name, []).append((lists, measures))
        sub = (
            exp.select(lit(1))
            .from_(as_(table("listed_matches"), "k"))
            .where(and_(
                exp.EQ(this=col_("name", "k"), expression=col.copy()),
                self.list_match(lists, "k", "k", measures),
                *self.listed_on_date("k"),
            ))
        )
        # A non-correlated IN over the listed names is computed once per query, so the
        # correlated date test only runs for the few declarations whose name is listed.
        candidate = self.listed_candidate(col, lists)
        test = paren(and_(candidate, exp.Exists(this=sub)))
        if nullable:
            present = not_null(col.copy())
            return Truth(and_(present, test), and_(present, not_(test)), [name])
        return Truth(test, not_(test))

    def listed_candidate(self, col: exp.Expression, lists: list[str]) -> exp.Expression:
        """`col IN (names listed on these lists at any time)`: true for every name that can be
        listed on some date; an engine computes the set once and can probe an index with it."""
        names = (exp.select(col_("name", "k"))
                 .from_(as_(table("listed_matches"), "k"))
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
        parts = [and_(in_(col_("list", entry), names),
                      exp.GTE(this=col_("score", name), expression=lit(threshold)))
                 for threshold, names in sorted(by_threshold.items())]
        test = paren(or_(*parts)) if len(parts) > 1 else or_(*parts)
        return and_(test, in_(col_("measure", entry), measures)) if measures else test

    def related(self, c: ast.Related) -> Truth:
        """`A related to B|party listed on L [within N hops] [via links] [reaching P]`: a path
        in `party_reach` from A's normalised name to B's (or to a listed party's, listed on
        the judging date). With `reaching P`, ownership links are those that meet the value of
        P in force on the judging date: one search per value, each tested on its days (on a
        day no value applies the condition is false, as `FACT reaches P` is)."""
        if c.ownership is None:
            return self.related_under(c, OWNERSHIP)
        t_parts: list[exp.Expression] = []
        f_parts: list[exp.Expression] = []
        missing: list[str] = []
        for iv, v, cite in parameter_periods(self.rb, c.ownership.name):
            when = interval_test(iv, self.judged_on())
            first = len(self.evidence)
            truth = self.related_under(c, (v.op, float(v.value)))
            # a path counts on its value's days only
            self.evidence[first:] = [exp.Case().when(when.copy(), e, copy=False) for e in
                                     self.evidence[first:]]
            t_parts.append(and_(when, truth.t))
            self.evidence.append(exp.Case().when(t_parts[-1].copy(), lit(
                f"; owners counted from {c.ownership.name} "
                f"({parameter_text(iv, v, cite)})"), copy=False))
            f_parts.append(or_(not_(when.copy()), truth.f))
            missing = merge([missing, truth.missing])
        t = paren(or_(*t_parts)) if len(t_parts) > 1 else (t_parts[0] if t_parts
                                                              else exp.false())
        return Truth(t, and_(*f_parts) if f_parts else TRUE, missing)

    def related_under(self, c: ast.Related, threshold: Threshold) -> Truth:
        """`related` under one ownership threshold."""
        hops, limit, hops_text = self.hops_in_force(c)
        via = via_key((v.name for v in c.via), threshold)
        acol, anull, aname = self.field_sql(c.subject.name)
        need = (via, aname, self.field_sql(c.other.name)[2]
                if isinstance(c.other, ast.Ref) else None)
        self.reach_needs[need] = max(self.reach_needs.get(need, 0), hops)
        nullable = [(acol, aname)] if anull else []
        # The declarations whose parties are linked, with the path: a relation of its own
        # (`links_<n>`), materialised once per build from `party_reach`.
        base = (exp.select(as_(col_("id", "m"), "declaration_id"))
                .from_(as_(table("party_reach"), "r"))
                .join(as_(table("party_name_keys"), "ka"),
                      on=exp.EQ(this=col_("key", "ka"), expression=col_("a", "r")))
                .join(as_(table("declarations"), "m"),
                      on=exp.EQ(this=col_(aname, "m"), expression=col_("name", "ka"))))
        who = c.subject.name.replace("_", " ")
        if isinstance(c.other, ast.Ref):
            bcol, bnull, bname = self.field_sql(c.other.name)
            nullable += [(bcol, bname)] if bnull else []
            relation = (base.select(as_(col_("hops", "r"), "hops"),
                                    as_(col_("path", "r"), "path"))
                        .join(as_(table("party_name_keys"), "kb"),
                              on=and_(exp.EQ(this=col_("key", "kb"), expression=col_("b", "r")),
                                      exp.EQ(this=col_("name", "kb"),
                                             expression=col_(bname, "m"))))
                        .where(exp.EQ(this=col_("via", "r"), expression=lit(via))))
            alias = self.relation(relation, "links", and_(
                exp.EQ(this=col_("declaration_id", "{alias}"), expression=col_("id")),
                exp.LTE(this=col_("hops", "{alias}"), expression=limit)))
            self.note_relation(c, self.rule_windows[-1][0], not nullable, hops, COST_PARTIES)
            test: exp.Expression = not_null(col_("declaration_id", alias))
            self.evidence.append(exp.Case().when(test.copy(), exp.Concat(expressions=[
                lit(f"; {who} is linked to {c.other.name.replace('_', ' ')} within "),
                hops_text, lit(": "), col_("path", alias)]), copy=False))
        else:
            lists = [r.name for r in c.other.lists] or sorted(self.rb.lists)
            relation = (base.select(as_(col_("party", "lk"), "party"),
                                    as_(col_("hops", "r"), "hops"),
                                    as_(col_("path", "r"), "path"))
                        .join(as_(table("listed_party_keys"), "lk"),
                              on=exp.EQ(this=col_("key", "lk"), expression=col_("b", "r")))
                        .where(exp.EQ(this=col_("via", "r"), expression=lit(via))))
            # a declaration's party may reach several listed parties, one by several paths
            name = self.relation(relation, "links", None, key=None)
            self.note_relation(c, name, not nullable, hops, COST_PARTIES)

            def listed(projection: exp.Expression) -> exp.Select:
                return (exp.select(projection)
                        .from_(as_(exp.to_table(name), "lr"))
                        .join(as_(table("list_entry_periods"), "p"),
                              on=exp.EQ(this=col_("party", "p"), expression=col_("party", "lr")))
                        .where(and_(exp.EQ(this=col_("declaration_id", "lr"),
                                           expression=col_("id")),
                                    exp.LTE(this=col_("hops", "lr"), expression=limit.copy()),
                                    in_(col_("list", "p"), lists),
                                    *self.listed_on_date("p"))))

            test = exp.Exists(this=listed(lit(1)))
            note = listed(exp.Concat(expressions=[
                lit(f"; {who} is linked to a party on "), col_("list", "p"),
                lit(" (listed by "), col_("instrument_id", "p"), lit(") within "),
                hops_text.copy(), lit(": "), col_("path", "lr")]))
            self.evidence.append(exp.Subquery(
                this=note.order_by(col_("hops", "lr"), col_("path", "lr")).limit(1)))
        if not nullable:
            return Truth(test, not_(test.copy()))
        present = and_(*(not_null(col.copy()) for col, _ in nullable))
        return Truth(and_(present, test), and_(present.copy(), not_(test.copy())),
                     [name for _, name in nullable])

    def listed_on_date(self, entry: str) -> list[exp.Expression]:
        return [exp.GTE(this=self.judged_on(), expression=col_("valid_from", entry)),
                paren(or_(is_null(col_("valid_until", entry)),
                              exp.LTE(this=self.judged_on(),
                                      expression=col_("valid_until", entry))))]

    def hops_in_force(self, c: ast.Related) -> tuple[int, exp.Expression, exp.Expression]:
        """The most links a search follows (what its relation is made for), the limit on the
        judged date (`within N hops`, or a parameter's value in force: 0 on a day it has none)
        and that limit in words ('2 hops')."""
        if c.hops_parameter is None:
            hops = c.hops or 1
            return hops, lit(hops), lit(f"{hops} hop{'s' if hops > 1 else ''}")
        name = c.hops_parameter.name
        most = max((int(v.value) for _, v, _ in parameter_periods(self.rb, name)), default=1)
        return (most, self.in_force(name, lit, lit(0)),
                self.in_force(name, lambda n: lit(f"{n} hop{'s' if n > 1 else ''}"), lit("")))

    def in_force(self, name: str, value: Callable[[int], exp.Expression],
                 default: exp.Expression) -> exp.Expression:
        """`value` of the whole-number parameter's value in force on the judged date (a CASE
        over its periods), `default` on a day it has none."""
        case = exp.Case()
        for iv, v, _ in parameter_periods(self.rb, name):
            case = case.when(interval_test(iv, self.judged_on()), value(int(v.value)),
                             copy=False)
        case.set("default", default)
        return case

    def length_in_force(self, c: ast.FirstSeen) -> exp.Expression:
        """N of `within N days`, or the length a parameter gives on the judged date (0 on a day
        it gives none: then nothing was first seen within it)."""
        if c.parameter is None:
            return lit(c.days)
        return self.in_force(c.parameter.name, lit, lit(0))

    def first_seen(self, c: ast.FirstSeen) -> Truth:
        """The first declaration naming the party (in any role) is at most N-1 days before
        this one's date: within the N days ending on it."""
        self.uses_days = True
        col, nullable, name = self.field_sql(c.subject.name)
        # the party's key, then its first day: one row each (both keyed), joined once
        keys = self.join_table("party_name_keys",
                               exp.EQ(this=col_("name", "{alias}"), expression=col.copy()))
        seen = self.join_table("party_first_seen",
                               exp.EQ(this=col_("key", "{alias}"), expression=col_("key", keys)))
        test = exp.LT(this=paren(exp.Sub(this=col_("day", "dd"),
                                             expression=col_("first_day", seen))),
                      expression=self.length_in_force(c))
        self.evidence.append(exp.Concat(expressions=[
            lit(f"; {c.subject.name.replace('_', ' ')} first seen on "),
            col_("first_on", seen)]))
        if nullable:
            present = not_null(col.copy())
            return Truth(and_(present, test), and_(present.copy(), not_(test.copy())), [name])
        return Truth(test, not_(test.copy()))


def rename_alias(alias: str) -> Callable[[exp.Expression], exp.Expression]:
    """A transform naming the table `{alias}` of a join condition `alias`."""

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.table == "{alias}":
            return exp.column(node.name, table=alias)
        return node

    return rename


