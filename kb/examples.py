"""Run the examples written next to the rules, through the compiled SQL checks.

Each example's declarations (with defaults for facts it does not state), licences and companies
are screened as of the example's date, and every `expect` line is compared with the findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from dsl import ast
from dsl.interpret import Interpreter
from dsl.schema import UNIT_FACTORS
from kb.load import CONTRACTS, with_parameters
from kb.schema import declaration_schema
from kb.screen import Finding, Screener

DEFAULT_EXPORTER = "Example Exporter Co., Ltd."
DEFAULT_CONSIGNEE = "Example Consignee"


@dataclass
class ExampleResult:
    example: ast.Example
    findings: list[Finding]
    failures: list[tuple[ast.Expect, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def location(self) -> str:
        return f"{self.example.span.file}:{self.example.span.line}"


def _value(v: object) -> Any:
    if isinstance(v, ast.Text):
        return v.value
    if isinstance(v, ast.Ref):
        return v.name
    if isinstance(v, ast.DateValue | ast.Code):
        return v.text
    if isinstance(v, ast.Quantity):
        return float(v.value * Decimal(str(UNIT_FACTORS.get(v.unit or "", 1.0))))
    if isinstance(v, ast.ItemList):
        return ";".join(e.name if isinstance(e, ast.Ref) else e.digits for e in v.entries)
    return v


def declaration_rows(ex: ast.Example) -> list[dict[str, Any]]:
    rows = []
    for n, d in enumerate(ast.attrs_of(ex, ast.ExampleDeclaration), 1):
        row: dict[str, Any] = {"id": d.id.name if d.id else f"d{n}",
                               "exporter": DEFAULT_EXPORTER, "consignee": DEFAULT_CONSIGNEE,
                               "quantity_kg": 1, "value_usd": 0,
                               "description": "(not stated in the example)"}
        for f in d.fields:
            row[f.name] = _value(f.value)
            if f.country is not None:
                row[f"{f.name}_country"] = f.country.name
        row.setdefault("consignee_country", row.get("destination_country"))
        rows.append(with_parameters(row))
    return rows


def licence_rows(ex: ast.Example) -> list[dict[str, Any]]:
    rows = []
    for lic in ast.attrs_of(ex, ast.ExampleLicence):
        row: dict[str, Any] = {"licence_no": lic.number.name, "kind": "individual",
                               "holder": DEFAULT_EXPORTER, "valid_from": "1900-01-01",
                               "valid_to": "9999-12-31"}
        for f in lic.fields:
            if isinstance(f, ast.ValidFrom):
                row["valid_from"] = f.date.text
            elif isinstance(f, ast.ValidUntil):
                row["valid_to"] = f.date.text
            elif isinstance(f, ast.DeclarationField):
                row[f.name] = _value(f.value)
        rows.append(row)
    return rows


def company_rows(ex: ast.Example) -> list[dict[str, Any]]:
    return [{"name": c.name.value, **{f.name: _value(f.value) for f in c.fields}}
            for c in ast.attrs_of(ex, ast.Company)]


def _matches(f: Finding, x: ast.Expect) -> bool:
    if x.outcome != "findings" and f.outcome != x.outcome:
        return False
    if x.rule is not None and f.rule != x.rule.name:
        return False
    if x.declaration is not None and f.declaration_id != x.declaration.name:
        return False
    if x.citing is not None and (f.instrument, f.provision) != (
            x.citing.instrument.name, str(x.citing.provision) if x.citing.provision else None):
        return False
    if x.missing is None:
        return True
    spec = declaration_schema().field(x.missing.name)
    return (spec.name if spec else x.missing.name) in f.explanation


def describe(x: ast.Expect) -> str:
    from dsl.format import attribute

    return attribute(x)[0]


def run_example(screener: Screener, ex: ast.Example) -> ExampleResult:
    as_of = ast.first_attr(ex, ast.AsOf)
    findings = screener.screen(declaration_rows(ex), licence_rows(ex), company_rows(ex),
                               as_of.date.text if as_of else None)
    result = ExampleResult(ex, findings)
    oracle = _interpreter(screener).judge(
        [typed_row("declarations", r) for r in declaration_rows(ex)],
        [typed_row("licences", r) for r in licence_rows(ex)], as_of.date.text if as_of else None,
        [typed_row("trade_parties", r) for r in company_rows(ex)])
    sql = sorted((f.declaration_id, f.rule, f.outcome, f.instrument or "", f.provision or "")
                 for f in findings)
    ref = sorted((j.declaration_id, j.rule, j.outcome, j.instrument or "", j.provision or "")
                 for j in oracle)
    if sql != ref:
        result.failures.append((ast.Expect("findings", True, span=ex.span),
                                f"the compiled SQL found {sql}, the reference interpreter {ref}"))
    for x in ast.attrs_of(ex, ast.Expect):
        hits = [f for f in findings if _matches(f, x)]
        if x.present and not hits:
            got = "; ".join(f"{f.outcome} by {f.rule} for {f.declaration_id}" for f in findings)
            result.failures.append((x, f"expected {describe(x)[7:]}, got "
                                       f"{got or 'no findings'}"))
        elif not x.present and hits:
            result.failures.append((x, f"expected {describe(x)[7:]}, got "
                                       f"{hits[0].outcome} by {hits[0].rule}: "
                                       f"{hits[0].explanation}"))
    return result


_INTERPRETERS: dict[int, Interpreter] = {}


def _interpreter(screener: Screener) -> Interpreter:
    if id(screener) not in _INTERPRETERS:
        _INTERPRETERS[id(screener)] = Interpreter(screener.rulebook, declaration_schema())
    return _INTERPRETERS[id(screener)]


def typed_row(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as the loader stores it, for the interpreter."""
    contract = CONTRACTS[table]
    row = with_parameters(row) if table == "declarations" else row
    out = {name: check("" if row.get(name) is None else str(row[name]))
           for name, check in contract.fields}
    for name, source, derive in contract.derived:
        out[name] = derive(out[source]) if out[source] is not None else None
    return out


def run_examples(rulebooks: Sequence[Path]) -> Iterator[ExampleResult]:
    screener = Screener(rulebooks)
    for ex in screener.rulebook.examples:
        yield run_example(screener, ex)
