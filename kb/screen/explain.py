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
from dsl.basis import basis_plan
from dsl.format import expression as expression_text
from dsl.interpret import Interpreter
from dsl.model import law
from dsl.names import party_key
from dsl.periods import parameter_in_force, rule_periods
from dsl.rulebook import LICENSABLE, movement_words, parameter_text, parameters_read
from kb.screen.screener import Finding, Screener
from kb.screen.statements import declaration_findings_query


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
    # the facts the rulebooks declare: (name, unit of a number, value as stated or None)
    facts: list[tuple[str, str | None, Any]] = field(default_factory=list)

    def text(self) -> str:
        d = self.declaration
        out = [f"Declaration {d['id']} of {d['declared_on']}: customs code {d['hs_code']}, "
               f"{d['quantity_kg']:g} kg worth {d['value_usd']:g} USD to "
               f"{d['destination_country']}; exporter {d['exporter']}, consignee "
               f"{d['consignee']} ({d['consignee_country']})"
               + (f", end user {d['end_user']}" if d.get("end_user") else "")
               + (f", licence {d['licence_no']}" if d.get("licence_no") else "") + ".",
               f"Judged by the law in force on {self.judged_on}."]
        if self.facts:
            out.append("Declared facts: " + "; ".join(
                f"{name} {_stated(value, unit)}" for name, unit, value in self.facts) + ".")
        if self.stale:
            out.append("Note: the knowledge base was built from another version of the "
                       "rulebooks; rebuild it with `excon build`.")
        for r in self.rules:
            out.append("")
            out.append(f"{r.rule} — {r.title} ({r.citation})")
            out.extend(f"  {line}" for line in r.lines)
            if r.finding is not None:
                out.append(f"  result: {r.finding.outcome} — {r.finding.explanation}")
                cited = " ".join(x for x in (r.finding.instrument, r.finding.provision) if x)
                out.append(f"  cites: {cited or 'no instrument'}")
                out.append(f"  basis: {r.finding.basis}"
                           + (f" — {r.finding.caveat}" if r.finding.caveat else ""))
            else:
                out.append("  result: no finding")
        return "\n".join(out) + "\n"


