"""Typed syntax tree of a rulebook: one dataclass per construct, each with its source span.

Spans never take part in equality, so `parse(format(x)) == x` compares meaning, not layout.
Declarations keep their attributes in the order written: the formatter changes layout, not order.

One module per kind of construct, leaves first (each imports only the ones before it): `leaves`,
`conditions`, `attributes`, `examples`, `declarations`. Every node is read as `ast.NAME`.
"""

from __future__ import annotations

from dsl.ast.attributes import (
    Address as Address,
)
from dsl.ast.attributes import (
    Alias as Alias,
)
from dsl.ast.attributes import (
    Alongside as Alongside,
)
from dsl.ast.attributes import (
    BelongsTo as BelongsTo,
)
from dsl.ast.attributes import (
    Confidence as Confidence,
)
from dsl.ast.attributes import (
    Control as Control,
)
from dsl.ast.attributes import (
    ControlAct as ControlAct,
)
from dsl.ast.attributes import (
    ControlledIf as ControlledIf,
)
from dsl.ast.attributes import (
    Country as Country,
)
from dsl.ast.attributes import (
    Customs as Customs,
)
from dsl.ast.attributes import (
    Excepts as Excepts,
)
from dsl.ast.attributes import (
    Explain as Explain,
)
from dsl.ast.attributes import (
    IfMissing as IfMissing,
)
from dsl.ast.attributes import (
    InForce as InForce,
)
from dsl.ast.attributes import (
    Issued as Issued,
)
from dsl.ast.attributes import (
    Issuer as Issuer,
)
from dsl.ast.attributes import (
    Jurisdiction as Jurisdiction,
)
from dsl.ast.attributes import (
    Listing as Listing,
)
from dsl.ast.attributes import (
    MatchThreshold as MatchThreshold,
)
from dsl.ast.attributes import (
    Measures as Measures,
)
from dsl.ast.attributes import (
    MemberOf as MemberOf,
)
from dsl.ast.attributes import (
    Members as Members,
)
from dsl.ast.attributes import (
    NameZh as NameZh,
)
from dsl.ast.attributes import (
    Note as Note,
)
from dsl.ast.attributes import (
    Number as Number,
)
from dsl.ast.attributes import (
    Outcome as Outcome,
)
from dsl.ast.attributes import (
    Overrides as Overrides,
)
from dsl.ast.attributes import (
    OwnedBy as OwnedBy,
)
from dsl.ast.attributes import (
    Phone as Phone,
)
from dsl.ast.attributes import (
    Provision as Provision,
)
from dsl.ast.attributes import (
    Source as Source,
)
from dsl.ast.attributes import (
    SourcesChecked as SourcesChecked,
)
from dsl.ast.attributes import (
    Then as Then,
)
from dsl.ast.attributes import (
    Title as Title,
)
from dsl.ast.attributes import (
    Unverified as Unverified,
)
from dsl.ast.attributes import (
    Url as Url,
)
from dsl.ast.attributes import (
    ValidFrom as ValidFrom,
)
from dsl.ast.attributes import (
    ValidUntil as ValidUntil,
)
from dsl.ast.attributes import (
    When as When,
)
from dsl.ast.attributes import (
    Words as Words,
)
from dsl.ast.conditions import (
    AllOf as AllOf,
)
from dsl.ast.conditions import (
    AnyOf as AnyOf,
)
from dsl.ast.conditions import (
    Arithmetic as Arithmetic,
)
from dsl.ast.conditions import (
    CodeUnder as CodeUnder,
)
from dsl.ast.conditions import (
    Comparison as Comparison,
)
from dsl.ast.conditions import (
    Concluded as Concluded,
)
from dsl.ast.conditions import (
    ConclusionRef as ConclusionRef,
)
from dsl.ast.conditions import (
    Condition as Condition,
)
from dsl.ast.conditions import (
    CountOf as CountOf,
)
from dsl.ast.conditions import (
    DateLiteral as DateLiteral,
)
from dsl.ast.conditions import (
    DualUse as DualUse,
)
from dsl.ast.conditions import (
    Expression as Expression,
)
from dsl.ast.conditions import (
    Field as Field,
)
from dsl.ast.conditions import (
    FirstSeen as FirstSeen,
)
from dsl.ast.conditions import (
    InRange as InRange,
)
from dsl.ast.conditions import (
    InSet as InSet,
)
from dsl.ast.conditions import (
    IsMissing as IsMissing,
)
from dsl.ast.conditions import (
    ItemIn as ItemIn,
)
from dsl.ast.conditions import (
    Listed as Listed,
)
from dsl.ast.conditions import (
    ListedParty as ListedParty,
)
from dsl.ast.conditions import (
    Mentions as Mentions,
)
from dsl.ast.conditions import (
    Negation as Negation,
)
from dsl.ast.conditions import (
    Parenthesised as Parenthesised,
)
from dsl.ast.conditions import (
    Quantity as Quantity,
)
from dsl.ast.conditions import (
    Reaches as Reaches,
)
from dsl.ast.conditions import (
    Related as Related,
)
from dsl.ast.conditions import (
    SumOf as SumOf,
)
from dsl.ast.conditions import (
    TextLiteral as TextLiteral,
)
from dsl.ast.conditions import (
    Window as Window,
)
from dsl.ast.declarations import (
    Amendment as Amendment,
)
from dsl.ast.declarations import (
    Comment as Comment,
)
from dsl.ast.declarations import (
    Conclusion as Conclusion,
)
from dsl.ast.declarations import (
    CountryGroup as CountryGroup,
)
from dsl.ast.declarations import (
    Declaration as Declaration,
)
from dsl.ast.declarations import (
    Example as Example,
)
from dsl.ast.declarations import (
    Exception_ as Exception_,
)
from dsl.ast.declarations import (
    Fact as Fact,
)
from dsl.ast.declarations import (
    FactAlias as FactAlias,
)
from dsl.ast.declarations import (
    FactType as FactType,
)
from dsl.ast.declarations import (
    Group as Group,
)
from dsl.ast.declarations import (
    Instrument as Instrument,
)
from dsl.ast.declarations import (
    Item as Item,
)
from dsl.ast.declarations import (
    Parameter as Parameter,
)
from dsl.ast.declarations import (
    ParameterValue as ParameterValue,
)
from dsl.ast.declarations import (
    Party as Party,
)
from dsl.ast.declarations import (
    PartyList as PartyList,
)
from dsl.ast.declarations import (
    PriceRange as PriceRange,
)
from dsl.ast.declarations import (
    ReadFrom as ReadFrom,
)
from dsl.ast.declarations import (
    Rule as Rule,
)
from dsl.ast.declarations import (
    RulebookDecl as RulebookDecl,
)
from dsl.ast.declarations import (
    SourceFile as SourceFile,
)
from dsl.ast.declarations import (
    Target as Target,
)
from dsl.ast.declarations import (
    Terms as Terms,
)
from dsl.ast.declarations import (
    Use as Use,
)
from dsl.ast.declarations import (
    ValueRange as ValueRange,
)
from dsl.ast.declarations import (
    attrs_of as attrs_of,
)
from dsl.ast.declarations import (
    first_attr as first_attr,
)
from dsl.ast.examples import (
    AsOf as AsOf,
)
from dsl.ast.examples import (
    Company as Company,
)
from dsl.ast.examples import (
    DeclarationField as DeclarationField,
)
from dsl.ast.examples import (
    ExampleDeclaration as ExampleDeclaration,
)
from dsl.ast.examples import (
    ExampleLicence as ExampleLicence,
)
from dsl.ast.examples import (
    Expect as Expect,
)
from dsl.ast.examples import (
    ItemList as ItemList,
)
from dsl.ast.leaves import (
    NO_SPAN as NO_SPAN,
)
from dsl.ast.leaves import (
    Citation as Citation,
)
from dsl.ast.leaves import (
    Code as Code,
)
from dsl.ast.leaves import (
    DateValue as DateValue,
)
from dsl.ast.leaves import (
    ProvisionRef as ProvisionRef,
)
from dsl.ast.leaves import (
    Ref as Ref,
)
from dsl.ast.leaves import (
    Span as Span,
)
from dsl.ast.leaves import (
    Text as Text,
)
from dsl.ast.leaves import (
    span_field as span_field,
)
