"""Export the checked rules for other tools: `rules_json()`, the checked rulebook as JSON,
described by `rules_schema()`, and `rulebook_from_json()`, the way back. (The SQL per engine
is `kb.screen.bundle`.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from dsl import ast
from dsl.basis import BasisPlan, basis_plan
from dsl.compile import LICENSABLE, OUTCOME_OF, CompiledRulebook, listing_nodes, required_items
from dsl.format import condition as condition_text
from dsl.interpret import uses_items
from dsl.ir import node_schemas, plain, source_files
from dsl.model import Rule, declarations_json, law
from dsl.names import MENTION_FORMS_LIMIT
from dsl.periods import item_controls, listing_periods, parameter_periods, rule_periods
from dsl.rulebook import CheckedRulebook, Interval
from dsl.schema import UNIT_DIMENSIONS, UNIT_FACTORS

_ALWAYS = Interval(None, None)
CUSTOMS_MATCH = (
    "A declared customs code (digits only) matches an item's reference code exactly when the "
    "reference has 10 digits, and by prefix when it has 8 (a tariff line) or 6 (an HS "
    "subheading). The most precise match decides within each rulebook: a code that some item "
    "of a rulebook lists exactly is that item only for that rulebook, and an 8-digit line "
    "hides the rulebook's 6-digit subheadings; each rulebook's items are matched apart.")


def field_columns(rb: CheckedRulebook | None = None) -> list[dict[str, Any]]:
    """The facts rules name, and the input column each is read from (with `rb`, the facts its
    rulebooks declare too)."""
    from kb.store.schema import declaration_schema

    out = []
    schema = declaration_schema() if rb is None else rb.schema(declaration_schema())
    for f in schema.fields:
        parameter = f.parameter_unit is not None or f.parameter_values is not None
        out.append({
            "field": f.name, "aliases": list(f.aliases), "type": f.type,
            "dimension": f.dimension, "required": f.required, "description": f.description,
            "column": "parameters" if parameter else f.name,
            **({"parameter": f"{f.name}=VALUE {f.parameter_unit or ''}".rstrip()}
               if parameter else {}),
            **({"declared": f.type_words, "rulebook": f.rulebook} if f.declared else {}),
        })
    return out


def rules_json(rb: CheckedRulebook, compiled: CompiledRulebook,
               roots: Sequence[Path] = ()) -> dict[str, Any]:
    """The checked rulebook as JSON. `roots`: the rulebook paths it was loaded from, which the
    source files are named relative to."""
    from kb.store.rulebook_rows import relative_source

    periods = rule_periods(rb)
    views = {r.name: r.view for r in compiled.rules}
    said = {r.name: r.explanation for r in compiled.rules}
    written = declarations_json(rb)
    attributes = written.pop("rule_attributes")

    def rule(r: Rule) -> dict[str, Any]:
        return {
            "name": r.name, "kind": r.kind, "view": views.get(r.name), "title": r.title,
            "in_force": [[iv.start.isoformat() if iv.start else None,
                          iv.end.isoformat() if iv.end else None]
                         for iv in periods[r.name].intervals],
            "source": {"file": relative_source(r.where.file, roots), "line": r.where.line},
            "attributes": attributes[r.name],
            "basis": basis_json(basis_plan(rb, model, r.name)),
            "evaluation": evaluation(rb, r.name),
            **({"explanation": said[r.name]} if r.name in said else {}),
        }

    def conclusion(name: str, c: ast.Conclusion) -> dict[str, Any]:
        cite = ast.first_attr(c, ast.Citation)
        when = ast.first_attr(c, ast.When)
        note = ast.first_attr(c, ast.Unverified)
        return {
            "name": name, "title": c.title.value,
            "instrument": cite.instrument.name if cite else None,
            "provision": str(cite.provision) if cite and cite.provision else None,
            "condition": condition_text(when.condition) if when else None,
            "when": plain(when.condition) if when else None,
            "unverified": note.text.value if note else None,
            "source": {"file": relative_source(c.span.file, roots), "line": c.span.line},
        }

    model = law(rb)
    return {
        "format": "excon-rules/1",
        "excon_version": package_version("excon"),
        "rulebook_version": model.version,
        "rulebooks": written["rulebooks"],
        "sources_checked": {name: r.sources_checked for name, r in sorted(model.rulebooks.items())},
        "instruments": written["instruments"],
        "items": written["items"],
        "item_groups": {g: list(model.groups[g].members) for g in sorted(model.groups)},
        "country_groups": {g: list(model.country_groups[g].members)
                           for g in sorted(model.country_groups)},
        "lists": written["lists"],
        "parties": written["parties"],
        "rules": [rule(r) for r in sorted(model.rules.values(), key=lambda r: r.kind != "rule")],
        "conclusions": [conclusion(name, c) for name, c in sorted(rb.conclusions.items())],
        "parameters": [{"name": name, "title": p.title.value, "values": [
            {"comparator": v.op or None, "value": float(v.value), "unit": v.unit,
             "from": iv.start.isoformat() if iv.start else None,
             "until": iv.end.isoformat() if iv.end else None,
             "instrument": cite.instrument.name if cite else None,
             "provision": str(cite.provision) if cite and cite.provision else None}
            for iv, v, cite in parameter_periods(rb, name)],
            "sources": [a.text.value for a in ast.attrs_of(p, ast.Source)],
            "unverified": [a.text.value for a in ast.attrs_of(p, ast.Unverified)],
            "source": {"file": relative_source(p.span.file, roots), "line": p.span.line}}
            for name, p in sorted(rb.parameters.items())],
        "facts": [{
            "name": f.name, "title": f.description, "type": f.declared, "unit": f.unit,
            "choices": list(f.choices), "aliases": list(f.aliases),
            "read_from": f.read_from or None, "rulebook": f.rulebook,
            "source": {"file": relative_source(rb.facts[f.name].span.file, roots),
                       "line": rb.facts[f.name].span.line}}
            for f in rb.declared_fields()],
        "amendments": written["amendments"],
        "examples": written["examples"],
        "value_ranges": [{"name": n, "code": c, "low": lo, "high": hi, "unit": "USD/kg"}
                         for n, c, lo, hi in sorted(rb.value_range_rows())],
        "customs_codes": {name: sorted({c.digits for c in item.codes})
                          for name, item in sorted(model.items.items())},
        "customs_match": CUSTOMS_MATCH,
        "item_choice": item_choice(rb),
        # the words of each set of terms, and the items they stand for (a word counts only
        # while one of them is controlled; null: on every day)
        "terms": {name: {"title": t.title.value,
                         "words": [w.value for a in ast.attrs_of(t, ast.Words) for w in a.words],
                         "for_items": None if (gate := rb.stands_for(t)) is None
                         else sorted(gate)}
                  for name, t in sorted(rb.terms.items())},
        "country_group_periods": {g: {
            "from": iv.start.isoformat() if iv.start else None,
            "until": iv.end.isoformat() if iv.end else None}
            for g in sorted(model.country_groups)
            for iv in [rb.validity.get(g) or _ALWAYS]},
        # each listing of a party on a list with the days it is in force (suspensions,
        # lifts and repeals applied, as item_controls), its act and the measures it imposes
        "listing_periods": [{
            "party": lp.party, "list": lp.list, "instrument": lp.instrument,
            "provision": lp.provision, "measures": list(lp.measures),
            "periods": [[iv.start.isoformat() if iv.start else None,
                         iv.end.isoformat() if iv.end else None]
                        for iv in lp.periods.intervals]}
            for lp in listing_periods(rb)],
        # the score (0-100) a declared name must reach against a list's spellings
        "match_thresholds": {name: float(t.value) if (t := ast.first_attr(lst, ast.MatchThreshold))
                             else 100.0 for name, lst in sorted(rb.lists.items())},
        "units": {u: {"dimension": dim, "factor": UNIT_FACTORS.get(u, 1.0)}
                  for u, dim in sorted(UNIT_DIMENSIONS.items())},
        "text_matching": TEXT_MATCHING,
        # when each item is controlled, and by which act and provision (amendments applied:
        # the act that started last governs where several are in force); a finding on an
        # item cites the act controlling it on the judged day
        "item_controls": {name: [
            {"from": c.start.isoformat() if c.start else None,
             "until": c.end.isoformat() if c.end else None,
             "instrument": c.instrument, "provision": c.provision}
            for c in controls] for name, controls in sorted(item_controls(rb).items())},
        "fields": field_columns(rb),
        # every declaration as written, with its file: enough to check and screen again
        "declarations": [{"file": relative_source(sf.path, roots), "line": d.span.line,
                          "declaration": plain(d)}
                         for sf in rb.files for d in sf.declarations],
    }


TEXT_MATCHING = (
    "`mentions`: the text's ASCII letters are lower-cased (nothing else is folded), and each "
    "word is looked for in lower case and in the forms its other cased letters give: each such "
    "letter (one whose upper case is one letter) as itself, its upper case and that upper "
    "case's lower case (a final ς also as σ and Σ), every combination while they are at most "
    f"{MENTION_FORMS_LIMIT}; beyond that, the word in lower case, with all those letters upper "
    "case, with each of them refolded (upper then lower case), and with its first letter upper "
    "case. The text mentions the word when it holds one of the forms.")


def evaluation(rb: CheckedRulebook, name: str) -> dict[str, Any]:
    """What an evaluator needs of a rule or exception besides its attributes, resolved as the
    checks resolve it: its condition with `item is dual-use`, `NAME holds` and the rulebook's
    scope written out; what overrides or excepts it; the outcome a finding gives and what a
    missing fact changes; the act it cites, and when the act controlling the matched item is
    cited instead; the value ranges of each `within range of`."""
    decl = rb.rules.get(name) or rb.exceptions[name]
    condition = rb.condition_of(decl)
    then = ast.first_attr(decl, ast.Then)
    kind = then.outcome.kind if then else None
    cite = ast.first_attr(decl, ast.Citation)
    required = required_items(condition, rb) if condition is not None else None
    written = plain(condition) if condition is not None else None
    ranges: dict[str, list[list[Any]]] = {}
    for node in _nodes(written):
        if node["node"] == "InRange":
            names = [m["name"] for m in node["members"]]
            ranges[",".join(names)] = [[low, high, None if gate is None else sorted(gate)]
                                       for _, low, high, gate in rb.value_ranges_for(names)]
    suppressors = rb.suppressors(name)
    return {
        "condition": written,
        "outcome": OUTCOME_OF.get(kind, kind) if kind and kind != "permitted" else None,
        "severity": then.outcome.severity if then else None,
        "licensable": kind in LICENSABLE,
        "per_item": uses_items(condition) or any(
            uses_items(rb.condition_of(x)) for x in suppressors),
        "suppressed_by": [x.name.name for x in suppressors],
        "if_missing": [{"field": m.field.name,
                        "outcome": OUTCOME_OF.get(m.outcome.kind, m.outcome.kind)
                        if m.outcome is not None else None}
                       for m in ast.attrs_of(decl, ast.IfMissing)],
        "citation": {"instrument": cite.instrument.name if cite else None,
                     "provision": str(cite.provision) if cite and cite.provision else None},
        "cites_control": kind == "licence required" and condition is not None
        and not listing_nodes(condition),
        # when the condition cannot hold without a listing: its `listed` tests, in order; a
        # finding cites the act of the first one's best listing (highest score, then the
        # party's name, the list, the act, the provision), else its own citation
        "cites_listing": None if condition is None or (found := listing_nodes(condition)) is None
        else [plain(n) for n in found],
        "required_items": sorted(required) if required is not None else None,
        "value_ranges": ranges,
    }


def _nodes(tree: Any) -> Iterator[Mapping[str, Any]]:
    """The nodes of a plain (JSON) syntax tree."""
    if isinstance(tree, Mapping):
        if "node" in tree:
            yield tree
        for v in tree.values():
            yield from _nodes(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _nodes(v)


def item_choice(rb: CheckedRulebook) -> dict[str, Any]:
    """`customs_match` as data: which items a declared code matches, step by step, and which
    of a rule's matched items its finding takes."""
    model = law(rb)
    return {
        "within": "rulebook",
        "item_rulebooks": {name: rb.rulebook_of(it.where.file) or ""
                           for name, it in sorted(model.items.items())},
        "steps": [{"reference_digits": 10, "match": "exact"},
                  {"reference_digits": 8, "match": "prefix"},
                  {"reference_digits": 6, "match": "prefix"}],
        "decides": "first-step-that-matches",
        "ties": "all",
        "finding_item": ["certain-before-undetermined", "item-name"],
        "description": (
            "Within each rulebook (`item_rulebooks`), try the steps in order: a reference code "
            "of `reference_digits` digits matches a declared code equal to it (`exact`) or "
            "beginning with it (`prefix`). The first step at which some item of the rulebook "
            "matches decides, and every item matched at that step is one of the declaration's "
            "items (`ties`: all); the rulebooks' matches are added together. A rule judges each "
            "of the declaration's items and gives one finding: for the item whose outcome is "
            "certain rather than undetermined, then the first item by name (`finding_item`)."),
    }


