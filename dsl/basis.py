"""What a finding rests on: its **basis** and a **caveat** in words.

- `lapsed-by-text`: the finding depends on a suspension that ended by its own text after the
  rulebook's sources were checked (`sources checked through`), with no later decision encoded
  (no lift or repeal of the same target): a later decision extending it may exist.
- `unverified`: it rests on a fact the rulebook marks `unverified`: the rule itself, the item
  it matched, or the act it cites.
- `settled`: neither.

A rule's `BasisPlan` is made once from the resolved model; the compiler prints it as SQL (each
check's `basis` and `caveat` columns) and the interpreter evaluates it on Python values
(`basis_of`), so every engine and the interpreter say the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from dsl import ast
from dsl.model import Lapse, Law
from dsl.overrides import SET_NOTE
from dsl.rulebook import CheckedRulebook, listing_nodes, parameters_read, required_items


@dataclass(frozen=True)
class LapseTest:
    """A finding judged on or after `resumes` rests on the lapse: always when the rule itself
    was suspended (`instrument` None), else when the finding cites this act (and provision)."""

    resumes: str
    instrument: str | None
    provision: str | None
    caveat: str


@dataclass(frozen=True)
class BasisPlan:
    lapses: tuple[LapseTest, ...]  # the first that holds gives the caveat
    rule_unverified: str | None  # the caveat when the rule itself is unverified
    items_unverified: tuple[tuple[str, str], ...]  # (item, caveat)
    acts_unverified: tuple[tuple[str, str], ...]  # (instrument, caveat)


def sources_checked(law: Law, rulebook: str | None) -> str | None:
    """The day a rulebook's sources were checked through, if it says."""
    found = law.rulebooks.get(rulebook or "")
    return found.sources_checked if found else None


def lapse_caveat(lapse: Lapse, checked: str | None) -> str:
    by = ", ".join(b for b in lapse.by if b)
    reach = (f"the sources were checked through {checked}" if checked
             else "the rulebook does not say how far its sources were checked")
    return (f"{by} suspended {lapse.target} until {lapse.ended}; by its own text it applies "
            f"again from {lapse.resumes}, and {reach}: check for a later decision extending "
            "the suspension.")


def unverified_caveat(kind: str, name: str, note: str) -> str:
    return f"{kind} {name} is marked unverified: {note}"


def counted_lapses(law: Law) -> list[Lapse]:
    """Every suspension that ended by its own text after its rulebook's sources were checked
    (a rulebook that states no date: every one)."""
    out = []
    for lapse in law.lapsed_suspensions(dt.date.max):
        checked = sources_checked(law, lapse.rulebook)
        if checked is None or lapse.resumes > checked:
            out.append(lapse)
    return out


def citable(rb: CheckedRulebook, law: Law, rule: str
            ) -> tuple[frozenset[str], frozenset[str] | None]:
    """The acts a finding of the rule can cite (its own, the announcements of the listings it
    tests, the acts controlling the items a licence requirement names) and the items it can
    match (None: any), as the compiler and the interpreter attribute findings."""
    decl = rb.rules.get(rule) or rb.exceptions.get(rule)
    if decl is None:
        return frozenset(), None
    cite = ast.first_attr(decl, ast.Citation)
    acts = {cite.instrument.name} if cite is not None else set()
    condition = rb.condition_of(decl)
    if condition is None:
        return frozenset(acts), None
    items = required_items(condition, rb)
    if listing_nodes(condition):
        acts |= {x.instrument for p in law.parties.values() for x in p.listings}
    then = ast.first_attr(decl, ast.Then)
    if then is not None and then.outcome.kind == "licence required":
        acts |= {c.instrument for name in (items if items is not None else law.items)
                 for c in law.items[name].controls if c.instrument}
    return frozenset(acts), items


def basis_plan(rb: CheckedRulebook, law: Law, rule: str) -> BasisPlan:
    """What a rule's findings may rest on (see the module's docstring); made once per rule and
    kept with the rulebook (the compiler, the interpreter and explain ask for it again)."""
    plans: dict[str, BasisPlan] = rb.derived.setdefault("basis", {})
    if rule not in plans:
        plans[rule] = _basis_plan(rb, law, rule)
    return plans[rule]


