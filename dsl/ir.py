"""The rules language's syntax tree as JSON, both ways, and the JSON Schema of every node kind.

`plain(node)` writes a node as `{"node": "Kind", field: …}` (spans left out, decimals as
strings); `node_from_plain(obj, span)` reads it back. `node_schemas()` describes every kind
of node from the dataclasses of `dsl.ast` themselves, so the schema cannot fall behind the
language. `source_files(entries)` rebuilds the parsed files from a list of
`{"file", "line", "declaration"}` entries (the `declarations` section of rules.json), which the
checker then checks as it checks parsed text: the JSON alone is enough to screen.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from typing import Any

from dsl import ast

NUMBER_TEXT = r"^-?[0-9]+(\.[0-9]+)?$"


def plain(value: Any) -> Any:
    """Syntax as JSON: {"node": "ClassName", field: …}, spans left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"node": type(value).__name__.rstrip("_")}
        for f in dataclasses.fields(value):
            if f.name == "span":
                continue
            out[f.name] = plain(getattr(value, f.name))
        return out
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


@cache
def node_classes() -> dict[str, type]:
    """Every kind of node, by the name it has in JSON."""
    return {cls.__name__.rstrip("_"): cls for cls in vars(ast).values()
            if isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and cls.__module__.startswith(f"{ast.__name__}.")
            and cls not in (ast.Span, ast.SourceFile, ast.Comment)}


@cache
def _hints(cls: type) -> dict[str, Any]:
    # the names of the node's own module (Decimal, …) and of every node kind
    return typing.get_type_hints(cls, {**vars(sys.modules[cls.__module__]), **vars(ast)})


def _schema_of(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return {"type": "null"}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is Decimal:
        return {"type": "string", "pattern": NUMBER_TEXT}
    if hint is object or hint is Any:
        return {"$ref": "#/$defs/node"}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return {"$ref": f"#/$defs/{hint.__name__.rstrip('_')}"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of(h) for h in typing.get_args(hint)]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin in (tuple, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return {"type": "array", "items": _schema_of(args[0]) if args else {}}
    raise TypeError(f"no JSON Schema for {hint!r}")


def node_schemas() -> dict[str, Any]:
    """A JSON Schema definition per kind of node, and `node`, any of them."""
    defs: dict[str, Any] = {}
    for name, cls in sorted(node_classes().items()):
        hints = _hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.name != "span"]
        defs[name] = {
            "type": "object",
            "description": _description(cls, name),
            "required": ["node", *(f.name for f in fields
                                   if f.default is dataclasses.MISSING
                                   and f.default_factory is dataclasses.MISSING)],
            "properties": {"node": {"const": name},
                           **{f.name: _schema_of(hints[f.name]) for f in fields}},
            "additionalProperties": False,
        }
    # any node: its `node` field says which kind, and the kind's definition applies, found
    # by halving the kinds (if/then/else): a validator tests about seven conditions a node, not
    # one per kind (python-jsonschema took 29 s over the CN rulebooks' rules.json with 110)
    kinds = sorted(node_classes())
    defs["node"] = {"type": "object", "required": ["node"],
                    "properties": {"node": {"enum": kinds}}, **_kind_of(kinds)}
    return defs


def _kind_of(kinds: list[str]) -> dict[str, Any]:
    """The schema that applies the definition of the node's kind, one of `kinds` (sorted)."""
    if len(kinds) == 1:
        return {"$ref": f"#/$defs/{kinds[0]}"}
    half = len(kinds) // 2
    return {"if": {"properties": {"node": {"enum": kinds[:half]}}},
            "then": _kind_of(kinds[:half]), "else": _kind_of(kinds[half:])}


def _description(cls: type, name: str) -> str:
    doc = (cls.__doc__ or "").strip()
    if not doc or doc.startswith(cls.__name__ + "("):  # the one dataclass writes
        return f"The `{name}` construct of the rules language (docs/language.md)."
    return " ".join(doc.split("\n\n")[0].split())


def node_from_plain(obj: Any, span: ast.Span) -> Any:
    """The node (or list of nodes) `obj` describes; every node gets `span`."""
    if isinstance(obj, list):
        return tuple(node_from_plain(v, span) for v in obj)
    if not isinstance(obj, Mapping) or "node" not in obj:
        return obj
    cls = node_classes().get(str(obj["node"]))
    if cls is None:
        raise ValueError(f"unknown kind of node {obj['node']!r}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "span":
            values["span"] = span
        elif f.name in obj:
            value = node_from_plain(obj[f.name], span)
            if isinstance(value, str) and _is_decimal(hints[f.name]):
                value = Decimal(value)
            values[f.name] = value
    return cls(**values)


def _is_decimal(hint: Any) -> bool:
    return hint is Decimal or Decimal in typing.get_args(hint)


def source_files(entries: Iterable[Mapping[str, Any]]) -> list[ast.SourceFile]:
    """Parsed files from `{"file", "line", "declaration"}` entries, in their order."""
    files: dict[str, list[Any]] = {}
    for e in entries:
        span = ast.Span(str(e["file"]), int(e["line"]), 1, int(e["line"]), 1)
        files.setdefault(span.file, []).append(node_from_plain(e["declaration"], span))
    return [ast.SourceFile(path, tuple(decls)) for path, decls in files.items()]