def basis_json(plan: BasisPlan) -> dict[str, Any]:
    """A rule's basis plan (`dsl.basis`): how a tool gives each finding its basis and caveat
    from the finding's judged day, instrument, provision and matched item."""
    return {
        "lapses": [{"resumes": t.resumes, "instrument": t.instrument, "provision": t.provision,
                    "caveat": t.caveat} for t in plan.lapses],
        "rule_unverified": plan.rule_unverified,
        "items_unverified": dict(plan.items_unverified),
        "acts_unverified": dict(plan.acts_unverified),
    }


def rulebook_from_json(document: Mapping[str, Any]) -> CheckedRulebook:
    """The checked rulebook again, from rules.json alone (its `declarations`): the same
    version, the same law."""
    from dsl.check import check
    from kb.store.schema import declaration_schema

    rb, diagnostics = check(source_files(document["declarations"]), declaration_schema())
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise ValueError(f"rules.json does not check: {errors[0].message}")
    if rb.version != document["rulebook_version"]:
        raise ValueError(f"rules.json gives version {rb.version}, not the "
                         f"{document['rulebook_version']} it names")
    return rb


def rules_schema() -> dict[str, Any]:
    """The published JSON Schema of rules.json: kb/data/rules.schema.json, with a definition
    for every kind of node of the language (from its syntax tree, `dsl.ir`)."""
    schema: dict[str, Any] = json.loads(
        resources.files("kb").joinpath("data/rules.schema.json").read_text(encoding="utf-8"))
    schema["$defs"].update(node_schemas())
    return schema


def rules_schema_text() -> str:
    return json.dumps(rules_schema(), ensure_ascii=False, indent=2) + "\n"


def rules_json_text(rb: CheckedRulebook, compiled: CompiledRulebook,
                    roots: Sequence[Path] = ()) -> str:
    return json.dumps(rules_json(rb, compiled, roots), ensure_ascii=False, indent=2) + "\n"
