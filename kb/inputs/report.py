"""What a load reports: each problem (file, line, column, value, what was expected), the
load's counts and rejected rows, and the error that stops a load with nothing changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BATCH = 5000


class LoadError(Exception):
    """A file that cannot be loaded at all (unreadable, not UTF-8, wrong header)."""


@dataclass
class Problem:
    line: int
    column: str
    value: str
    expected: str


@dataclass
class LoadReport:
    table: str
    file: str
    sha256: str = ""
    loaded: int = 0
    rejected_rows: int = 0
    problems: list[Problem] = field(default_factory=list)  # first few, for display
    future_rows: int = 0  # loaded, dated after the day of the load
    first_future_line: int | None = None
    today: str = ""
    # columns of the file that no field of its contract reads, each with the nearest name
    unknown_columns: list[tuple[str, str | None]] = field(default_factory=list)
    # FollowTheMoney entities of a parties file that are not parties (kb.inputs.ftm)
    skipped_entities: int = 0

    def summary(self) -> str:
        return (f"{self.file}: {self.loaded:,} {self.table} rows loaded, "
                f"{self.rejected_rows:,} rejected")

    def warnings(self) -> list[str]:
        out = [f"{self.file}:1: warning: the column '{column}' is not one excon reads, and its "
               f"values are ignored" + (f" ({hint})" if hint else "")
               for column, hint in self.unknown_columns]
        if self.skipped_entities:
            out.append(f"{self.file}: warning: {self.skipped_entities:,} FollowTheMoney "
                       "entities are not parties (sanctions, addresses, …) and were skipped")
        if not self.loaded and not self.rejected_rows:
            out.append(f"{self.file}: warning: the file has a header and no {self.table} rows")
        if self.future_rows:
            out.append(f"{self.file}:{self.first_future_line}: warning: {self.future_rows:,} "
                       f"{self.table} rows are dated after today ({self.today}); check the "
                       "dates, or reject such rows with --reject-future")
        return out

    def errors(self, strict: bool = False) -> list[str]:
        """What fails the command, beyond too many rejected rows: a licences file given with
        no row in it (every finding a licence would lift stands: an export that went wrong,
        not a day without licences); with `strict`, a column excon does not read."""
        out = []
        if strict:
            out += [f"{self.file}:1: the column '{column}' is not one excon reads"
                    + (f" ({hint})" if hint else "") + " (--strict)"
                    for column, hint in self.unknown_columns]
        if self.table == "licences" and not self.loaded:
            out.append(f"{self.file}: no licences row loaded, so no licence can cover a "
                       "declaration and every finding a licence would lift stands; leave out "
                       "--licences when there are no licences")
        return out

    def too_many_rejected(self, allowed: str) -> str | None:
        """Against `--allow-rejected` (a count such as `5`, or a share of the file's rows such
        as `1%`): what is wrong when more rows were rejected, else None."""
        rows = self.loaded + self.rejected_rows
        limit = (rows * float(allowed[:-1]) / 100 if allowed.endswith("%")
                 else float(allowed))
        if self.rejected_rows <= limit:
            return None
        return (f"{self.file}: {self.rejected_rows:,} of {rows:,} {self.table} rows rejected, "
                f"more than --allow-rejected {allowed} allows")


def parse_allowance(text: str) -> str:
    """`--allow-rejected`: a whole number of rows, or a percentage such as `0.5%`."""
    value = text.strip()
    number = value[:-1] if value.endswith("%") else value
    try:
        x = float(number)
    except ValueError:
        raise ValueError(f"a number of rows or a percentage such as 1%, not {text!r}") from None
    if not math.isfinite(x) or x < 0 or (not value.endswith("%") and x != int(x)) or \
            (value.endswith("%") and x > 100):
        raise ValueError(f"a number of rows or a percentage such as 1%, not {text!r}")
    return value