def _basis_plan(rb: CheckedRulebook, law: Law, rule: str) -> BasisPlan:
    decl = rb.rules.get(rule) or rb.exceptions.get(rule)
    cite = ast.first_attr(decl, ast.Citation) if decl is not None else None
    own = {f"rule:{rule}"}
    if cite is not None:
        own.add(f"instrument:{cite.instrument.name}")
        if cite.provision is not None:
            own.add(f"instrument:{cite.instrument.name}:{cite.provision}")
    acts, items = citable(rb, law, rule)
    tests = []
    for lapse in counted_lapses(law):
        caveat = lapse_caveat(lapse, sources_checked(law, lapse.rulebook))
        if lapse.key in own:
            tests.append(LapseTest(lapse.resumes, None, None, caveat))
        elif lapse.kind == "instrument":
            tests.append(LapseTest(lapse.resumes, lapse.name, lapse.provision, caveat))
        elif lapse.kind == "listings":
            tests.append(LapseTest(lapse.resumes, lapse.name, None, caveat))
        elif lapse.kind == "listing":  # the announcement that listed the party on that list
            party = law.parties.get(lapse.name)
            for listing in party.listings if party else ():
                if listing.list == lapse.list:
                    tests.append(LapseTest(lapse.resumes, listing.instrument, None, caveat))
    # an act the rule never cites cannot be what its findings rest on
    tests = [t for t in tests if t.instrument is None or t.instrument in acts]
    tests.sort(key=lambda t: t.instrument is not None)  # the rule's own suspension first
    model_rule = law.rules.get(rule)
    rule_caveat = unverified_caveat("rule", rule, model_rule.unverified) \
        if model_rule is not None and model_rule.unverified else None
    return BasisPlan(
        tuple(tests),
        rule_caveat or _conclusions_unverified(rb, law, decl)
        or _parameters_unverified(rb, decl),
        tuple((name, caveat) for name, caveat in _unverified(rb, law, "item")
              if items is None or name in items),
        tuple((name, caveat) for name, caveat in _unverified(rb, law, "instrument")
              if name in acts),
    )


def _unverified(rb: CheckedRulebook, law: Law, kind: str) -> list[tuple[str, str]]:
    """The items or instruments marked unverified, by name, with their caveats: worked out
    once per rulebook (each rule's plan asked of every item and instrument again)."""
    key = f"basis_unverified:{kind}"
    if key not in rb.derived:
        table: dict[str, Any] = law.items if kind == "item" else law.instruments
        rb.derived[key] = [(name, unverified_caveat(kind, name, x.unverified))
                           for name, x in sorted(table.items()) if x.unverified]
    return cast(list[tuple[str, str]], rb.derived[key])


def _parameters_unverified(rb: CheckedRulebook,
                           decl: ast.Rule | ast.Exception_ | None) -> str | None:
    """The caveats of the parameters the rule reads that are marked unverified (working values
    no act sets), in the order the condition names them: every finding of the rule rests on
    them."""
    condition = rb.condition_of(decl) if decl is not None else None
    notes = [(name, note.text.value)
             for name in (parameters_read(condition) if condition is not None else ())
             if (note := ast.first_attr(rb.parameters[name], ast.Unverified)) is not None]
    if len(notes) == 1:
        return unverified_caveat("parameter", *notes[0])
    if not notes:
        return None
    names = [n for n, _ in notes]
    settings = "".join(f" {n} is {note}." for n, note in notes if note.startswith(SET_NOTE))
    return (f"parameters {', '.join(names[:-1])} and {names[-1]} are marked unverified: "
            "working values no source sets (each parameter says why it was chosen)."
            + settings)


def _conclusions_unverified(rb: CheckedRulebook, law: Law,
                            decl: ast.Rule | ast.Exception_ | None) -> str | None:
    """The caveat of the first named conclusion the rule rests on that is marked unverified,
    or that cites an act marked so: every finding of the rule rests on it."""
    condition = rb.condition_of(decl) if decl is not None else None
    stack = [condition] if condition is not None else []
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.Concluded):
            conclusion = rb.conclusions[node.name]
            note = ast.first_attr(conclusion, ast.Unverified)
            if note is not None:
                return unverified_caveat("conclusion", node.name, note.text.value)
            cite = ast.first_attr(conclusion, ast.Citation)
            ins = law.instruments.get(cite.instrument.name) if cite is not None else None
            if ins is not None and ins.unverified:
                return (f"instrument {ins.id}, which conclusion {node.name} cites, is marked "
                        f"unverified: {ins.unverified}")
        if isinstance(node, ast.AllOf | ast.AnyOf):
            stack.extend(node.parts)
        elif isinstance(node, ast.Negation | ast.Parenthesised):
            stack.append(node.part)
    return None


def basis_of(plan: BasisPlan, judged_on: str, instrument: str | None, provision: str | None,
             item: str | None) -> tuple[str, str | None]:
    """A finding's basis and caveat (the interpreter's; the checks compute the same in SQL)."""
    lapse = next((t.caveat for t in plan.lapses if judged_on >= t.resumes and (
        t.instrument is None or (instrument == t.instrument and (
            t.provision is None or provision == t.provision)))), None)
    unverified = plan.rule_unverified or dict(plan.items_unverified).get(item or "") or \
        dict(plan.acts_unverified).get(instrument or "")
    caveat = f"{lapse} {unverified}" if lapse and unverified else (lapse or unverified)
    basis = "lapsed-by-text" if lapse else "unverified" if unverified else "settled"
    return basis, caveat
