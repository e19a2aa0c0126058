"""The syntax tree of conditions and expressions (what `when` and `controlled if` hold)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from dsl.ast.leaves import (
    Code,
    DateValue,
    Ref,
    Span,
    Text,
    span_field,
)

# ---------------------------------------------------------------- conditions and expressions


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Negation:
    part: Condition
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Parenthesised:
    """Kept so the formatter reprints the parentheses the author wrote."""

    part: Condition
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Reaches:
    """`EXPRESSION reaches PARAMETER [of EXPRESSION]`: the value meets the parameter's value in
    force, by its comparator; with `of`, the parameter is a share (a percentage) of the second
    expression ("quantity_kg reaches largest-part of sum of quantity_kg over …")."""

    subject: Expression
    parameter: Ref
    of: Expression | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ConclusionRef:
    """`NAME holds`: a named conclusion, as written in a condition."""

    name: Ref
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Concluded(Parenthesised):
    """A conclusion's condition in place of `NAME holds` (`CheckedRulebook.condition_of`)."""

    name: str = ""


@dataclass(frozen=True, slots=True)
class ItemIn:
    """`item in GROUP, ITEM…`: the declaration's customs code matches one of these items."""

    members: tuple[Ref, ...]
    negated: bool = False
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class InSet:
    """`destination in usa, CA`: a field's value is a member of country groups or codes.
    `hs_code in gallium`: the code is a reference code of an item controlled on the judged
    date; `hs_code in codes of gallium` (`any_time`): of any of the items, whenever."""

    subject: Ref
    members: tuple[Ref, ...]
    negated: bool = False
    span: Span = span_field()
    any_time: bool = False


@dataclass(frozen=True, slots=True)
class CodeUnder:
    """`hs_code under 2827.39, 8101.99`: the code begins with one of these codes."""

    subject: Ref
    codes: tuple[Code, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class IsMissing:
    subject: Ref
    negated: bool = False
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Mentions:
    """`description mentions gallium-terms, "镓"`: case-folded substring match."""

    subject: Ref
    terms: tuple[Ref | Text, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Listed:
    """`consignee listed [on LIST, …] [with MEASURE, …]`: by a listing in force that day."""

    subject: Ref
    lists: tuple[Ref, ...] = ()
    measures: tuple[Ref, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class DualUse:
    """`item is [not] dual-use`: the item is controlled on the judged date (thresholds met)."""

    negated: bool = False
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ListedParty:
    lists: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Related:
    """`consignee related to exporter within 2 hops via address, parent [reaching NAME]`:
    `ownership` names the parameter whose threshold makes an owner control a company."""

    subject: Ref
    other: Ref | ListedParty
    hops: int | None = None
    via: tuple[Ref, ...] = ()
    span: Span = span_field()
    ownership: Ref | None = None
    hops_parameter: Ref | None = None  # `within PARAMETER hops`: the number in force


@dataclass(frozen=True, slots=True)
class InRange:
    """`unit_value within range of gallium`: inside the range of one of these items' codes."""

    subject: Ref
    members: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class FirstSeen:
    """`PARTY first seen within N days` (or `within PARAMETER`: a length in days, 0 here)."""

    subject: Ref
    days: int
    span: Span = span_field()
    parameter: Ref | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    left: Expression
    op: str
    right: Expression
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Field:
    name: Ref
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Decimal
    unit: str | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class DateLiteral:
    date: DateValue
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class TextLiteral:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Arithmetic:
    left: Expression
    op: str
    right: Expression
    bracketed: bool = False
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Window:
    """Earlier declarations within N days (inclusive of this one) sharing the named facts; or
    within the days a parameter gives (`within PARAMETER`: `days` is 0, the length is the
    parameter's value in force on the judged date)."""

    days: int
    same: tuple[Ref, ...] = ()
    span: Span = span_field()
    parameter: Ref | None = None


@dataclass(frozen=True, slots=True)
class CountOf:
    window: Window
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class SumOf:
    field: Ref
    window: Window
    span: Span = span_field()


Condition = (
    AllOf | AnyOf | Negation | Parenthesised | ItemIn | DualUse | InSet | IsMissing | Mentions
    | Listed | Related | FirstSeen | InRange | Comparison | ConclusionRef | Reaches | CodeUnder
    | Concluded  # (a Parenthesised; named here so that rules.json's schema allows it)
)
Expression = Field | Quantity | DateLiteral | TextLiteral | Arithmetic | CountOf | SumOf
