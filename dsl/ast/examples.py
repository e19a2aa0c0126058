"""The syntax tree of examples: the declarations, licences and companies written next to the
rules, and what is expected of them."""

from __future__ import annotations

from dataclasses import dataclass

from dsl.ast.attributes import (
    ValidFrom,
    ValidUntil,
)
from dsl.ast.conditions import (
    Quantity,
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

# ---------------------------------------------------------------- examples


@dataclass(frozen=True, slots=True)
class AsOf:
    date: DateValue
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ItemList:
    """The items a licence covers: item or group names, control codes, customs codes."""

    entries: tuple[Ref | Code, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class DeclarationField:
    """One fact of an example declaration, licence or company, by its schema field name."""

    name: str
    value: Text | DateValue | Code | Quantity | Ref | ItemList
    country: Ref | None = None
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ExampleDeclaration:
    id: Ref | None
    fields: tuple[DeclarationField, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class ExampleLicence:
    number: Ref
    fields: tuple[DeclarationField | ValidFrom | ValidUntil, ...]  # its validity as written
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Company:
    name: Text
    fields: tuple[DeclarationField, ...]
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Expect:
    """`expect [no] OUTCOME [by RULE] [for ID] [missing FIELD] [citing ACT] [resting on B]`."""

    outcome: str
    present: bool = True
    rule: Ref | None = None
    declaration: Ref | None = None
    missing: Ref | None = None
    citing: Citation | None = None
    span: Span = span_field()
    basis: Ref | None = None  # settled, lapsed-by-text or unverified