def _stated(value: Any, unit: str | None) -> str:
    if value is None:
        return "(not declared)"
    if isinstance(value, float):
        return f"{value:g}" + (f" {unit}" if unit else "")
    return str(value)


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
        history, parties = _context(conn, d, rb)
        if version == rb.version:  # the knowledge base's own checks, for this declaration
            rows = conn.execute(declaration_findings_query(screener.compiled),
                                {"declaration_id": d["id"], "as_of": as_of or ""}).fetchall()
            findings = {f.rule: f for f in (Finding(*r) for r in rows)}
        else:
            findings = {f.rule: f for f in screener.screen(
                [*{r["id"]: r for r in [d, *draws, *history]}.values()], licences, parties,
                as_of=as_of) if f.declaration_id == d["id"]}
        # the typical unit value of its code, as the knowledge base computed it from all
        # declarations (the interpreter only sees the declaration's context)
        ranges = conn.execute("SELECT low, high FROM code_value_ranges WHERE hs_code = ?",
                              [d["hs_code"]]).fetchone()
    d["code_value_low"], d["code_value_high"] = ranges or (None, None)
    related = [*{r["id"]: r for r in [d, *draws, *history]}.values()]
    interpreter = Interpreter(rb, screener_schema())
    interpreter.prepare(related, parties)
    judged = as_of or d["declared_on"]
    day = dt.date.fromisoformat(judged)
    cover = interpreter.licence_cover(related, licences)
    items = interpreter.items_of(d)
    candidates: list[str | None] = [*items] or [None]
    out = []
    periods_of = rule_periods(rb)
    for rule in law(rb).rules.values():
        if rule.kind != "rule":
            continue
        name = rule.name
        where = (rule.instrument + (f" {rule.provision}" if rule.provision else "")
                 ) if rule.instrument else "no citation"
        r = RuleExplanation(name, rule.title or name, where, finding=findings.get(name))
        periods = periods_of[name]
        spans = ", ".join(f"{iv.start or '…'} to {iv.end or '…'}" for iv in periods.intervals)
        if periods.in_force(day):
            lapsed = next((t for t in basis_plan(rb, law(rb), name).lapses
                           if t.instrument is None and judged >= t.resumes), None)
            r.lines.append(f"in force: yes ({spans})" + (
                f", by the lapse of a suspension: {lapsed.caveat}" if lapsed else ""))
        else:
            gap = periods.gap_on(day)
            r.lines.append(f"in force: no — {gap.describe() if gap else 'in force ' + spans}")
        decl = rb.rules[name]
        scope = rb.scope_of(decl)
        if scope is not None:  # the declarations its rulebook (or it) judges
            judges = rb.judges_of(decl)
            assert judges is not None  # a rule with a scope has what it judges
            inside = interpreter.truth(scope, d, None, judged)
            r.lines.append(f"judges {', '.join(movement_words(m) for m in judges.movements)}"
                           f" → {_truth_word(inside)}"
                           + ("" if inside else " (another jurisdiction's declaration)"))
        if rule.parts:
            r.lines.append(f"condition ({rule.joiner}):")
            for item in candidates:
                label = f" [item {item}]" if item and len(items) > 1 else ""
                for p in rule.parts:
                    value = interpreter.truth(p.node, d, item, judged)
                    r.lines.append(f"  {p.text} → {_truth_word(value)}{label}")
                    r.lines += _conclusion_steps(interpreter, p.node, d, item, judged, "    ")
            if items:
                r.lines.append(f"  (customs code {d['hs_code']} matches "
                               f"{', '.join(items)})")
                if interpreter.rule_uses_items(name):
                    for i in items:
                        act = interpreter.control(i, judged)
                        r.lines.append(f"  item {i}: " + (
                            f"controlled on {judged} by {act.instrument}"
                            + (f" {act.provision}" if act.provision else "") if act else
                            f"not controlled on {judged}"))
        for field_name, outcome in rule.if_missing:
            if interpreter.value(d, field_name) is None:
                r.lines.append(f"{field_name} is missing: the rule says "
                               f"{outcome or 'no finding'}")
        if rule.outcome in LICENSABLE:
            if not d.get("licence_no"):
                r.lines.append("licence: none declared")
            elif not licences:
                r.lines.append(f"licence: {d['licence_no']} is not in the knowledge base")
            else:
                ok = cover.get(d["id"], False)
                r.lines.append(f"licence: {d['licence_no']} "
                               f"{'covers it' if ok else 'does not cover it'}"
                               + _names_matched(licences, d))
        for s in (law(rb).rules[x.name.name] for x in interpreter.suppressors(name)):
            applies = periods_of[s.name].in_force(day) and (
                s.when is None or any(interpreter.truth(s.when, d, i, judged) is True
                                      for i in candidates))
            r.lines.append(f"{'exception' if s.kind == 'exception' else 'overridden by'}"
                           f" {s.name}: {'applies' if applies else 'does not apply'}")
        out.append(r)
    facts = [(f.name, f.unit, d.get(f.name)) for f in rb.declared_fields()]
    return Explanation(d, judged, out, stale=version != rb.version, facts=facts)


