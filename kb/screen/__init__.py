"""Screening: the support relations and the compiled checks installed in a knowledge base
(`checks`), the `Screener` (`screener`), the other engines (`engines`: DuckDB, PostgreSQL,
Spark), the bundles for other tools and `excon prepare` (`bundle`, `spark_run`), the JSON form
of the rules (`export`), `excon explain` and `excon diff`, the examples runner and its pytest
plugin (`examples`, `pytest_plugin`), and the indicators' quality against the demo's truth.

May import `dsl`, `kb.store` and `kb.inputs`; never `kb.publish` or `kb.documents`.

The Python API (docs/api.md) is imported from here: `from kb.screen import Screener, screen`.
"""

from kb.screen.screener import (
    Finding,
    Screener,
    ScreeningError,
    Source,
    screen,
    spreadsheet_safe,
    write_kept_rulebooks,
)

__all__ = ["Finding", "Screener", "ScreeningError", "Source", "screen", "spreadsheet_safe",
           "write_kept_rulebooks"]
