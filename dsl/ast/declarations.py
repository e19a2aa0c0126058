"""The syntax tree of declarations, the parsed file, and the attribute lookups every stage uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from dsl.ast.attributes import (
    ValidFrom,
    ValidUntil,
)
from dsl.ast.leaves import (
    Citation,
    ProvisionRef,
    Ref,
    Span,
    T,
    Text,
    span_field,
)

# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class RulebookDecl:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Use:
    path: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Instrument:
    name: Ref
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Item:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Group:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class CountryGroup:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Terms:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class PriceRange:
    low: Decimal
    low_unit: str
    high: Decimal
    high_unit: str
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ValueRange:
    """`value range NAME "title"`: typical unit values of goods under some customs codes."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class PartyList:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Party:
    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Rule:
    name: Ref
    title: Text | None
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ParameterValue:
    """`at least 0.1 % [from DATE] [until DATE] [per ACT]`: one value, by its comparator op;
    or a plain value without one (`45 days`: op is ""), a length a window can use."""

    op: str
    value: Decimal
    unit: str | None
    valid_from: ValidFrom | None = None
    valid_until: ValidUntil | None = None
    citation: Citation | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Parameter:
    """`parameter NAME "title"`: a named threshold, with a value per period."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class FactType:
    """`type KIND`: number (in `unit`), percentage, country, text, yes/no, date, one of."""

    kind: str
    unit: str | None = None
    choices: tuple[Text, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class FactAlias:
    """`alias NAME, …`: other column names a declarations file may give a declared fact."""

    names: tuple[Ref, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ReadFrom:
    """`read from "…"`: where a declared fact's value comes from."""

    text: Text
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Fact:
    """`fact NAME "title"`: a column of declarations.csv that the rules read, with its type."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Conclusion:
    """`conclusion NAME "title"`: a condition defined once, cited, tested with `NAME holds`."""

    name: Ref
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Exception_:
    name: Ref
    title: Text | None
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Target:
    """What an amendment acts on: a rule, an instrument (or one provision), or party listings."""

    kind: str  # "ref" | "listings" | "listing"
    name: Ref
    provision: ProvisionRef | None = None
    list: Ref | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Amendment:
    """`suspend …`, `extend suspension of …`, `repeal …`: first-class, citing its own instrument."""

    action: str  # "suspend" | "extend" | "repeal" | "lift"
    targets: tuple[Target, ...]
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Example:
    title: Text
    attrs: tuple[object, ...] = ()
    span: Span = span_field()


Declaration = (
    RulebookDecl | Use | Instrument | Item | Group | CountryGroup | Terms | ValueRange
    | PartyList | Party | Rule | Conclusion | Parameter | Fact | Exception_ | Amendment | Example
)


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    trailing: bool = False  # True when code precedes it on its line
    span: Span = span_field()


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
