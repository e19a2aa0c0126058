"""A condition in plain words, for readers of `excon docs`: names become the titles the
rulebook gives them (items, groups, country groups, lists, terms, conclusions, parameters),
facts become words ("the destination country"), operators become phrases ("at least").

The formatter (`dsl.format`) writes a condition as the language reads it; this writes it as a
compliance officer reads it. Both come from the same syntax tree, so they cannot disagree.
"""

from __future__ import annotations

from dsl import ast
from dsl.format import number
from dsl.rulebook import CheckedRulebook

COMPARISONS = {">=": "is at least", ">": "is more than", "<=": "is at most", "<": "is less than",
               "=": "is", "!=": "is not"}


def plain(c: ast.Condition, rb: CheckedRulebook) -> str:
    """The condition in words: 'the goods are Gallium items or Germanium items, and the
    destination country is in United States'."""
    return _Words(rb).condition(c)


class _Words:
    def __init__(self, rb: CheckedRulebook) -> None:
        self.rb = rb

    def title(self, ref: ast.Ref) -> str:
        """A name as its declaration titles it (the name itself when it has no title)."""
        for table in (self.rb.groups, self.rb.items, self.rb.country_groups, self.rb.lists,
                      self.rb.terms, self.rb.value_ranges, self.rb.conclusions,
                      self.rb.parameters):
            decl = table.get(ref.name)
            if decl is not None:
                title = getattr(decl, "title", None)
                if isinstance(title, ast.Text) and title.value:
                    return title.value
        return ref.name

    def titles(self, refs: tuple[ast.Ref, ...], joiner: str = "or") -> str:
        words = [self.title(r) for r in refs]
        return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {joiner} {words[-1]}"

    @staticmethod
    def fact(ref: ast.Ref) -> str:
        return "the " + ref.name.replace("_", " ")

    def condition(self, c: ast.Condition) -> str:
        if isinstance(c, ast.AllOf):
            return ", and ".join(self.part(p) for p in c.parts)
        if isinstance(c, ast.AnyOf):
            return "either " + ", or ".join(self.part(p) for p in c.parts)
        if isinstance(c, ast.Negation):
            return f"it is not so that {self.part(c.part)}"
        if isinstance(c, ast.Parenthesised):
            return self.condition(c.part)
        if isinstance(c, ast.ItemIn):
            return f"the goods {'are not' if c.negated else 'are'} {self.titles(c.members)}"
        if isinstance(c, ast.DualUse):
            return f"the goods {'are not' if c.negated else 'are'} dual-use items of the rulebook"
        if isinstance(c, ast.InSet):
            verb = "is not" if c.negated else "is"
            if c.any_time:
                return f"{self.fact(c.subject)} {verb} a customs code of {self.titles(c.members)}"
            return f"{self.fact(c.subject)} {verb} in {self.titles(c.members)}"
        if isinstance(c, ast.CodeUnder):
            return (f"{self.fact(c.subject)} falls under "
                    f"{' or '.join(x.text for x in c.codes)}")
        if isinstance(c, ast.IsMissing):
            return f"{self.fact(c.subject)} is {'stated' if c.negated else 'not stated'}"
        if isinstance(c, ast.Mentions):
            terms = [self.title(t) if isinstance(t, ast.Ref) else f'"{t.value}"'
                     for t in c.terms]
            return f"{self.fact(c.subject)} mentions {' or '.join(terms)}"
        if isinstance(c, ast.Listed):
            on = f" on {self.titles(c.lists)}" if c.lists else ""
            measures = f" with {self.titles(c.measures)}" if c.measures else ""
            return f"{self.fact(c.subject)} is listed{on}{measures}"
        if isinstance(c, ast.Related):
            other = (f"a party listed on {self.titles(c.other.lists)}"
                     if isinstance(c.other, ast.ListedParty) else self.fact(c.other))
            via = f" through {', '.join(v.name for v in c.via)}" if c.via else ""
            hops = (f" within {c.hops} link{'s' if c.hops != 1 else ''}" if c.hops else
                    f" within “{self.title(c.hops_parameter)}” links" if c.hops_parameter
                    else "")
            owned = (f", an owner counting when its share reaches “{self.title(c.ownership)}”"
                     if c.ownership else "")
            return f"{self.fact(c.subject)} is related to {other}{via}{hops}{owned}"
        if isinstance(c, ast.FirstSeen):
            return f"{self.fact(c.subject)} was first seen within {self.days(c)}"
        if isinstance(c, ast.InRange):
            return (f"{self.fact(c.subject)} is inside the unit-value range of "
                    f"{self.titles(c.members)}")
        if isinstance(c, ast.Comparison):
            return (f"{self.expression(c.left)} {COMPARISONS.get(c.op, c.op)} "
                    f"{self.expression(c.right)}")
        if isinstance(c, ast.Reaches):
            share = f" of {self.expression(c.of)}" if c.of is not None else ""
            return f"{self.expression(c.subject)} reaches “{self.title(c.parameter)}”{share}"
        if isinstance(c, ast.ConclusionRef):
            return f"“{self.title(c.name)}” holds"
        return str(c)  # pragma: no cover (every construct has its words above)

    def part(self, c: ast.Condition) -> str:
        """A part of an `and` or `or`: an `or` inside an `and` (or the reverse) is bracketed."""
        inner = c.part if isinstance(c, ast.Parenthesised) else c
        text = self.condition(inner)
        return f"({text})" if isinstance(inner, ast.AllOf | ast.AnyOf) else text

    def expression(self, e: ast.Expression) -> str:
        if isinstance(e, ast.Field):
            return self.fact(e.name)
        if isinstance(e, ast.Quantity):
            return number(e.value) + (f" {e.unit}" if e.unit else "")
        if isinstance(e, ast.DateLiteral):
            return e.date.text
        if isinstance(e, ast.TextLiteral):
            return f'"{e.text.value}"'
        if isinstance(e, ast.CountOf):
            return (f"the number of declarations within {self.days(e.window)}"
                    + self.same(e.window))
        if isinstance(e, ast.SumOf):
            return (f"the sum of {self.fact(e.field)[4:]} over the declarations within "
                    f"{self.days(e.window)}" + self.same(e.window))
        if isinstance(e, ast.Arithmetic):
            return f"{self.expression(e.left)} {e.op} {self.expression(e.right)}"
        return str(e)  # pragma: no cover

    def days(self, w: ast.Window | ast.FirstSeen) -> str:
        """'45 days', or a length parameter's title in quotes."""
        return f"“{self.title(w.parameter)}”" if w.parameter else f"{w.days} days"

    @staticmethod
    def same(w: ast.Window) -> str:
        return (f" with the same {', '.join(s.name.replace('_', ' ') for s in w.same)}"
                if w.same else "")
