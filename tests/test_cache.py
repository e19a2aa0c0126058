"""excon's cache on disk: a rulebook file's parsed tree and a rulebook's check views are
worked out once, never read stale, and a broken or missing cache changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dsl
import dsl.load  # (the module: its `_RECENT` loads; `dsl.load` stays the function)
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

    monkeypatch.setattr(sys.modules["dsl.parse"], "parse_bytes", no_parsing)
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


def _kb(tmp_path: Path, folder: Path, rows: list[dict[str, Any]]) -> Path:
    """A knowledge base built from the rulebook folder, with `rows` as its declarations and
    LICENCE as its licence."""
    from kb.build import build
    from kb.inputs.contracts import CONTRACTS
    from kb.screen.screener import _csv_bytes

    files = {}
    for name, table in (("declarations", rows), ("licences", [LICENCE])):
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_bytes(_csv_bytes(CONTRACTS[name], table))
    db = tmp_path / "kb.db"
    build(db, [folder], files["declarations"], files["licences"])
    return db


def test_a_screener_over_a_knowledge_base_starts_from_the_cache(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second `Screener(db=…)` over a knowledge base neither parses, checks nor compiles
    its rulebooks, and judges as the first (the knowledge base's history included: the licence
    drawn down by its earlier use); the checked rulebook is made when asked for; a changed
    setting makes an entry of its own, and a broken entry is made again."""
    folder = rulebook(tmp_path)
    rules = folder / "rules.excon"
    rules.write_text(rules.read_text(encoding="utf-8").replace(
        "  when quantity < 1 kg\n", "  when quantity reaches sample-limit\n") + (
        '\nparameter sample-limit "Quantity under which a consignment is a sample"\n'
        '  less than 1 kg\n  source "Test data"\n'), encoding="utf-8")
    db = _kb(tmp_path, folder, [decl("ok", "2024-03-01", quantity_kg=600, licence_no="L-1")])
    rows = [decl("exhausted", "2024-03-02", quantity_kg=600, licence_no="L-1"),
            decl("sample", "2024-03-03", quantity_kg=0.5)]
    first = Screener(db=db)
    fresh = first.screen(rows)
    licence = "widget-licence"
    assert {f.declaration_id: f.outcome for f in fresh if f.rule == licence} == {
        "exhausted": "unlicensed"}
    assert len(list((cache / "screeners").glob("*.pickle"))) == 1

    def no_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("loaded again")

    with monkeypatch.context() as m:
        m.setattr(dsl, "load", no_loading)
        m.setattr(sys.modules["kb.screen.statements"], "install", no_loading)
        again = Screener(db=db)
        assert again.screen(rows) == fresh and again.version == first.version
    assert again.rulebook.version == first.version  # made now, from the kept rulebooks
    assert [r.view for r in again.compiled.rules] == [r.view for r in first.compiled.rules]
    # the sample limit raised: the sample needs a licence, under an entry of its own
    raised = Screener(db=db, parameters={"sample-limit": "less than 0.1 kg"})
    assert {f.declaration_id for f in raised.screen(rows) if f.rule == licence} == {
        "exhausted", "sample"}
    assert len(list((cache / "screeners").glob("*.pickle"))) == 2
    assert Screener(db=db).screen(rows) == fresh
    for entry in (cache / "screeners").glob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    assert Screener(db=db).screen(rows) == fresh


# the modules a screener started from the cache has no use for: the rules language's parser
# (Lark), its syntax tree's classes, checker and model, the rules compiler and sqlglot (half of
# a start's time)
_NOT_STARTED = ("import json, sys; from pathlib import Path; from kb.screen import Screener; "
                "found = Screener(db=Path(sys.argv[1])).screen(json.loads(sys.argv[2])); "
                "print(json.dumps([[f.as_dict() for f in found], sorted(m for m in sys.modules "
                "if m.split('.')[0] in ('lark', 'sqlglot') or m.startswith(('dsl.compile', "
                "'dsl.parse', 'dsl.ast', 'dsl.check', 'dsl.model', 'dsl.load')))]))")


def test_a_screener_started_from_the_cache_imports_no_parser_and_no_compiler(
        cache: Path, tmp_path: Path) -> None:
    """A new process's screener over a knowledge base that excon's cache has a start for
    screens against the knowledge base's history (its statements over the history kept in the
    cache too) without importing Lark, the syntax tree, the checker, the compiler or sqlglot,
    and judges as a screener made from the rulebooks."""
    folder = rulebook(tmp_path)
    db = _kb(tmp_path, folder, [decl("ok", "2024-03-01", quantity_kg=600, licence_no="L-1")])
    rows = [decl("exhausted", "2024-03-02", quantity_kg=600, licence_no="L-1")]
    fresh = [f.as_dict() for f in Screener([folder]).screen(
        [decl("ok", "2024-03-01", quantity_kg=600, licence_no="L-1"), *rows], [LICENCE])
        if f.declaration_id == "exhausted"]
    assert "unlicensed" in [f["outcome"] for f in fresh]  # (the licence drawn down)

    def run() -> tuple[list[dict[str, Any]], list[str]]:
        out = subprocess.run([sys.executable, "-c", _NOT_STARTED, str(db), json.dumps(rows)],
                             check=True, capture_output=True, text=True,
                             env={**os.environ, "EXCON_CACHE_DIR": str(cache)}).stdout
        found, imported = json.loads(out)
        return found, imported

    compiled = run()  # the first process compiles, and fills the cache
    assert compiled[0] == fresh and "sqlglot" in compiled[1]
    assert run() == (fresh, [])


def test_the_party_graph_and_the_matcher_are_read_back_from_the_cache(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process's first screening reads the party graph and the listed names' matcher
    back from the cache instead of keying every party's name again (seconds at 29,000 trade
    parties); other parties or other spellings make their own."""
    from dsl.graph import PartyFacts, PartyGraph
    from dsl.names import PartyMatcher
    from kb.screen import checks

    facts = (PartyFacts("Alpha Trading Ltd", "1 Harbour Road, Hong Kong"),
             PartyFacts("湖南贝塔有限公司", "1 Harbour Road, Hong Kong",
                        parent="Alpha Trading Ltd"))
    spellings = (("alpha", "Alpha Trading Ltd"), ("beta", "湖南贝塔有限公司"))
    graph, matcher = checks._graph(facts, ()), checks._matcher(spellings)
    assert len(list((cache / "graphs").glob("*.pickle"))) == 1
    assert len(list((cache / "matchers").glob("*.pickle"))) == 1

    def not_again(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("made again")

    checks._graph.cache_clear()  # as in a new process
    checks._matcher.cache_clear()
    with monkeypatch.context() as m:
        m.setattr(PartyGraph, "__init__", not_again)
        m.setattr(PartyMatcher, "__init__", not_again)
        again = checks._graph(facts, ())
        assert again is not graph
        assert (again.label, again.groups, again.held) == (graph.label, graph.groups, graph.held)
        assert checks._matcher(spellings).entries == matcher.entries
        with pytest.raises(AssertionError, match="made again"):
            checks._graph(facts[:1], ())
        with pytest.raises(AssertionError, match="made again"):
            checks._matcher(spellings[:1])
    checks._graph.cache_clear()
    checks._matcher.cache_clear()