def _context(conn: sqlite3.Connection, d: dict[str, Any],
             rb: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The declarations an indicator on `d` can look at — those sharing a party or the
    destination in the longest window before it, and each party's first declaration — and
    the trade parties' facts."""
    days = max([r.window_days for r in law(rb).rules.values()], default=0)
    start = (dt.date.fromisoformat(d["declared_on"]) - dt.timedelta(days=days)).isoformat()
    history = _rows(conn, "SELECT * FROM declarations WHERE declared_on BETWEEN ? AND ? AND "
                          "(exporter = ? OR consignee = ? OR destination_country = ?)",
                    [start, d["declared_on"], d["exporter"], d["consignee"],
                     d["destination_country"]]) if days else []
    for name in {d["exporter"], d["consignee"], d.get("end_user")} - {None}:
        # the party's first declaration, under any spelling with its key
        history += _rows(conn, """
            WITH spellings AS (
              SELECT s.name FROM party_name_keys AS k JOIN party_name_keys AS s ON s.key = k.key
              WHERE k.name = ?),
            first AS (
              SELECT f.first_on FROM party_first_seen AS f JOIN party_name_keys AS k
                ON k.key = f.key WHERE k.name = ?)
            SELECT x.* FROM declarations AS x
            WHERE x.declared_on = (SELECT first_on FROM first)
              AND (x.exporter IN spellings OR x.consignee IN spellings
                   OR x.end_user IN spellings)
            ORDER BY x.id LIMIT 1""", [name, name])
    return history, _rows(conn, "SELECT * FROM trade_parties", [])


def screener_schema() -> Any:
    from kb.store.schema import declaration_schema

    return declaration_schema()


def _names_matched(licences: list[dict[str, Any]], d: dict[str, Any]) -> str:
    """How the licence's names matched the declaration's where they are not spelt alike (they
    are compared by their normalised key, as the lists are)."""
    lic = next((x for x in licences if x["licence_no"] == d.get("licence_no")), None)
    if lic is None:
        return ""
    notes = []
    pairs = [("holder", lic.get("holder"), "exporter", d.get("exporter")),
             *(("agent", a, "exporter", d.get("exporter"))
               for a in str(lic.get("agents") or "").split(";") if a),
             ("end user", lic.get("end_user"), "end user", d.get("end_user"))]
    for role, named, other, declared in pairs:
        if named and declared and named != declared and party_key(named) == party_key(declared):
            notes.append(f"its {role} '{named}' matches the {other} '{declared}'")
    return f" ({'; '.join(notes)})" if notes else ""


def _number(v: Any) -> str:
    """A computed value as a step shows it: 400, 0.25, or missing."""
    if v is None:
        return "missing"
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _conclusion_steps(interpreter: Interpreter, node: Any, d: dict[str, Any], item: str | None,
                      judged: str, indent: str, seen: tuple[str, ...] = ()) -> list[str]:
    """Each named conclusion a condition tests, as a step: its name, title, citation and
    truth, then the conclusions it tests in turn, indented; and each parameter it reads, with
    the value in force on the judged date, its period and its act."""
    rb = interpreter.rb
    out = []
    stack = [node]
    while stack:
        c = stack.pop(0)
        if isinstance(c, ast.Reaches | ast.Comparison | ast.Related | ast.FirstSeen):
            on = dt.date.fromisoformat(judged)
            for name in parameters_read(c):
                found = parameter_in_force(rb, name, on)
                text = parameter_text(*found) if found else None
                shown = ((c.subject, c.of) if isinstance(c, ast.Reaches)
                         and name == c.parameter.name else ())
                values = "".join(
                    f"; {expression_text(e)} = "
                    f"{_number(interpreter.expression(e, d, item, judged))}"
                    for e in shown if e is not None)
                out.append(f"{indent}{name}: "
                           + (f"{text} (in force on {judged})" if text else
                              f"no value in force on {judged}") + values)
        elif isinstance(c, ast.ConclusionRef) and c.name.name not in seen:
            decl = rb.conclusions[c.name.name]
            cite = ast.first_attr(decl, ast.Citation)
            where = f" ({cite.instrument.name}" + (f" {cite.provision}" if cite.provision
                                                  else "") + ")" if cite else ""
            value = interpreter.truth(c, d, item, judged)
            out.append(f"{indent}{c.name.name}: {decl.title.value}{where} → "
                       f"{_truth_word(value)}")
            when = ast.first_attr(decl, ast.When)
            if when is not None:
                out += _conclusion_steps(interpreter, when.condition, d, item, judged,
                                         indent + "  ", (*seen, c.name.name))
        elif isinstance(c, ast.AllOf | ast.AnyOf):
            stack.extend(c.parts)
        elif isinstance(c, ast.Negation | ast.Parenthesised):
            stack.append(c.part)
    return out
