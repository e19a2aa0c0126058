"""The documentation stays in step with the grammar, the diagnostics and the command line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
import pytest

import dsl
from dsl.parse import grammar_text
from kb.cli import cli
from tests.conftest import ROOT

DOCS = ROOT / "docs"


def grammar_keywords() -> set[str]:
    grammar = re.sub(r"//[^\n]*", "", grammar_text())
    literals = re.findall(r'"([^"]+)"', grammar)
    # word alternatives of regex terminals such as LEVEL: /(high|medium|low)(?!…)/
    literals += [w for alts in re.findall(r"/\(([a-z|]+)\)", grammar) for w in alts.split("|")]
    return {w for lit in literals for w in lit.split() if re.match(r"[a-z]", w)}


def test_every_grammar_keyword_is_in_the_language_reference() -> None:
    reference = (DOCS / "language.md").read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", reference, flags=re.S)
    documented = set(re.findall(r"`([^`]+)`", prose))
    documented_words = {w for d in documented for w in d.split()}
    missing = sorted(k for k in grammar_keywords() if k not in documented_words)
    assert missing == [], f"keywords missing from docs/language.md: {missing}"


def test_every_code_block_in_the_language_reference_parses() -> None:
    reference = (DOCS / "language.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n(.*?)```", reference, flags=re.S)
    assert len(blocks) >= 15
    for block in blocks:
        _, diags = dsl.parse_text(block, "docs/language.md")
        assert diags == [], f"{block}\n{[d.message for d in diags]}"


def test_every_code_block_in_the_language_reference_is_in_canonical_layout() -> None:
    """What policy staff copy from the reference is what `excon fmt` writes."""
    from dsl.format import format_file

    reference = (DOCS / "language.md").read_text(encoding="utf-8")
    for block in re.findall(r"```\n(.*?)```", reference, flags=re.S):
        sf, _ = dsl.parse_text(block, "docs/language.md")
        assert format_file(sf) == block, block


def test_every_diagnostic_code_is_documented() -> None:
    page = (DOCS / "diagnostics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| ([EW]\d{3}) \|", page, flags=re.M))
    assert documented == set(dsl.CODES)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_and_a_docs_entry(name: str) -> None:
    command = cli.commands[name]
    assert isinstance(command, click.Command) and command.help
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"## excon {name}" in page


def test_dsl_never_imports_kb() -> None:
    for path in (ROOT / "dsl").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+kb\b", text, flags=re.M), path.name


def test_every_documented_code_is_produced_by_its_example(tmp_path: Path) -> None:
    """docs/diagnostics.md gives each code an example (added to its base rulebook, a file of
    its own, or a command); each produces exactly its code."""
    import json

    from click.testing import CliRunner

    page = (DOCS / "diagnostics.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(excon base|excon-file \S+(?: \S+)?|excon \S+|shell \S+|"
                        r"reserved \S+)\n(.*?)```", page, flags=re.S)
    [base] = [body for info, body in blocks if info == "excon base"]
    tabled = set(re.findall(r"^\| ([EW]\d{3}) \|", page, flags=re.M))
    examples = [info.split()[1] for info, _ in blocks if info != "excon base"]
    assert sorted(examples) == sorted(tabled), "one example per documented code"
    base_file = tmp_path / "base.excon"
    base_file.write_text(base, encoding="utf-8")
    assert CliRunner().invoke(cli, ["check", str(base_file)]).exit_code == 0
    for n, (info, body) in enumerate(blocks):
        if info == "excon base":
            continue
        kind, *rest = info.split()
        code, options = rest[0], rest[1:]
        if kind == "reserved":
            assert code in dsl.CODES and "none today" in page.split(f"| {code} |")[1][:200]
            continue
        folder = tmp_path / f"example-{n}"
        folder.mkdir()
        args = ["check", "--format", "json", str(folder / "r.excon")]
        if kind == "excon":
            (folder / "r.excon").write_text(base + "\n" + body, encoding="utf-8")
        elif kind == "excon-file":
            (folder / "r.excon").write_bytes(body.encode(options[0] if options else "utf-8"))
        else:  # a command, in an empty folder
            for line in body.strip().splitlines():
                if line.startswith("mkdir "):
                    (folder / line.split()[1]).mkdir()
                else:
                    args = [*line.split()[1:], "--format", "json"]
        cwd = Path.cwd()
        os.chdir(folder)
        try:
            result = CliRunner().invoke(cli, args)
        finally:
            os.chdir(cwd)
        codes = {d["code"] for d in json.loads(result.stdout)}
        assert codes == {code}, (code, codes, body)
