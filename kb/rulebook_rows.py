"""The rows a checked rulebook contributes to the knowledge base: instruments and provisions,
items and codes, groups, countries, lists, parties, rules, amendments, examples and the facts
it marks unverified. Analysts read the law here; the compiled checks join against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from dsl import ast
from dsl.check import CheckedRulebook, normalise_customs_code
from dsl.format import attribute, condition, format_file, header
from dsl.periods import item_controls

Row = dict[str, Any]


def _join(values: Iterable[str]) -> str | None:
    text = "; ".join(v for v in values if v)
    return text or None


def _texts(decl: object, kind: type[Any]) -> str | None:
    """The texts of one kind of attribute (notes, sources, …), joined."""
    return _join(str(a.text.value) for a in ast.attrs_of(decl, kind))


def _cite(decl: object) -> tuple[str | None, str | None]:
    act = ast.first_attr(decl, ast.ControlAct)
    c = act.citation if act is not None else ast.first_attr(decl, ast.Citation)
    if c is None:
        return None, None
    return c.instrument.name, str(c.provision) if c.provision else None


def _source_text(decl: ast.Declaration) -> str:
    return format_file(ast.SourceFile("", (decl,)))


def _date(decl: object, kind: type) -> str | None:
    a = ast.first_attr(decl, kind)
    return a.date.text if a is not None else None


def instrument_rows(rb: CheckedRulebook) -> tuple[list[Row], list[Row]]:
    instruments, provisions = [], []
    for name, ins in rb.instruments.items():
        titles = ast.attrs_of(ins, ast.Title)
        conf = ast.first_attr(ins, ast.Confidence)
        instruments.append({
            "id": name,
            "title": _join(t.text.value for t in titles if t.lang is None),
            "title_zh": _join(t.text.value for t in titles if t.lang == "zh"),
            "issuer": _join(r.name for a in ast.attrs_of(ins, ast.Issuer) for r in a.names),
            "number": _texts(ins, ast.Number),
            "issued": _date(ins, ast.Issued),
            "in_force": _date(ins, ast.InForce),
            "url": _texts(ins, ast.Url),
            "confidence": conf.level if conf else None,
            "notes": _texts(ins, ast.Note),
            "unverified": _texts(ins, ast.Unverified),
            "source_file": ins.span.file,
            "source_line": ins.span.line,
        })
        for p in ast.attrs_of(ins, ast.Provision):
            provisions.append({
                "instrument_id": name, "provision": f"{p.kind} {p.label}", "kind": p.kind,
                "label": p.label, "text": p.text.value,
                "text_zh": p.text_zh.value if p.text_zh else None,
            })
    return instruments, provisions


def item_rows(rb: CheckedRulebook, hs6: frozenset[str]) -> dict[str, list[Row]]:
    groups: list[Row] = []
    for name, grp in rb.groups.items():
        ins, prov = _cite(grp)
        groups.append({"name": name, "title": grp.title.value, "instrument_id": ins,
                       "provision": prov})
    items: list[Row] = []
    codes: list[Row] = []
    members: list[Row] = []
    for name, it in rb.items.items():
        ins, prov = _cite(it)
        if ins is None:  # the item rests on its group's citation
            for m in ast.attrs_of(it, ast.MemberOf):
                for g in m.groups:
                    if g.name in rb.groups:
                        ins, prov = _cite(rb.groups[g.name])
                        break
        control = ast.first_attr(it, ast.Control)
        conf = ast.first_attr(it, ast.Confidence)
        cond = ast.first_attr(it, ast.ControlledIf)
        items.append({
            "name": name, "title": it.title.value, "title_zh": _texts(it, ast.NameZh),
            "control_code": control.code.text if control else None,
            "instrument_id": ins, "provision": prov,
            "controlled_if": condition(cond.condition) if cond else None,
            "confidence": conf.level if conf else None,
            "notes": _texts(it, ast.Note), "unverified": _texts(it, ast.Unverified),
            "source_file": it.span.file, "source_line": it.span.line,
        })
        seen = set()
        for a in ast.attrs_of(it, ast.Customs):
            for c in a.codes:
                digits = normalise_customs_code(c.text)
                if digits in seen:
                    continue
                seen.add(digits)
                codes.append({"item": name, "code": digits, "written": c.text,
                              "hs6": digits[:6] if digits[:6] in hs6 else None})
    for group_name, names in sorted(rb.group_items.items()):
        members.extend({"group_name": group_name, "item": i} for i in sorted(names))
    controls = [{"item": item, "instrument_id": c.instrument, "provision": c.provision,
                 "controlled_from": c.start.isoformat() if c.start else None,
                 "controlled_until": c.end.isoformat() if c.end else None}
                for item, found in sorted(item_controls(rb).items()) for c in found]
    return {"item_groups": groups, "items": items, "item_customs_codes": codes,
            "item_group_members": members, "item_controls": controls}


def country_group_rows(rb: CheckedRulebook) -> tuple[list[Row], list[Row]]:
    groups: list[Row] = []
    members: list[Row] = []
    for name, cg in rb.country_groups.items():
        ins, _ = _cite(cg)
        groups.append({"name": name, "title": cg.title.value,
                       "valid_from": _date(cg, ast.ValidFrom),
                       "valid_until": _date(cg, ast.ValidUntil), "instrument_id": ins,
                       "source": _texts(cg, ast.Source),
                       "unverified": _texts(cg, ast.Unverified)})
        members.extend({"group_name": name, "country": c}
                       for c in sorted(rb.country_members.get(name, ())))
    return groups, members


def party_rows(rb: CheckedRulebook) -> dict[str, list[Row]]:
    lists = []
    for name, pl in rb.lists.items():
        ins, _ = _cite(pl)
        titles = ast.attrs_of(pl, ast.Title)
        threshold = ast.first_attr(pl, ast.MatchThreshold)
        lists.append({
            "name": name, "title": pl.title.value,
            "title_zh": _join(t.text.value for t in titles if t.lang == "zh"),
            "issuer": _join(r.name for a in ast.attrs_of(pl, ast.Issuer) for r in a.names),
            "instrument_id": ins,
            "match_threshold": float(threshold.value) if threshold else None,
        })
    parties, aliases, entries = [], [], []
    for name, p in rb.parties.items():
        country = ast.first_attr(p, ast.Country)
        owner = ast.first_attr(p, ast.OwnedBy)
        parties.append({
            "name": name, "legal_name": p.title.value,
            "country": country.code.name if country else None,
            "address": _texts(p, ast.Address), "phone": _texts(p, ast.Phone),
            "owner": owner.owner.name if owner else None,
            "owner_share_pct": float(owner.share_pct) if owner and owner.share_pct else None,
            "unverified": _texts(p, ast.Unverified),
        })
        seen = {p.title.value}
        for a in ast.attrs_of(p, ast.Alias):
            for n in a.names:
                if n.value not in seen:
                    seen.add(n.value)
                    aliases.append({"party": name, "alias": n.value})
        for lst in ast.attrs_of(p, ast.Listing):
            entries.append({
                "party": name, "list": lst.list.name,
                "instrument_id": lst.citation.instrument.name,
                "provision": str(lst.citation.provision) if lst.citation.provision else None,
                "listed_from": lst.valid_from.date.text,
                "listed_until": lst.valid_until.date.text if lst.valid_until else None,
                "measures": _join(rb.listing_measures(lst)),
            })
    return {"party_lists": lists, "parties": parties, "party_aliases": aliases,
            "list_entries": entries}


def value_range_rows(rb: CheckedRulebook) -> list[Row]:
    rows = []
    for name, vr in rb.value_ranges.items():
        pr = ast.first_attr(vr, ast.PriceRange)
        rows.append({
            "name": name, "title": vr.title.value,
            "customs_codes": _join(c.text for a in ast.attrs_of(vr, ast.Customs)
                                   for c in a.codes),
            "low_usd_per_kg": float(pr.low) if pr else None,
            "high_usd_per_kg": float(pr.high) if pr else None,
            "instrument_id": _cite(vr)[0], "source": _texts(vr, ast.Source),
            "unverified": _texts(vr, ast.Unverified), "rulebook": rb.rulebook_of(vr.span.file),
        })
    return rows


def rulebook_of(rb: CheckedRulebook, file: str) -> str | None:
    """The rulebook a file belongs to: the one declared in its folder (or a parent folder)."""
    return rb.rulebook_of(file)


def rule_rows(rb: CheckedRulebook, rulebook: str | None = None) -> list[Row]:
    rows = []
    for kind, table in (("rule", rb.rules), ("exception", rb.exceptions)):
        for name, r in table.items():
            ins, prov = _cite(r)
            then = ast.first_attr(r, ast.Then)
            when = ast.first_attr(r, ast.When)
            iv = rb.validity.get(name)
            rows.append({
                "name": name, "kind": kind, "title": r.title.value if r.title else None,
                "outcome": then.outcome.kind if then else ("exception" if kind == "exception"
                                                           else None),
                "severity": then.outcome.severity if then else None,
                "instrument_id": ins, "provision": prov,
                "valid_from": iv.start.isoformat() if iv and iv.start else None,
                "valid_until": iv.end.isoformat() if iv and iv.end else None,
                "condition": condition(when.condition) if when else None,
                "excepts": _join(x.name for a in ast.attrs_of(r, ast.Excepts) for x in a.rules),
                "overrides": _join(x.name for a in ast.attrs_of(r, ast.Overrides)
                                   for x in a.rules),
                "explain": _join(a.template.value for a in ast.attrs_of(r, ast.Explain)),
                "unverified": _texts(r, ast.Unverified),
                "source_file": r.span.file, "source_line": r.span.line,
                "source_text": _source_text(r),
                "rulebook": rulebook or rulebook_of(rb, r.span.file),
            })
    return rows


def amendment_rows(rb: CheckedRulebook) -> list[Row]:
    rows = []
    n = 0
    for am in rb.amendments:
        ins, prov = _cite(am)
        for t in am.targets:
            n += 1
            kind = {"ref": "rule" if t.name.name in rb.rules or t.name.name in rb.exceptions
                    else "instrument", "listings": "listings", "listing": "listing"}[t.kind]
            rows.append({
                "id": n, "action": am.action, "target": header(am).split(" ", 1)[1],
                "target_kind": kind, "target_name": t.name.name,
                "target_provision": str(t.provision) if t.provision else None,
                "target_list": t.list.name if t.list else None,
                "instrument_id": ins, "provision": prov,
                "valid_from": _date(am, ast.ValidFrom), "valid_until": _date(am, ast.ValidUntil),
                "source_file": am.span.file, "source_line": am.span.line,
            })
    return rows


def example_rows(rb: CheckedRulebook) -> list[Row]:
    rows = []
    for n, ex in enumerate(rb.examples, 1):
        expects = ast.attrs_of(ex, ast.Expect)
        named = {x.rule.name for x in expects if x.rule}
        # "RULE: …" titles an example of that rule even when it expects no finding at all
        prefix = ex.title.value.split(":", 1)[0].strip()
        if ":" in ex.title.value and (prefix in rb.rules or prefix in rb.exceptions):
            named.add(prefix)
        rows.append({
            "id": n, "title": ex.title.value,
            "rules": _join(sorted(named)),
            "expectations": _join(attribute(x)[0] for x in expects),
            "source_file": ex.span.file, "source_line": ex.span.line,
            "source_text": _source_text(ex),
        })
    return rows


def load_rulebook(db: Database, rb: CheckedRulebook, hs6: frozenset[str]) -> dict[str, int]:
    """Insert every rulebook table; returns row counts."""
    counts: dict[str, int] = {}

    def put(table: str, rows: list[Row]) -> None:
        if rows:
            db.table(table).insert_all(rows)
        counts[table] = len(rows)

    names = sorted(rb.rulebooks)
    put("rulebooks", [{
        "name": n, "title": rb.rulebooks[n].title.value,
        "jurisdiction": _join(j.country.name for j in ast.attrs_of(rb.rulebooks[n],
                                                                   ast.Jurisdiction)),
        "version": rb.version,
    } for n in names])
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
    put("examples", example_rows(rb))
    put("unverified_facts", [
        {"id": n, "kind": kind, "entry": name, "note": text, "source_file": span.file,
         "source_line": span.line}
        for n, (kind, name, text, span) in enumerate(rb.unverified, 1)
    ])
    return counts



