"""`excon docs`: a readable, printable HTML document of one rulebook (Jinja2).

Every instrument with its provisions and the rules citing them; every rule in plain words with
its validity, amendments and examples; the items with their codes; the lists and parties; a
timeline of when each control was in force, suspended and in force again, from July 2023 to the
document's date; and every fact the rulebook marks unverified. The document is one
self-contained file (inline CSS and SVG, no scripts, no network).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

import dsl
from dsl import ast
from dsl.check.names import iter_conditions
from dsl.format import condition as condition_text
from dsl.model import law
from dsl.names import web_url
from dsl.periods import ONE_DAY, Periods, listing_periods, parameter_periods, rule_periods
from dsl.plain import plain
from dsl.rulebook import CheckedRulebook, parameter_text, parameters_read
from kb.store.rulebook_rows import (
    amendment_rows,
    example_rows,
    instrument_rows,
    item_rows,
    party_rows,
    rule_rows,
    timeline,
)
from kb.store.schema import declaration_schema, hs_subheadings

TIMELINE_START = dt.date(2023, 7, 1)
OUTCOME_WORDS = {
    "prohibited": "Exports are prohibited",
    "licence required": "Exports need a licence",
    "presumption of denial": "Exports need a licence, in principle refused (presumption of denial)",
    "case-by-case review": "Exports need a licence, reviewed case by case",
    "permitted": "Exports are permitted",
    "undetermined": "Exports cannot be judged",
    "risk": "Exports are flagged as a risk",
}


class DocsError(Exception):
    pass


@dataclass
class Bar:
    """One row of the timeline: a label and its coloured stretches."""

    label: str
    link: str
    segments: list[dict[str, Any]]


def document_date() -> dt.date:
    """Today, or SOURCE_DATE_EPOCH's day (reproducible documents)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return (dt.datetime.fromtimestamp(int(epoch), dt.UTC).date() if epoch
            else dt.datetime.now(dt.UTC).date())


def render(rulebook: Path, today: dt.date | None = None) -> tuple[str, str]:
    """The HTML of one rulebook folder or file, and the rulebook's name."""
    result = dsl.load([rulebook], declaration_schema())
    if not result.ok or result.rulebook is None:
        first = "\n".join(dsl.render(d, result.sources) for d in result.errors[:5])
        raise DocsError(f"the rulebook has {len(result.errors)} error(s):\n{first}")
    rb = result.rulebook
    if len(rb.rulebooks) != 1:
        raise DocsError(f"{rulebook}: expected one rulebook, found {len(rb.rulebooks)} "
                        f"({', '.join(sorted(rb.rulebooks)) or 'none'}); give its folder")
    today = today or document_date()
    context = _context(rb, today)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kb.documents", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["web_url"] = web_url
    return env.get_template("rulebook.html.j2").render(**context), context["rulebook"]["name"]


def write(rulebook: Path, out: Path, today: dt.date | None = None) -> Path:
    html, name = render(rulebook, today)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.html"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target


def plain_words(rule: dict[str, Any], rb: CheckedRulebook | None = None) -> str:
    """A rule or exception in words: its outcome, and its condition as a reader says it
    (`dsl.plain`: titles for names, words for facts), else as written."""
    outcome = rule["outcome"] or ""
    decl = (rb.rules.get(rule["name"]) or rb.exceptions.get(rule["name"])) if rb else None
    when = ast.first_attr(decl, ast.When) if decl is not None else None
    condition = plain(when.condition, rb) if when is not None and rb is not None \
        else rule["condition"]
    if rule["kind"] == "exception":
        return f"Exception to {rule['excepts']}: applies when {condition}."
    if outcome.startswith("risk"):
        lead = f"Flagged as a {rule['severity'] or ''} risk".replace("  ", " ")
    else:
        lead = OUTCOME_WORDS.get(outcome, outcome.capitalize())
    return f"{lead} when {condition}."


