"""Shared fixtures: the repository layout and the knowledge base's declaration schema."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsl.schema import Schema
from kb.store.schema import declaration_schema

ROOT = Path(__file__).resolve().parent.parent
RULEBOOKS = ROOT / "rulebooks"
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"

# The slowest test files, slowest first, run before the rest: pytest-xdist (`--dist loadfile
# --no-loadscope-reorder`, the Makefile's) hands each worker one file at a time in collection
# order, and a long file handed out last kept one worker busy minutes after the other had
# finished. (Without `--no-loadscope-reorder` xdist hands out the files with most tests first.)
# (The two Spark files apart: two JVMs at once slow each other down.)
SLOWEST_FIRST = ("test_spark.py", "test_bench_screen.py", "test_browser.py",
                 "test_bench_smoke.py", "test_spark_engine.py", "test_bundle.py",
                 "test_incremental.py", "test_bench_serve.py", "test_differential.py",
                 "test_gate.py", "test_export.py")


def pytest_configure(config: pytest.Config) -> None:
    """excon's cache (dsl.cache) in a folder of the run's own, not the user's: the suite
    parses thousands of generated rulebooks. The test workers and the commands the tests
    start inherit it; the run removes it at its end."""
    if "EXCON_CACHE_DIR" not in os.environ:
        os.environ["EXCON_CACHE_DIR"] = tempfile.mkdtemp(prefix="excon-test-cache-")
        config.stash[_OWN_CACHE] = os.environ["EXCON_CACHE_DIR"]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_OWN_CACHE, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        del os.environ["EXCON_CACHE_DIR"]


_OWN_CACHE = pytest.StashKey[str]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # the rest as they were


@pytest.fixture(scope="session")
def schema() -> Schema:
    return declaration_schema()


@pytest.fixture(scope="session")
def demo_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knowledge base built from 3,000 demo declarations (seed 7), shared by the tests that
    read it. Copy it before changing it."""
    from kb.build import build
    from kb.inputs.demo import generate, write

    folder = tmp_path_factory.mktemp("demo-kb")
    write(generate(3000, 7, [RULEBOOKS]), folder / "demo")
    db = folder / "kb.db"
    build(db, [RULEBOOKS], folder / "demo" / "declarations.csv",
          folder / "demo" / "licences.csv", folder / "demo" / "parties.csv")
    return db


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A real PostgreSQL server for the whole test session."""
    from tests.postgres import postgres_server

    with postgres_server() as dsn:
        yield dsn


def rulebook_files() -> list[Path]:
    """Every rulebook file in the repository and in the test data."""
    return sorted([*RULEBOOKS.rglob("*.excon"), *DATA.rglob("*.excon")])
