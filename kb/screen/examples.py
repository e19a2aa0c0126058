"""Run the examples written next to the rules, through the compiled SQL checks.

Each example's declarations (with defaults for facts it does not state), licences and companies
are screened as of the example's date, and every `expect` line is compared with the findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsl.interpret import Interpreter
from dsl.model import Example, Expectation, law
from dsl.schema import FieldSpec
from kb.inputs.contracts import contract_with
from kb.inputs.fields import with_parameters
from kb.screen.screener import Finding, Screener
from kb.store.schema import declaration_schema

DEFAULT_EXPORTER = "Example Exporter Co., Ltd."
DEFAULT_CONSIGNEE = "Example Consignee"


@dataclass
class ExampleResult:
    example: Example
    findings: list[Finding]
    failures: list[tuple[Expectation, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def location(self) -> str:
        return f"{self.example.where.file}:{self.example.where.line}"


def declaration_rows(ex: Example) -> list[dict[str, Any]]:
    """The example's declarations as rows of a file: what it states, defaults for the rest."""
    rows = []
    for stated in ex.declarations:
        row: dict[str, Any] = {"exporter": DEFAULT_EXPORTER, "consignee": DEFAULT_CONSIGNEE,
                               "quantity_kg": 1, "value_usd": 0,
                               "description": "(not stated in the example)", **stated}
        row.setdefault("consignee_country", row.get("destination_country"))
        rows.append(with_parameters(row))
    return rows


def licence_rows(ex: Example) -> list[dict[str, Any]]:
    return [{"kind": "individual", "holder": DEFAULT_EXPORTER, "valid_from": "1900-01-01",
             "valid_to": "9999-12-31", **stated} for stated in ex.licences]


def company_rows(ex: Example) -> list[dict[str, Any]]:
    return [dict(c) for c in ex.companies]


def _matches(f: Finding, x: Expectation) -> bool:
    if x.outcome != "findings" and f.outcome != x.outcome:
        return False
    if x.rule is not None and f.rule != x.rule:
        return False
    if x.declaration is not None and f.declaration_id != x.declaration:
        return False
    if x.citing is not None and (f.instrument != x.citing[0] or (
            x.citing[1] is not None and f.provision != x.citing[1])):
        return False  # `citing ACT` matches any provision of it, `citing ACT PROVISION` one
    if x.basis is not None and f.basis != x.basis:
        return False
    if x.missing is None:
        return True
    spec = declaration_schema().field(x.missing)
    return (spec.name if spec else x.missing) in missing_fields(f.explanation)


MISSING_NOTE = "cannot be judged, missing:"


def missing_fields(explanation: str) -> set[str]:
    """The fields an `undetermined` finding's explanation names as missing (the compiled
    checks end it with "; cannot be judged, missing: a b"), matched whole: `end_use` is not
    `end_user`."""
    _, sep, names = explanation.rpartition(MISSING_NOTE)
    if sep:
        return set(names.split())
    # "; cannot be judged: exception eu001 may apply, missing: eu001_registered"
    _, sep, tail = explanation.rpartition("; cannot be judged: ")
    _, sep2, names = tail.rpartition(", missing: ")
    return set(names.split()) if sep and sep2 else set()


def run_example(screener: Screener, ex: Example) -> ExampleResult:
    findings = screener.screen(declaration_rows(ex), licence_rows(ex), company_rows(ex),
                               ex.as_of)
    result = ExampleResult(ex, findings)
    facts = screener.rulebook.declared_fields()
    oracle = _interpreter(screener).judge(
        [typed_row("declarations", r, facts) for r in declaration_rows(ex)],
        [typed_row("licences", r) for r in licence_rows(ex)], ex.as_of,
        [typed_row("trade_parties", r) for r in company_rows(ex)])
    sql = sorted((f.declaration_id, f.rule, f.outcome, f.instrument or "", f.provision or "",
                  f.basis, f.caveat or "") for f in findings)
    ref = sorted((j.declaration_id, j.rule, j.outcome, j.instrument or "", j.provision or "",
                  j.basis, j.caveat or "") for j in oracle)
    if sql != ref:
        result.failures.append((Expectation("expect findings", "findings", True, None, None,
                                             None, None, ex.where),
                                f"the compiled SQL found {sql}, the reference interpreter {ref}"))
    # an example speaks for its own rulebook: another rulebook loaded beside it may judge the
    # same declaration too (an export from Germany is the EU's and, above de minimis, the
    # EAR's), and its findings are not this example's unless the expectation names its rule
    own = screener.rulebook.rulebook_of(ex.where.file)
    rulebook_of = screener.rulebook.rule_rulebooks()
    for x in ex.expectations:
        mine = [f for f in findings
                if own is None or x.rule is not None or rulebook_of.get(f.rule) in (own, None)]
        hits = [f for f in mine if _matches(f, x)]
        if x.present and not hits:
            got = "; ".join(f"{f.outcome} by {f.rule} for {f.declaration_id}" for f in mine)
            result.failures.append((x, f"expected {x.text[7:]}, got {got or 'no findings'}"))
        elif not x.present and hits:
            result.failures.append((x, f"expected {x.text[7:]}, got "
                                       f"{hits[0].outcome} by {hits[0].rule}: "
                                       f"{hits[0].explanation}"))
    return result


_INTERPRETERS: dict[int, Interpreter] = {}


def _interpreter(screener: Screener) -> Interpreter:
    if id(screener) not in _INTERPRETERS:
        _INTERPRETERS[id(screener)] = Interpreter(screener.rulebook, declaration_schema())
    return _INTERPRETERS[id(screener)]


def typed_row(table: str, row: dict[str, Any], facts: tuple[FieldSpec, ...] = ()
              ) -> dict[str, Any]:
    """A row as the loader stores it, for the interpreter (`facts`: the declared facts of
    the rulebooks, columns of the declarations)."""
    contract = contract_with(table, facts)
    row = with_parameters(row) if table == "declarations" else row
    out = {name: check("" if row.get(name) is None else str(row[name]))
           for name, check in contract.fields}
    for name, source, derive in contract.derived:
        out[name] = derive(out[source]) if out[source] is not None else None
    return out


def run_examples(rulebooks: Sequence[Path]) -> Iterator[ExampleResult]:
    screener = Screener(rulebooks)
    for ex in law(screener.rulebook).examples:
        yield run_example(screener, ex)
