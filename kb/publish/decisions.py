"""Analysts' decisions on findings, kept apart from the knowledge base so that rebuilds never
touch them.

A decision says what an analyst made of one finding: **confirmed** (a violation), **cleared**
(a false positive), **escalated**, or **released** under a licence. Each has a required reason,
the analyst who made it and when, and the finding as it then stood (outcome and explanation,
and the rulebook version that made it).

The decisions file (by default `NAME.decisions.db` beside the knowledge base `NAME.db`) holds
one table, `decision_log`, that is only ever appended to: triggers refuse every UPDATE and
DELETE, so the log is its own audit trail. A finding's decision is the latest logged for its
(declaration_id, rule); it is keyed by the rulebook version too, and **carried forward** when a
rebuild under another version makes the same finding. When the finding's explanation has
changed since (the facts or the law behind it moved), the decision is flagged for review;
when the rebuild no longer makes the finding, the decision stays in the log but is shown
nowhere as current.

`excon serve` serves the file as the `decisions` database, to analysts only, with the
knowledge base attached read-only (as `kb`) so that its stored queries join decisions to
today's findings; `excon decisions export` writes it out as CSV or JSON.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DECISIONS = ("confirmed", "cleared", "escalated", "released")
LABELS = {"confirmed": "confirmed", "cleared": "cleared (false positive)",
          "escalated": "escalated", "released": "released under a licence"}
MAX_REASON = 4000

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS decision_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    declaration_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    rulebook_version TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ({", ".join(f"'{d}'" for d in DECISIONS)})),
    licence_no TEXT CHECK ((decision = 'released') = (COALESCE(TRIM(licence_no), '') <> '')),
    reason TEXT NOT NULL CHECK (LENGTH(TRIM(reason)) > 0),
    actor TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    explanation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decision_log_finding ON decision_log (declaration_id, rule, id);
CREATE TRIGGER IF NOT EXISTS decision_log_is_appended_to BEFORE UPDATE ON decision_log
BEGIN SELECT RAISE(ABORT, 'decisions are never changed: record a new decision'); END;
CREATE TRIGGER IF NOT EXISTS decision_log_is_kept BEFORE DELETE ON decision_log
BEGIN SELECT RAISE(ABORT, 'decisions are never deleted: record a new decision'); END;
-- a form the server refused, kept for its analyst so that nothing typed is lost: shown in
-- the form again until a decision on that finding is recorded (or for a day)
CREATE TABLE IF NOT EXISTS decision_drafts (
    actor TEXT NOT NULL,
    declaration_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    decision TEXT,
    licence_no TEXT,
    reason TEXT,
    problem TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (actor, declaration_id, rule)
);
CREATE VIEW IF NOT EXISTS decisions AS
SELECT d.* FROM decision_log AS d
WHERE d.id = (SELECT MAX(e.id) FROM decision_log AS e
              WHERE e.declaration_id = d.declaration_id AND e.rule = d.rule);
"""

# Served with the knowledge base attached as `kb` (kb.publish.serve): what the decisions database's
# stored queries join on.
TO_REVIEW_SQL = """
SELECT d.declaration_id, d.rule, d.decision, d.licence_no, d.reason, d.actor, d.decided_at,
       d.rulebook_version AS decided_under, f.rulebook_version AS current_version,
       CASE WHEN f.declaration_id IS NULL THEN 'finding no longer made'
            ELSE 'explanation changed' END AS why,
       d.explanation AS explanation_then, f.explanation AS explanation_now
FROM decisions AS d
LEFT JOIN kb.finding_details AS f
  ON f.declaration_id = d.declaration_id AND f.rule = d.rule
WHERE f.declaration_id IS NULL OR f.explanation <> d.explanation
ORDER BY d.decided_at DESC, d.id DESC
LIMIT 100 OFFSET 100 * (MAX(COALESCE(CAST(NULLIF(:page, '') AS INTEGER), 1), 1) - 1)
"""

UNDECIDED_SQL = """
SELECT f.declaration_id, f.rule, f.outcome, f.severity, f.instrument, f.declared_on,
       f.destination_country, f.explanation
FROM kb.finding_details AS f
WHERE NOT EXISTS (SELECT 1 FROM decisions AS d
                  WHERE d.declaration_id = f.declaration_id AND d.rule = f.rule)
  AND (:outcome = '' OR f.outcome = :outcome)
ORDER BY f.declared_on DESC, f.declaration_id, f.rule
LIMIT 100 OFFSET 100 * (MAX(COALESCE(CAST(NULLIF(:page, '') AS INTEGER), 1), 1) - 1)
"""


class DecisionError(ValueError):
    """A decision that cannot be recorded, and why (for the analyst's form)."""


