"""How a rule's findings word their explanation, as data (rules.json's `explanation`): an
evaluator that does not run the compiled SQL assembles the same sentence from it.

A finding's explanation is, in order:
- the rule's sentence (`sentence`: its `explain` template, or the standard one with the rule's
  title, in which the rule's own `per` is cited), its placeholders filled (`placeholders`);
- where the finding cites the act controlling its item or listing its party (`act_citation`),
  " (" the finding's instrument, " " its provision when it has one, ")";
- the notes (`notes`), each "; …" in one of the forms given for it, present only where the
  part of the condition that makes it holds and its value is known;
- then, for a finding the rule certainly makes, the licence note (`licence_note`, licence
  outcomes only); for one an exception may lift, the exception's note; for an undetermined
  one, "; cannot be judged, missing:" and " FACT" for each fact it lacks (`unknown_note`)."""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

# the standard sentence of a finding, before ": " and the rule's title (a rule without `explain`)
STANDARD_ITEMS = "{item_title} (code {hs_code}) to {destination_country} on {declared_on}"
STANDARD_DECLARATION = "Declaration {id} to {destination_country} on {declared_on}"
# what each placeholder of a sentence is filled with
PLACEHOLDERS = {
    "item_title": "the title of the item the declaration matched (items.title), or 'an item'",
    "item": "the name of the item the declaration matched, or 'an item'",
    "control_code": "the control code of the item matched, or '?'",
}
FACT_PLACEHOLDER = "the declaration's {name}, as text ('(not declared)' when it is empty)"


def forms(e: exp.Expression) -> list[str]:
    """A note's words, each value it reads shown as {column}: one form, or one for each branch
    of a CASE (a unit value's range names the item whose range it is in)."""
    if isinstance(e, exp.Literal):
        return [str(e.this)]
    if isinstance(e, exp.Column):
        return ["{" + e.name + "}"]
    if isinstance(e, exp.Concat):
        out = [""]
        for part in e.expressions:
            out = list(dict.fromkeys(a + b for a in out for b in forms(part)))[:200]
        return [f for f in out if f]
    if isinstance(e, exp.Case):
        return [f for branch in e.args.get("ifs") or [] for f in forms(branch.args["true"])]
    if isinstance(e, exp.Coalesce):  # the value, or what stands for it when it is NULL
        return [*forms(e.this), *(f for x in e.expressions for f in forms(x))]
    if isinstance(e, exp.Cast | exp.Paren | exp.Alias | exp.Subquery):
        return forms(e.this)
    if isinstance(e, exp.Select):
        return forms(e.expressions[0]) if e.expressions else []
    column = e.find(exp.Column)  # a number shown whole, …: the value it shows
    return ["{" + (column.name if column is not None else "value") + "}"]


def placeholders(sentence: str, fields: list[str]) -> dict[str, str]:
    """What fills each placeholder of a sentence."""
    out = {}
    for name in dict.fromkeys(m.strip() for m in re.findall(r"\{([^{}]*)\}", sentence)):
        out[name] = PLACEHOLDERS.get(name) or (FACT_PLACEHOLDER.format(name=name)
                                               if name in fields else "written as it is")
    return out


def explanation_parts(sentence: str, sentence_zh: str | None, act_citation: bool,
                      notes: list[exp.Expression], licence: bool,
                      fields: list[str]) -> dict[str, Any]:
    return {
        "sentence": sentence,
        "sentence_zh": sentence_zh,
        "placeholders": placeholders(sentence + (sentence_zh or ""), fields),
        "act_citation": act_citation,
        "notes": [forms(n) for n in notes],
        "licence_note": "; licence: {licence_problem}" if licence else None,
        # "; cannot be judged, missing: purity_pct quantity_kg", or, naming no fact,
        # "; cannot be judged: a fact it needs is missing"; for an exception or permission
        # that may apply, the same after "; cannot be judged: exception NAME may apply"
        "unknown_note": {"head": "; cannot be judged", "missing": ", missing:",
                         "each_fact": " {fact}", "no_fact": ": a fact it needs is missing",
                         "exception_head": "; cannot be judged: {kind} {name} may apply"},
    }