def _context(rb: CheckedRulebook, today: dt.date) -> dict[str, Any]:
    model = law(rb)
    book = next(iter(model.rulebooks.values()))
    name = book.name
    periods = rule_periods(rb)  # the same in-force periods the compiled checks use
    instruments, provisions = instrument_rows(rb)
    items = item_rows(rb, hs_subheadings())
    parties = party_rows(rb)
    rules = rule_rows(rb, name)
    amendments = amendment_rows(rb)
    examples = example_rows(rb)
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in examples:
        for r in (e["rules"] or "").split("; "):
            if r:
                by_rule[r].append(e)
    citing: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for r in rules:
        citing[(r["instrument_id"], r["provision"])].append(r)
        r["plain"] = plain_words(r, rb)
        r["timeline"] = [dict(zip(("from", "until", "status", "by"), seg, strict=True))
                         for seg in timeline(periods[r["name"]])] if r["name"] in periods else []
        r["amendments"] = [a for a in amendments if _affects(a, r)]
        r["examples"] = by_rule.get(r["name"], [])
    # each rule's exceptions and the permissions that override it, with their basis and test
    for r in rules:
        r["suppressed_by"] = [
            {"name": x["name"], "kind": x["kind"], "title": x["title"],
             "instrument_id": x["instrument_id"], "provision": x["provision"],
             "condition": x["condition"]}
            for x in rules if r["name"] in (x["excepts"] or "").split("; ")
            or r["name"] in (x["overrides"] or "").split("; ")]
    provisions_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in provisions:
        p["rules"] = citing.get((p["instrument_id"], p["provision"]), [])
        provisions_of[p["instrument_id"]].append(p)
    for i in instruments:
        i["provisions"] = provisions_of.get(i["id"], [])
        i["rules"] = citing.get((i["id"], None), [])
        i["amends"] = [a for a in amendments if a["instrument_id"] == i["id"]]
    codes: dict[str, list[str]] = defaultdict(list)
    for c in items["item_customs_codes"]:
        codes[c["item"]].append(c["written"])
    groups_of: dict[str, list[str]] = defaultdict(list)
    for m in items["item_group_members"]:
        groups_of[m["item"]].append(m["group_name"])
    for it in items["items"]:
        it["codes"] = codes.get(it["name"], [])
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in parties["list_entries"]:
        entries[e["party"]].append(e)
    for p in parties["parties"]:
        p["entries"] = entries.get(p["name"], [])
        p["aliases"] = [a["alias"] for a in parties["party_aliases"] if a["party"] == p["name"]]
    groups = []
    for g in items["item_groups"]:
        members = [it for it in items["items"] if g["name"] in groups_of.get(it["name"], [])]
        direct = [it for it in members if g["name"] in model.items[it["name"]].groups]
        if direct:
            groups.append({**g, "members": direct})
    # items that no group holds (an item that cites its own act): listed too, not left out
    grouped = {it for g in groups for it in (m["name"] for m in g["members"])}
    loose = [it for it in items["items"] if it["name"] not in grouped]
    if loose:
        groups.append({"name": "ungrouped", "title": "Items in no group",
                       "instrument_id": None, "provision": None, "members": loose})
    bars = [Bar(f"{r['name']}", f"#rule-{r['name']}",
                _segments(periods[r["name"]], today)) for r in rules if r["name"] in periods]
    bars += _listing_bars(rb, today)
    return {
        "rulebook": {"name": name, "title": book.title,
                     "jurisdiction": ", ".join(book.jurisdiction),
                     "source": "; ".join(book.sources), "version": model.version,
                     "sources_checked": book.sources_checked},
        "today": today.isoformat(),
        "instruments": sorted(instruments, key=lambda i: (i["in_force"] or "", i["id"])),
        "rules": rules, "groups": groups, "lists": parties["party_lists"],
        "conclusions": _conclusions(rb, name),
        "parameters": _parameters(rb, name),
        "facts": _facts(rb, name),
        "item_count": len(items["items"]),
        "parties": sorted(parties["parties"], key=lambda p: p["legal_name"].lower()),
        "amendments": amendments,
        "lapses": model.lapsed_suspensions(today),
        "announcements": _announcements(rb),
        "unverified": [{"kind": u.kind, "entry": u.entry, "note": u.note,
                        "where": f"{u.where.file}:{u.where.line}"} for u in model.unverified],
        "axis": _axis(today), "bars": bars,
        "events": _events([(r["name"], periods[r["name"]], r["instrument_id"] or "")
                           for r in rules if r["name"] in periods]
                          + [(label, p, label.split(" of ")[-1].split(" ")[0])
                             for label, p in _listing_periods(rb)]),
    }


