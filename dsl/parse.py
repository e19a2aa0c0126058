"""Parse rulebook text into the typed AST, and turn every syntax error into a Diagnostic.

The grammar is LALR with `strict=True`; the AST is built inline while parsing (Lark's
`transformer=` option), so there is no intermediate parse tree. When a file has syntax errors the
parser recovers declaration by declaration (a declaration starts at column 1), so one run reports
an error in every broken declaration, not only the first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import lark
from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from dsl import ast
from dsl.diagnostics import Diagnostic, did_you_mean

MASS_UNITS = {"kg": 1, "t": 1000, "g": 0.001}
MAX_NESTING = 64  # parentheses deeper than this are an error (E003), not a stack overflow

DECLARATION_KEYWORDS = (
    "rulebook", "use", "instrument", "item", "group", "countries", "terms", "value", "list",
    "party",
    "rule", "exception", "suspend", "extend", "repeal", "lift", "example",
)

# Terminal names as policy staff would say them.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a text in double quotes ("…")',
    "DATE": "a date (YYYY-MM-DD)",
    "NUMBER": "a number",
    "LABEL": "a provision number (such as 2 or 1C902)",
    "CUSTOMS_CODE": "a customs code (such as 8112.92.90.10)",
    "CONTROL_CODE": "a control code (such as 1C902)",
    "LEVEL": "high, medium or low",
    "PROVISION_KIND": "article, clause, paragraph, part, annex, section or entry",
    "COMPARATOR": "a comparison (>=, <=, >, <, =, !=)",
    "ADD_OP": "+ or -",
    "MUL_OP": "* or /",
    "UNIT": "a unit (%, kg, t, g, USD, USD/kg, MPa, g/cm3, µm, nm, Wh/kg, per cm2, days)",
    "IN_OP": "'in' or 'not in'",
    "FINDING": "prohibited, unlicensed, undetermined, risk or findings",
    "KIND": "individual or general",
    "ZH": "'zh'",
    "$END": "the end of the file",
}


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


class _Builder(lark.Transformer[Token, Any]):
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
        return ast.Then(c[0], self._span(c))

    def explain(self, c: list[Any]) -> ast.Explain:
        return ast.Explain(self._text(c[0]), self._span(c))

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

    def hops(self, c: list[Any]) -> tuple[str, int]:
        return ("hops", self._int(c[0]))

    def via(self, c: list[Any]) -> tuple[str, tuple[ast.Ref, ...]]:
        return ("via", c[0])

    def related(self, c: list[Any]) -> ast.Related:
        other = c[1] if isinstance(c[1], ast.ListedParty) else self._ref(c[1])
        hops: int | None = None
        via: tuple[ast.Ref, ...] = ()
        for extra in c[2:]:
            if extra[0] == "hops":
                hops = extra[1]
            else:
                via = extra[1]
        return ast.Related(self._ref(c[0]), other, hops, via, self._span(c))

    def first_seen(self, c: list[Any]) -> ast.FirstSeen:
        return ast.FirstSeen(self._ref(c[0]), self._int(c[1]), self._span(c))

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
        return ast.Window(self._int(c[0]), same, self._span(c))

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
            details.get("citing"), self._span(c),
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
    def build(self: _Builder, children: list[Any]) -> Any:
        self.current = children
        kept = [c for c in children if not (isinstance(c, Token) and c.type not in _MEANINGFUL)]
        return method(self, kept)

    build.__name__ = method.__name__
    return build


for _name, _method in list(vars(_Builder).items()):
    if not _name.startswith("_") and callable(_method):
        setattr(_Builder, _name, _keywords_dropped(_method))


def _position(child: Any, builder: _Builder) -> ast.Span | None:
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


def grammar_text() -> str:
    return resources.files("dsl").joinpath("grammar.lark").read_text(encoding="utf-8")


class _Parser:
    """One Lark parser with its inline AST builder and comment sink; parses are serialised."""

    def __init__(self) -> None:
        self.builder = _Builder()
        self.comments: list[Token] = []
        self.lock = threading.Lock()
        self.lark = lark.Lark(
            grammar_text(),
            parser="lalr",
            lexer="contextual",
            strict=True,
            propagate_positions=True,
            maybe_placeholders=False,
            keep_all_tokens=True,
            # The strict collision check takes about a second; the analysed grammar is cached
            # in the temp directory, keyed by the grammar's hash and Lark's version.
            cache=True,
            transformer=self.builder,
            lexer_callbacks={"COMMENT": self.comments.append},
        )


@cache
def _parser() -> _Parser:
    return _Parser()


@cache
def bare_lark() -> lark.Lark:
    """The same grammar with Lark's default tree building: the baseline for benchmarks."""
    return lark.Lark(grammar_text(), parser="lalr", strict=True, propagate_positions=True,
                     cache=True)


