"""The typed AST built from the grammar's rules while Lark parses (its inline `transformer=`):
one method per grammar rule, each giving the node with its source span; nesting deeper than
`MAX_NESTING` is a syntax problem, not a stack overflow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import lark
from lark import Token

from dsl import ast

MASS_UNITS = {"kg": 1, "t": 1000, "g": 0.001}
MAX_NESTING = 64  # parentheses deeper than this are an error (E003), not a stack overflow


class SyntaxProblem(Exception):
    """Raised inside the AST builder for a problem the grammar cannot express (nesting depth)."""

    def __init__(self, code: str, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.code, self.message, self.line, self.column = code, message, line, column


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def unescape(quoted: str) -> str:
    """The value of a quoted string: \\" \\\\ \\n \\t and \\uXXXX are escapes; others are kept."""
    body = quoted[1:-1]
    if "\\" not in body:
        return body

    def one(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "uU" and len(s) > 1:
            code = int(s[1:], 16)
            # Lone surrogates and out-of-range code points cannot be stored as UTF-8.
            valid = code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
            return chr(code) if valid else "\ufffd"
        return _ESCAPES.get(s, "\\" + s)

    return _ESCAPE.sub(one, body)


class AstBuilder(lark.Transformer[Token, Any]):
    """Builds AST nodes as the parser reduces; `file` and `line_offset` are set per parse."""

    def __init__(self) -> None:
        super().__init__()
        self.file = "<text>"
        self.line_offset = 0
        self.depth: dict[int, int] = {}
        self.current: list[Any] = []

    # ------------------------------------------------------------ helpers
    def _span(self, children: list[Any]) -> ast.Span:
        """From the first to the last token of the construct being built, keywords included."""
        first = last = None
        for ch in self.current:
            s = _position(ch, self)
            if s is not None:
                first = first or s
                last = s
        if first is None or last is None:
            return ast.NO_SPAN
        return ast.Span(self.file, first.line, first.column, last.end_line, last.end_column)

    def _tspan(self, tok: Token) -> ast.Span:
        o = self.line_offset
        return ast.Span(self.file, (tok.line or 0) + o, tok.column or 0, (tok.end_line or 0) + o,
                        tok.end_column or 0)

    def _ref(self, tok: Token) -> ast.Ref:
        return ast.Ref(str(tok), self._tspan(tok))

    def _text(self, tok: Token) -> ast.Text:
        return ast.Text(unescape(str(tok)), self._tspan(tok))

    def _date(self, tok: Token) -> ast.DateValue:
        return ast.DateValue(str(tok), self._tspan(tok))

    def _code(self, tok: Token) -> ast.Code:
        return ast.Code(str(tok), self._tspan(tok))

    def _int(self, tok: Token) -> int:
        text = str(tok)
        if "." in text:
            raise SyntaxProblem("E406", f"'{text}' must be a whole number", tok.line or 0,
                                tok.column or 0)
        return int(text)

    def _nest(self, node: Any, children: list[Any]) -> Any:
        d = 1 + max((self.depth.get(id(c), 0) for c in children), default=0)
        if d > MAX_NESTING:
            s = node.span
            raise SyntaxProblem(
                "E003", f"conditions are nested more than {MAX_NESTING} levels deep",
                s.line - self.line_offset, s.column,
            )
        self.depth[id(node)] = d
        return node

    # ------------------------------------------------------------ start and shared pieces
    def start(self, c: list[Any]) -> list[Any]:
        return c

    def citation(self, c: list[Any]) -> ast.Citation:
        return ast.Citation(self._ref(c[0]), c[1] if len(c) > 1 else None, self._span(c))

    def provision_ref(self, c: list[Any]) -> ast.ProvisionRef:
        return ast.ProvisionRef(str(c[0]), str(c[1]), self._span(c))

    def names(self, c: list[Any]) -> tuple[ast.Ref, ...]:
        return tuple(self._ref(t) for t in c)

    def strings(self, c: list[Any]) -> tuple[ast.Text, ...]:
        return tuple(self._text(t) for t in c)

    def note(self, c: list[Any]) -> ast.Note:
        return ast.Note(self._text(c[0]), self._span(c))

    def source(self, c: list[Any]) -> ast.Source:
        return ast.Source(self._text(c[0]), self._span(c))

    def unverified(self, c: list[Any]) -> ast.Unverified:
        return ast.Unverified(self._text(c[0]), self._span(c))

    def confidence(self, c: list[Any]) -> ast.Confidence:
        return ast.Confidence(str(c[0]), self._span(c))

    def valid_from(self, c: list[Any]) -> ast.ValidFrom:
        return ast.ValidFrom(self._date(c[0]), self._span(c))

    def valid_until(self, c: list[Any]) -> ast.ValidUntil:
        return ast.ValidUntil(self._date(c[0]), self._span(c))

    # ------------------------------------------------------------ rulebook, modules, instruments
    def rulebook_decl(self, c: list[Any]) -> ast.RulebookDecl:
        return ast.RulebookDecl(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def jurisdiction(self, c: list[Any]) -> ast.Jurisdiction:
        return ast.Jurisdiction(self._ref(c[0]), self._span(c))

    def judges(self, c: list[Any]) -> ast.Judges:
        return ast.Judges(tuple(c), self._span(c))

    def exports_from(self, c: list[Any]) -> ast.Movement:
        return ast.Movement("exports", self._ref(c[0]), self._span(c))

    def re_exports(self, c: list[Any]) -> ast.Movement:
        return ast.Movement("re-exports", None, self._span(c))

    def imports_into(self, c: list[Any]) -> ast.Movement:
        return ast.Movement("imports", self._ref(c[0]), self._span(c))

    def unstated_exports(self, c: list[Any]) -> ast.Movement:
        return ast.Movement("unstated", None, self._span(c))

    def sources_checked(self, c: list[Any]) -> ast.SourcesChecked:
        return ast.SourcesChecked(self._date(c[0]), self._span(c))

    def use_decl(self, c: list[Any]) -> ast.Use:
        return ast.Use(self._text(c[0]), self._span(c))

    def instrument(self, c: list[Any]) -> ast.Instrument:
        return ast.Instrument(self._ref(c[0]), tuple(c[1:]), self._span(c))

    def title(self, c: list[Any]) -> ast.Title:
        lang = str(c[0]) if len(c) == 2 else None
        return ast.Title(self._text(c[-1]), lang, self._span(c))

    def issuer(self, c: list[Any]) -> ast.Issuer:
        return ast.Issuer(c[0], self._span(c))

    def number(self, c: list[Any]) -> ast.Number:
        return ast.Number(self._text(c[0]), self._span(c))

    def issued(self, c: list[Any]) -> ast.Issued:
        return ast.Issued(self._date(c[0]), self._span(c))

    def in_force(self, c: list[Any]) -> ast.InForce:
        return ast.InForce(self._date(c[0]), self._span(c))

    def url(self, c: list[Any]) -> ast.Url:
        return ast.Url(self._text(c[0]), self._span(c))

    def provision(self, c: list[Any]) -> ast.Provision:
        zh = self._text(c[4]) if len(c) > 3 else None
        return ast.Provision(str(c[0]), str(c[1]), self._text(c[2]), zh, self._span(c))

    # ------------------------------------------------------------ items, groups, terms
    def item(self, c: list[Any]) -> ast.Item:
        return ast.Item(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def item_name_zh(self, c: list[Any]) -> ast.NameZh:
        return ast.NameZh(self._text(c[1]), self._span(c))

    def rule_title_zh(self, c: list[Any]) -> ast.TitleZh:
        return ast.TitleZh(self._text(c[1]), self._span(c))

    def control(self, c: list[Any]) -> ast.Control:
        return ast.Control(self._code(c[0]), self._span(c))

    def member_of(self, c: list[Any]) -> ast.MemberOf:
        return ast.MemberOf(c[0], self._span(c))

    def customs(self, c: list[Any]) -> ast.Customs:
        return ast.Customs(tuple(self._code(t) for t in c), self._span(c))

    def controlled_if(self, c: list[Any]) -> ast.ControlledIf:
        return ast.ControlledIf(c[0], self._span(c))

    def group(self, c: list[Any]) -> ast.Group:
        return ast.Group(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def members(self, c: list[Any]) -> ast.Members:
        return ast.Members(c[0], self._span(c))

    def country_group(self, c: list[Any]) -> ast.CountryGroup:
        return ast.CountryGroup(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def terms(self, c: list[Any]) -> ast.Terms:
        return ast.Terms(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def value_range(self, c: list[Any]) -> ast.ValueRange:
        return ast.ValueRange(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def price_range(self, c: list[Any]) -> ast.PriceRange:
        return ast.PriceRange(Decimal(str(c[0])), str(c[1]), Decimal(str(c[2])), str(c[3]),
                              self._span(c))

    def words(self, c: list[Any]) -> ast.Words:
        return ast.Words(c[0], self._span(c))

    def belongs_to(self, c: list[Any]) -> ast.BelongsTo:
        return ast.BelongsTo(c[0], self._span(c))

    # ------------------------------------------------------------ lists and parties
    def party_list(self, c: list[Any]) -> ast.PartyList:
        return ast.PartyList(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def match_threshold(self, c: list[Any]) -> ast.MatchThreshold:
        return ast.MatchThreshold(Decimal(str(c[0])), self._span(c))

    def party(self, c: list[Any]) -> ast.Party:
        return ast.Party(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def country(self, c: list[Any]) -> ast.Country:
        return ast.Country(self._ref(c[0]), self._span(c))

    def alias(self, c: list[Any]) -> ast.Alias:
        return ast.Alias(c[0], self._span(c))

    def listing(self, c: list[Any]) -> ast.Listing:
        until = next((x for x in c[3:] if isinstance(x, ast.ValidUntil)), None)
        measures = next((x[1] for x in c[3:] if isinstance(x, tuple)), None)
        return ast.Listing(self._ref(c[0]), c[1], c[2], until, measures, self._span(c))

    def imposing(self, c: list[Any]) -> tuple[str, tuple[ast.Ref, ...]]:
        return ("measures", c[0])

    def imposing_nothing(self, c: list[Any]) -> tuple[str, tuple[ast.Ref, ...]]:
        return ("measures", ())

    def measures(self, c: list[Any]) -> ast.Measures:
        return ast.Measures(c[0], self._span(c))

    def control_act(self, c: list[Any]) -> ast.ControlAct:
        start = next((x for x in c[1:] if isinstance(x, ast.ValidFrom)), None)
        end = next((x for x in c[1:] if isinstance(x, ast.ValidUntil)), None)
        return ast.ControlAct(c[0], start, end, self._span(c))

    def address(self, c: list[Any]) -> ast.Address:
        return ast.Address(self._text(c[0]), self._span(c))

    def phone(self, c: list[Any]) -> ast.Phone:
        return ast.Phone(self._text(c[0]), self._span(c))

    def owned_by(self, c: list[Any]) -> ast.OwnedBy:
        share = Decimal(str(c[1])) if len(c) > 1 else None
        return ast.OwnedBy(self._ref(c[0]), share, self._span(c))

    # ------------------------------------------------------------ rules and exceptions
    def rule(self, c: list[Any]) -> ast.Rule:
        title, rest = self._optional_title(c[1:])
        return ast.Rule(self._ref(c[0]), title, rest, self._span(c))

    def parameter(self, c: list[Any]) -> ast.Parameter:
        return ast.Parameter(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def parameter_value(self, c: list[Any]) -> ast.ParameterValue:
        op, number, *rest = ("", *c) if isinstance(c[0], Token) else c
        unit = str(rest.pop(0)) if rest and isinstance(rest[0], Token) else None
        found = {type(x): x for x in rest}
        return ast.ParameterValue(op, Decimal(str(number)), unit, found.get(ast.ValidFrom),
                                  found.get(ast.ValidUntil), found.get(ast.Citation),
                                  self._span(c))

    def at_least(self, c: list[Any]) -> str:
        return ">="

    def more_than(self, c: list[Any]) -> str:
        return ">"

    def at_most(self, c: list[Any]) -> str:
        return "<="

    def less_than(self, c: list[Any]) -> str:
        return "<"

    def reaches(self, c: list[Any]) -> ast.Reaches:
        return ast.Reaches(c[0], self._ref(c[1]), c[2] if len(c) > 2 else None, self._span(c))

    def fact(self, c: list[Any]) -> ast.Fact:
        return ast.Fact(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def number_fact(self, c: list[Any]) -> ast.FactType:
        return ast.FactType("number", str(c[0]), span=self._span(c))

    def percentage_fact(self, c: list[Any]) -> ast.FactType:
        return ast.FactType("percentage", "%", span=self._span(c))

    def country_fact(self, c: list[Any]) -> ast.FactType:
        return ast.FactType("country", span=self._span(c))

    def text_fact(self, c: list[Any]) -> ast.FactType:
        return ast.FactType("text", span=self._span(c))

    def yes_no_fact(self, c: list[Any]) -> ast.FactType:
        return ast.FactType("yes/no", span=self._span(c))

    def date_fact(self, c: list[Any]) -> ast.FactType:
        return ast.FactType("date", span=self._span(c))

    def choice_fact(self, c: list[Any]) -> ast.FactType:
        return ast.FactType("one of", choices=c[0], span=self._span(c))

    def fact_alias(self, c: list[Any]) -> ast.FactAlias:
        return ast.FactAlias(c[0], self._span(c))

    def read_from(self, c: list[Any]) -> ast.ReadFrom:
        return ast.ReadFrom(self._text(c[0]), self._span(c))

    def conclusion(self, c: list[Any]) -> ast.Conclusion:
        return ast.Conclusion(self._ref(c[0]), self._text(c[1]), tuple(c[2:]), self._span(c))

    def conclusion_ref(self, c: list[Any]) -> ast.ConclusionRef:
        return ast.ConclusionRef(self._ref(c[0]), self._span(c))

    def exception(self, c: list[Any]) -> ast.Exception_:
        title, rest = self._optional_title(c[1:])
        return ast.Exception_(self._ref(c[0]), title, rest, self._span(c))

    def _optional_title(self, c: list[Any]) -> tuple[ast.Text | None, tuple[Any, ...]]:
        if c and isinstance(c[0], Token):
            return self._text(c[0]), tuple(c[1:])
        return None, tuple(c)

    def when(self, c: list[Any]) -> ast.When:
        return ast.When(c[0], self._span(c))

    def then(self, c: list[Any]) -> ast.Then:
        return ast.Then(c[0], self._text(c[2]) if len(c) > 2 else None, self._span(c))

    def explain(self, c: list[Any]) -> ast.Explain:
        return ast.Explain(self._text(c[0]), self._span(c))

    def explain_zh(self, c: list[Any]) -> ast.ExplainZh:
        return ast.ExplainZh(self._text(c[1]), self._span(c))

    def overrides(self, c: list[Any]) -> ast.Overrides:
        return ast.Overrides(c[0], self._span(c))

    def alongside(self, c: list[Any]) -> ast.Alongside:
        return ast.Alongside(c[0], self._span(c))

    def excepts(self, c: list[Any]) -> ast.Excepts:
        return ast.Excepts(c[0], self._span(c))

    def if_missing(self, c: list[Any]) -> ast.IfMissing:
        outcome = c[1] if isinstance(c[1], ast.Outcome) else None
        return ast.IfMissing(self._ref(c[0]), outcome, self._span(c))

    def no_finding(self, c: list[Any]) -> None:
        return None

    def prohibited(self, c: list[Any]) -> ast.Outcome:
        return ast.Outcome("prohibited", None, self._span(c))

    def licence_required(self, c: list[Any]) -> ast.Outcome:
        return ast.Outcome("licence required", None, self._span(c))

    def presumption_of_denial(self, c: list[Any]) -> ast.Outcome:
        return ast.Outcome("presumption of denial", None, self._span(c))

    def case_by_case(self, c: list[Any]) -> ast.Outcome:
        return ast.Outcome("case-by-case review", None, self._span(c))

    def permitted(self, c: list[Any]) -> ast.Outcome:
        return ast.Outcome("permitted", None, self._span(c))

    def undetermined(self, c: list[Any]) -> ast.Outcome:
        return ast.Outcome("undetermined", None, self._span(c))

    def risk(self, c: list[Any]) -> ast.Outcome:
        return ast.Outcome("risk", str(c[0]), self._span(c))

    # ------------------------------------------------------------ amendments
    def _amendment(self, action: str, c: list[Any]) -> ast.Amendment:
        return ast.Amendment(action, c[0], tuple(c[1:]), self._span(c))

    def suspension(self, c: list[Any]) -> ast.Amendment:
        return self._amendment("suspend", c)

    def extension(self, c: list[Any]) -> ast.Amendment:
        return self._amendment("extend", c)

    def repeal(self, c: list[Any]) -> ast.Amendment:
        return self._amendment("repeal", c)

    def lift(self, c: list[Any]) -> ast.Amendment:
        return self._amendment("lift", c)

    def targets(self, c: list[Any]) -> tuple[ast.Target, ...]:
        return tuple(c)

    def ref_target(self, c: list[Any]) -> ast.Target:
        prov = c[1] if len(c) > 1 else None
        return ast.Target("ref", self._ref(c[0]), prov, None, self._span(c))

    def listings_target(self, c: list[Any]) -> ast.Target:
        return ast.Target("listings", self._ref(c[0]), None, None, self._span(c))

    def listing_target(self, c: list[Any]) -> ast.Target:
        return ast.Target("listing", self._ref(c[0]), None, self._ref(c[1]), self._span(c))

    # ------------------------------------------------------------ conditions
    def or_condition(self, c: list[Any]) -> ast.AnyOf:
        return self._nest(ast.AnyOf(tuple(c), self._span(c)), c)  # type: ignore[no-any-return]

    def and_condition(self, c: list[Any]) -> ast.AllOf:
        return self._nest(ast.AllOf(tuple(c), self._span(c)), c)  # type: ignore[no-any-return]

    def negation(self, c: list[Any]) -> ast.Negation:
        return self._nest(ast.Negation(c[0], self._span(c)), c)  # type: ignore[no-any-return]

    def parenthesised(self, c: list[Any]) -> ast.Parenthesised:
        node = ast.Parenthesised(c[0], self._span(c))
        return self._nest(node, c)  # type: ignore[no-any-return]

    def item_in(self, c: list[Any]) -> ast.ItemIn:
        return ast.ItemIn(c[1], str(c[0]) != "in", self._span(c))

    def in_set(self, c: list[Any]) -> ast.InSet:
        return ast.InSet(self._ref(c[0]), c[2], str(c[1]) != "in", self._span(c))

    def code_under(self, c: list[Any]) -> ast.CodeUnder:
        return ast.CodeUnder(self._ref(c[0]), tuple(ast.Code(str(t), self._tspan(t))
                                                    for t in c[1:]), self._span(c))

    def in_codes(self, c: list[Any]) -> ast.InSet:
        return ast.InSet(self._ref(c[0]), c[2], str(c[1]) != "in", self._span(c), True)

    def is_missing(self, c: list[Any]) -> ast.IsMissing:
        return ast.IsMissing(self._ref(c[0]), False, self._span(c))

    def is_present(self, c: list[Any]) -> ast.IsMissing:
        return ast.IsMissing(self._ref(c[0]), True, self._span(c))

    def mentions(self, c: list[Any]) -> ast.Mentions:
        terms = tuple(
            self._text(t) if t.type == "STRING" else self._ref(t) for t in c[1:]
        )
        return ast.Mentions(self._ref(c[0]), terms, self._span(c))

    def listed(self, c: list[Any]) -> ast.Listed:
        lists = next((x for x in c[1:] if isinstance(x, tuple)), ())
        measures = next((x[1] for x in c[1:] if isinstance(x, list)), ())
        return ast.Listed(self._ref(c[0]), lists, measures, self._span(c))

    def listed_with(self, c: list[Any]) -> list[Any]:
        return ["with", c[0]]

    def dual_use(self, c: list[Any]) -> ast.DualUse:
        return ast.DualUse(False, self._span(c))

    def not_dual_use(self, c: list[Any]) -> ast.DualUse:
        return ast.DualUse(True, self._span(c))

    def listed_party(self, c: list[Any]) -> ast.ListedParty:
        return ast.ListedParty(c[0], self._span(c))

    def hops(self, c: list[Any]) -> tuple[str, int | ast.Ref]:
        return ("hops", self._ref(c[0]) if c[0].type == "NAME" else self._int(c[0]))

    def via(self, c: list[Any]) -> tuple[str, tuple[ast.Ref, ...]]:
        return ("via", c[0])

    def reaching(self, c: list[Any]) -> tuple[str, ast.Ref]:
        return ("reaching", self._ref(c[0]))

    def related(self, c: list[Any]) -> ast.Related:
        other = c[1] if isinstance(c[1], ast.ListedParty) else self._ref(c[1])
        hops: int | None = None
        hops_parameter: ast.Ref | None = None
        via: tuple[ast.Ref, ...] = ()
        ownership: ast.Ref | None = None
        for extra in c[2:]:
            if extra[0] == "hops" and isinstance(extra[1], ast.Ref):
                hops_parameter = extra[1]
            elif extra[0] == "hops":
                hops = extra[1]
            elif extra[0] == "reaching":
                ownership = extra[1]
            else:
                via = extra[1]
        return ast.Related(self._ref(c[0]), other, hops, via, self._span(c), ownership,
                           hops_parameter)

    def first_seen(self, c: list[Any]) -> ast.FirstSeen:
        days, parameter = self._window_length(c[1])
        return ast.FirstSeen(self._ref(c[0]), days, self._span(c), parameter)

    def in_range(self, c: list[Any]) -> ast.InRange:
        return ast.InRange(self._ref(c[0]), c[1], self._span(c))

    def comparison(self, c: list[Any]) -> ast.Comparison:
        return ast.Comparison(c[0], str(c[1]), c[2], self._span(c))

    # ------------------------------------------------------------ expressions
    def arithmetic(self, c: list[Any]) -> ast.Arithmetic:
        return ast.Arithmetic(c[0], str(c[1]), c[2], False, self._span(c))

    def bracketed(self, c: list[Any]) -> Any:
        inner = c[0]
        if isinstance(inner, ast.Arithmetic):
            inner = ast.Arithmetic(inner.left, inner.op, inner.right, True, self._span(c))
        return self._nest(inner, c)

    def field(self, c: list[Any]) -> ast.Field:
        return ast.Field(self._ref(c[0]), self._span(c))

    def quantity(self, c: list[Any]) -> ast.Quantity:
        unit = str(c[1]) if len(c) > 1 else None
        return ast.Quantity(Decimal(str(c[0])), unit, self._span(c))

    def date_value(self, c: list[Any]) -> ast.DateLiteral:
        return ast.DateLiteral(self._date(c[0]), self._span(c))

    def text_value(self, c: list[Any]) -> ast.TextLiteral:
        return ast.TextLiteral(self._text(c[0]), self._span(c))

    def window(self, c: list[Any]) -> ast.Window:
        same = c[1] if len(c) > 1 else ()
        days, parameter = self._window_length(c[0])
        return ast.Window(days, same, self._span(c), parameter)

    def _window_length(self, tok: Token) -> tuple[int, ast.Ref | None]:
        """`within N days` (N, no parameter) or `within PARAMETER` (0, the parameter)."""
        return (0, self._ref(tok)) if tok.type == "NAME" else (self._int(tok), None)

    def count_of(self, c: list[Any]) -> ast.CountOf:
        return ast.CountOf(c[0], self._span(c))

    def sum_of(self, c: list[Any]) -> ast.SumOf:
        return ast.SumOf(self._ref(c[0]), c[1], self._span(c))

    # ------------------------------------------------------------ examples
    def example(self, c: list[Any]) -> ast.Example:
        return ast.Example(self._text(c[0]), tuple(c[1:]), self._span(c))

    def as_of(self, c: list[Any]) -> ast.AsOf:
        return ast.AsOf(self._date(c[0]), self._span(c))

    def example_declaration(self, c: list[Any]) -> ast.ExampleDeclaration:
        ident = self._ref(c[0]) if isinstance(c[0], Token) else None
        fields = tuple(f for f in c if isinstance(f, ast.DeclarationField))
        return ast.ExampleDeclaration(ident, fields, self._span(c))

    def _field(
        self, name: str, c: list[Any], value: Any, country: Any = None
    ) -> ast.DeclarationField:
        return ast.DeclarationField(name, value, country, self._span(c))

    def on_date(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("declared_on", c, self._date(c[0]))

    def code(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("hs_code", c, self._code(c[0]))

    def destination(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("destination_country", c, self._ref(c[0]))

    def amount(self, c: list[Any]) -> ast.DeclarationField:
        unit = str(c[1])
        q = ast.Quantity(Decimal(str(c[0])), unit, self._span(c))
        name = "value_usd" if unit == "USD" else "quantity_kg" if unit in MASS_UNITS else "amount"
        return self._field(name, c, q)

    def purity(self, c: list[Any]) -> ast.DeclarationField:
        q = ast.Quantity(Decimal(str(c[0])), str(c[1]), self._span(c))
        return self._field("purity_pct", c, q)

    def _party_field(self, name: str, c: list[Any]) -> ast.DeclarationField:
        country = self._ref(c[1]) if len(c) > 1 else None
        return self._field(name, c, self._text(c[0]), country)

    def consignee(self, c: list[Any]) -> ast.DeclarationField:
        return self._party_field("consignee", c)

    def end_user(self, c: list[Any]) -> ast.DeclarationField:
        return self._party_field("end_user", c)

    def exporter(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("exporter", c, self._text(c[0]))

    def description(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("description", c, self._text(c[0]))

    def under_licence(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("licence_no", c, self._ref(c[0]))

    def set_field(self, c: list[Any]) -> ast.DeclarationField:
        tok = c[1]
        value: Any
        if tok.type == "STRING":
            value = self._text(tok)
        elif tok.type == "DATE":
            value = self._date(tok)
        else:
            unit = str(c[2]) if len(c) > 2 else None
            value = ast.Quantity(Decimal(str(tok)), unit, self._tspan(tok))
        return ast.DeclarationField(str(c[0]), value, None, self._span(c))

    def example_licence(self, c: list[Any]) -> ast.ExampleLicence:
        return ast.ExampleLicence(self._ref(c[0]), tuple(c[1:]), self._span(c))

    def licence_kind(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("kind", c, self._ref(c[0]))

    def holder(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("holder", c, self._text(c[0]))

    def agent(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("agents", c, self._text(c[0]))

    def licence_items(self, c: list[Any]) -> ast.DeclarationField:
        refs = tuple(self._ref(t) if t.type == "NAME" else self._code(t) for t in c)
        return self._field("items", c, ast.ItemList(refs, self._span(c)))

    def company(self, c: list[Any]) -> ast.Company:
        fields = []
        for f in c[1:]:
            if isinstance(f, ast.Country):
                f = ast.DeclarationField("country", f.code, None, f.span)
            elif isinstance(f, ast.Address):
                f = ast.DeclarationField("address", f.text, None, f.span)
            elif isinstance(f, ast.Phone):
                f = ast.DeclarationField("phone", f.text, None, f.span)
            fields.append(f)
        return ast.Company(self._text(c[0]), tuple(fields), self._span(c))

    def parent(self, c: list[Any]) -> ast.DeclarationField:
        return self._field("parent", c, self._text(c[0]))

    def _expect(self, present: bool, c: list[Any]) -> ast.Expect:
        details = dict(c[1:])
        return ast.Expect(
            str(c[0]), present, details.get("by"), details.get("for"), details.get("missing"),
            details.get("citing"), self._span(c), details.get("resting"),
        )

    def expect_present(self, c: list[Any]) -> ast.Expect:
        return self._expect(True, c)

    def expect_absent(self, c: list[Any]) -> ast.Expect:
        return self._expect(False, c)

    def expect_rule(self, c: list[Any]) -> tuple[str, ast.Ref]:
        return ("by", self._ref(c[0]))

    def expect_for(self, c: list[Any]) -> tuple[str, ast.Ref]:
        return ("for", self._ref(c[0]))

    def expect_missing(self, c: list[Any]) -> tuple[str, ast.Ref]:
        return ("missing", self._ref(c[0]))

    def expect_basis(self, c: list[Any]) -> tuple[str, ast.Ref]:
        return ("resting", self._ref(c[0]))

    def expect_citing(self, c: list[Any]) -> tuple[str, ast.Citation]:
        return ("citing", ast.Citation(self._ref(c[0]), c[1] if len(c) > 1 else None,
                                       self._span(c)))


# Tokens the builder reads; every other token is a keyword or punctuation, kept by the parser
# (keep_all_tokens) only so that spans start at the keyword.
_MEANINGFUL = frozenset({
    "NAME", "STRING", "DATE", "NUMBER", "LABEL", "CUSTOMS_CODE", "CONTROL_CODE", "LEVEL",
    "PROVISION_KIND", "COMPARATOR", "ADD_OP", "MUL_OP", "UNIT", "IN_OP", "FINDING", "KIND", "ZH",
})


def _keywords_dropped(method: Callable[[Any, list[Any]], Any]) -> Callable[[Any, list[Any]], Any]:
    def build(self: AstBuilder, children: list[Any]) -> Any:
        self.current = children
        kept = [c for c in children if not (isinstance(c, Token) and c.type not in _MEANINGFUL)]
        return method(self, kept)

    build.__name__ = method.__name__
    return build


for _name, _method in list(vars(AstBuilder).items()):
    if not _name.startswith("_") and callable(_method):
        setattr(AstBuilder, _name, _keywords_dropped(_method))


def _position(child: Any, builder: AstBuilder) -> ast.Span | None:
    if isinstance(child, Token):
        return builder._tspan(child)
    if isinstance(child, tuple):
        if len(child) == 2 and isinstance(child[0], str):  # ("hops", 2) style details
            return _position(child[1], builder)
        spans = [s for s in (_position(x, builder) for x in child) if s is not None]
        if not spans:
            return None
        a, b = spans[0], spans[-1]
        return ast.Span(a.file, a.line, a.column, b.end_line, b.end_column)
    span = getattr(child, "span", None)
    if span is None or span is ast.NO_SPAN or span.line == 0:
        return None
    return span  # type: ignore[no-any-return]
