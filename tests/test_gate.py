"""`excon check` is the single gate: whatever it accepts, every other command accepts. A
random mutation of a rulebook that checks clean (a line repeated, dropped or moved, a date
or a number changed) never makes `test`, `screen`, `build`, `export` (JSON and SQL) or `diff`
end in a traceback: each either works or says what is wrong (a party listed twice by one
announcement once passed `check` and then crashed all of them on a UNIQUE constraint).

`make test` runs a fixed, bounded set of mutations; `make fuzz` runs many more
(EXCON_FUZZ_EXAMPLES, default 300) with fresh seeds.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dsl
from kb.cli import cli
from kb.store.schema import declaration_schema
from tests.conftest import DATA

TOUR = (DATA / "tour.excon").read_text(encoding="utf-8")
INPUTS = DATA / "inputs"
FUZZ = int(os.environ.get("EXCON_FUZZ_EXAMPLES", "0"))
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?![\w-])")


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The tour rulebook (every construct) with one to three line-level edits."""
    lines = TOUR.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["repeat", "drop", "move", "date", "number"]))
        if op == "repeat":
            lines.insert(i, lines[i])
        elif op == "drop":
            del lines[i]
        elif op == "move":
            j = draw(st.integers(0, len(lines) - 1))
            lines.insert(j, lines.pop(i))
        elif op == "date" and _DATE.search(lines[i]):
            day = draw(st.sampled_from(["2016-01-01", "2024-12-02", "2025-11-08", "2026-11-28",
                                        "2099-12-31"]))
            lines[i] = _DATE.sub(day, lines[i], count=1)
        elif op == "number" and _NUMBER.search(lines[i]):
            value = draw(st.sampled_from(["0", "1", "100", "99.99", "1000000"]))
            lines[i] = _NUMBER.sub(value, lines[i], count=1)
    return "\n".join(lines)


def _folder(text: str, root: Path) -> Path:
    folder = root / "rulebooks"
    folder.mkdir()
    (folder / "tour.excon").write_text(text, encoding="utf-8")
    shutil.copy(DATA / "tour-countries.excon", folder)
    return folder


def _no_traceback(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, result.output, result.exception)
    assert "Traceback" not in result.output, (args, result.output)


def every_command_accepts(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = _folder(text, root)
        loaded = dsl.load([folder], declaration_schema())
        assume(loaded.ok)  # only what `check` accepts must be accepted by the rest
        original = root / "original"
        original.mkdir()
        _folder(TOUR, original)
        files = ["--declarations", str(INPUTS / "declarations.csv"),
                 "--licences", str(INPUTS / "licences.csv"),
                 "--parties", str(INPUTS / "parties.csv")]
        for args in (
                ["check", str(folder)],
                ["test", str(folder)],
                ["screen", str(INPUTS / "declarations.csv"), *files[2:], "--rulebooks",
                 str(folder), "--format", "json"],
                ["build", str(folder), "--db", str(root / "kb.db"), *files],
                ["export", "--format", "json", "--out", str(root / "json"),
                 "--rulebooks", str(folder)],
                ["export", "--dialect", "sqlite", "--out", str(root / "sqlite"),
                 "--rulebooks", str(folder)],
                ["diff", str(original / "rulebooks"), str(folder), *files]):
            _no_traceback(args)


@pytest.mark.slow
@settings(max_examples=FUZZ or 12, derandomize=not FUZZ, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutated())
def test_what_check_accepts_every_command_accepts(text: str) -> None:
    every_command_accepts(text)


def test_a_party_listed_twice_by_one_announcement_is_stopped_by_check() -> None:
    """The mutation that found the gap: one listing line repeated."""
    line = "  listed on control-list per MOFCOM-2024-46 from 2025-01-02\n"
    assert line in TOUR
    with tempfile.TemporaryDirectory() as tmp:
        folder = _folder(TOUR.replace(line, line * 2), Path(tmp))
        loaded = dsl.load([folder], declaration_schema())
        assert [d.code for d in loaded.errors] == ["E201"]
        assert loaded.errors[0].span.line == TOUR[:TOUR.index(line)].count("\n") + 2
