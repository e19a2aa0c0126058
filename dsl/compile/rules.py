"""The compiler's rules: each rule becomes a `check_<rule>` query with its outcome, citation
and explanation, the exceptions and permissions that suppress it, and `compile_rulebook()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from dsl import ast
from dsl.basis import BasisPlan, basis_plan
from dsl.compile.conditions import ConditionCompiler
from dsl.compile.dialects import create_view, for_dialect, lint, union_branches
from dsl.compile.explanation import STANDARD_DECLARATION, STANDARD_ITEMS, explanation_parts
from dsl.compile.sql import (
    COST_RELATION,
    FALSE,
    OUTCOME_OF,
    TRUE,
    Candidates,
    D,
    and_,
    as_,
    case,
    cast,
    col_,
    in_,
    in_force,
    is_null,
    is_probe,
    join,
    lit,
    not_,
    not_null,
    or_,
    paren,
    table,
    union_all,
)
from dsl.diagnostics import Diagnostic
from dsl.findings import FINDING_COLUMNS
from dsl.model import law
from dsl.periods import Periods
from dsl.rulebook import LICENSABLE, CheckedRulebook, listing_nodes, required_items
from dsl.schema import Schema


@dataclass
class CompiledRule:
    name: str
    view: str
    query: exp.Select
    outcome: str
    # how its findings word their explanation, as data (`dsl.compile.explanation`)
    explanation: dict[str, Any] = field(default_factory=dict)

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
            cols = [as_(cast(exp.null(), "TEXT"), c) for c in FINDING_COLUMNS]
            return exp.select(*cols).where(FALSE)
        return union_all(selects)

    def statements(self, dialect: str = "sqlite", windows: bool = True) -> list[str]:
        """CREATE VIEW statements for every check and for `findings`, in order; first, unless
        `windows` is false (an engine that stores them as tables), one for each window."""
        out = [create_view(name, q, dialect) for name, q in self.windows.items() if windows]
        out += [create_view(r.view, for_dialect(r.query, dialect), dialect) for r in self.rules]
        out.append(create_view("findings", self.findings_query(), dialect))
        return out


def view_name(rule: str) -> str:
    return "check_" + re.sub(r"[^0-9A-Za-z]+", "_", rule).strip("_").lower()


class Compiler(ConditionCompiler):
    """Rules as checks: outcome, attribution, explanation, suppression."""

    # ------------------------------------------------------------ rules
    def sentence_parts(self, rule: ast.Rule, cites_act: bool) -> list[str]:
        """The sentence of a finding as template pieces: the rule's `explain` template, or the
        standard one (`STANDARD_ITEMS` or `STANDARD_DECLARATION`), ": " and the rule's title,
        and, unless the finding cites the act itself (`cites_act`), its own `per` in
        brackets."""
        tmpl = ast.first_attr(rule, ast.Explain)
        if tmpl is not None:
            return [tmpl.template.value]
        cite = ast.first_attr(rule, ast.Citation)
        where = (f"{cite.instrument.name}" + (f" {cite.provision}" if cite.provision else "")
                 ) if cite else ""
        title = rule.title.value if rule.title else rule.name.name
        return [STANDARD_ITEMS if self.uses_items else STANDARD_DECLARATION,
                f": {title[:1].lower() + title[1:]}", *([] if cites_act else [f" ({where})"])]

    def explanation(self, rule: ast.Rule, cites_act: bool = False
                    ) -> tuple[list[exp.Expression], list[exp.Expression]]:
        """The sentence of a finding, as (head, tail): the rule's `explain` template, or a
        standard one. With `cites_act` the standard sentence names the act the finding cites
        between the two (the outer query fills it in: after 2024-12-01 a licence requirement
        on an announcement's items rests on the unified list), else the rule's own `per`."""
        template, *rest = self.sentence_parts(rule, cites_act)
        parts = [*self.template(template), *map(lit, rest)]  # a title is never a template
        tail: list[exp.Expression] = []
        if rest and self.listed_columns:
            tail.append(exp.Coalesce(this=self.listed_party_note(), expressions=[lit("")]))
        return parts, tail

    def explanation_data(self, rule: ast.Rule, cites_act: bool, licence: bool,
                         tail: list[exp.Expression]) -> dict[str, Any]:
        """`explanation`'s sentence and notes (its `tail`, then the evidence), as data."""
        zh = ast.first_attr(rule, ast.ExplainZh)
        return explanation_parts("".join(self.sentence_parts(rule, cites_act)),
                                 zh.template.value if zh else None, cites_act,
                                 [*tail, *self.evidence], licence, self.schema.names())

    def evidence_notes(self) -> list[exp.Expression]:
        """What the rule's links, windows and first-seen dates found, each a '; …' note."""
        return [exp.Coalesce(this=e, expressions=[lit("")]) for e in self.evidence]

    def listed_party_note(self) -> exp.Expression:
        """'; <role> matches <legal name> on <list> (listed by <instrument>; as '<alias>',
        score <score>)' for the best match in force on the lists (and measures) the rule names
        for that party, or NULL."""
        notes = []
        for column in self.listed_columns:
            sub = self.best_listing(column, exp.Concat(expressions=[
                lit(f"; {column.replace('_', ' ')} matches "), col_("note", "m")]))
            notes.append(exp.Coalesce(this=exp.Subquery(this=sub), expressions=[lit("")]))
        return exp.Concat(expressions=notes) if len(notes) > 1 else notes[0]

    def best_listing(self, column: str, projection: exp.Expression,
                     listed: list[tuple[list[str], list[str]]] | None = None) -> exp.Select:
        """`projection` of the best match of the party in `column` among the listings in
        force that a `listed` test of the rule on that column names."""
        tests = [self.list_match(lists, "m", "m", measures)
                 for lists, measures in (listed or self.listed_columns[column])]
        return (exp.select(projection)
                .from_(as_(table("listed_matches"), "m"))
                .where(and_(exp.EQ(this=col_("name", "m"), expression=col_(column)),
                            paren(or_(*tests)) if len(tests) > 1 else tests[0],
                            *self.listed_on_date("m")))
                .order_by(col_("position", "m"))
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
                        column, col_(part, "m"), listed))
                pairs.append((f"act_{n}", f"act_{n}_provision"))
        elif licence and self.uses_items:
            items = sorted(required_items(condition, self.rb) or self.rb.items)
            item = col_("item", "di")
            columns["act_1"] = self.control_act(item, items, "instrument")
            columns["act_1_provision"] = self.control_act(item, items, "provision")
            pairs.append(("act_1", "act_1_provision"))
        return columns, pairs

    def missing_note(self, missing: list[str], guards: dict[str, exp.Expression] | None = None,
                     head: str = "; cannot be judged") -> exp.Expression:
        names = []
        for m in missing:
            absent: exp.Expression = is_null(col_(m))
            if guards and m in guards:
                absent = and_(absent, paren(guards[m].copy()))
            names.append(case((absent, lit(f" {m}")), default=lit("")))
        return exp.Concat(expressions=[lit(f"{head}, missing:"), *names]) if names \
            else lit(f"{head}: a fact it needs is missing")

    def template(self, text: str) -> list[exp.Expression]:
        parts: list[exp.Expression] = []
        pos = 0
        for m in re.finditer(r"\{([^{}]*)\}", text):
            if m.start() > pos:
                parts.append(lit(text[pos:m.start()]))
            parts.append(self.fact(m.group(1).strip()))
            pos = m.end()
        if pos < len(text):
            parts.append(lit(text[pos:]))
        return parts

    def fact(self, name: str) -> exp.Expression:
        if name in ("item", "item_title") and self.uses_items:
            return exp.Coalesce(this=col_("title" if name == "item_title" else "name", "i"),
                                expressions=[lit("an item")])
        if name == "control_code" and self.uses_items:
            return exp.Coalesce(this=col_("control_code", "i"), expressions=[lit("?")])
        spec = self.schema.field(name)
        if spec is not None:
            value: exp.Expression = col_(spec.name)
            if spec.type == "number":
                value = cast(value, "TEXT")
            return exp.Coalesce(this=value, expressions=[lit("(not declared)")])
        # a fact this rule does not have (the checker allowed the name) stays visible as written
        return lit(f"{{{name}}}")

    def start(self, rule: ast.Rule | ast.Exception_) -> None:
        """A rule's compiling begins: nothing of the previous rule's is kept."""
        self.uses_items = False
        self.uses_days = False
        self.rulebook = self.rb.rulebook_of(rule.span.file) or ""
        self.rule_windows = []
        self.listed_columns = {}
        self.evidence = []
        # the facts whose absence gives no finding (`if missing … then no finding`)
        self.silent = {self.field_sql(p.field.name)[2]
                       for p in ast.attrs_of(rule, ast.IfMissing) if p.outcome is None}

    def rule(self, rule: ast.Rule) -> CompiledRule | None:
        then = ast.first_attr(rule, ast.Then)
        condition = self.rb.condition_of(rule)
        if then is None or condition is None or then.outcome.kind == "permitted":
            return None  # permissions produce no findings; they suppress what they override
        self.start(rule)
        truth = self.truth(condition)
        name = rule.name.name
        cite = ast.first_attr(rule, ast.Citation)
        outcome_word = OUTCOME_OF.get(then.outcome.kind, then.outcome.kind)
        licence = then.outcome.kind in LICENSABLE
        judged = self.judged_on()
        force = in_force(self.periods[name], judged)
        suppressions = [self.suppression(x) for x in self.suppressors(name)]
        suppress = [t for t, _, _ in suppressions]
        # an exception that may apply (a fact it needs is missing): which one, and what
        cases = exp.Case()
        for _, unknown, note in suppressions:
            if not isinstance(unknown, exp.Boolean):
                cases = cases.when(unknown, note, copy=False)
        excepted: exp.Expression = cases if cases.args.get("ifs") else \
            cast(exp.null(), "TEXT")
        # `if missing FIELD then …` replaces `undetermined` when that field is the one missing
        unknown_outcome: exp.Expression = lit("undetermined")
        report_unknown: exp.Expression = TRUE
        for policy in ast.attrs_of(rule, ast.IfMissing):
            col, _, _ = self.field_sql(policy.field.name)
            if policy.outcome is None:
                report_unknown = and_(report_unknown, not_null(col))
            else:
                unknown_outcome = exp.Case().when(
                    is_null(col), lit(OUTCOME_OF.get(policy.outcome.kind,
                                                       policy.outcome.kind))
                , copy=False).else_(unknown_outcome, copy=False)
        # Inner query: each condition appears once, as the value `truth` (1 true, 0 false,
        # NULL unknown), so that no engine's planner has to expand nested and/or/not twice.
        # a licence requirement cites the act that controls the item; a presumption of denial
        # or a case-by-case review cites the act that imposes it, its own `per`
        controls = then.outcome.kind == "licence required"
        acts, act_pairs = self.attribution(condition, controls, cite)
        cites_act = bool(act_pairs) and controls
        head, tail = self.explanation(rule, cites_act)
        said_as = self.explanation_data(rule, cites_act, licence, tail)
        tail += self.evidence_notes()
        statement = [as_(exp.Concat(expressions=head), "statement"),
                     as_(exp.Concat(expressions=tail or [lit("")]), "statement_tail")] \
            if cites_act else [as_(exp.Concat(expressions=head + tail), "statement")]
        severity = lit(then.outcome.severity) if then.outcome.severity else exp.null()
        facts = [
            as_(col_("id"), "declaration_id"),
            as_(cast(truth.t, "INT") if truth.complement else
                case((truth.t, lit(1)), (truth.f, lit(0)), default=cast(exp.null(), "INT")),
                "truth"),
            as_(exp.Case().when(and_(force, *(not_(x) for x in suppress)), lit(1), copy=False)
                       .else_(lit(0), copy=False), "applies"),
            as_(exp.Case().when(report_unknown, lit(1), copy=False).else_(lit(0), copy=False),
                       "report_unknown"),
            as_(excepted, "exception_note"),
            as_(unknown_outcome, "unknown_outcome"),
            *statement,
            as_(self.missing_note(truth.missing, truth.guards), "missing_note"),
            *(as_(cast(value, "TEXT"), name) for name, value in acts.items()),
            as_(judged.copy(), "judged_on"),
        ]
        if licence:
            facts += [
                as_(exp.Coalesce(this=col_("covered", "lc"), expressions=[lit(0)]),
                           "covered"),
                as_(exp.Coalesce(this=col_("problem", "lc"),
                                        expressions=[lit("none declared")]), "licence_problem"),
            ]
        facts.append(as_(col_("item", "di") if self.uses_items else
                                cast(exp.null(), "TEXT"), "item"))
        inner = exp.select(*facts, copy=False).from_(
            as_(table("judged_declarations"), D), copy=False)
        required = required_items(condition, self.rb)
        if self.uses_items:
            # When every finding needs one of a few items, start from those items' matches
            # (an inner join the engine can drive from the item index); otherwise keep every
            # declaration, matched or not.
            join(inner, as_(table("declaration_items"), "di"),
                 and_(exp.EQ(this=col_("declaration_id", "di"), expression=col_("id")),
                      *([in_(col_("item", "di"), required)] if required is not None else [])),
                 "INNER" if required is not None else "LEFT")
            join(inner, as_(table("items"), "i"),
                 exp.EQ(this=col_("name", "i"), expression=col_("item", "di")))
        if self.uses_days:
            join(inner, as_(table("declaration_days"), "dd"),
                 exp.EQ(this=col_("declaration_id", "dd"), expression=col_("id")))
        for window, alias, on in self.rule_windows:
            join(inner, as_(table(window), alias), on)
        if licence:
            join(inner, as_(table("licence_cover"), "lc"),
                 exp.EQ(this=col_("declaration_id", "lc"), expression=col_("id")))
        # rows where the condition is certainly false never make a finding: drop them early
        inner = inner.where(and_(force.copy(), not_(truth.f.copy())), copy=False)
        if licence:  # nor do declarations a licence covers (before their explanation is built)
            inner = inner.where(exp.EQ(this=exp.Coalesce(this=col_("covered", "lc"),
                                                         expressions=[lit(0)]),
                                       expression=lit(0)), copy=False)
        # When no unknown result can be reported (every fact the condition may lack has an
        # `if missing … then no finding`), only rows where it can be true matter: restrict
        # them by a test the engine answers from indexes.
        silent = self.silent
        extra = []
        if licence and required is not None:
            # a licence requirement finds nothing where a licence covers the declaration:
            # start from the matches of its items that no licence covers
            uncovered = join(
                exp.select(col_("declaration_id", "x"), copy=False)
                .from_(as_(table("item_declarations"), "x"), copy=False),
                as_(table("licence_cover"), "xl"),
                exp.EQ(this=col_("declaration_id", "xl"), expression=col_("declaration_id", "x")))
            extra.append(Candidates(
                uncovered.where(and_(in_(col_("item", "x"), required),
                            exp.EQ(this=exp.Coalesce(this=col_("covered", "xl"),
                                                     expressions=[lit(0)]),
                                   expression=lit(0)))), True, COST_RELATION))
        filters = self.candidate_filters(condition, set(truth.missing) <= silent, extra, force)
        for query in filters:
            inner = inner.where(exp.In(this=col_("id"), query=exp.Subquery(this=query)),
                                copy=False)
        if required is not None and any(
                all(isinstance(b, exp.Select) and is_probe(b) for b in union_branches(q))  # type: ignore[arg-type]
                for q in filters):
            # a few declarations found through an index (listed names, a country): start from
            # them, not from every match of the items (`item is dual-use`: all of them)
            for joined in inner.args.get("joins", []):
                if joined.this.alias_or_name == "di":
                    joined.set("kind", None)
                    joined.set("side", "LEFT")

        # OFFSET 0 keeps `facts` a subquery of its own: merged into the query above, each
        # reference to `truth` would evaluate the whole condition again
        inner.set("offset", exp.Offset(expression=lit(0)))

        def c(name: str) -> exp.Column:
            return exp.column(name, table="facts")

        own = (lit(cite.instrument.name if cite else None),
               cast(lit(str(cite.provision) if cite and cite.provision else None), "TEXT"))
        act_instrument: exp.Expression = own[0]
        act_provision: exp.Expression = own[1]
        if act_pairs:
            act_instrument = exp.Coalesce(this=c(act_pairs[0][0]),
                                          expressions=[*(c(i) for i, _ in act_pairs[1:]), own[0]])
            which = exp.Case()
            for ins, prov in act_pairs:
                which = which.when(not_null(c(ins)), c(prov), copy=False)
            act_provision = which.else_(own[1], copy=False)
        is_true = exp.EQ(this=c("truth"), expression=lit(1))
        is_unknown = and_(is_null(c("truth")),
                          exp.EQ(this=c("report_unknown"), expression=lit(1)))
        not_covered = exp.EQ(this=c("covered"), expression=lit(0)) if licence else TRUE
        licence_note = [lit("; licence: "), c("licence_problem")] if licence else []
        may_be_excepted = not_null(c("exception_note"))
        outcome = exp.Case().when(and_(is_true.copy(), may_be_excepted.copy()),
                                  lit("undetermined"), copy=False).when(
            is_true.copy(), lit(outcome_word), copy=False).else_(c("unknown_outcome"), copy=False)
        said: list[exp.Expression] = [c("statement")]
        if cites_act:  # " (ACT [provision])" between the sentence's head and its notes
            said += [lit(" ("), exp.Coalesce(this=act_instrument.copy(), expressions=[lit("")]),
                     case((not_null(act_provision.copy()), exp.Concat(
                         expressions=[lit(" "), act_provision.copy()])), default=lit("")),
                     lit(")"), c("statement_tail")]
        # the sentence once, then the licence note (a finding) or what is missing (unknown)
        # (or the exception that may apply, when only it keeps the finding undetermined)
        explanation = exp.Concat(expressions=[*said, exp.Case().when(
            and_(is_true.copy(), may_be_excepted.copy()), c("exception_note"), copy=False).when(
            is_true.copy(), exp.Concat(expressions=licence_note) if licence_note else lit("")
        , copy=False).else_(c("missing_note"), copy=False)])
        certain = and_(is_true.copy(), not_(may_be_excepted.copy()))
        rank = exp.Window(this=exp.RowNumber(), partition_by=[c("declaration_id")],
                          order=exp.Order(expressions=[
                              exp.Ordered(this=exp.Case().when(certain, lit(0), copy=False)
                                          .else_(lit(1), copy=False)),
                              exp.Ordered(this=c("item"))]))
        findings = exp.select(
            as_(c("declaration_id"), "declaration_id"),
            as_(lit(name), "rule"),
            as_(outcome, "outcome"),
            as_(cast(severity, "TEXT"), "severity"),
            as_(act_instrument, "instrument"),
            as_(act_provision, "provision"),
            as_(explanation, "explanation"),
            as_(lit(self.rb.version), "rulebook_version"),
            *self.resting_on(basis_plan(self.rb, law(self.rb), name), act_instrument,
                             act_provision, c("item") if self.uses_items else None,
                             c("judged_on")),
            *([as_(rank, "finding_rank")] if self.uses_items else []),
            copy=False,
        ).from_(as_(exp.Subquery(this=inner), "facts"), copy=False).where(
            and_(exp.EQ(this=c("applies"), expression=lit(1)),
                 paren(or_(is_true, is_unknown)), not_covered), copy=False)
        # the basis and caveat from the notes of lapses and unverified facts worked out above
        # the rulebook the rule belongs to, and its jurisdiction (a country or a group of them)
        book = self.rb.rule_rulebooks().get(rule.name.name)
        decl = self.rb.rulebook_decl(rule.span.file)
        where = ast.first_attr(decl, ast.Jurisdiction) if decl is not None else None
        select = exp.select(*map(exp.column, FINDING_COLUMNS[:-4]), *basis_and_caveat(),
                            as_(cast(lit(book), "TEXT"), "rulebook"),
                            as_(cast(lit(where.country.name if where else None),
                                                "TEXT"), "jurisdiction"), copy=False).from_(
            as_(exp.Subquery(this=findings), "ranked"), copy=False)
        if self.uses_items:
            # one finding per declaration (a row per matching item): the most serious
            # outcome, then the first item; otherwise every relation `facts` joins has one row
            # per declaration at most: one finding each already, nothing to rank
            select = select.where(
                exp.EQ(this=exp.column("finding_rank"), expression=lit(1)), copy=False)
        return CompiledRule(name, view_name(name), select, outcome_word, said_as)

    def resting_on(self, plan: BasisPlan, instrument: exp.Expression,
                   provision: exp.Expression, item: exp.Expression | None,
                   judged: exp.Expression) -> list[exp.Expr]:
        """`lapse_note` and `unverified_note` of a finding (`dsl.basis`: the interpreter
        reads the same plan): the caveat of the first lapse it rests on, and of the first
        unverified fact (the rule, the item it matched, the act it cites), or NULL."""
        lapse: exp.Expression = cast(exp.null(), "TEXT")
        if plan.lapses:
            which = exp.Case()
            for t in plan.lapses:
                test: exp.Expression = exp.GTE(this=judged.copy(), expression=lit(t.resumes))
                if t.instrument is not None:
                    test = and_(test, exp.EQ(this=instrument.copy(), expression=lit(t.instrument)))
                    if t.provision is not None:
                        test = and_(test, exp.EQ(this=provision.copy(),
                                                 expression=lit(t.provision)))
                which = which.when(test, lit(t.caveat), copy=False)
            lapse = which
        unverified: exp.Expression = cast(exp.null(), "TEXT")
        if plan.rule_unverified:
            unverified = lit(plan.rule_unverified)
        else:
            which = exp.Case()
            for name, caveat in plan.items_unverified if item is not None else ():
                assert item is not None
                which = which.when(exp.EQ(this=item.copy(), expression=lit(name)), lit(caveat),
                                 copy=False)
            for name, caveat in plan.acts_unverified:
                which = which.when(exp.EQ(this=instrument.copy(), expression=lit(name)),
                                 lit(caveat), copy=False)
            if which.args.get("ifs"):
                unverified = which
        return [as_(lapse, "lapse_note"), as_(unverified, "unverified_note")]

    def suppressors(self, name: str) -> list[ast.Rule | ast.Exception_]:
        return self.rb.suppressors(name)

    def suppression(self, decl: ast.Rule | ast.Exception_
                    ) -> tuple[exp.Expression, exp.Expression, exp.Expression]:
        """Whether the exception or permission is in force and certainly applies; whether it
        is in force and may apply, a fact it needs being missing (the finding is then
        undetermined, never silently dropped nor silently kept); and that note."""
        condition = self.rb.condition_of(decl)
        uses, evidence = self.uses_items, self.evidence
        self.evidence = []  # an exception's links and windows are not the finding's evidence
        truth = self.truth(condition) if condition else None
        self.uses_items = uses or self.uses_items
        self.evidence = evidence
        force = in_force(self.periods[decl.name.name], self.judged_on())
        name = decl.name.name
        if truth is None or truth.complement or not truth.missing:
            t = truth.t if truth is not None else TRUE
            return paren(and_(force, t)), exp.false(), lit("")
        unknown = and_(force.copy(), not_(truth.t.copy()), not_(truth.f.copy()))
        kind = "exception" if isinstance(decl, ast.Exception_) else "permission"
        note = self.missing_note(truth.missing, truth.guards,
                                 f"; cannot be judged: {kind} {name} may apply")
        return paren(and_(force, truth.t)), paren(unknown), note


