"""excon's cache on disk: a rulebook file's parsed tree and a rulebook's check views are
worked out once, never read stale, and a broken or missing cache changes nothing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

import dsl
from kb.screen import Screener
from kb.store.schema import declaration_schema
from tests.conftest import DATA
from tests.test_compile import LICENCE, decl


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXCON_CACHE_DIR", str(tmp_path / "cache"))
    # this process's own reuse of recent loads would hide the cache
    monkeypatch.setattr(sys.modules["dsl.load"], "_RECENT", type(sys.modules["dsl.load"]._RECENT)())
    return tmp_path / "cache"


def rulebook(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(DATA / "semantics", folder)
    return folder


def load(folder: Path) -> Any:
    sys.modules["dsl.load"]._RECENT.clear()
    return dsl.load([folder], declaration_schema())


def test_a_file_parsed_once_is_read_from_the_cache_until_it_changes(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = rulebook(tmp_path)
    first = load(folder)
    assert first.ok and list((cache / "parsed").rglob("*.pickle"))

    def no_parsing(*args: Any) -> Any:
        raise AssertionError("parsed again")

    monkeypatch.setattr(sys.modules["dsl.cache"], "parse_bytes", no_parsing)
    again = load(folder)
    assert again.rulebook is not None and first.rulebook is not None
    assert again.rulebook.version == first.rulebook.version
    assert again.diagnostics == first.diagnostics
    # a changed file is parsed again: the cache gives no tree for its new bytes
    [file] = folder.glob("*.excon")
    file.write_text(file.read_text(encoding="utf-8").replace(
        '"Widgets"', '"Widgets, renamed"', 1), encoding="utf-8")
    with pytest.raises(AssertionError, match="parsed again"):
        load(folder)


def test_a_broken_cache_entry_is_ignored_and_no_cache_writes_nothing(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = rulebook(tmp_path)
    version = load(folder).rulebook.version
    for entry in (cache / "parsed").rglob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    assert load(folder).rulebook.version == version
    monkeypatch.setenv("EXCON_CACHE_DIR", "")
    shutil.rmtree(cache)
    assert load(folder).rulebook.version == version
    assert not cache.exists()


def test_check_views_from_the_cache_screen_as_freshly_compiled_ones(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second screener takes the views' SQL from the cache (printing the checks is most
    of a screener's start), and finds the same; a broken entry is made again."""
    folder = rulebook(tmp_path)
    rows = [decl("first", "2024-06-01", to="US"), decl("ok", "2024-03-01", quantity_kg=600,
                                                        licence_no="L-1"),
            decl("exhausted", "2024-03-02", quantity_kg=600, licence_no="L-1")]
    fresh = Screener([folder]).screen(rows, [LICENCE])
    assert fresh and len(list((cache / "sql").glob("*.json"))) == 1
    from dsl.compile import CompiledRulebook

    def no_printing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("printed again")

    monkeypatch.setattr(CompiledRulebook, "statements", no_printing)
    load(folder)
    assert Screener([folder]).screen(rows, [LICENCE]) == fresh
    monkeypatch.undo()
    monkeypatch.setenv("EXCON_CACHE_DIR", str(cache))
    [entry] = (cache / "sql").glob("*.json")
    entry.write_text("{", encoding="utf-8")
    load(folder)
    assert Screener([folder]).screen(rows, [LICENCE]) == fresh
