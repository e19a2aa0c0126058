"""Diagnostics: errors and warnings as values, with a span and words for policy staff.

Every code is documented in docs/diagnostics.md (tests/test_docs.py keeps the two in step).
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsl.ast import Span

# code -> one-line summary; the long explanation with an example lives in docs/diagnostics.md.
CODES: dict[str, str] = {
    "E001": "the file cannot be read as UTF-8 text",
    "E002": "the file or folder does not exist or cannot be read",
    "E003": "the text is nested too deeply",
    "E101": "unexpected word or symbol",
    "E102": "unexpected character",
    "E103": "the file ends in the middle of a declaration",
    "E201": "a name is declared twice",
    "E202": "a reference to something that is not declared",
    "E203": "a reference to the wrong kind of thing",
    "E204": "a provision that the instrument does not have",
    "E205": "a required detail is missing",
    "E206": "a detail is given more than once",
    "E207": "a module that cannot be found",
    "E208": "a group that contains itself",
    "E301": "not a real calendar date",
    "E302": "an interval that ends before it starts",
    "E303": "an amendment outside the validity of what it amends",
    "E304": "a date before the instrument it rests on was in force",
    "E305": "an extension of a suspension that does not exist or does not extend it",
    "E401": "values of different types compared",
    "E402": "a unit that does not fit the field",
    "E403": "a percentage outside 0–100",
    "E404": "an unknown field",
    "E405": "a malformed code (customs code, control code or country code)",
    "E406": "a number where a whole number is needed",
    "E407": "an explanation that names an unknown fact",
    "E408": "an instrument url that is not an absolute http or https URL",
    "E409": "a value a declared choice or yes/no fact cannot take",
    "E501": "two rules conflict and neither states precedence",
    "E502": "an exception that can never apply",
    "E503": "a rule that overrides itself or a rule that does not conflict with it",
    "E601": "an expectation names an unknown rule or declaration",
    "E602": "an example without a declaration or without an expectation",
    "E701": "a construct the SQL compiler does not support yet",
    "W001": "a folder without rulebook files",
    "W002": "a rulebook file that declares nothing",
    "W101": "a customs code whose HS subheading is not in HS 2022",
    "W301": "two suspensions of the same target overlap",
    "W302": "an amendment of a target that a lift or repeal has already ended",
    "W303": "a rule in force before any item it names is controlled",
    "W304": "an instrument named after `listings under X,` that has listings of its own",
    "W501": "a prohibition and a licence requirement on the same items, no relation stated",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a rulebook: where, what, and what would be right."""

    code: str
    message: str
    span: Span
    hint: str | None = None
    related: tuple[tuple[Span, str], ...] = field(default=())

    @property
    def severity(self) -> str:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "hint": self.hint,
        }


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A `did you mean …?` hint for a misspelled name, or None when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean '{close[0]}'?" if close else None


_MAX_SHOWN = 100  # characters of a source line shown around the caret
# Errors described in one run: past these, a broken file's further syntax errors are counted
# but not described (a file of garbage gives a screenful, not 27,000 errors, and is checked in
# time linear in its size), and `excon` prints "… and N more".
MAX_ERRORS = 100


def _excerpt(line: str, start: int, end: int) -> tuple[str, int, int]:
    """Cut a very long line around the span so a 10 MB line prints as one readable line."""
    if len(line) <= _MAX_SHOWN:
        return line, start, end
    left = max(0, start - _MAX_SHOWN // 2)
    right = min(len(line), left + _MAX_SHOWN)
    prefix = "…" if left else ""
    suffix = "…" if right < len(line) else ""
    shown = prefix + line[left:right] + suffix
    off = len(prefix) - left
    return shown, start + off, min(end + off, len(shown))


def _width(text: str) -> int:
    """Terminal columns: CJK and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@lru_cache(maxsize=16)
def _lines(text: str) -> list[str]:
    """A source's lines, split once however many diagnostics it has (not once per diagnostic:
    that made checking a large broken file quadratic)."""
    return text.split("\n")


def render(diagnostic: Diagnostic, sources: Mapping[str, str] | None = None) -> str:
    """`file:line:col: error[E202]: message`, the source line, a caret under the span, the hint."""
    d = diagnostic
    out = [f"{d.span}: {d.severity}[{d.code}]: {d.message}"]
    text = (sources or {}).get(d.span.file)
    if text is not None and d.span.line > 0:
        lines = _lines(text)
        if d.span.line <= len(lines):
            line = lines[d.span.line - 1].rstrip("\r").replace("\t", " ")
            start = max(0, d.span.column - 1)
            end = d.span.end_column - 1 if d.span.end_line == d.span.line else len(line)
            end = max(end, start + 1)
            shown, s, e = _excerpt(line, start, end)
            shown = "".join(c if c.isprintable() else "\ufffd" for c in shown)
            gutter = str(d.span.line)
            pad = " " * len(gutter)
            out.append(f" {gutter} | {shown}")
            out.append(f" {pad} | {' ' * _width(shown[:s])}{'^' * max(1, _width(shown[s:e]))}")
    if d.hint:
        out.append(f"   = {d.hint}")
    for span, note in d.related:
        out.append(f"   = {note} ({span})")
    return "\n".join(out)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.span.file, d.span.line, d.span.column, d.code)