def _conclusions(rb: CheckedRulebook, rulebook: str) -> list[dict[str, Any]]:
    """The rulebook's named conclusions, each with the rules that test it."""
    out = []
    for name, c in sorted(rb.conclusions.items()):
        if rb.rulebook_of(c.span.file) not in (rulebook, None):
            continue
        cite = ast.first_attr(c, ast.Citation)
        when = ast.first_attr(c, ast.When)
        note = ast.first_attr(c, ast.Unverified)
        rules = sorted(r for r, decl in rb.rules.items()
                       if (w := ast.first_attr(decl, ast.When)) is not None and any(
                           isinstance(n, ast.ConclusionRef) and n.name.name == name
                           for n in iter_conditions(w.condition)))
        out.append({"name": name, "title": c.title.value,
                    "instrument": cite.instrument.name if cite else None,
                    "provision": str(cite.provision) if cite and cite.provision else None,
                    "condition": plain(when.condition, rb) if when else "",
                    "written": condition_text(when.condition) if when else "",
                    "unverified": note.text.value if note else None, "rules": rules})
    return out


def _parameters(rb: CheckedRulebook, rulebook: str) -> list[dict[str, Any]]:
    """The rulebook's parameters, each value in words with its period and act, and the rules
    that read them."""
    out = []
    for name, p in sorted(rb.parameters.items()):
        if rb.rulebook_of(p.span.file) not in (rulebook, None):
            continue
        rules = sorted(r for r, decl in [*rb.rules.items(), *rb.conclusions.items()]
                       if (w := ast.first_attr(decl, ast.When)) is not None
                       and name in parameters_read(w.condition))
        out.append({"name": name, "title": p.title.value, "rules": rules,
                    "value_lines": [parameter_text(iv, v, cite)
                               for iv, v, cite in parameter_periods(rb, name)]})
    return out


def _facts(rb: CheckedRulebook, rulebook: str) -> list[dict[str, Any]]:
    """The facts the rulebook declares, each with its type, the columns it is read from, and
    the rules, exceptions and conclusions that read it."""
    out = []
    for f in rb.declared_fields():
        if f.rulebook and rulebook not in f.rulebook.split(", "):
            continue
        names = {f.name, *f.aliases}
        rules = sorted(r for r, decl in [*rb.rules.items(), *rb.exceptions.items(),
                                         *rb.conclusions.items()]
                       if (w := ast.first_attr(decl, ast.When)) is not None
                       and names & _refs(w.condition))
        out.append({"name": f.name, "title": f.description, "type": f.type_words,
                    "aliases": list(f.aliases), "read_from": f.read_from, "rules": rules})
    return out


def _refs(node: object) -> set[str]:
    """Every name a condition refers to."""
    if isinstance(node, ast.Ref):
        return {node.name}
    if isinstance(node, tuple):
        return set().union(*(_refs(n) for n in node)) if node else set()
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return set().union(*(_refs(getattr(node, f.name)) for f in dataclasses.fields(node)
                             if f.name != "span"))
    return set()


