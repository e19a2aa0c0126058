"""The compiler's first stage: the facts a check reads (declaration fields, in their units)
and the date each declaration is judged on.
"""

from __future__ import annotations

from sqlglot import exp

from dsl import ast
from dsl.compile.sql import FALSE, TRUE, Candidates, Truth, col_, lit
from dsl.diagnostics import Diagnostic
from dsl.periods import rule_periods
from dsl.rulebook import CheckedRulebook
from dsl.schema import UNIT_FACTORS, Schema


class FactCompiler:
    """Declaration facts as SQL: fields in their units, the judging date; compile errors."""

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
        factor = UNIT_FACTORS.get(spec.unit or "", 1.0) if spec.declared else 1.0
        if factor != 1.0:  # a declared number in t or g: compared in the dimension's base unit
            return exp.Mul(this=col_(spec.name), expression=lit(factor)), True, spec.name
        return col_(spec.name), not spec.required, spec.name

    def judged_on(self) -> exp.Expression:
        return col_("judged_on")
