"""The excon rules language: parse, check and format rulebooks.

    >>> from dsl import load
    >>> result = load(["rulebooks/cn-strategic-minerals"], schema)
    >>> result.ok, result.rulebook.rules.keys()

`dsl` knows nothing about the knowledge base: the schema of the facts rules talk about is
passed in (`dsl.schema.Schema`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dsl.check import check
from dsl.diagnostics import CODES, Diagnostic, render
from dsl.format import format_file
from dsl.load import LoadResult, load, parse_paths
from dsl.model import Law, law
from dsl.rulebook import CheckedRulebook
from dsl.schema import FieldSpec, Schema

if TYPE_CHECKING:
    from dsl.parse import parse_bytes, parse_text


# The parser (Lark, and the grammar it compiles) is imported on first use (PEP 562): a
# program that parses no rulebook text (a screener started from excon's cache) does not pay
# for it. (Only names whose module is not named like them: after `import dsl.load`, `dsl.load`
# would be that module.)
def __getattr__(name: str) -> Any:
    if name in ("parse_bytes", "parse_text"):
        from dsl import parse

        return getattr(parse, name)
    raise AttributeError(f"module 'dsl' has no attribute {name!r}")


def format_text(text: str, file: str = "<text>") -> tuple[str | None, list[Diagnostic]]:
    """The canonical layout of `text`, or None and the syntax errors when it does not parse."""
    from dsl.parse import parse_text

    sf, diags = parse_text(text, file)
    if diags:
        return None, diags
    return format_file(sf), []


__all__ = [
    "CODES",
    "CheckedRulebook",
    "Diagnostic",
    "FieldSpec",
    "Law",
    "LoadResult",
    "Schema",
    "check",
    "format_file",
    "format_text",
    "law",
    "load",
    "parse_bytes",
    "parse_paths",
    "parse_text",
    "render",
]
