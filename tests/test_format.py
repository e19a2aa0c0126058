"""The formatter: canonical, idempotent, comment-preserving, and `parse(format(x)) == x`."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from dsl import ast
from dsl.format import format_file
from dsl.parse import grammar_text
from tests.conftest import RULEBOOKS, rulebook_files

FILES = rulebook_files()
KEYWORDS = set(re.findall(r'"([a-z][a-z ]*)"', grammar_text()))
KEYWORDS |= {w for k in KEYWORDS for w in k.split()} | {"zh"}


def reparse(text: str) -> ast.SourceFile:
    sf, diags = dsl.parse_text(text, "formatted.excon")
    assert diags == [], "\n".join(dsl.render(d, {"formatted.excon": text}) for d in diags)
    return sf


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_round_trip_and_idempotence_on_every_rulebook(path: Path) -> None:
    sf, diags = dsl.parse_text(path.read_text(encoding="utf-8"), str(path))
    assert diags == []
    once = format_file(sf)
    again = reparse(once)
    assert again.declarations == sf.declarations
    assert format_file(again) == once
    assert [c.text.strip() for c in again.comments] == [c.text.strip() for c in sf.comments]


def test_full_line_comments_stay_inside_what_they_are_written_in(tmp_path: Path) -> None:
    """A comment between the parts of a condition stays before the part it precedes; one
    between the lines of a continued declaration goes above it (both were moved below the
    whole rule or example), and formatting again changes nothing."""
    from dsl.format import format_file

    text = (
        'rule r "R"\n  per A-1\n  when destination in US\n   # only large consignments\n'
        '   and quantity > 10 kg\n  then risk low\n\nexample "e"\n'
        '  declaration d1 on 2025-06-01 code 8112929010 to US 50 kg\n'
        '    # the consignee is a front company\n    consignee "Acme" in US\n'
        '  expect risk by r\n')
    sf, diags = dsl.parse_text(text, "c.excon")
    assert diags == []
    once = format_file(sf)
    assert "  when destination in US\n   # only large consignments\n   and quantity > 10 kg" \
        in once
    assert '  # the consignee is a front company\n  declaration d1 on 2025-06-01' in once
    again, _ = dsl.parse_text(once, "c.excon")
    assert format_file(again) == once


def test_repository_rulebooks_are_in_canonical_layout() -> None:
    for path in RULEBOOKS.rglob("*.excon"):
        text = path.read_text(encoding="utf-8")
        formatted, diags = dsl.format_text(text, str(path))
        assert diags == []
        assert formatted == text, f"{path} is not formatted: run `excon fmt rulebooks`"


def test_layout_is_canonical_whatever_the_input_layout() -> None:
    messy = 'rule   r "T"   per X clause 2\nwhen item in g and destination in usa then prohibited'
    assert dsl.format_text(messy)[0] == (
        'rule r "T"\n  per X clause 2\n  when item in g\n   and destination in usa\n'
        "  then prohibited\n"
    )


def test_comments_stay_with_what_they_describe() -> None:
    text = (
        "# about r\nrule r\n  # about the condition\n  when item in g  # why g\n"
        "  then prohibited\n"
    )
    out, _ = dsl.format_text(text)
    assert out == text


# ---------------------------------------------------------------- generated rulebooks

names = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True).filter(
    lambda n: n not in KEYWORDS
)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=25)
refs = names.map(ast.Ref)
ref_lists = st.lists(refs, min_size=1, max_size=3).map(tuple)
dates = st.dates().map(lambda d: ast.DateValue(f"{d.year:04d}-{d.month:02d}-{d.day:02d}"))
decimals = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False,
                       allow_infinity=False)
units = st.sampled_from([None, "%", "kg", "t", "USD", "USD/kg", "g/cm3", "µm", "MPa"])
quantities = st.builds(ast.Quantity, decimals, units)
fields = st.sampled_from(["quantity", "value", "purity", "unit_value"]).map(
    lambda n: ast.Field(ast.Ref(n)))
parties = st.sampled_from(["exporter", "consignee", "end_user"]).map(ast.Ref)

expressions = st.recursive(
    st.one_of(fields, quantities, dates.map(ast.DateLiteral),
              texts.map(lambda t: ast.TextLiteral(ast.Text(t)))),
    lambda inner: st.one_of(
        st.builds(ast.Arithmetic, inner, st.sampled_from("*/"), fields | quantities,
                  st.just(True)),
        st.builds(ast.CountOf, st.builds(ast.Window, st.integers(1, 365), st.just(()))),
        st.builds(ast.SumOf, refs, st.builds(ast.Window, st.integers(1, 365), ref_lists)),
    ),
    max_leaves=3,
)
leaves = st.one_of(
    st.builds(ast.ItemIn, ref_lists, st.booleans()),
    st.builds(ast.DualUse, st.booleans()),
    st.builds(ast.InSet, st.just(ast.Ref("destination")), ref_lists, st.booleans()),
    st.builds(ast.InSet, st.just(ast.Ref("hs_code")), ref_lists, st.booleans(),
              any_time=st.booleans()),
    st.builds(ast.IsMissing, refs, st.booleans()),
    st.builds(ast.Mentions, refs, st.lists(
        st.one_of(refs, texts.map(ast.Text)), min_size=1, max_size=3).map(tuple)),
    st.builds(ast.Listed, parties, st.lists(refs, max_size=2).map(tuple),
              st.lists(refs, max_size=2).map(tuple)),
    st.builds(ast.Related, parties, st.one_of(parties, st.builds(ast.ListedParty, ref_lists)),
              st.one_of(st.none(), st.integers(1, 6)), st.lists(refs, max_size=2).map(tuple)),
    st.builds(ast.FirstSeen, parties, st.integers(1, 999)),
    st.builds(ast.Comparison, expressions, st.sampled_from([">=", "<=", ">", "<", "=", "!="]),
              expressions),
)


def _conditions(inner: st.SearchStrategy[ast.Condition]) -> st.SearchStrategy[ast.Condition]:
    """Only shapes the parser can produce: and/or chains are flat unless parenthesised."""
    atom = st.one_of(leaves, inner.map(ast.Parenthesised))
    negated = st.recursive(atom, lambda a: a.map(ast.Negation), max_leaves=2)
    conj = st.lists(negated, min_size=2, max_size=3).map(lambda p: ast.AllOf(tuple(p)))
    disj = st.lists(negated | conj, min_size=2, max_size=3).map(lambda p: ast.AnyOf(tuple(p)))
    return st.one_of(negated, conj, disj)


conditions = st.recursive(leaves, _conditions, max_leaves=5)
outcomes = st.one_of(
    st.sampled_from(["prohibited", "licence required", "permitted", "undetermined"]).map(
        ast.Outcome),
    st.sampled_from(["high", "medium", "low"]).map(lambda s: ast.Outcome("risk", s)),
)
citations = st.builds(ast.Citation, refs, st.one_of(st.none(), st.builds(
    ast.ProvisionRef, st.sampled_from(["article", "clause", "part"]),
    st.from_regex(r"[1-9][0-9]{0,2}|[IVX]{1,3}", fullmatch=True))))
rule_attrs = st.one_of(
    citations, dates.map(ast.ValidFrom), dates.map(ast.ValidUntil), conditions.map(ast.When),
    outcomes.map(ast.Then), texts.map(lambda t: ast.Explain(ast.Text(t))),
    ref_lists.map(ast.Overrides), texts.map(lambda t: ast.Note(ast.Text(t))),
    texts.map(lambda t: ast.Unverified(ast.Text(t))),
    st.builds(ast.IfMissing, refs, st.one_of(st.none(), outcomes)),
)
rules = st.builds(ast.Rule, refs, st.one_of(st.none(), texts.map(ast.Text)),
                  st.lists(rule_attrs, max_size=6).map(tuple))
customs = st.from_regex(r"[0-9]{4}(\.[0-9]{2}){2}|[0-9]{10}", fullmatch=True).map(ast.Code)
instrument_attrs = st.one_of(
    st.builds(ast.Title, texts.map(ast.Text), st.sampled_from([None, "zh"])),
    dates.map(ast.Issued), dates.map(ast.InForce), ref_lists.map(ast.Issuer),
    st.builds(ast.Provision, st.sampled_from(["article", "clause"]),
              st.from_regex(r"[1-9][0-9]?", fullmatch=True), texts.map(ast.Text),
              st.one_of(st.none(), texts.map(ast.Text))),
    st.sampled_from(["high", "medium", "low"]).map(ast.Confidence),
)
instruments = st.builds(ast.Instrument, refs, st.lists(instrument_attrs, max_size=5).map(tuple))
control_acts = st.builds(ast.ControlAct, citations, st.one_of(st.none(), dates.map(ast.ValidFrom)),
                         st.one_of(st.none(), dates.map(ast.ValidUntil)))
items = st.builds(ast.Item, refs, texts.map(ast.Text), st.lists(st.one_of(
    st.lists(customs, min_size=1, max_size=4).map(lambda c: ast.Customs(tuple(c))),
    ref_lists.map(ast.MemberOf), control_acts, conditions.map(ast.ControlledIf),
    texts.map(lambda t: ast.NameZh(ast.Text(t))),
), max_size=4).map(tuple))
targets = st.one_of(
    st.builds(ast.Target, st.just("ref"), refs),
    st.builds(ast.Target, st.just("listings"), refs),
    st.builds(ast.Target, st.just("listing"), refs, st.none(), refs),
)
amendments = st.builds(
    ast.Amendment, st.sampled_from(["suspend", "extend", "repeal", "lift"]),
    st.lists(targets, min_size=1, max_size=3).map(tuple),
    st.lists(st.one_of(citations, dates.map(ast.ValidFrom), dates.map(ast.ValidUntil)),
             max_size=3).map(tuple),
)
listings = st.builds(ast.Listing, refs, citations, dates.map(ast.ValidFrom),
                     st.one_of(st.none(), dates.map(ast.ValidUntil)),
                     st.one_of(st.none(), st.lists(refs, max_size=2).map(tuple)))
parties_decls = st.builds(ast.Party, refs, texts.map(ast.Text),
                          st.lists(listings, max_size=2).map(tuple))
party_lists = st.builds(ast.PartyList, refs, texts.map(ast.Text),
                        st.lists(ref_lists.map(ast.Measures), max_size=1).map(tuple))
declarations = st.one_of(rules, instruments, items, amendments, parties_decls, party_lists)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(declarations, max_size=4))
def test_generated_rulebooks_round_trip(decls: list[ast.Declaration]) -> None:
    sf = ast.SourceFile("gen.excon", tuple(decls))
    text = format_file(sf)
    again = reparse(text)
    assert again.declarations == sf.declarations
    assert format_file(again) == text


@settings(max_examples=100, deadline=None)
@given(decimals)
def test_numbers_print_as_written(value: Decimal) -> None:
    text = f"rule r\n  when quantity > {value:f} kg\n"
    sf = reparse(text)
    when = ast.first_attr(sf.declarations[0], ast.When)
    assert when is not None and isinstance(when.condition, ast.Comparison)
    assert when.condition.right == ast.Quantity(value, "kg")


def test_each_comment_stays_on_the_line_it_annotates() -> None:
    """In a condition over several lines, a comment stays beside its part (it used to be
    merged onto the last); one after `then` stays there, not on the next declaration."""
    text = (
        'rule r1 "Gallium to the US"\n'
        "  per MOFCOM-2024-46 clause 2\n"
        "  when item in gallium  # every gallium item\n"
        "   and destination in usa  # the US only\n"
        "   and quantity > 1 kg  # above samples\n"
        "  then prohibited  # clause 2\n"
        '  explain "x"\n'
        "\n"
        'rule r2 "Gallium needs a licence"\n'
        "  per MOFCOM-2023-23\n"
        "  when item in gallium\n"
        "  then licence required  # whatever the destination\n"
    )
    formatted = format_file(reparse(text))
    lines = formatted.splitlines()
    assert "  when item in gallium  # every gallium item" in lines
    assert any(ln.endswith("destination in usa  # the US only") for ln in lines)
    assert any(ln.endswith("quantity > 1 kg  # above samples") for ln in lines)
    assert "  then prohibited  # clause 2" in lines
    assert lines[-1] == "  then licence required  # whatever the destination"
    assert format_file(reparse(formatted)) == formatted
