"""Why a declaration got — or did not get — each finding.

For one declaration in a knowledge base: every rule that could apply, whether it was in force
on the judging date (and which suspension or repeal cut it), how each part of its condition
came out on the declaration's facts, which licence was tried and why it did or did not cover,
which exception or permission suppressed it, and the finding the compiled checks produce.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsl import ast
from dsl.format import condition
from dsl.interpret import Interpreter
from kb.screen import Finding, Screener


class ExplainError(Exception):
    pass


@dataclass
class RuleExplanation:
    rule: str
    title: str
    citation: str
    lines: list[str] = field(default_factory=list)
    finding: Finding | None = None


@dataclass
class Explanation:
    declaration: dict[str, Any]
    judged_on: str
    rules: list[RuleExplanation]
    stale: bool = False

    def text(self) -> str:
        d = self.declaration
        out = [f"Declaration {d['id']} of {d['declared_on']}: customs code {d['hs_code']}, "
               f"{d['quantity_kg']:g} kg worth {d['value_usd']:g} USD to "
               f"{d['destination_country']}; exporter {d['exporter']}, consignee "
               f"{d['consignee']} ({d['consignee_country']})"
               + (f", end user {d['end_user']}" if d.get("end_user") else "")
               + (f", licence {d['licence_no']}" if d.get("licence_no") else "") + ".",
               f"Judged by the law in force on {self.judged_on}."]
        if self.stale:
            out.append("Note: the knowledge base was built from another version of the "
                       "rulebooks; rebuild it with `excon build`.")
        for r in self.rules:
            out.append("")
            out.append(f"{r.rule} — {r.title} ({r.citation})")
            out.extend(f"  {line}" for line in r.lines)
            if r.finding is not None:
                out.append(f"  result: {r.finding.outcome} — {r.finding.explanation}")
            else:
                out.append("  result: no finding")
        return "\n".join(out) + "\n"


def _truth_word(v: bool | None) -> str:
    return {True: "true", False: "false", None: "unknown (a fact it needs is missing)"}[v]


def _rows(conn: sqlite3.Connection, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute(sql, args).fetchall()]


def explain(db: Path, declaration_id: str, as_of: str | None = None,
            rulebooks: tuple[Path, ...] = (Path("rulebooks"),)) -> Explanation:
    if not db.exists():
        raise ExplainError(f"{db} does not exist; build it with `excon build`")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = _rows(conn, "SELECT * FROM declarations WHERE id = ?", [declaration_id])
        if not found:
            raise ExplainError(f"there is no declaration {declaration_id!r} in {db}")
        d = found[0]
        licences = _rows(conn, "SELECT * FROM licences WHERE licence_no = ?",
                         [d["licence_no"]]) if d["licence_no"] else []
        # the licence's other draws count towards its quantity limit
        draws = _rows(conn, "SELECT * FROM declarations WHERE licence_no = ? AND id != ?",
                      [d["licence_no"], d["id"]]) if d["licence_no"] else []
        version = conn.execute("SELECT MAX(version) FROM rulebooks").fetchone()[0]
    screener = Screener(rulebooks)
    rb = screener.rulebook
    related = [d, *draws]
    findings = {f.rule: f for f in screener.screen(related, licences, as_of=as_of)
                if f.declaration_id == d["id"]}
    interpreter = Interpreter(rb, screener_schema())
    judged = as_of or d["declared_on"]
    day = dt.date.fromisoformat(judged)
    cover = interpreter.licence_cover(related, licences)
    items = interpreter.items_of(d)
    candidates: list[str | None] = [*items] or [None]
    out = []
    for name, rule in rb.rules.items():
        cite = ast.first_attr(rule, ast.Citation)
        where = (cite.instrument.name + (f" {cite.provision}" if cite.provision else "")
                 ) if cite else "no citation"
        r = RuleExplanation(name, rule.title.value if rule.title else name, where,
                            finding=findings.get(name))
        periods = interpreter.periods[name]
        spans = ", ".join(f"{iv.start or '…'} to {iv.end or '…'}" for iv in periods.intervals)
        if periods.in_force(day):
            r.lines.append(f"in force: yes ({spans})")
        else:
            gap = periods.gap_on(day)
            r.lines.append(f"in force: no — {gap.describe() if gap else 'in force ' + spans}")
        when = ast.first_attr(rule, ast.When)
        then = ast.first_attr(rule, ast.Then)
        if when is not None:
            parts = when.condition.parts if isinstance(when.condition, ast.AllOf | ast.AnyOf) \
                else (when.condition,)
            joiner = "any of" if isinstance(when.condition, ast.AnyOf) else "all of"
            r.lines.append(f"condition ({joiner}):")
            for item in candidates:
                label = f" [item {item}]" if item and len(items) > 1 else ""
                for p in parts:
                    value = interpreter.truth(p, d, item, judged)
                    r.lines.append(f"  {condition(p)} → {_truth_word(value)}{label}")
            if items:
                r.lines.append(f"  (customs code {d['hs_code']} matches "
                               f"{', '.join(items)})")
        for policy in ast.attrs_of(rule, ast.IfMissing):
            if interpreter.value(d, policy.field.name) is None:
                what = "no finding" if policy.outcome is None else str(policy.outcome)
                r.lines.append(f"{policy.field.name} is missing: the rule says {what}")
        if then is not None and then.outcome.kind == "licence required":
            if not d.get("licence_no"):
                r.lines.append("licence: none declared")
            elif not licences:
                r.lines.append(f"licence: {d['licence_no']} is not in the knowledge base")
            else:
                ok = cover.get(d["id"], False)
                r.lines.append(f"licence: {d['licence_no']} "
                               f"{'covers it' if ok else 'does not cover it'}")
        for s in interpreter.suppressors(name):
            sw = ast.first_attr(s, ast.When)
            applies = interpreter.periods[s.name.name].in_force(day) and (
                sw is None or any(interpreter.truth(sw.condition, d, i, judged) is True
                                  for i in candidates))
            r.lines.append(f"{'exception' if isinstance(s, ast.Exception_) else 'overridden by'}"
                           f" {s.name.name}: {'applies' if applies else 'does not apply'}")
        out.append(r)
    return Explanation(d, judged, out, stale=version != rb.version)


def screener_schema() -> Any:
    from kb.schema import declaration_schema

    return declaration_schema()
