"""The rows a checked rulebook contributes to the knowledge base: instruments and provisions,
items and codes, groups, countries, lists, parties, rules, amendments, examples and the facts
it marks unverified. Analysts read the law here; the compiled checks join against it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from dsl.basis import counted_lapses, lapse_caveat, sources_checked
from dsl.model import law
from dsl.periods import Periods
from dsl.periods import timeline as law_timeline
from dsl.rulebook import CheckedRulebook
from kb.store.tables import SOURCES_TABLE, add_fact_columns

Row = dict[str, Any]


def _join(values: tuple[str, ...]) -> str | None:
    return "; ".join(values) or None


def instrument_rows(rb: CheckedRulebook) -> tuple[list[Row], list[Row]]:
    instruments: list[Row] = []
    provisions: list[Row] = []
    for i in law(rb).instruments.values():
        instruments.append({
            "id": i.id, "title": i.title, "title_zh": i.title_zh, "issuer": i.issuer,
            "number": i.number, "issued": i.issued, "in_force": i.in_force, "url": i.url,
            "confidence": i.confidence, "notes": i.notes, "unverified": i.unverified,
            "source_file": i.where.file, "source_line": i.where.line,
        })
        provisions.extend({"instrument_id": p.instrument, "provision": p.provision,
                           "kind": p.kind, "label": p.label, "text": p.text,
                           "text_zh": p.text_zh} for p in i.provisions)
    return instruments, provisions


def item_rows(rb: CheckedRulebook, hs6: frozenset[str]) -> dict[str, list[Row]]:
    model = law(rb)
    groups = [{"name": g.name, "title": g.title, "instrument_id": g.instrument,
               "provision": g.provision} for g in model.groups.values()]
    items: list[Row] = []
    codes: list[Row] = []
    controls: list[Row] = []
    for it in model.items.values():
        items.append({
            "name": it.name, "title": it.title, "title_zh": it.title_zh,
            "control_code": it.control_code, "instrument_id": it.instrument,
            "provision": it.provision, "controlled_if": it.controlled_if,
            "confidence": it.confidence, "notes": it.notes, "unverified": it.unverified,
            "source_file": it.where.file, "source_line": it.where.line,
        })
        rulebook = rb.rulebook_of(it.where.file) or ""
        codes.extend({"item": it.name, "code": c.digits, "written": c.written,
                      "hs6": c.digits[:6] if c.digits[:6] in hs6 else None,
                      "rulebook": rulebook} for c in it.codes)
    for name in sorted(model.items):
        controls.extend({"item": name, "instrument_id": c.instrument, "provision": c.provision,
                         "controlled_from": c.start.isoformat() if c.start else None,
                         "controlled_until": c.end.isoformat() if c.end else None}
                        for c in model.items[name].controls)
    members = [{"group_name": g, "item": i} for g in sorted(model.groups)
               for i in model.groups[g].members]
    return {"item_groups": groups, "items": items, "item_customs_codes": codes,
            "item_group_members": members, "item_controls": controls}


def country_group_rows(rb: CheckedRulebook) -> tuple[list[Row], list[Row]]:
    groups = list(law(rb).country_groups.values())
    return ([{"name": g.name, "title": g.title, "valid_from": g.valid_from,
              "valid_until": g.valid_until, "instrument_id": g.instrument, "source": g.source,
              "unverified": g.unverified} for g in groups],
            [{"group_name": g.name, "country": c} for g in groups for c in g.members])


def party_rows(rb: CheckedRulebook) -> dict[str, list[Row]]:
    model = law(rb)
    lists = [{"name": pl.name, "title": pl.title, "title_zh": pl.title_zh,
              "issuer": pl.issuer, "instrument_id": pl.instrument,
              "match_threshold": pl.match_threshold} for pl in model.lists.values()]
    parties: list[Row] = []
    aliases: list[Row] = []
    entries: list[Row] = []
    for p in model.parties.values():
        parties.append({
            "name": p.name, "legal_name": p.legal_name, "country": p.country,
            "address": p.address, "phone": p.phone, "owner": p.owner,
            "owner_share_pct": p.owner_share_pct, "unverified": p.unverified,
        })
        aliases.extend({"party": p.name, "alias": a} for a in p.aliases)
        entries.extend({"party": p.name, "list": e.list, "instrument_id": e.instrument,
                        "provision": e.provision, "listed_from": e.listed_from,
                        "listed_until": e.listed_until, "measures": _join(e.measures)}
                       for e in p.listings)
    return {"party_lists": lists, "parties": parties, "party_aliases": aliases,
            "list_entries": entries}


def value_range_rows(rb: CheckedRulebook) -> list[Row]:
    return [{"name": v.name, "title": v.title,
             "customs_codes": _join(tuple(c.written for c in v.codes)),
             "low_usd_per_kg": v.low_usd_per_kg, "high_usd_per_kg": v.high_usd_per_kg,
             "instrument_id": v.instrument, "source": v.source, "unverified": v.unverified,
             "rulebook": v.rulebook} for v in law(rb).value_ranges.values()]


def rulebook_of(rb: CheckedRulebook, file: str) -> str | None:
    """The rulebook a file belongs to: the one declared in its folder (or a parent folder)."""
    return rb.rulebook_of(file)


def rule_rows(rb: CheckedRulebook, rulebook: str | None = None) -> list[Row]:
    rules = sorted(law(rb).rules.values(), key=lambda r: r.kind != "rule")
    return [{
        "name": r.name, "kind": r.kind, "title": r.title, "outcome": r.outcome,
        "severity": r.severity, "instrument_id": r.instrument, "provision": r.provision,
        "valid_from": r.valid_from, "valid_until": r.valid_until, "condition": r.condition,
        "excepts": _join(r.excepts), "overrides": _join(r.overrides), "explain": r.explain,
        "unverified": r.unverified, "source_file": r.where.file, "source_line": r.where.line,
        "source_text": r.source_text, "rulebook": rulebook or r.rulebook,
        "title_zh": r.title_zh, "outcome_zh": r.outcome_zh, "explain_zh": r.explain_zh,
    } for r in rules]


def amendment_rows(rb: CheckedRulebook) -> list[Row]:
    return [{
        "id": a.id, "action": a.action, "target": a.target, "target_kind": a.target_kind,
        "target_name": a.target_name, "target_provision": a.target_provision,
        "target_list": a.target_list, "instrument_id": a.instrument, "provision": a.provision,
        "valid_from": a.valid_from, "valid_until": a.valid_until,
        "source_file": a.where.file, "source_line": a.where.line,
    } for a in law(rb).amendments]


def example_rows(rb: CheckedRulebook) -> list[Row]:
    return [{
        "id": ex.id, "title": ex.title, "rules": _join(ex.rules),
        "expectations": _join(tuple(x.text for x in ex.expectations)),
        "source_file": ex.where.file, "source_line": ex.where.line,
        "source_text": ex.source_text,
    } for ex in law(rb).examples]


def relative_source(file: str, roots: Sequence[Path]) -> str:
    """A rulebook file as the knowledge base names it: relative to the rulebook folder it was
    found in (`cn-strategic-minerals/rules.excon`), or its bare name for a file given by
    itself, never a path of the machine that built it."""
    path = Path(file).resolve()
    for root in roots:
        root = Path(root).resolve()
        if root.is_dir() and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
        if path == root:
            return path.name
    return path.name


def load_rulebook(db: Database, rb: CheckedRulebook, hs6: frozenset[str],
                  roots: Sequence[Path] = ()) -> dict[str, int]:
    """Insert every rulebook table; returns row counts. Source files are named relative to
    `roots`, the rulebook paths the rulebook was loaded from."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}

    def put(table: str, rows: list[Row]) -> None:
        for row in rows:
            if row.get("source_file"):
                file = row["source_file"]
                if file not in names:
                    names[file] = relative_source(file, roots)
                row["source_file"] = names[file]
        if rows:
            db.table(table).insert_all(rows)
        counts[table] = len(rows)

    # the rulebooks as written, so that the knowledge base alone can screen (`Screener(db=…)`)
    sources = {relative_source(f.path, roots): Path(f.path).read_text(encoding="utf-8")
               for f in rb.files if Path(f.path).is_file()}
    db.table(SOURCES_TABLE).insert_all(
        [{"path": k, "text": v} for k, v in sorted(sources.items())], pk="path")
    model = law(rb)
    put("rulebooks", [{"name": n, "title": model.rulebooks[n].title,
                       "jurisdiction": _join(model.rulebooks[n].jurisdiction),
                       "version": model.version,
                       "sources_checked": model.rulebooks[n].sources_checked}
                      for n in sorted(model.rulebooks)])
    instruments, provisions = instrument_rows(rb)
    put("instruments", instruments)
    put("provisions", provisions)
    for table, rows in item_rows(rb, hs6).items():
        put(table, rows)
    groups, members = country_group_rows(rb)
    put("country_groups", groups)
    put("country_group_members", members)
    for table, rows in party_rows(rb).items():
        put(table, rows)
    put("value_ranges", value_range_rows(rb))
    put("rules", rule_rows(rb))
    put("amendments", amendment_rows(rb))
    counted = set(counted_lapses(model))
    put("lapses", [
        {"id": n, "target": x.target, "target_kind": x.kind, "target_name": x.name,
         "target_provision": x.provision, "suspended_by": ", ".join(b for b in x.by if b),
         "ended": x.ended, "resumes": x.resumes, "after_sources": int(x in counted),
         "caveat": lapse_caveat(x, sources_checked(model, x.rulebook)), "rulebook": x.rulebook}
        for n, x in enumerate(model.lapsed_suspensions(dt.date.max), 1)])
    facts = rb.declared_fields()
    put("declared_facts", [
        {"name": f.name, "title": f.description, "type": f.type_words, "unit": f.unit,
         "choices": _join(f.choices) if f.declared == "one of" else None,
         "aliases": _join(f.aliases), "read_from": f.read_from or None, "rulebook": f.rulebook,
         "source_file": rb.facts[f.name].span.file, "source_line": rb.facts[f.name].span.line}
        for f in facts])
    add_fact_columns(db, facts)
    put("examples", example_rows(rb))
    put("unverified_facts", [
        {"id": n, "kind": u.kind, "entry": u.entry, "note": u.note,
         "source_file": u.where.file, "source_line": u.where.line}
        for n, u in enumerate(model.unverified, 1)
    ])
    return counts


def timeline(periods: Periods) -> list[tuple[str | None, str | None, str, str | None]]:
    """`dsl.periods.timeline` as rows: ISO days, status, the amending instrument."""
    return [(iso_day(t.start), iso_day(t.end), t.status, t.instrument)
            for t in law_timeline(periods)]


def iso_day(day: dt.date | None) -> str | None:
    """A day as the knowledge base stores it (ISO text); None for an open end."""
    return day.isoformat() if day else None
