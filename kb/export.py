"""Export the compiled checks for other tools.

`sql(dialect)`: standalone DDL for the documented tables, the support relations and the checks,
printed by sqlglot for SQLite, DuckDB or PostgreSQL. `rules_json()`: the checked rulebook as JSON,
described by the JSON Schema in `kb/data/rules.schema.json`, for tools in other languages.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.metadata import version as package_version
from typing import Any

from sqlglot import exp

from dsl.check import CheckedRulebook
from dsl.compile import CompiledRulebook
from dsl.model import Rule, declarations_json, law
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


def rules_json(rb: CheckedRulebook, compiled: CompiledRulebook) -> dict[str, Any]:
    periods = rule_periods(rb)
    views = {r.name: r.view for r in compiled.rules}
    written = declarations_json(rb)
    attributes = written.pop("rule_attributes")

    def rule(r: Rule) -> dict[str, Any]:
        return {
            "name": r.name, "kind": r.kind, "view": views.get(r.name), "title": r.title,
            "in_force": [[iv.start.isoformat() if iv.start else None,
                          iv.end.isoformat() if iv.end else None]
                         for iv in periods[r.name].intervals],
            "source": {"file": r.where.file, "line": r.where.line},
            "attributes": attributes[r.name],
        }

    model = law(rb)
    return {
        "format": "excon-rules/1",
        "excon_version": package_version("excon"),
        "rulebook_version": model.version,
        "rulebooks": written["rulebooks"],
        "instruments": written["instruments"],
        "items": written["items"],
        "item_groups": {g: list(model.groups[g].members) for g in sorted(model.groups)},
        "country_groups": {g: list(model.country_groups[g].members)
                           for g in sorted(model.country_groups)},
        "lists": written["lists"],
        "parties": written["parties"],
        "rules": [rule(r) for r in sorted(model.rules.values(), key=lambda r: r.kind != "rule")],
        "amendments": written["amendments"],
        "examples": written["examples"],
    }


def rules_schema_text() -> str:
    """The published JSON Schema of rules.json (kb/data/rules.schema.json)."""
    return resources.files("kb").joinpath("data/rules.schema.json").read_text(encoding="utf-8")


def rules_json_text(rb: CheckedRulebook, compiled: CompiledRulebook) -> str:
    return json.dumps(rules_json(rb, compiled), ensure_ascii=False, indent=2) + "\n"