def _chunks(text: str) -> list[tuple[int, str]]:
    """Split text at lines that start a declaration (a letter in column 1): (line offset, text)."""
    out: list[tuple[int, str]] = []
    lines = text.split("\n")
    start = 0
    for i, line in enumerate(lines):
        if i > start and line[:1].isalpha():
            out.append((start, "\n".join(lines[start:i])))
            start = i
    out.append((start, "\n".join(lines[start:])))
    return out


def _describe_expected(p: lark.Lark, expected: set[str]) -> tuple[str, list[str]]:
    """Plain words for a set of expected terminals, and the keywords among them (for hints)."""
    words: list[str] = []
    keywords: list[str] = []
    decl_names = set()
    for name in expected:
        try:
            term = p.get_terminal(name)
        except KeyError:
            term = None
        if term is not None and term.pattern.type == "str":
            value = term.pattern.value
            if value in DECLARATION_KEYWORDS:
                decl_names.add(value)
                continue
            keywords.append(value)
            words.append(f"'{value}'")
        else:
            words.append(_TERMINAL_WORDS.get(name, name.lower()))
            # a terminal that is a choice of words (the outcomes, the levels): each is a
            # keyword a misspelling may be close to
            choice = _WORD_CHOICE.match(term.pattern.value) if term is not None else None
            if choice is not None:
                keywords.extend(choice.group(1).split("|"))
    words = sorted(set(words), key=lambda w: (not w.startswith("'"), w))
    if decl_names:
        if len(decl_names) >= len(DECLARATION_KEYWORDS) - 1:
            words.append("the start of a new declaration (instrument, item, rule, example, …)")
        else:
            words.extend(f"'{v}'" for v in sorted(decl_names))
        keywords.extend(decl_names)
    if not words:
        return "something else", keywords
    if len(words) > 12:
        words = [*words[:11], "…"]
    if len(words) == 1:
        return words[0], keywords
    return "one of " + ", ".join(words[:-1]) + " or " + words[-1], keywords


# The words an outcome starts with (after `then`).
_OUTCOME_WORDS = frozenset({"prohibited", "licence", "permitted", "undetermined", "risk"})
_WORD_CHOICE = re.compile(r"^\(((?:[a-z][a-z\- ]*\|)+[a-z][a-z\- ]*)\)")
_DIGITS = re.compile(r"[\d.]+")


def _bad_customs_code(value: str) -> str | None:
    """What is wrong with digits written where a customs code goes."""
    digits = value.replace(".", "")
    if not digits.isdigit() or len(digits) in (6, 8, 10):
        return None
    return (f"'{value}' is not a customs code: customs codes have 6, 8 or 10 digits (dots "
            f"allowed), and this one has {len(digits)}")


def _character_name(ch: str) -> tuple[str, str] | None:
    """The characters a word processor or a Chinese keyboard puts in a rulebook, named, with
    what to write instead."""
    if ch in "\u201c\u201d\u201e\u00ab\u00bb":
        return (f"curly quote '{ch}'",
                'write texts between straight double quotes: "…" (a word processor or an '
                "autocorrecting editor turns them curly)")
    if ch in "\u2018\u2019":
        return f"curly apostrophe '{ch}'", "write texts between straight double quotes: \"…\""
    if ch == "\u3000":
        return ("full-width space (U+3000)",
                "write an ordinary space (a Chinese keyboard types the full-width one)")
    if ch in "\uff08\uff09\uff0c\uff1a\uff1b":
        return (f"full-width '{ch}'", "write the ASCII character (a Chinese keyboard types the "
                                       "full-width one)")
    if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
        return (f"Chinese character '{ch}'",
                "names are written in ASCII letters, digits and hyphens (gallium, not 镓); put "
                'the Chinese in a title or `zh "…"`')
    return None


