"""The syntax tree of declarations' attributes: annotations, validity, and the details of
items, parties and rules."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from dsl.ast.conditions import (
    Condition,
)
from dsl.ast.leaves import (
    Citation,
    Code,
    DateValue,
    Ref,
    Span,
    Text,
    span_field,
)

# ---------------------------------------------------------------- annotations and attributes


@dataclass(frozen=True, slots=True)
class Note:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Source:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Unverified:
    """A fact the rulebook could not verify; kept by the checker, shown in generated documents."""

    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Confidence:
    level: str
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ValidFrom:
    date: DateValue
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ValidUntil:
    date: DateValue
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    country: Ref
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class SourcesChecked:
    """`sources checked through DATE`: the last day the rulebook's sources were checked to."""

    date: DateValue
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Title:
    text: Text
    lang: str | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Issuer:
    names: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Number:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Issued:
    date: DateValue
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class InForce:
    date: DateValue
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Url:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Provision:
    """A citable part of an instrument: `clause 2 "summary" zh "原文"`."""

    kind: str
    label: str
    text: Text
    text_zh: Text | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class NameZh:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class TitleZh:
    """A rule's `title zh "…"`: its title in Chinese."""

    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Control:
    code: Code
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class MemberOf:
    groups: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Customs:
    codes: tuple[Code, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ControlledIf:
    condition: Condition
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Members:
    names: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Words:
    words: tuple[Text, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class BelongsTo:
    """`for GROUP, …`: the items terms or a value range stand for, counted while controlled."""

    names: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class MatchThreshold:
    value: Decimal
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Country:
    code: Ref
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Alias:
    names: tuple[Text, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ControlAct:
    """`per INSTRUMENT [provision] [from DATE] [until DATE]`: an act controlling an item."""

    citation: Citation
    valid_from: ValidFrom | None = None
    valid_until: ValidUntil | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Measures:
    """`measures export-ban, import-ban`: the measures a list's listings can impose."""

    names: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Listing:
    """`listed on LIST per INSTRUMENT [entry N] from DATE [until DATE] [with MEASURE, …]`.
    `measures` None: every measure the list declares; `()`: none (`with no measures`)."""

    list: Ref
    citation: Citation
    valid_from: ValidFrom
    valid_until: ValidUntil | None = None
    measures: tuple[Ref, ...] | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Address:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Phone:
    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class OwnedBy:
    owner: Ref
    share_pct: Decimal | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class When:
    condition: Condition
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Outcome:
    """prohibited, licence required, presumption of denial, case-by-case review, … risk LEVEL."""

    kind: str
    severity: str | None = None
    span: Span = span_field()

    def __str__(self) -> str:
        return f"risk {self.severity}" if self.kind == "risk" else self.kind


@dataclass(frozen=True, slots=True)
class Then:
    outcome: Outcome
    zh: Text | None = None  # the outcome's wording in Chinese
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Explain:
    template: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ExplainZh:
    """`explain zh "…"`: the finding's sentence in Chinese, with the same placeholders."""

    template: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Overrides:
    rules: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Alongside:
    """`alongside RULE, …`: both findings are meant on one declaration (no precedence)."""

    rules: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class IfMissing:
    """`if missing FIELD then OUTCOME | no finding`: overrides the default `undetermined`."""

    field: Ref
    outcome: Outcome | None  # None: "no finding"
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Excepts:
    rules: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Movement:
    """`exports from J`, `re-exports` (from outside the jurisdiction), `imports into J` or
    `unstated exports` (no export country stated)."""

    kind: str  # "exports" | "re-exports" | "imports" | "unstated"
    place: Ref | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Judges:
    """`judges MOVEMENT, …` on a rulebook or a rule: the declarations it judges."""

    movements: tuple[Movement, ...]
    span: Span = span_field()
