"""The parser: every construct reaches the AST with its meaning and its source position."""

from __future__ import annotations

from decimal import Decimal

import dsl
from dsl import ast
from tests.conftest import DATA


def parse_ok(text: str) -> ast.SourceFile:
    sf, diags = dsl.parse_text(text, "t.excon")
    assert diags == []
    return sf


def test_tour_parses_every_declaration_kind() -> None:
    sf = parse_ok((DATA / "tour.excon").read_text(encoding="utf-8"))
    kinds = {type(d).__name__ for d in sf.declarations}
    assert kinds == {
        "RulebookDecl", "Use", "Instrument", "Item", "Group", "Terms", "PartyList", "Party",
        "Rule", "Exception_", "Amendment", "Example",
    }
    actions = {d.action for d in sf.declarations if isinstance(d, ast.Amendment)}
    assert actions == {"suspend", "extend", "repeal"}


def test_spans_point_at_the_keyword_that_starts_a_construct() -> None:
    sf = parse_ok('rule r "T"\n  per X clause 2\n  then prohibited\n')
    rule = sf.declarations[0]
    assert isinstance(rule, ast.Rule)
    assert (rule.span.line, rule.span.column) == (1, 1)
    then = ast.first_attr(rule, ast.Then)
    assert then is not None
    assert (then.span.line, then.span.column, then.span.end_column) == (3, 3, 18)
    cite = ast.first_attr(rule, ast.Citation)
    assert cite is not None and cite.provision is not None
    assert (cite.provision.kind, cite.provision.label) == ("clause", "2")
    assert cite.instrument.span.column == 7


def test_condition_precedence_and_binds_tighter_than_or() -> None:
    sf = parse_ok("rule r\n  when destination in usa or item in g and not quantity > 5 kg\n")
    when = ast.first_attr(sf.declarations[0], ast.When)
    assert when is not None
    cond = when.condition
    assert isinstance(cond, ast.AnyOf)
    assert isinstance(cond.parts[1], ast.AllOf)
    neg = cond.parts[1].parts[1]
    assert isinstance(neg, ast.Negation)
    assert neg.part == ast.Comparison(ast.Field(ast.Ref("quantity")), ">",
                                      ast.Quantity(Decimal("5"), "kg"))


def test_strings_unescape_quotes_backslashes_and_keep_unicode() -> None:
    sf = parse_ok('item x "Say \\"镓\\" \\\\ done; -- DROP TABLE x"\n  customs 8112929010\n')
    item = sf.declarations[0]
    assert isinstance(item, ast.Item)
    assert item.title.value == 'Say "镓" \\ done; -- DROP TABLE x'


def test_customs_codes_with_dots_and_control_codes() -> None:
    sf = parse_ok("item x \"X\"\n  control 1C117.d\n  customs 7105.10.20, 8112929010\n")
    item = sf.declarations[0]
    customs = ast.first_attr(item, ast.Customs)
    control = ast.first_attr(item, ast.Control)
    assert customs is not None and control is not None
    assert [c.digits for c in customs.codes] == ["71051020", "8112929010"]
    assert control.code.text == "1C117.d"


def test_example_declaration_fields_map_to_the_declaration_contract() -> None:
    sf = parse_ok(
        'example "e"\n  declaration d1 on 2025-01-02 code 8112929010 to US 50 kg 1200 USD'
        ' purity 99.9 % consignee "A" in US end user "B" in US under licence L1\n'
        "  expect no prohibited for d1\n"
    )
    ex = sf.declarations[0]
    decl = ast.first_attr(ex, ast.ExampleDeclaration)
    assert decl is not None
    names = [f.name for f in decl.fields]
    assert names == ["declared_on", "hs_code", "destination_country", "quantity_kg", "value_usd",
                     "purity_pct", "consignee", "end_user", "licence_no"]
    expect = ast.first_attr(ex, ast.Expect)
    assert expect == ast.Expect("prohibited", False, None, ast.Ref("d1"))


def test_comments_are_collected_with_their_positions() -> None:
    sf = parse_ok("# head\nrule r  # tail\n  then prohibited\n")
    assert [(c.text, c.span.line, c.trailing) for c in sf.comments] == [
        ("# head", 1, False), ("# tail", 2, True),
    ]


def test_syntax_errors_are_reported_for_every_broken_declaration() -> None:
    text = "rule a\n  then maybe\n\nrule b\n  per X\n\nrule c\n  when ) \n"
    sf, diags = dsl.parse_text(text, "t.excon")
    assert [d.span.line for d in diags] == [2, 8]
    assert [d.name.name for d in sf.declarations] == ["b"]  # type: ignore[union-attr]
