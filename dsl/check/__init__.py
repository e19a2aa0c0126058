"""Resolve names and check a rulebook: references, dates and intervals, types and units,
precedence, exceptions and examples. The result is a `CheckedRulebook` (`dsl.rulebook`, the IR
later stages use) and a list of diagnostics; the checker never stops at the first problem.

One module per stage, each a class the next one extends: `names` (pass 1 and references),
`conditions` (types and units), `declarations` (instruments, items, parties), `time`
(intervals, precedence, amendments), `checker` (pass 2, examples, `check()`).
"""

from dsl.check.checker import Checker, check
from dsl.rulebook import CheckedRulebook, Interval, normalise_customs_code, parse_date

__all__ = ["CheckedRulebook", "Checker", "Interval", "check", "normalise_customs_code",
           "parse_date"]
