"""Bad input never crashes the front end: every failure is a diagnostic with a position."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from dsl.schema import Schema
from kb.store.schema import declaration_schema
from tests.conftest import DATA, RULEBOOKS

SAMPLE = (DATA / "tour.excon").read_text(encoding="utf-8")
RULES = (RULEBOOKS / "cn-strategic-minerals" / "rules.excon").read_text(encoding="utf-8")


def assert_positioned(diags: list[dsl.Diagnostic], text: str | None = None) -> None:
    for d in diags:
        assert d.span.line >= 1 and d.span.column >= 1, d
        assert d.code in dsl.CODES
        if text is not None:
            dsl.render(d, {d.span.file: text})  # rendering never fails either


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_diagnostics_not_exceptions(data: bytes) -> None:
    _, diags = dsl.parse_bytes(data, "fuzz.excon")
    assert_positioned(diags)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_diagnostics_not_exceptions(text: str) -> None:
    _, diags = dsl.parse_text(text, "fuzz.excon")
    assert_positioned(diags, text)


@st.composite
def mutated(draw: st.DrawFn, source: str) -> str:
    """A real rulebook with a few characters deleted, inserted or swapped."""
    text = source
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(text) - 1)))
        op = draw(st.sampled_from(["delete", "insert", "swap"]))
        if op == "delete":
            text = text[:i] + text[i + 1:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(list('"()#\n ,%a1-[]é镓\x00'))) + text[i:]
        elif i + 1 < len(text):
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(SAMPLE), mutated(RULES)))
def test_mutated_rulebooks_parse_and_check_without_crashing(text: str) -> None:
    sf, diags = dsl.parse_text(text, "mutant.excon")
    assert_positioned(diags, text)
    _, check_diags = dsl.check([sf], declaration_schema())
    for d in check_diags:
        assert d.code in dsl.CODES


def test_invalid_utf8_is_reported_at_its_line_and_column() -> None:
    _, diags = dsl.parse_bytes('rule r\n  note "镓 ok '.encode() + b'\xff"\n', "bad.excon")
    assert [(d.code, d.span.line, d.span.column) for d in diags] == [("E001", 2, 14)]


def test_empty_file_is_a_clean_empty_rulebook(schema: Schema) -> None:
    sf, diags = dsl.parse_text("", "empty.excon")
    assert sf.declarations == () and diags == []


def test_ten_megabyte_line_is_reported_with_a_short_excerpt() -> None:
    text = 'rule r "' + "x" * 10_000_000 + '" then oops\n'
    _, diags = dsl.parse_text(text, "long.excon")
    assert len(diags) == 1 and diags[0].span.column > 10_000_000
    shown = dsl.render(diags[0], {"long.excon": text})
    assert len(shown) < 1000 and "oops" in shown


def test_deeply_nested_parentheses_are_an_error_not_a_crash() -> None:
    depth = 5000
    text = "rule r\n  when " + "(" * depth + "item in g" + ")" * depth + "\n  then prohibited\n"
    _, diags = dsl.parse_text(text, "deep.excon")
    assert [d.code for d in diags] == ["E003"]
    assert diags[0].span.line == 2


def test_reasonable_nesting_is_fine() -> None:
    text = "rule r\n  when " + "(" * 20 + "item in g" + ")" * 20 + "\n  then prohibited\n"
    assert dsl.parse_text(text, "ok.excon")[1] == []


def test_cli_on_binary_garbage_exits_1_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.excon"
    bad.write_bytes(bytes(range(256)) * 4)
    proc = subprocess.run([sys.executable, "-m", "kb.cli", "check", str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "garbage.excon:2:118: error[E001]: byte 0x80 is not valid UTF-8" in proc.stderr
    assert "\x1b" not in proc.stderr  # control characters of the file are not echoed
