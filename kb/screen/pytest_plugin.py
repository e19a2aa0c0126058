"""pytest plugin (registered by the package): the examples in rulebooks are tests.

Every `example` in a `*.excon` file under the folders named by the `excon_rulebooks` ini option
(default `rulebooks`) becomes a test item, run through the compiled SQL checks; a failure shows
the example's file and line, what was expected and what was found.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dsl.model import Example, law


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("excon_rulebooks", "folders whose rulebook examples are collected as tests",
                  type="paths", default=["rulebooks"])


@cache
def _screener(root: Path) -> Any:
    from kb.screen.screener import Screener

    return Screener([root])


def _rulebook_root(path: Path, config: pytest.Config) -> Path | None:
    for folder in config.getini("excon_rulebooks"):
        folder = Path(folder).resolve()
        if folder in path.resolve().parents:
            # the rulebook is the top-level folder under the configured one
            rel = path.resolve().relative_to(folder)
            return folder / rel.parts[0] if len(rel.parts) > 1 else folder
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".excon" and _rulebook_root(file_path, parent.config):
        return RulebookFile.from_parent(parent, path=file_path)
    return None


class RulebookFile(pytest.File):
    def collect(self) -> Any:
        root = _rulebook_root(self.path, self.config)
        assert root is not None
        screener = _screener(root)
        for example in law(screener.rulebook).examples:
            if Path(example.where.file).resolve() == self.path.resolve():
                yield RulebookExample.from_parent(self, name=example.title,
                                                  example=example, screener=screener)


class ExampleFailed(Exception):
    pass


class RulebookExample(pytest.Item):
    def __init__(self, *, example: Example, screener: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.example = example
        self.screener = screener

    def runtest(self) -> None:
        from kb.screen.examples import run_example

        result = run_example(self.screener, self.example)
        if not result.passed:
            raise ExampleFailed("\n".join(f"{x.where}: {why}" for x, why in result.failures))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ExampleFailed):
            return f"example \"{self.example.title}\" failed:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.example.where.line - 1, f"example: {self.example.title}"
