"""Export the compiled checks for other tools.

`sql(dialect)`: standalone DDL for the documented tables, the support relations and the checks,
printed by sqlglot for SQLite, DuckDB or PostgreSQL. `rules_json()`: the checked rulebook as JSON,
described by the JSON Schema in `kb/data/rules.schema.json`, for tools in other languages.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from importlib import resources
from importlib.metadata import version as package_version
from typing import Any

from sqlglot import exp

from dsl import ast
from dsl.check import CheckedRulebook
from dsl.compile import CompiledRulebook
from dsl.periods import rule_periods
from kb.checks import support_statements
from kb.tables import TABLES, TableSpec

_SQL_TYPES = {str: "TEXT", int: "BIGINT", float: "DOUBLE"}


def create_table(spec: TableSpec) -> exp.Create:
    columns = [
        exp.ColumnDef(this=exp.to_identifier(c.name, quoted=True),
                      kind=exp.DataType.build(_SQL_TYPES[c.type]),
                      constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())]
                      if c.not_null else [])
        for c in spec.columns
    ]
    pk = [spec.pk] if isinstance(spec.pk, str) else list(spec.pk)
    columns.append(exp.PrimaryKey(expressions=[exp.to_identifier(p, quoted=True) for p in pk]))  # type: ignore[arg-type]
    return exp.Create(this=exp.Schema(this=exp.to_table(spec.name), expressions=columns),
                      kind="TABLE")


def sql(compiled: CompiledRulebook, dialect: str) -> str:
    """A script that creates every table and view the checks need, then the checks."""
    parts = [f"-- excon checks, rulebook version {compiled.version}, dialect {dialect}",
             "-- 1. documented tables (load the knowledge base's rows into them)"]
    parts += [create_table(t).sql(dialect=dialect, pretty=True) + ";" for t in TABLES]
    parts.append("-- 2. support tables and views")
    parts += [s + ";" for s in support_statements(dialect)]
    parts.append("-- 3. one view per rule, and their union")
    parts += [s + ";" for s in compiled.statements(dialect)]
    return "\n\n".join(parts) + "\n"


def _plain(value: Any) -> Any:
    """AST nodes as JSON: {"node": "ClassName", field: …}, spans left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"node": type(value).__name__.rstrip("_")}
        for f in dataclasses.fields(value):
            if f.name == "span":
                continue
            out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def rules_json(rb: CheckedRulebook, compiled: CompiledRulebook) -> dict[str, Any]:
    periods = rule_periods(rb)
    views = {r.name: r.view for r in compiled.rules}

    def rule(kind: str, decl: ast.Rule | ast.Exception_) -> dict[str, Any]:
        name = decl.name.name
        return {
            "name": name, "kind": kind, "view": views.get(name),
            "title": decl.title.value if decl.title else None,
            "in_force": [[iv.start.isoformat() if iv.start else None,
                          iv.end.isoformat() if iv.end else None]
                         for iv in periods[name].intervals],
            "source": {"file": decl.span.file, "line": decl.span.line},
            "attributes": _plain(decl.attrs),
        }

    return {
        "format": "excon-rules/1",
        "excon_version": package_version("excon"),
        "rulebook_version": rb.version,
        "rulebooks": [_plain(r) for r in rb.rulebooks.values()],
        "instruments": [_plain(i) for i in rb.instruments.values()],
        "items": [_plain(i) for i in rb.items.values()],
        "item_groups": {g: sorted(items) for g, items in sorted(rb.group_items.items())},
        "country_groups": {g: sorted(c) for g, c in sorted(rb.country_members.items())},
        "lists": [_plain(x) for x in rb.lists.values()],
        "parties": [_plain(p) for p in rb.parties.values()],
        "rules": [rule("rule", r) for r in rb.rules.values()] +
                 [rule("exception", e) for e in rb.exceptions.values()],
        "amendments": [_plain(a) for a in rb.amendments],
        "examples": [_plain(e) for e in rb.examples],
    }


def rules_schema_text() -> str:
    """The published JSON Schema of rules.json (kb/data/rules.schema.json)."""
    return resources.files("kb").joinpath("data/rules.schema.json").read_text(encoding="utf-8")


def rules_json_text(rb: CheckedRulebook, compiled: CompiledRulebook) -> str:
    return json.dumps(rules_json(rb, compiled), ensure_ascii=False, indent=2) + "\n"
