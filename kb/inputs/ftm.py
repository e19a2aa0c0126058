"""A parties file as FollowTheMoney entities (JSON lines, one entity per line), as compliance
teams hold party registers (OpenSanctions, yente, nomenklatura).

Each legal entity (`LegalEntity` and the schemata below it: `Company`, `Organization`,
`Person`, …) is a row of `parties.csv`: its first name, country (or jurisdiction), address
and phone. Each `Ownership` makes its owner a `parent` of its asset, with its percentage
(`Owner 30 %; Other 70 %`). The rows are then validated exactly as a CSV file's are; a
problem is reported on the entity's JSON line, and kept in `rejected_rows` with that line's
text. Lines that are not a JSON object, not an entity of FollowTheMoney's model, a legal
entity without a name, or an ownership of an entity the file does not have are rejected
with their reason. Entities of other schemata (sanctions, addresses, …) are not parties:
they are counted and skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kb.inputs.report import LoadReport, Problem

SUFFIXES = (".jsonl", ".ndjson", ".ijson", ".ftm")
COLUMNS = ("name", "country", "address", "phone", "parent")


def ftm_model() -> Any:
    """FollowTheMoney's model. Importing the library raises the csv module's field size limit
    for the whole process (its statement serializer does), which excon's CSV reader relies
    on to reject oversized fields: the limit is put back."""
    limit = csv.field_size_limit()
    try:
        from followthemoney import model
    finally:
        csv.field_size_limit(limit)
    return model


def is_ftm(source: Any) -> bool:
    """A path naming FollowTheMoney JSON lines (by its ending: .jsonl, .ndjson, .ijson,
    .ftm, or .ftm.json)."""
    if not isinstance(source, str | Path) or str(source) == "-":
        return False
    name = str(source).lower()
    return name.endswith(SUFFIXES) or name.endswith(".ftm.json")


@dataclass
class Converted:
    csv: bytes
    lines: list[int]  # the JSON line of each CSV row, in order
    problems: list[tuple[Problem, str]] = field(default_factory=list)  # and the line's text
    skipped: int = 0


def _share(value: str | None) -> str:
    if not value:
        return ""
    try:
        return f" {float(value):g} %"
    except ValueError:
        return f" {value} %"  # validated (and refused) as the CSV column is


def convert(text: str) -> Converted:
    """The entities as the rows of a parties CSV file (see the module's description)."""
    model = ftm_model()

    parties: dict[str, tuple[int, dict[str, str]]] = {}
    owners: dict[str, list[str]] = {}
    out = Converted(b"", [])
    ownerships: list[tuple[int, str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as e:
            out.problems.append((Problem(n, "(entity)", line[:80], f"a JSON object ({e})"),
                                 line))
            continue
        try:
            # as the file gives them (a phone FtM cannot parse is still compared by its digits)
            proxy = model.get_proxy(data, cleaned=True)
        except Exception as e:  # the library's InvalidData and friends
            out.problems.append((Problem(n, "schema", str(data.get("schema")),
                                         f"an entity of FollowTheMoney's model ({e})"), line))
            continue
        if proxy.schema.is_a("Ownership"):
            ownerships.append((n, line, proxy))
        elif proxy.schema.is_a("LegalEntity"):
            name = proxy.first("name")
            if not name:
                out.problems.append((Problem(n, "name", "", "a legal entity with a name"),
                                     line))
                continue
            country = proxy.first("country") or proxy.first("jurisdiction") or ""
            parties[str(proxy.id)] = (n, {"name": name, "country": country.upper(),
                                          "address": proxy.first("address") or "",
                                          "phone": proxy.first("phone") or ""})
        else:
            out.skipped += 1
    for n, line, proxy in ownerships:
        owner, asset = proxy.first("owner"), proxy.first("asset")
        missing = [f"{role} {ref!r}" for role, ref in (("owner", owner), ("asset", asset))
                   if ref not in parties]
        if missing:
            out.problems.append((Problem(n, "owner" if owner not in parties else "asset",
                                         str(owner if owner not in parties else asset),
                                         "an entity of this file"), line))
            continue
        owners.setdefault(str(asset), []).append(
            parties[str(owner)][1]["name"] + _share(proxy.first("percentage")))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for entity_id, (n, row) in parties.items():
        writer.writerow([*(row[c] for c in COLUMNS[:4]), "; ".join(owners.get(entity_id, []))])
        out.lines.append(n)
    out.csv = buffer.getvalue().encode("utf-8")
    return out


def load_ftm(db: Any, source: str | Path, name: str, run_id: int | None,
             load: Callable[..., LoadReport], **options: Any) -> LoadReport:
    """Load a FollowTheMoney parties file into `trade_parties` with `load` (`load_csv`),
    every problem on its entity's JSON line."""
    from kb.inputs.csv_files import REJECT_SQL, keep_problem, rejection
    from kb.inputs.report import LoadError

    path = Path(source)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LoadError(f"{name}: cannot open it: {e.strerror}") from None
    try:
        converted = convert(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise LoadError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except ImportError:
        raise LoadError(f"{name}: FollowTheMoney entities need the followthemoney library: "
                        "pip install 'excon[ftm]'") from None
    conn = db.conn
    before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM rejected_rows").fetchone()[0]
    report = load(db, "trade_parties", io.BytesIO(converted.csv), run_id=run_id, name=name,
                  **options)

    def line_of(csv_line: int) -> int:
        i = csv_line - 2  # the header is line 1
        return converted.lines[i] if 0 <= i < len(converted.lines) else csv_line

    report.problems = [replace(p, line=line_of(p.line)) for p in report.problems]
    with conn:
        for row_id, line in conn.execute("SELECT id, line FROM rejected_rows WHERE id > ? "
                                         "AND file = ?", [before, name]).fetchall():
            conn.execute("UPDATE rejected_rows SET line = ?, end_line = ? WHERE id = ?",
                         [line_of(line), line_of(line), row_id])
        for problem, text in converted.problems:
            conn.execute(REJECT_SQL, rejection(run_id, name, problem, [], [text]))
            report.rejected_rows += 1
            keep_problem(report, problem, options.get("keep_problems", 20))
    report.problems.sort(key=lambda p: p.line)
    report.sha256 = hashlib.sha256(raw).hexdigest()
    report.skipped_entities = converted.skipped
    return report