def _bad_date_hint(text: str) -> str | None:
    if re.match(r"\d{1,4}[/.]\d{1,2}[/.]\d{1,4}|\d{2}-\d{2}-\d{4}", text):
        return "dates are written YYYY-MM-DD, for example 2024-12-03"
    return None


def _error_to_diagnostic(
    err: UnexpectedInput, p: lark.Lark, file: str, text: str, line_offset: int
) -> Diagnostic:
    line = (err.line if err.line and err.line > 0 else 1) + line_offset
    column = err.column if err.column and err.column > 0 else 1
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = text[pos] if 0 <= pos < len(text) else ""
        rest = text[pos : pos + 40]
        expected, _ = _describe_expected(p, set(err.allowed or ()))
        hint = _bad_date_hint(rest)
        if ch == '"':
            msg = "this text in quotes is not closed on the same line"
            hint = 'end it with " before the end of the line (write \\" for a quote inside it)'
        elif (named := _character_name(ch)) is not None:
            msg = f"unexpected {named[0]} here; expected {expected}"
            hint = hint or named[1]
        elif ch.isprintable() and ch.strip():
            msg = f"unexpected character '{ch}' here; expected {expected}"
        else:
            msg = f"unexpected character U+{ord(ch):04X} here; expected {expected}" if ch else (
                f"unexpected end of text; expected {expected}"
            )
        span = ast.Span(file, line, column, line, column + 1)
        return Diagnostic("E102", msg, span, hint)
    if isinstance(err, UnexpectedToken | UnexpectedEOF):
        tok: Token | None = getattr(err, "token", None)
        expected, keywords = _describe_expected(p, set(err.expected or ()))
        if tok is None or tok.type == "$END":
            span = ast.Span(file, line, column, line, column + 1)
            return Diagnostic(
                "E103", f"the text ends before this declaration is complete; expected {expected}",
                span,
            )
        value = str(tok)
        shown = value if len(value) <= 40 else value[:37] + "…"
        end_col = tok.end_column if tok.end_line == tok.line and tok.end_column else column + 1
        span = ast.Span(file, line, column, line, end_col)
        if "CUSTOMS_CODE" in (err.expected or ()) and _DIGITS.fullmatch(value) and \
                (message := _bad_customs_code(value)) is not None:
            return Diagnostic("E405", message, span,
                              "a full code has 10 digits (8112.92.90.10); a tariff line 8 and "
                              "an HS subheading 6 match every code they begin")
        if value in _OUTCOME_WORDS and "then" in keywords:
            return Diagnostic("E101", f"'{value}' needs 'then' before it: a rule's outcome "
                              "follows 'then'", span, f"write `then {value}"
                              f"{' required' if value == 'licence' else ''}` on its own line")
        hint = did_you_mean(value, keywords) if re.fullmatch(r"[A-Za-z\-]+", value) else None
        if "DATE" in (err.expected or ()):
            at = tok.start_pos or 0
            hint = hint or _bad_date_hint(text[at : at + 12])
        return Diagnostic("E101", f"unexpected '{shown}' here; expected {expected}", span, hint)
    span = ast.Span(file, line, column, line, column + 1)  # pragma: no cover - lark adds no others
    return Diagnostic("E101", str(err), span)


def _diagnostic_from_problem(e: SyntaxProblem, file: str, line_offset: int) -> Diagnostic:
    line = e.line + line_offset
    return Diagnostic(e.code, e.message, ast.Span(file, line, e.column, line, e.column + 1))


def _unwrap(e: BaseException) -> BaseException:
    """Lark wraps exceptions raised by the inline builder; get the original back."""
    while isinstance(e, lark.exceptions.VisitError):
        e = e.orig_exc
    return e


_UNDESCRIBED = Diagnostic("E101", "a syntax error past the limit of described errors",
                          ast.Span("", 0, 0, 0, 0))


