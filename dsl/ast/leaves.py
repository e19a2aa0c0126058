"""The syntax tree's leaves: spans, names, texts, dates, codes, citations."""

from __future__ import annotations

from dataclasses import dataclass, field
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


def span_field() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- leaves


@dataclass(frozen=True, slots=True)
class Ref:
    """A name written in the rulebook: a declaration's own name or a reference to one."""

    name: str
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Text:
    """A quoted string, unescaped."""

    value: str
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class DateValue:
    """An ISO date as written (validated by the checker, not the parser)."""

    text: str
    span: Span = span_field()


@dataclass(frozen=True, slots=True)
class Code:
    """A customs code (digits, dots allowed) or a control code such as 1C902."""

    text: str
    span: Span = span_field()

    @property
    def digits(self) -> str:
        return self.text.replace(".", "")


@dataclass(frozen=True, slots=True)
class ProvisionRef:
    kind: str
    label: str
    span: Span = span_field()

    def __str__(self) -> str:
        return f"{self.kind} {self.label}"


@dataclass(frozen=True, slots=True)
class Citation:
    """`per INSTRUMENT [article N]`: the legal basis of an entry."""

    instrument: Ref
    provision: ProvisionRef | None = None
    span: Span = span_field()