def decisions_path(kb_path: Path) -> Path:
    """Where a knowledge base's decisions are kept by default: beside it."""
    return kb_path.with_name(f"{kb_path.stem}.decisions.db")


def connect(path: Path) -> sqlite3.Connection:
    """The decisions file, made if missing (WAL: analysts' writes do not block readers)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA)
    return conn


def initialise(path: Path) -> None:
    connect(path).close()


@dataclass(frozen=True)
class Decision:
    declaration_id: str
    rule: str
    decision: str
    reason: str
    licence_no: str | None = None


def validated(form: dict[str, Any]) -> Decision:
    """A decision from a form's fields, or DecisionError saying what is missing."""
    decision = str(form.get("decision") or "")
    reason = str(form.get("reason") or "").strip()
    licence = str(form.get("licence_no") or "").strip() or None
    if decision not in DECISIONS:
        raise DecisionError(f"choose a decision: {', '.join(DECISIONS)}")
    if not reason:
        raise DecisionError("give the reason for the decision")
    if len(reason) > MAX_REASON:
        raise DecisionError(f"the reason is longer than {MAX_REASON:,} characters")
    if decision == "released" and not licence:
        raise DecisionError("name the licence the goods are released under")
    if decision != "released":
        licence = None
    return Decision(str(form.get("declaration_id") or ""), str(form.get("rule") or ""),
                    decision, reason, licence)


def save_draft(conn: sqlite3.Connection, actor: str, form: dict[str, Any], problem: str,
               now: dt.datetime | None = None) -> None:
    """Keep a refused form's fields for its analyst, with why it was refused."""
    when = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    conn.execute(
        "INSERT OR REPLACE INTO decision_drafts (actor, declaration_id, rule, decision, "
        "licence_no, reason, problem, saved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [actor, str(form.get("declaration_id") or ""), str(form.get("rule") or ""),
         str(form.get("decision") or ""), str(form.get("licence_no") or "").strip(),
         str(form.get("reason") or "")[:MAX_REASON], problem, when])


DRAFTS_SQL = ("SELECT rule, decision, licence_no, reason, problem FROM decision_drafts "
              "WHERE actor = ? AND declaration_id = ? AND saved_at >= ?")


def drafts_since(now: dt.datetime | None = None) -> str:
    """The oldest draft still shown (a day old)."""
    return ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)).replace(
        microsecond=0).isoformat()


def record(conn: sqlite3.Connection, decision: Decision, finding: dict[str, Any],
           actor: str, now: dt.datetime | None = None) -> int:
    """Append a decision on `finding` (a row of finding_details); its log id. The analyst's
    draft of it, if a form was refused before, is done with."""
    when = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    conn.execute("DELETE FROM decision_drafts WHERE actor = ? AND declaration_id = ? AND "
                 "rule = ?", [actor, finding["declaration_id"], finding["rule"]])
    cursor = conn.execute(
        "INSERT INTO decision_log (declaration_id, rule, rulebook_version, decision, "
        "licence_no, reason, actor, decided_at, outcome, explanation) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [finding["declaration_id"], finding["rule"], finding["rulebook_version"],
         decision.decision, decision.licence_no, decision.reason, actor, when,
         finding["outcome"], finding["explanation"]])
    return int(cursor.lastrowid or 0)


def current(rows: list[dict[str, Any]], finding: dict[str, Any]) -> dict[str, Any] | None:
    """The decision standing on a finding (the latest logged for its declaration and rule),
    with whether it was carried forward from another rulebook version and whether it needs
    review (the explanation changed since)."""
    mine = [r for r in rows if r["rule"] == finding["rule"]]
    if not mine:
        return None
    latest = max(mine, key=lambda r: r["id"])
    return {**latest, "label": LABELS[latest["decision"]],
            "carried": latest["rulebook_version"] != finding["rulebook_version"],
            "review": latest["explanation"] != finding["explanation"]}


def export(path: Path, fmt: str, out: Any, *, log: bool = False) -> int:
    """Write the standing decisions (or, with `log`, every logged one) as CSV or JSON."""
    import csv
    import json

    from kb.screen.screener import spreadsheet_safe

    if not path.is_file():
        raise DecisionError(f"{path}: no decisions file (none recorded yet?)")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        cursor = conn.execute(f"SELECT * FROM {'decision_log' if log else 'decisions'} "
                              "ORDER BY id")
        columns = [c[0] for c in cursor.description]
        rows = cursor.fetchall()
    if fmt == "json":
        json.dump([dict(zip(columns, r, strict=True)) for r in rows], out, ensure_ascii=False,
                  indent=1)
        out.write("\n")
    else:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([spreadsheet_safe(v) for v in r] for r in rows)
    return len(rows)
