"""Typed syntax tree of a rulebook: one dataclass per construct, each with its source span.

Spans never take part in equality, so `parse(format(x)) == x` compares meaning, not layout.
Declarations keep their attributes in the order written: the formatter changes layout, not order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Span:
    """Where a construct is in its file: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NO_SPAN = Span("<generated>", 0, 0, 0, 0)


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- leaves


@dataclass(frozen=True, slots=True)
class Ref:
    """A name written in the rulebook: a declaration's own name or a reference to one."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Text:
    """A quoted string, unescaped."""

    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DateValue:
    """An ISO date as written (validated by the checker, not the parser)."""

    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Code:
    """A customs code (digits, dots allowed) or a control code such as 1C902."""

    text: str
    span: Span = _span()

    @property
    def digits(self) -> str:
        return self.text.replace(".", "")


@dataclass(frozen=True, slots=True)
class ProvisionRef:
    kind: str
    label: str
    span: Span = _span()

    def __str__(self) -> str:
        return f"{self.kind} {self.label}"


@dataclass(frozen=True, slots=True)
class Citation:
    """`per INSTRUMENT [article N]`: the legal basis of an entry."""

    instrument: Ref
    provision: ProvisionRef | None = None
    span: Span = _span()


# ---------------------------------------------------------------- annotations and attributes


@dataclass(frozen=True, slots=True)
class Note:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Source:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Unverified:
    """A fact the rulebook could not verify; kept by the checker, shown in generated documents."""

    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Confidence:
    level: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ValidFrom:
    date: DateValue
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ValidUntil:
    date: DateValue
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    country: Ref
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SourcesChecked:
    """`sources checked through DATE`: the last day the rulebook's sources were checked to."""

    date: DateValue
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Title:
    text: Text
    lang: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Issuer:
    names: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Number:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Issued:
    date: DateValue
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class InForce:
    date: DateValue
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Url:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Provision:
    """A citable part of an instrument: `clause 2 "summary" zh "原文"`."""

    kind: str
    label: str
    text: Text
    text_zh: Text | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class NameZh:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Control:
    code: Code
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class MemberOf:
    groups: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Customs:
    codes: tuple[Code, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ControlledIf:
    condition: Condition
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Members:
    names: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Words:
    words: tuple[Text, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BelongsTo:
    """`for GROUP, …`: the items terms or a value range stand for, counted while controlled."""

    names: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class MatchThreshold:
    value: Decimal
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Country:
    code: Ref
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Alias:
    names: tuple[Text, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ControlAct:
    """`per INSTRUMENT [provision] [from DATE] [until DATE]`: an act controlling an item."""

    citation: Citation
    valid_from: ValidFrom | None = None
    valid_until: ValidUntil | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Measures:
    """`measures export-ban, import-ban`: the measures a list's listings can impose."""

    names: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Listing:
    """`listed on LIST per INSTRUMENT [entry N] from DATE [until DATE] [with MEASURE, …]`.
    `measures` None: every measure the list declares; `()`: none (`with no measures`)."""

    list: Ref
    citation: Citation
    valid_from: ValidFrom
    valid_until: ValidUntil | None = None
    measures: tuple[Ref, ...] | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Address:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Phone:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class OwnedBy:
    owner: Ref
    share_pct: Decimal | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class When:
    condition: Condition
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Outcome:
    """prohibited, licence required, presumption of denial, case-by-case review, … risk LEVEL."""

    kind: str
    severity: str | None = None
    span: Span = _span()

    def __str__(self) -> str:
        return f"risk {self.severity}" if self.kind == "risk" else self.kind


@dataclass(frozen=True, slots=True)
class Then:
    outcome: Outcome
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Explain:
    template: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Overrides:
    rules: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Alongside:
    """`alongside RULE, …`: both findings are meant on one declaration (no precedence)."""

    rules: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IfMissing:
    """`if missing FIELD then OUTCOME | no finding`: overrides the default `undetermined`."""

    field: Ref
    outcome: Outcome | None  # None: "no finding"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Excepts:
    rules: tuple[Ref, ...]
    span: Span = _span()


# ---------------------------------------------------------------- conditions and expressions


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Negation:
    part: Condition
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Parenthesised:
    """Kept so the formatter reprints the parentheses the author wrote."""

    part: Condition
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Reaches:
    """`FIELD reaches PARAMETER`: the fact meets the value in force, by its comparator."""

    subject: Ref
    parameter: Ref
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ConclusionRef:
    """`NAME holds`: a named conclusion, as written in a condition."""

    name: Ref
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Concluded(Parenthesised):
    """A conclusion's condition in place of `NAME holds` (`CheckedRulebook.condition_of`)."""

    name: str = ""


@dataclass(frozen=True, slots=True)
class ItemIn:
    """`item in GROUP, ITEM…`: the declaration's customs code matches one of these items."""

    members: tuple[Ref, ...]
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class InSet:
    """`destination in usa, CA`: a field's value is a member of country groups or codes.
    `hs_code in gallium`: the code is a reference code of an item controlled on the judged
    date; `hs_code in codes of gallium` (`any_time`): of any of the items, whenever."""

    subject: Ref
    members: tuple[Ref, ...]
    negated: bool = False
    span: Span = _span()
    any_time: bool = False


@dataclass(frozen=True, slots=True)
class CodeUnder:
    """`hs_code under 2827.39, 8101.99`: the code begins with one of these codes."""

    subject: Ref
    codes: tuple[Code, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IsMissing:
    subject: Ref
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Mentions:
    """`description mentions gallium-terms, "镓"`: case-folded substring match."""

    subject: Ref
    terms: tuple[Ref | Text, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Listed:
    """`consignee listed [on LIST, …] [with MEASURE, …]`: by a listing in force that day."""

    subject: Ref
    lists: tuple[Ref, ...] = ()
    measures: tuple[Ref, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DualUse:
    """`item is [not] dual-use`: the item is controlled on the judged date (thresholds met)."""

    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ListedParty:
    lists: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Related:
    """`consignee related to exporter within 2 hops via address, parent`."""

    subject: Ref
    other: Ref | ListedParty
    hops: int | None = None
    via: tuple[Ref, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class InRange:
    """`unit_value within range of gallium`: inside the range of one of these items' codes."""

    subject: Ref
    members: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FirstSeen:
    subject: Ref
    days: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Comparison:
    left: Expression
    op: str
    right: Expression
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Field:
    name: Ref
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Decimal
    unit: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DateLiteral:
    date: DateValue
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TextLiteral:
    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Arithmetic:
    left: Expression
    op: str
    right: Expression
    bracketed: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Window:
    """Earlier declarations within N days (inclusive of this one) sharing the named facts."""

    days: int
    same: tuple[Ref, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CountOf:
    window: Window
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SumOf:
    field: Ref
    window: Window
    span: Span = _span()


Condition = (
    AllOf | AnyOf | Negation | Parenthesised | ItemIn | DualUse | InSet | IsMissing | Mentions
    | Listed | Related | FirstSeen | InRange | Comparison | ConclusionRef | Reaches | CodeUnder
)
Expression = Field | Quantity | DateLiteral | TextLiteral | Arithmetic | CountOf | SumOf


# ---------------------------------------------------------------- examples


@dataclass(frozen=True, slots=True)
class AsOf:
    date: DateValue
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ItemList:
    """The items a licence covers: item or group names, control codes, customs codes."""

    entries: tuple[Ref | Code, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DeclarationField:
    """One fact of an example declaration, licence or company, by its schema field name."""

    name: str
    value: Text | DateValue | Code | Quantity | Ref | ItemList
    country: Ref | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExampleDeclaration:
    id: Ref | None
    fields: tuple[DeclarationField, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExampleLicence:
    number: Ref
    fields: tuple[DeclarationField | ValidFrom | ValidUntil, ...]  # its validity as written
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Company:
    name: Text
    fields: tuple[DeclarationField, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Expect:
    """`expect [no] OUTCOME [by RULE] [for ID] [missing FIELD] [citing ACT] [resting on B]`."""

    outcome: str
    present: bool = True
    rule: Ref | None = None
    declaration: Ref | None = None
    missing: Ref | None = None
    citing: Citation | None = None
    span: Span = _span()
    basis: Ref | None = None  # settled, lapsed-by-text or unverified


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class RulebookDecl:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Use:
    path: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Instrument:
    name: Ref
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Item:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Group:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CountryGroup:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Terms:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class PriceRange:
    low: Decimal
    low_unit: str
    high: Decimal
    high_unit: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ValueRange:
    """`value range NAME "title"`: typical unit values of goods under some customs codes."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class PartyList:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Party:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Rule:
    name: Ref
    title: Text | None
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ParameterValue:
    """`at least 0.1 % [from DATE] [until DATE] [per ACT]`: one value, by its comparator op."""

    op: str
    value: Decimal
    unit: str | None
    valid_from: ValidFrom | None = None
    valid_until: ValidUntil | None = None
    citation: Citation | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Parameter:
    """`parameter NAME "title"`: a named threshold, with a value per period."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FactType:
    """`type KIND`: number (in `unit`), percentage, country, text, yes/no, date, one of."""

    kind: str
    unit: str | None = None
    choices: tuple[Text, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FactAlias:
    """`alias NAME, …`: other column names a declarations file may give a declared fact."""

    names: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ReadFrom:
    """`read from "…"`: where a declared fact's value comes from."""

    text: Text
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Fact:
    """`fact NAME "title"`: a column of declarations.csv that the rules read, with its type."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Conclusion:
    """`conclusion NAME "title"`: a condition defined once, cited, tested with `NAME holds`."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Exception_:
    name: Ref
    title: Text | None
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Target:
    """What an amendment acts on: a rule, an instrument (or one provision), or party listings."""

    kind: str  # "ref" | "listings" | "listing"
    name: Ref
    provision: ProvisionRef | None = None
    list: Ref | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Amendment:
    """`suspend …`, `extend suspension of …`, `repeal …`: first-class, citing its own instrument."""

    action: str  # "suspend" | "extend" | "repeal" | "lift"
    targets: tuple[Target, ...]
    attrs: tuple[object, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Example:
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = _span()


Declaration = (
    RulebookDecl | Use | Instrument | Item | Group | CountryGroup | Terms | ValueRange
    | PartyList | Party | Rule | Conclusion | Parameter | Fact | Exception_ | Amendment | Example
)


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    trailing: bool = False  # True when code precedes it on its line
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One parsed file: its declarations and its comments (kept for the formatter)."""

    path: str
    declarations: tuple[Declaration, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
    # declarations the parser could not read, by the name their first line gives them (kind,
    # name, span of the name): a reference to one is not reported again (dsl.check)
    broken: tuple[tuple[str, str, Span], ...] = field(default=(), compare=False)
    # syntax errors found past the run's limit of described errors (dsl.diagnostics.MAX_ERRORS)
    unreported: int = field(default=0, compare=False)


def attrs_of(decl: object, kind: type[T]) -> list[T]:
    """The attributes of one kind on a declaration, in source order."""
    return [a for a in getattr(decl, "attrs", ()) if isinstance(a, kind)]


def first_attr(decl: object, kind: type[T]) -> T | None:
    """The first attribute of one kind on a declaration, or None."""
    for a in getattr(decl, "attrs", ()):
        if isinstance(a, kind):
            return a
    return None
