"""An evaluator written from rules.json and its schema alone (tests/independent/evaluate.py,
which imports nothing of excon) judges generated declarations as `excon screen` does: the same
findings, outcomes, severities, acts cited, bases and caveats, and explanations that begin
with the sentence it writes. It reads what another tool would have: the document `excon export
--format json` writes and the inputs `excon prepare` writes."""

from __future__ import annotations

import ast
import csv
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.inputs import demo
from kb.screen import Screener
from tests.conftest import RULEBOOKS
from tests.independent import evaluate
from tests.independent.evaluate import NOT_JUDGED, Evaluator, read_inputs
from tests.test_differential import broad_batch, repository_codes

COLUMNS = ("declaration_id", "rule", "outcome", "severity", "instrument", "provision", "basis",
           "caveat")


def invoke(*args: str) -> None:
    result = CliRunner().invoke(cli, [*args, "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Evaluator:
    out = tmp_path_factory.mktemp("json")
    invoke("export", "--format", "json", "--out", str(out))
    return Evaluator(json.loads((out / "rules.json").read_text(encoding="utf-8")))


def agree(evaluator: Evaluator, files: dict[str, Path], folder: Path,
          as_of: str | None) -> list[dict[str, Any]]:
    """The evaluator's findings on `excon prepare`'s inputs equal `excon screen`'s for the
    rules it judges."""
    invoke("prepare", "--declarations", str(files["declarations"]), "--licences",
           str(files["licences"]), "--parties", str(files["parties"]), "--out", str(folder),
           *(("--as-of", as_of) if as_of else ()))
    found = evaluator.judge(read_inputs(folder))
    findings, _ = Screener([RULEBOOKS]).screen_files(files["declarations"], files["licences"],
                                                     files["parties"], as_of)
    screened = [f for f in findings if f.rule not in evaluator.skipped]
    assert [tuple(f[c] for c in COLUMNS) for f in found] == \
        [tuple(getattr(f, c) for c in COLUMNS) for f in screened]
    for mine, theirs in zip(found, screened, strict=True):
        assert theirs.explanation.startswith(mine["sentence"]), (mine, theirs.explanation)
    return found


def test_the_evaluator_reads_nothing_but_the_standard_library() -> None:
    tree = ast.parse(Path(evaluate.__file__).read_text(encoding="utf-8"))
    modules = {alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}, modules


def test_it_judges_every_rule_that_reads_one_declaration(evaluator: Evaluator) -> None:
    """What it leaves out reads other declarations or the party graph; everything else it
    judges (listed parties from the matches `excon prepare` found)."""
    assert set(evaluator.skipped.values()) <= set(NOT_JUDGED.values()) | {
        "reads unit values learnt from earlier declarations"}
    judged = [name for name, r in evaluator.rules.items()
              if r["kind"] == "rule" and name not in evaluator.skipped]
    assert len(judged) >= len(evaluator.rules) * 3 // 4, evaluator.skipped


@pytest.mark.parametrize("as_of", [None, "2025-11-09"])
def test_demo_declarations_judged_as_excon_judges_them(
        evaluator: Evaluator, tmp_path: Path, as_of: str | None) -> None:
    files = demo.write(demo.generate(6000, seed=5, rulebooks=[RULEBOOKS]), tmp_path / "in")
    found = agree(evaluator, files, tmp_path / "prepared", as_of)
    # (on 2025-11-09 the US ban, the presumption of denial, is suspended)
    assert {"unlicensed", "prohibited", "risk", "undetermined",
            *(["presumption-of-denial"] if as_of is None else [])} <= \
        {f["outcome"] for f in found}
    assert len({f["rule"] for f in found}) >= 10
    # listed parties, from the prepared matches and the listings' resolved periods
    assert {"control-list-consignee", "unreliable-entity-party"} <= {f["rule"] for f in found}


def test_generated_edge_cases_judged_as_excon_judges_them(
        evaluator: Evaluator, tmp_path: Path) -> None:
    """The differential tests' generated batch (every item, thresholds, declared facts of
    every type, texts in every case of letters, licences of every shape), as CSV files."""
    screener = Screener([RULEBOOKS])
    decls, licences, parties = broad_batch(random.Random(4), repository_codes(
        screener.rulebook), 1500, screener.rulebook.declared_fields())
    files = {}
    for name, rows in (("declarations", decls), ("licences", licences), ("parties", parties)):
        files[name] = tmp_path / f"{name}.csv"
        columns = list(dict.fromkeys([*(["name", "country"] if name == "parties" else []),
                                      *(k for r in rows for k in r)]))
        with files[name].open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
    found = agree(evaluator, files, tmp_path / "prepared", "2025-06-01")
    assert len({f["rule"] for f in found}) >= 15
