"""Load `declarations.csv`, `licences.csv` and `parties.csv` (the contracts in docs/inputs.md).

Every field is validated. A bad row is reported with file, line, column, value and what was
expected, and kept in `rejected_rows`; good rows load. A load is one transaction: if it fails
or is interrupted, the database is as it was. Loading the same file again changes nothing
(rows are upserted by their id). Files are streamed, so memory stays flat however large they are.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

from kb.inputs.contracts import COLUMN_CHECKS, RowSink, c_each, contract_for
from kb.inputs.csv_files import (
    REJECT_SQL,
    Batches,
    Broken,
    HashingReader,
    bulk_cache,
    checked_header,
    deferred_indexes,
    keep_problem,
    progress_bar,
    rejection,
    spans_lines,
    swallowed_rows,
    unknown_columns,
    unsafe_cells,
)
from kb.inputs.fields import unknown_entries
from kb.inputs.ftm import is_ftm, load_ftm
from kb.inputs.report import LoadError, LoadReport, Problem


def load_csv(db: Database, table: str, source: str | Path | IO[bytes], run_id: int | None = None,
             name: str | None = None, keep_problems: int = 20, today: str | None = None,
             reject_future: bool = False, rows_to: RowSink | None = None) -> LoadReport:
    """Load one CSV file (a path, '-' for stdin, or a binary stream) into `table`, atomically.
    Rows dated after `today` (default: today, UTC) are counted in the report's warnings, or
    rejected with `reject_future`. `rows_to`: where the validated rows go instead of `table`
    (screening on another engine: `kb.screen.engines.DuckRows`), given the stored columns' names and
    each batch's good rows column by column; rejected rows are kept in `rejected_rows` as
    always."""
    if table == "trade_parties" and is_ftm(source):  # FollowTheMoney entities
        return load_ftm(db, source, name or str(source), run_id, load_csv,  # type: ignore[arg-type]
                        keep_problems=keep_problems, today=today,
                        reject_future=reject_future, rows_to=rows_to)
    contract = contract_for(db.conn, table)
    today = today or dt.datetime.now(dt.UTC).date().isoformat()
    vocabulary = contract.vocabulary[1](db.conn) if contract.vocabulary else frozenset()
    if isinstance(source, str | Path) and str(source) != "-":
        path = Path(source)
        name = name or str(source)
        try:
            stream: IO[bytes] = path.open("rb")
        except OSError as e:
            raise LoadError(f"{name}: cannot open it: {e.strerror}") from None
        total: int | None = path.stat().st_size
    else:
        stream = sys.stdin.buffer if str(source) == "-" else source  # type: ignore[assignment]
        name = name or "<stdin>"
        total = stream.getbuffer().nbytes if isinstance(stream, io.BytesIO) else None
    hashing = HashingReader(stream)
    report = LoadReport(table, name, today=today)
    conn = db.conn
    try:
        batches = Batches(hashing, name)
        header, wanted, positions = checked_header(contract, batches.header(), name)
        report.unknown_columns = unknown_columns(contract, header)
        validators = [v for _, v in contract.fields]
        checks = [COLUMN_CHECKS.get(v) or c_each(v) for v in validators]
        width = len(header)
        stored = wanted + [name for name, _, _ in contract.derived]
        cols = ", ".join(f'"{f}"' for f in stored)
        marks = ", ".join("?" for _ in stored)
        # table and column names come from the contract, never from the file
        insert = f'INSERT OR REPLACE INTO "{table}" ({cols}) VALUES ({marks})'
        reject = REJECT_SQL
        first_line_of: dict[str, int] = {}
        rejected: list[tuple[Any, ...]] = []

        def col_of(raw: list[str], column: str) -> str:
            pos = positions[wanted.index(column)]
            return raw[pos] if pos is not None else ""

        def set_aside(broken: list[Broken]) -> None:
            for b in broken:
                p = Problem(b.line, "(row)", "", b.message)
                report.rejected_rows += 1
                rejected.append(rejection(run_id, name, p, header, []))
                keep_problem(report, p, keep_problems)

        def flush(batch: list[list[str]], line_of: Callable[[int], int]) -> None:
            """Validate a batch column by column; insert the good rows, keep the bad ones."""
            bad: dict[int, list[Problem]] = {}
            odd = [i for i, raw in enumerate(batch) if len(raw) != width]
            for i in odd:
                if batch[i]:
                    bad[i] = [Problem(line_of(i), "(row)", f"{len(batch[i])} fields",
                                      f"{width} fields, as in the header"
                                      + spans_lines(line_of(i), batch[i]))]
            if odd:  # set aside rows of the wrong width (and blank lines) before transposing
                odd_set = set(odd)
                keep = [i for i in range(len(batch)) if i not in odd_set]
                rows_in = [batch[i] for i in keep]
                report.rejected_rows += len(bad)
                for i, problems in bad.items():
                    for p in problems:
                        rejected.append(rejection(run_id, name, p, header, batch[i]))
                        keep_problem(report, p, keep_problems)
                if not rows_in:
                    return
                flush(rows_in, lambda j: line_of(keep[j]))
                return
            columns = list(zip(*batch, strict=True))
            if line_of(len(batch) - 1) - line_of(0) != len(batch) - 1:  # quoted line breaks
                for i, swallowed in swallowed_rows(batch, width, line_of):
                    bad.setdefault(i, []).append(swallowed)
            for at, column in enumerate(header):
                for i, problem in unsafe_cells(columns[at]):
                    bad.setdefault(i, []).append(Problem(line_of(i), column, *problem))
            values = []
            for field_name, pos, check, validator in zip(wanted, positions, checks, validators,
                                                         strict=True):
                col = columns[pos] if pos is not None else ("",) * len(batch)
                vals, suspects = check(col)
                for i in suspects:
                    try:
                        vals[i] = validator(col[i])
                    except ValueError as e:
                        bad.setdefault(i, []).append(Problem(line_of(i), field_name, col[i],
                                                             str(e)))
                values.append(vals)
            for _, source, derive in contract.derived:
                of = values[wanted.index(source)]
                values.append([derive(v) if v is not None else None for v in of])
            if contract.row_check is not None:
                for i in range(len(batch)):
                    if i in bad:
                        continue
                    wrong = contract.row_check(dict(zip(stored, (v[i] for v in values),
                                                        strict=True)))
                    if wrong is not None:
                        column, expected = wrong
                        bad[i] = [Problem(line_of(i), column, col_of(batch[i], column),
                                          expected)]
            if contract.not_future:
                dates = values[wanted.index(contract.not_future)]
                if max(filter(None, dates), default="") > today:
                    for i, d in enumerate(dates):
                        if i in bad or d is None or d <= today:
                            continue
                        if reject_future:
                            bad[i] = [Problem(line_of(i), contract.not_future, d,
                                              f"a date not after today ({today})")]
                        else:
                            report.future_rows += 1
                            report.first_future_line = report.first_future_line or line_of(i)
            if vocabulary and contract.vocabulary:
                column = contract.vocabulary[0]
                for i, entries in enumerate(values[wanted.index(column)]):
                    unknown = unknown_entries(entries, vocabulary)
                    if unknown and i not in bad:
                        bad[i] = [Problem(line_of(i), column, col_of(batch[i], column),
                                          unknown)]
            keys = values[0]
            if bad or len(set(keys)) != len(keys) or not first_line_of.keys().isdisjoint(keys):
                for i, key in enumerate(keys):  # the slow path names the first line of a key
                    if i in bad:
                        continue
                    first = first_line_of.setdefault(key, line_of(i))
                    if first != line_of(i):
                        bad[i] = [Problem(line_of(i), contract.key, key,
                                          f"a unique {contract.key}; line {first} has it")]
            else:
                first_line_of.update(zip(keys, map(line_of, range(len(keys))), strict=True))
            if bad:
                for i in sorted(bad):
                    report.rejected_rows += 1
                    for p in bad[i]:
                        rejected.append(rejection(run_id, name, p, header, batch[i]))
                        keep_problem(report, p, keep_problems)
                conn.executemany(reject, rejected)
                rejected.clear()
            if rows_to is not None:
                if bad:
                    keep = [i for i in range(len(batch)) if i not in bad]
                    values = [[v[i] for i in keep] for v in values]
                rows_to(stored, values)
                report.loaded += len(values[0])
            else:
                good = list(zip(*values, strict=True))
                if bad:
                    good = [row for i, row in enumerate(good) if i not in bad]
                conn.executemany(insert, good)
                report.loaded += len(good)
            update(hashing.count)

        update, stop = progress_bar(total, f"loading {name}")
        if conn.in_transaction:
            conn.commit()
        cache = bulk_cache(conn)
        cache.__enter__()
        conn.execute("BEGIN")
        try:
            # deferring index builds pays off for big loads; a small one keeps its indexes
            # (and the schema, so prepared statements stay valid)
            defer = deferred_indexes(conn, table, bulk=rows_to is None and (
                total is None or total >= 1 << 20))
            defer.__enter__()
            for batch, line_of, broken in batches:
                set_aside(broken)
                if batch:
                    flush(batch, line_of)
            if rejected:
                conn.executemany(reject, rejected)
            defer.__exit__(None, None, None)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            stop()
            cache.__exit__(None, None, None)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    report.sha256 = hashing.sha.hexdigest()
    return report