def _parse_one(
    parser: _Parser, text: str, file: str, line_offset: int, describe: bool = True
) -> tuple[list[ast.Declaration], list[Diagnostic]]:
    """A chunk's declarations, or its syntax error (not described unless `describe`: past
    the run's limit, an error is only counted)."""
    parser.builder.file = file
    parser.builder.line_offset = line_offset
    parser.builder.depth = {}
    try:
        decls: list[ast.Declaration] = parser.lark.parse(text)  # type: ignore[assignment]
        return decls, []
    except Exception as raw:
        e = _unwrap(raw)
        if not describe and isinstance(e, UnexpectedInput | SyntaxProblem | RecursionError):
            return [], [_UNDESCRIBED]
        if isinstance(e, UnexpectedInput):
            return [], [_error_to_diagnostic(e, parser.lark, file, text, line_offset)]
        if isinstance(e, SyntaxProblem):
            return [], [_diagnostic_from_problem(e, file, line_offset)]
        if isinstance(e, RecursionError):
            span = ast.Span(file, line_offset + 1, 1, line_offset + 1, 2)
            return [], [Diagnostic("E003", "this declaration is nested too deeply to read", span)]
        raise


# The name a declaration's first line gives it: `instrument NAME`, `value range NAME`, …
_DECLARED_NAME = re.compile(
    r"(?P<kind>instrument|item|group|countries|terms|value range|list|party|rule|exception)"
    r"[ \t]+(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)")


def _broken_name(chunk: str, file: str, offset: int) -> tuple[str, str, ast.Span] | None:
    """The kind and name of a declaration that failed to parse, read from its first line."""
    m = _DECLARED_NAME.match(chunk)
    if m is None:
        return None
    line = offset + 1
    return (m.group("kind"), m.group("name"),
            ast.Span(file, line, m.start("name") + 1, line, m.end("name") + 1))


def parse_text(text: str, file: str = "<text>", max_errors: int | None = None
               ) -> tuple[ast.SourceFile, list[Diagnostic]]:
    """Parse one file's text. Returns what could be parsed and every syntax diagnostic (at
    most `max_errors`: the others are counted in `SourceFile.unreported`); the names of the
    declarations that could not be parsed are kept (`SourceFile.broken`)."""
    parser = _parser()
    broken: list[tuple[str, str, ast.Span]] = []
    unreported = 0
    with parser.lock:
        parser.comments.clear()
        decls, diags = _parse_one(parser, text, file, 0)
        if diags:
            decls, diags = [], []
            for offset, chunk in _chunks(text):
                describe = max_errors is None or len(diags) < max_errors
                d, errs = _parse_one(parser, chunk, file, offset, describe)
                decls.extend(d)
                if describe:
                    diags.extend(errs)
                else:
                    unreported += len(errs)
                if errs and (named := _broken_name(chunk, file, offset)) is not None:
                    broken.append(named)
            # Comments were collected chunk by chunk with chunk-relative lines; collect again.
            parser.comments.clear()
            _collect_comments(parser, text)
        comments = tuple(
            ast.Comment(
                str(t), _after_code(text, t.start_pos or 0),
                ast.Span(file, t.line or 0, t.column or 0, t.end_line or 0, t.end_column or 0),
            )
            for t in parser.comments
        )
        parser.comments.clear()
    return ast.SourceFile(file, tuple(decls), comments, tuple(broken), unreported), diags


def _after_code(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return bool(text[line_start:pos].strip())


_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def _collect_comments(parser: _Parser, text: str) -> None:
    """Find comments without the parser (used after errors): skip strings, keep `# …` runs."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    import bisect

    for m in _COMMENT_OR_STRING.finditer(text):
        if m.group(0).startswith("#"):
            line = bisect.bisect_right(line_starts, m.start())
            col = m.start() - line_starts[line - 1] + 1
            parser.comments.append(
                Token("COMMENT", m.group(0), m.start(), line, col, line, col + len(m.group(0)))
            )


def decode(data: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """Decode a file's bytes as UTF-8, or say exactly where it is not UTF-8 (E001)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start].decode("utf-8")  # valid up to the error
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        span = ast.Span(file, line, col, line, col + 1)
        msg = f"byte 0x{data[e.start]:02X} is not valid UTF-8 text"
        return None, [Diagnostic("E001", msg, span, "save the file as UTF-8")]
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


def parse_bytes(data: bytes, file: str, max_errors: int | None = None
                ) -> tuple[ast.SourceFile, list[Diagnostic]]:
    text, diags = decode(data, file)
    if text is None:
        return ast.SourceFile(file, ()), diags
    return parse_text(text, file, max_errors)


Reporter = Callable[[Diagnostic], None]
