"""`dsl.load` reuses the last loads of the process while their files are unchanged, and reads
them again as soon as a file, a folder's listing or the working directory changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import dsl
from dsl.schema import Schema
from tests.conftest import DATA


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA / "semantics", tmp_path / "semantics"))


def test_an_unchanged_load_is_reused_and_a_changed_one_is_not(folder: Path,
                                                              schema: Schema) -> None:
    first = dsl.load([folder], schema)
    again = dsl.load([folder], schema)
    assert first.ok and again.rulebook is first.rulebook and again.compiled is first.compiled
    again.files.clear()  # each load's lists are its own
    assert dsl.load([folder], schema).files == first.files != []
    some = sorted(folder.glob("*.excon"))[0]
    some.write_text(some.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    edited = dsl.load([folder], schema)
    assert edited.rulebook is not first.rulebook
    (folder / "broken.excon").write_text("rule\n", encoding="utf-8")
    added = dsl.load([folder], schema)
    assert not added.ok and any("broken.excon" in d.span.file for d in added.errors)
    (folder / "broken.excon").unlink()
    assert dsl.load([folder], schema).ok


def test_another_working_directory_loads_again(folder: Path, schema: Schema,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = dsl.load([folder], schema)
    monkeypatch.chdir(folder)
    assert dsl.load([folder], schema).rulebook is not first.rulebook


def test_a_check_without_the_checks_reports_what_a_full_load_reports(
        folder: Path, schema: Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    """`excon check` compiles the conditions only (where a construct may fail to compile),
    not the checks around them: the same diagnostics as a full load, and no checks."""
    from dsl.compile import rules

    full = dsl.load([folder], schema)
    checked = dsl.load([folder], schema, checks=False)
    assert checked.compiled is None and full.compiled is not None and checked.ok
    assert [d.as_dict() for d in checked.diagnostics] == [d.as_dict() for d in full.diagnostics]
    # a construct the compiler cannot compile is reported by the check too (E701)
    monkeypatch.setattr(rules.Compiler, "comparison",
                        lambda self, c: self.fail(c, "a comparison"), raising=True)
    some = sorted(folder.glob("*.excon"))[0]  # an edit: the load is not reused
    some.write_text(some.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    failing = dsl.load([folder], schema, checks=False)
    assert any(d.code == "E701" and "a comparison" in d.message for d in failing.diagnostics)
