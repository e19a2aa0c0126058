"""Golden files: each tests/golden/NAME.excon must produce exactly the diagnostics in
NAME.expected, as `excon check` prints them. Regenerate after a deliberate change with
EXCON_UPDATE_GOLDEN=1 pytest tests/test_golden.py, and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import dsl
from dsl.schema import Schema
from tests.conftest import GOLDEN, ROOT

CASES = sorted(GOLDEN.glob("*.excon"))


def rendered(path: Path, schema: Schema) -> str:
    cwd = Path.cwd()
    os.chdir(ROOT)  # diagnostics show paths relative to the working directory
    try:
        result = dsl.load([path.relative_to(ROOT)], schema)
    finally:
        os.chdir(cwd)
    return "\n".join(dsl.render(d, result.sources) for d in result.diagnostics) + "\n"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_diagnostics_match_golden_file(case: Path, schema: Schema) -> None:
    expected_file = case.with_suffix(".expected")
    actual = rendered(case, schema)
    if os.environ.get("EXCON_UPDATE_GOLDEN"):
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"no golden file for {case.name}; run with EXCON_UPDATE_GOLDEN=1"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_every_golden_case_reports_an_error(schema: Schema) -> None:
    """A golden case that stopped finding its errors would otherwise pass silently."""
    for case in CASES:
        result = dsl.load([case], schema)
        assert result.errors, f"{case.name} produced no errors"


def test_golden_cases_cover_most_error_codes() -> None:
    codes = set()
    for expected in GOLDEN.glob("*.expected"):
        for line in expected.read_text(encoding="utf-8").splitlines():
            if "error[" in line or "warning[" in line:
                codes.add(line.split("[", 1)[1].split("]", 1)[0])
    for code in ("E101", "E102", "E103", "E201", "E202", "E203", "E204", "E206", "E301", "E302",
                 "E303", "E304", "E305", "E401", "E402", "E403", "E404", "E405", "E407", "E501",
                 "E502", "E601", "E602"):
        assert code in codes, f"no golden case shows {code}"
