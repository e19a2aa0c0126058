"""The static checks of conditions, expressions, windows and explanations: fields and their
types and units, party roles, relations.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from dsl import ast
from dsl.check.names import (
    EXPLAIN_FACTS,
    PLACEHOLDER,
    NameResolver,
    Type,
    country_code_of,
    iter_conditions,
)
from dsl.diagnostics import did_you_mean
from dsl.format import expression as expression_text
from dsl.rulebook import COMPARATOR_WORDS
from dsl.schema import UNIT_DIMENSIONS, FieldSpec


def _choices_text(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(f'"{c}"' for c in choices)


class ConditionChecks(NameResolver):
    """Types and units of conditions, expressions, windows and `explain` templates."""

    # ------------------------------------------------------------ conditions and expressions
    def field_ref(self, ref: ast.Ref) -> FieldSpec | None:
        spec = self.schema.field(ref.name)
        if spec is None:
            hint = did_you_mean(ref.name, self.schema.names())
            if hint is None and (code := country_code_of(ref.name)) is not None:
                hint = (f"'{ref.name}' is a country: a declaration's country is tested with "
                        f"'in', as in `destination in {code}`")
            self.error("E404", f"a declaration has no fact called '{ref.name}'", ref.span,
                       hint)
        return spec

    def party_role(self, ref: ast.Ref) -> None:
        spec = self.field_ref(ref)
        if spec is not None and spec.type != "party":
            roles = ", ".join(self.schema.party_roles())
            self.error("E401", f"'{ref.name}' is not a party of the declaration", ref.span,
                       f"use one of: {roles}")

    def condition(self, c: ast.Condition, context: str) -> None:
        for node in iter_conditions(c):
            if isinstance(node, ast.ItemIn):
                if context == "item":
                    self.error("E401", "an item's own condition cannot test which item it is",
                               node.span)
                for ref in node.members:
                    self.resolve(ref, "item or item group", self.rb.items, self.rb.groups)
            elif isinstance(node, ast.DualUse):
                if context == "item":
                    self.error("E401", "an item's own condition cannot test whether it is "
                               "dual-use", node.span)
            elif isinstance(node, ast.CodeUnder):
                spec = self.field_ref(node.subject)
                if spec is not None and spec.type != "code":
                    self.error("E401", f"'{node.subject.name}' is not a customs code; 'under' "
                               "tests a customs code", node.subject.span)
                for code in node.codes:
                    self.customs_code(code, allow_hs6=True)
            elif isinstance(node, ast.InSet):
                spec = self.field_ref(node.subject)
                if node.any_time and spec is not None and spec.type != "code":
                    self.error("E401", f"'{node.subject.name}' is not a customs code; "
                               "'in codes of' tests customs codes", node.subject.span)
                    continue
                if spec is not None and spec.type == "code":
                    # `hs_code in gallium`: the code is one of the items' reference codes
                    for ref in node.members:
                        self.resolve(ref, "item or item group", self.rb.items, self.rb.groups)
                    continue
                if spec is not None and spec.type != "country":
                    self.error("E401", f"'{node.subject.name}' is not a country; 'in' lists "
                               "countries (use 'item in …' for items)", node.subject.span)
                for ref in node.members:
                    self.country_code(ref, groups_allowed=True)
            elif isinstance(node, ast.IsMissing):
                self.field_ref(node.subject)
            elif isinstance(node, ast.Mentions):
                spec = self.field_ref(node.subject)
                if spec is not None and spec.type not in ("text", "party"):
                    self.error("E401", f"'{node.subject.name}' is not text", node.subject.span)
                for term in node.terms:
                    if isinstance(term, ast.Ref):
                        self.resolve(term, "list of terms", self.rb.terms)
                    elif not term.value.strip():
                        self.error("E205", "an empty text matches everything", term.span)
            elif isinstance(node, ast.Listed):
                self.party_role(node.subject)
                lists = [ref.name for ref in node.lists
                         if self.resolve(ref, "party list", self.rb.lists)]
                self.measures_of(node.measures, lists if node.lists else list(self.rb.lists))
            elif isinstance(node, ast.Related):
                self.related(node)
            elif isinstance(node, ast.FirstSeen):
                self.party_role(node.subject)
                if node.parameter is not None:
                    self.length(node.parameter)
            elif isinstance(node, ast.InRange):
                spec = self.field_ref(node.subject)
                if spec is not None and spec.dimension != "money per mass":
                    self.error("E402", f"'{node.subject.name}' is not a unit value (USD/kg)",
                               node.subject.span)
                for ref in node.members:
                    self.resolve(ref, "item, item group or value range", self.rb.items,
                                 self.rb.groups, self.rb.value_ranges)
                if not self.rb.item_value_ranges(r.name for r in node.members):
                    self.error("E205", "no value range applies to these items' customs codes",
                               node.span, "add a `value range` with one of their codes")
            elif isinstance(node, ast.Comparison):
                self.comparison(node)
            elif isinstance(node, ast.Reaches):
                self.reaches(node)
            elif isinstance(node, ast.ConclusionRef):
                if context == "item":
                    self.error("E401", "an item's own condition cannot test a conclusion",
                               node.span)
                self.resolve(node.name, "conclusion", self.rb.conclusions)

    def related(self, node: ast.Related) -> None:
        self.party_role(node.subject)
        if isinstance(node.other, ast.Ref):
            self.party_role(node.other)
        else:
            for ref in node.other.lists:
                self.resolve(ref, "party list", self.rb.lists)
        if node.hops is not None and not 1 <= node.hops <= 6:
            self.error("E406", f"links are followed 1 to 6 hops, not {node.hops}", node.span)
        if node.hops_parameter is not None:
            self.length(node.hops_parameter, None)
        for v in node.via:
            if v.name not in self.schema.party_links:
                self.error("E404", f"parties are not linked by '{v.name}'", v.span,
                           did_you_mean(v.name, self.schema.party_links) or
                           f"links are: {', '.join(self.schema.party_links)}")
        if node.ownership is not None:
            self.ownership(node)

    def reaches(self, node: ast.Reaches) -> None:
        """`EXPRESSION reaches P`: a number of P's kind; `… reaches P of EXPRESSION`: P is a
        share (a percentage) and both numbers are of one kind. P's values are thresholds."""
        left = self.expression(node.subject)
        whole = self.expression(node.of) if node.of is not None else None
        if not self.resolve(node.parameter, "parameter", self.rb.parameters):
            return
        name = node.parameter.name
        values = ast.attrs_of(self.rb.parameters[name], ast.ParameterValue)
        if any(not v.op for v in values):
            self.error("E401", f"parameter '{name}' has plain values, not thresholds: "
                       "`reaches` needs at least, more than, at most or less than",
                       node.parameter.span, "a plain value is a length for `within`")
            return
        kinds = {UNIT_DIMENSIONS.get(v.unit) if v.unit else None for v in values}
        for side, t in ((node.subject, left), (node.of, whole)):
            if side is not None and t is not None and t[0] != "number":
                self.error("E401", f"{_describe(t)} cannot reach a parameter: a parameter is "
                           "a threshold for a number", node.span)
                return
        if left is None or (node.of is not None and whole is None):
            return
        if node.of is None:
            if kinds and left[1] not in kinds:
                have = sorted(DIMENSION_WORDS.get(k or "", k or "a plain number") for k in kinds)
                self.error("E402", f"'{expression_text(node.subject)}' is {_describe(left)} "
                           f"and cannot reach parameter '{name}', {' or '.join(have)}",
                           node.span)
            return
        if kinds != {"percent"}:
            self.error("E402", f"`reaches {name} of …` takes a share of a number: parameter "
                       f"'{name}' must be a percentage", node.parameter.span)
        elif whole is not None and left[1] != whole[1]:
            self.error("E402", f"{_describe(left)} cannot reach a share of "
                       f"{_describe(whole)}", node.span)

    def length(self, ref: ast.Ref, unit: str | None = "days") -> None:
        """`within P` (days) or `within P hops` (no unit): P's values are whole numbers, plain
        (no comparator), with one for every day (a window or a search has a length whatever
        the judged date)."""
        if not self.resolve(ref, "parameter", self.rb.parameters):
            return
        values = ast.attrs_of(self.rb.parameters[ref.name], ast.ParameterValue)
        what = ("a window's length is a whole number of days (45 days)" if unit else
                "a number of links followed is a whole number from 1 to 6, without a unit")
        for v in values:
            if v.op or v.unit != unit or v.value != int(v.value) or v.value < 1 or (
                    unit is None and v.value > 6):
                self.error("E402", f"{what}; parameter '{ref.name}' has "
                           f"{COMPARATOR_WORDS.get(v.op, '')}{' ' if v.op else ''}"
                           f"{format(v.value, 'f')} {v.unit or '(no unit)'}", ref.span)
                return
        periods = self.rb.parameter_values(ref.name)
        gaps = [b.start for (a, _, _), (b, _, _) in pairwise(periods)
                if a.end is None or b.start is None or (b.start - a.end).days != 1]
        if periods and (periods[0][0].start is not None or periods[-1][0].end is not None
                        or gaps):
            self.error("E302", f"{'a window' if unit else 'a search'}'s length must apply on "
                       f"every day; parameter "
                       f"'{ref.name}' has days without a value", ref.span,
                       "give its first value no start (no `from`, no act in force later) and "
                       "its last no end")

    def ownership(self, node: ast.Related) -> None:
        """`via owner reaching NAME`: a percentage parameter of `at least` or `more than`
        values, on a search that follows ownership."""
        ref = node.ownership
        assert ref is not None
        if node.via and not {v.name for v in node.via} & {"owner", "parent"}:
            self.error("E401", f"'reaching {ref.name}' sets an ownership threshold, but the "
                       "search follows no ownership links", ref.span,
                       "add `owner` or `parent` to `via`")
        if not self.resolve(ref, "parameter", self.rb.parameters):
            return
        for v in ast.attrs_of(self.rb.parameters[ref.name], ast.ParameterValue):
            if v.unit != "%":
                self.error("E402", f"an ownership threshold is a percentage; parameter "
                           f"'{ref.name}' has {format(v.value, 'f')} {v.unit or '(no unit)'}",
                           v.span)
            elif v.op not in (">=", ">"):
                self.error("E401", f"an ownership threshold is `at least` or `more than` a "
                           f"share, not `{COMPARATOR_WORDS[v.op] or 'a plain value'}`",
                           v.span)
            elif not 0 < v.value <= 100:
                self.error("E403", f"an ownership threshold is a share above 0 and up to "
                           f"100 %, not {format(v.value, 'f')} %", v.span)

    def comparison(self, node: ast.Comparison) -> None:
        left = self.expression(node.left)
        right = self.expression(node.right)
        if left is None or right is None:
            return
        if left[0] != right[0]:
            self.error("E401", f"cannot compare {_describe(left)} with {_describe(right)}",
                       node.span)
            return
        if left[0] == "text" and node.op not in ("=", "!="):
            self.error("E401", f"texts can only be compared with = or !=, not {node.op}",
                       node.span)
        for field, text in ((node.left, node.right), (node.right, node.left)):
            if isinstance(field, ast.Field) and isinstance(text, ast.TextLiteral):
                self.choice(field.name, text.text)
        if left[0] == "number" and left[1] != right[1]:
            if left[1] is None or right[1] is None:
                known = left[1] or right[1]
                self.error("E402", f"a number without a unit is compared with "
                           f"{_describe(('number', known))}",
                           node.span, f"write the unit, for example {example_unit(known)}")
            else:
                self.error("E402", f"cannot compare {_describe(left)} with {_describe(right)}",
                           node.span)
        for side, other in ((node.left, left), (node.right, right)):
            if isinstance(side, ast.Quantity) and other[1] == "percent" and \
                    not Decimal(0) <= side.value <= Decimal(100):
                self.error("E403", f"{side.value} % is not a percentage between 0 and 100",
                           side.span)

    def choice(self, fact: ast.Ref, value: ast.Text) -> None:
        """E409 for a value a declared choice (or yes/no) cannot take."""
        spec = self.schema.field(fact.name)
        if spec is not None and spec.choices and value.value not in spec.choices:
            self.error("E409", f"'{spec.name}' is {_choices_text(spec.choices)}, never "
                       f"\"{value.value}\"", value.span,
                       did_you_mean(value.value, list(spec.choices)))

    def expression(self, e: ast.Expression) -> Type | None:
        if isinstance(e, ast.Field):
            spec = self.field_ref(e.name)
            if spec is None:
                return None
            if spec.type == "number":
                return ("number", spec.dimension)
            if spec.type == "date":
                return ("date", None)
            return ("text", None)
        if isinstance(e, ast.Quantity):
            return ("number", UNIT_DIMENSIONS.get(e.unit) if e.unit else None)
        if isinstance(e, ast.DateLiteral):
            self.date(e.date)
            return ("date", None)
        if isinstance(e, ast.TextLiteral):
            return ("text", None)
        if isinstance(e, ast.CountOf):
            self.window(e.window)
            return ("number", None)
        if isinstance(e, ast.SumOf):
            self.window(e.window)
            spec = self.field_ref(e.field)
            if spec is not None and spec.type != "number":
                self.error("E401", f"cannot add up '{e.field.name}': it is not a number",
                           e.field.span)
                return None
            return ("number", spec.dimension if spec else None)
        if isinstance(e, ast.Arithmetic):
            return self.arithmetic(e)
        return None  # pragma: no cover

    def arithmetic(self, e: ast.Arithmetic) -> Type | None:
        left, right = self.expression(e.left), self.expression(e.right)
        if left is None or right is None:
            return None
        if left[0] != "number" or right[0] != "number":
            self.error("E401", f"cannot calculate with {_describe(left)} and "
                       f"{_describe(right)}", e.span)
            return None
        if e.op in "+-":
            if left[1] != right[1]:
                self.error("E402", f"cannot add or subtract a {left[1] or 'plain number'} and a "
                           f"{right[1] or 'plain number'}", e.span)
                return None
            return left
        if e.op == "*":
            if left[1] and right[1]:
                self.error("E402", f"cannot multiply a {left[1]} by a {right[1]}", e.span)
                return None
            return ("number", left[1] or right[1])
        if left[1] == right[1]:
            return ("number", None)
        if right[1] is None:
            return left
        return ("number", f"{left[1] or '1'} per {right[1]}")

    def window(self, w: ast.Window) -> None:
        if w.parameter is not None:
            self.length(w.parameter)
        elif w.days < 1:
            self.error("E406", "a window must be at least 1 day", w.span)
        for key in w.same:
            if key.name not in self.schema.window_keys:
                self.field_ref(key)

    def explanation(self, e: ast.Explain | ast.ExplainZh) -> None:
        for m in PLACEHOLDER.finditer(e.template.value):
            name = m.group(1).strip()
            if name not in EXPLAIN_FACTS and self.schema.field(name) is None:
                self.error("E407", f"the explanation names '{{{name}}}', which is not a fact "
                           "of a finding", e.template.span,
                           did_you_mean(name, sorted(EXPLAIN_FACTS) + self.schema.names()))


DIMENSION_WORDS = {
    "mass": "a mass (kg)", "money": "an amount of money (USD)", "percent": "a percentage",
    "money per mass": "a unit value (USD/kg)", "density": "a density (g/cm3)",
    "pressure": "a pressure (MPa)", "length": "a length", "duration": "a number of days",
}


def _describe(t: Type) -> str:
    if t[0] == "number":
        return DIMENSION_WORDS.get(t[1], f"a {t[1]}") if t[1] else "a plain number"
    return f"a {t[0]}"


def example_unit(dimension: str | None) -> str:
    for unit, dim in UNIT_DIMENSIONS.items():
        if dim == dimension:
            return f"99.99 {unit}" if unit == "%" else f"100 {unit}"
    return "a number with its unit"
