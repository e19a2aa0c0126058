"""The excon rules language: parse, check and format rulebooks.

    >>> from dsl import load
    >>> result = load(["rulebooks/cn-strategic-minerals"], schema)
    >>> result.ok, result.rulebook.rules.keys()

`dsl` knows nothing about the knowledge base: the schema of the facts rules talk about is
passed in (`dsl.schema.Schema`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsl.check import check
    from dsl.diagnostics import CODES, Diagnostic, render
    from dsl.format import format_file
    from dsl.load import LoadResult, load, parse_paths
    from dsl.model import Law, law
    from dsl.parse import parse_bytes, parse_text
    from dsl.rulebook import CheckedRulebook
    from dsl.schema import FieldSpec, Schema

# Each name is imported from its module on first use (PEP 562): a program that only reads
# what a rulebook was compiled into (a screener started from excon's cache) loads neither the
# parser (Lark and its grammar) nor the checker nor the syntax tree's classes (a third of a
# second of such a start).
_HOMES = {"check": "dsl.check", "CODES": "dsl.diagnostics", "Diagnostic": "dsl.diagnostics",
          "render": "dsl.diagnostics", "format_file": "dsl.format", "LoadResult": "dsl.load",
          "load": "dsl.load", "parse_paths": "dsl.load", "Law": "dsl.model", "law": "dsl.model",
          "parse_bytes": "dsl.parse", "parse_text": "dsl.parse",
          "CheckedRulebook": "dsl.rulebook", "FieldSpec": "dsl.schema", "Schema": "dsl.schema"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'dsl' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """`dsl.load` and `dsl.check` are the functions, as they were when this package imported
    them eagerly: importing the module `dsl.load` or the package `dsl.check` (which sets the
    parent's attribute of that name to the module) leaves them so."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("load", "check") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def format_text(text: str, file: str = "<text>") -> tuple[str | None, list[Diagnostic]]:
    """The canonical layout of `text`, or None and the syntax errors when it does not parse."""
    from dsl.format import format_file
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
