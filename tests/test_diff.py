"""`excon diff`: what a rulebook change does, between two git revisions, over demo data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.inputs.demo import generate, write
from kb.screen import Screener
from tests.conftest import DATA, RULEBOOKS

SUSPENSION = "  from 2025-11-09 until 2026-11-27\n"  # MOFCOM-2025-72 suspends No. 46 clause 2


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rulebook repository with two commits: the rulebooks, then the suspension of clause
    2 of MOFCOM-2024-46 extended by a year; and demo data beside it."""
    root = tmp_path_factory.mktemp("rulebook-repo")
    shutil.copytree(RULEBOOKS, root / "rulebooks")
    write(generate(1500, 11, [RULEBOOKS]), root / "demo")

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=Policy Officer", "-c",
                        "user.email=policy@example.org", *args], cwd=root, check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", "rulebooks")
    git("commit", "-q", "-m", "rulebooks as published")
    rules = root / "rulebooks" / "cn-strategic-minerals" / "rules.excon"
    text = rules.read_text(encoding="utf-8")
    assert text.count(SUSPENSION) == 1
    rules.write_text(text.replace(SUSPENSION, "  from 2025-11-09 until 2027-11-10\n"),
                     encoding="utf-8")
    git("commit", "-q", "-am", "the suspension extended")
    return root


def _diff(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    demo = repo / "demo"
    return subprocess.run(
        [sys.executable, "-m", "kb.cli", "diff", "git:HEAD~1", "git:HEAD", "--declarations",
         str(demo / "declarations.csv"), "--licences", str(demo / "licences.csv"),
         "--parties", str(demo / "parties.csv"), "--as-of", "2026-12-15", *args],
        cwd=repo, capture_output=True, text=True)


def test_diff_of_two_revisions_names_the_law_and_the_findings_that_changed(repo: Path) -> None:
    run = _diff(repo, "--format", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    law = [c["text"] for c in report["law"]]
    assert "suspension of MOFCOM-2024-46 clause 2 now ends 2027-11-10 instead of 2026-11-27" \
        in law
    assert any(t.startswith("rule us-critical-minerals-ban is now") and
               "suspended 2025-11-09 – 2027-11-10" in t for t in law)
    # the findings that changed are exactly those the two versions give, screened apart
    demo = repo / "demo"
    screened = []
    for rulebooks in (repo / "rulebooks", RULEBOOKS):  # the newer revision, the older one
        findings, _ = Screener([rulebooks]).screen_files(
            demo / "declarations.csv", demo / "licences.csv", demo / "parties.csv",
            "2026-12-15")
        screened.append({(f.declaration_id, f.rule) for f in findings})
    new, old = screened
    gone = {(c["declaration_id"], c["rule"]) for c in report["findings"]
            if c["kind"] == "disappeared"}
    assert gone == old - new and gone
    assert {c["kind"] for c in report["findings"]} == {"disappeared"}
    assert {r for _, r in gone} == {"us-critical-minerals-ban"}
    counts = report["counts"]
    assert counts["by_rule"]["us-critical-minerals-ban"]["disappeared"] == len(gone)
    assert sum(k["disappeared"] for k in counts["by_destination"].values()) == len(gone)
    assert len(report["samples"]["disappeared"]) == min(5, len(gone))
    # the text report says the same in words
    text = _diff(repo).stdout
    assert f"{len(gone)} disappeared" in text
    assert "suspension of MOFCOM-2024-46 clause 2 now ends 2027-11-10" in text


def test_diff_as_a_ci_gate_and_as_a_page_for_review(repo: Path, tmp_path: Path) -> None:
    assert _diff(repo, "--fail-on-change", "appeared").returncode == 0
    gate = _diff(repo, "--fail-on-change", "outcome,disappeared")
    assert gate.returncode == 1 and "disappeared (--fail-on-change)" in gate.stderr
    page = tmp_path / "diff.html"
    assert _diff(repo, "--format", "html", "-o", str(page)).returncode == 0
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "suspension of MOFCOM-2024-46 clause 2 now ends 2027-11-10" in html
    assert "us-critical-minerals-ban" in html
    bad = subprocess.run([sys.executable, "-m", "kb.cli", "diff", "git:no-such-rev",
                          "git:HEAD", "--declarations", "x.csv"], cwd=repo,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "git cannot list rulebooks at no-such-rev" in bad.stderr


def test_diff_against_the_rulebooks_and_inputs_a_knowledge_base_keeps(demo_kb: Path) -> None:
    """`db:KB` is the rulebooks the knowledge base was built from, `--db KB` its inputs: the
    same rulebooks give no change, over every declaration it holds."""
    run = subprocess.run([sys.executable, "-m", "kb.cli", "diff", f"db:{demo_kb}",
                          str(RULEBOOKS), "--db", str(demo_kb), "--format", "json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["old_version"] == report["new_version"]
    assert report["law"] == [] and report["findings"] == []
    assert report["declarations_screened"] == 3000


def test_a_new_group_is_a_change_of_its_own_and_future_rows_are_warned_of(
        tmp_path: Path) -> None:
    """A new item group and a new country group are listed as such, not only through their
    members; declarations dated after today are warned of, as `excon screen` warns."""
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
        shutil.copy(DATA / "tour.excon", folder)
        shutil.copy(DATA / "tour-countries.excon", folder)
    with (new / "tour.excon").open("a", encoding="utf-8") as f:
        f.write('\ngroup germanium "Germanium items"\n  members gallium\n\n'
                'countries eu "EU"\n  members DE, FR\n')
    rows = (DATA / "inputs" / "declarations.csv").read_text(encoding="utf-8").splitlines()
    future = rows[1].split(",")
    future[0], future[1] = "F1", "2099-01-01"
    declarations = tmp_path / "d.csv"
    declarations.write_text("\n".join([rows[0], rows[1], ",".join(future)]) + "\n",
                            encoding="utf-8")
    result = CliRunner().invoke(cli, ["diff", str(old), str(new), "--declarations",
                                      str(declarations)])
    assert result.exit_code == 0, result.output
    assert "item group germanium added" in result.output
    assert "country group eu added" in result.output
    assert "1 declarations rows are dated after today" in result.output