def compile_rulebook(rb: CheckedRulebook, schema: Schema) -> tuple[CompiledRulebook,
                                                                    list[Diagnostic]]:
    """Compile every rule; a construct that cannot compile is an E701 diagnostic. The result
    is kept on the rulebook (checking and installing a rulebook compile it once)."""
    cached = rb.compiled.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1], list(cached[2])
    compiler = Compiler(rb, rb.schema(schema))
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


def compile_conditions(rb: CheckedRulebook, schema: Schema) -> list[Diagnostic]:
    """What `compile_rulebook` would report, without building the checks: every condition
    of every rule, exception and permission compiled (the only step that can find a construct
    the SQL compiler does not support), the findings' queries around them not. `excon check`
    and the language server need the diagnostics only (a check of 10,000 rules then takes
    a fraction of their compile)."""
    cached = rb.compiled.get(id(schema))
    if cached is not None and cached[0] is schema:
        return list(cached[2])
    compiler = Compiler(rb, rb.schema(schema))
    for decl in rb.rules.values():
        for judged in (decl, *compiler.suppressors(decl.name.name)):
            condition = rb.condition_of(judged)
            if condition is not None:
                compiler.start(judged)
                compiler.truth(condition)
    return compiler.diags


def basis_and_caveat() -> list[exp.Expr]:
    """`basis` and `caveat` from a finding's `lapse_note` and `unverified_note` (`dsl.basis`):
    a lapse first, then an unverified fact, else settled; the caveat says both."""
    lapse, unverified = exp.column("lapse_note"), exp.column("unverified_note")
    basis = case((not_null(lapse), lit("lapsed-by-text")),
                 (not_null(unverified.copy()), lit("unverified")), default=lit("settled"))
    caveat = exp.Case().when(and_(not_null(lapse.copy()), not_null(unverified.copy())),
                             exp.Concat(expressions=[lapse.copy(), lit(" "), unverified.copy()])
                             , copy=False).else_(exp.Coalesce(this=lapse.copy(),
                                                  expressions=[unverified.copy()]), copy=False)
    return [as_(basis, "basis"), as_(caveat, "caveat")]