def _announcements(rb: CheckedRulebook) -> list[dict[str, Any]]:
    """Per (list, listing announcement): its entries, the measures they impose and the
    stretches of its life, from the same periods the checks use. Entries amended one by one
    are listed apart with their own stretches."""
    model = law(rb)
    groups: dict[tuple[str, str, tuple[Any, ...], str], list[str]] = defaultdict(list)
    for lp in listing_periods(rb):
        stretches = tuple(timeline(lp.periods))
        measures = ", ".join(lp.measures) or "no measures"
        groups[(lp.list, lp.instrument, stretches, measures)].append(
            model.parties[lp.party].legal_name)
    return [{"list": lst, "instrument": ins, "entries": sorted(names, key=str.lower),
             "measures": measures,
             "timeline": [dict(zip(("from", "until", "status", "by"), seg, strict=True))
                          for seg in stretches]}
            for (lst, ins, stretches, measures), names in sorted(groups.items(),
                                                                 key=lambda kv: kv[0][:2])]


def _affects(a: dict[str, Any], rule: dict[str, Any]) -> bool:
    if a["target_kind"] == "rule":
        return bool(a["target_name"] == rule["name"])
    if a["target_kind"] == "instrument" and a["target_name"] == rule["instrument_id"]:
        return a["target_provision"] is None or a["target_provision"] == rule["provision"]
    return False


def _x(day: dt.date, today: dt.date) -> float:
    """Position of a day on the timeline, 0–100 (% of its width)."""
    span = (today - TIMELINE_START).days or 1
    return max(0.0, min(100.0, (day - TIMELINE_START).days / span * 100))


def _segments(periods: Periods, today: dt.date) -> list[dict[str, Any]]:
    out = []
    for start, end, status, by in timeline(periods):
        s = dt.date.fromisoformat(start) if start else TIMELINE_START
        e = dt.date.fromisoformat(end) if end else today
        if e < TIMELINE_START or s > today:
            continue
        x0, x1 = _x(s, today), _x(min(e, today) + ONE_DAY, today)
        out.append({"x": x0, "w": max(x1 - x0, 0.15), "status": status, "by": by,
                    "title": f"{status}{' by ' + by if by else ''}: {start or '…'} – "
                             f"{end or ''}"})
    return out


def _listing_periods(rb: CheckedRulebook) -> list[tuple[str, Periods]]:
    """One entry per (list, listing instrument): when its listings were in force."""
    seen: dict[tuple[str, str], Periods] = {}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for lp in listing_periods(rb):
        key = (lp.list, lp.instrument)
        seen.setdefault(key, lp.periods)
        counts[key] += 1
    return [(f"{lst} entries of {ins} ({counts[(lst, ins)]})", p)
            for (lst, ins), p in sorted(seen.items(), key=lambda kv: kv[0])]


def _listing_bars(rb: CheckedRulebook, today: dt.date) -> list[Bar]:
    return [Bar(label, "#lists", _segments(p, today)) for label, p in _listing_periods(rb)]


def _axis(today: dt.date) -> list[dict[str, Any]]:
    ticks = []
    day = TIMELINE_START
    while day <= today:
        if day.month in (1, 7):
            ticks.append({"x": _x(day, today), "label": day.strftime("%Y-%m")})
        day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return ticks


def _events(named: Sequence[tuple[str, Periods, str]]) -> list[dict[str, Any]]:
    """Dated changes, oldest first, read off the same in-force periods the checks use: a
    control taking effect, being suspended, repealed or lifted, coming back, expiring."""
    events: list[dict[str, Any]] = []
    for label, periods, instrument in named:
        previous = None
        for start, _end, status, by in timeline(periods):
            if start is None:
                previous = status
                continue
            if status == "in force":
                what = f"{label} back in force" if previous in ("suspended", "not in force") \
                    else f"{label} takes effect"
            else:
                what = f"{label} {status}"
            events.append({"date": start, "what": what, "by": by or instrument})
            previous = status
    return sorted(events, key=lambda e: (e["date"], e["what"]))
