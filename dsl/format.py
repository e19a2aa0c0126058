"""The canonical layout of a rulebook file.

Declarations start in column 1, separated by one blank line; each attribute is on its own line,
indented two spaces; a condition puts each top-level `and`/`or` on its own line. Attribute order
is the author's. Comments are kept: a comment on its own line stays above the declaration or
attribute that follows it, a comment after code stays at the end of the line it annotates (in a
condition written over several lines, beside its part), else of that attribute's last line.
`format(parse(format(x)))` equals `format(x)`, and parsing the output gives back the same AST.
"""

from __future__ import annotations

from decimal import Decimal

from dsl import ast
from dsl.rulebook import COMPARATOR_WORDS, fact_type_words, movement_words

WIDTH = 100
INDENT = "  "


def quote(text: str) -> str:
    """A string literal for `text`, escaping what the grammar requires."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    body = "".join(
        c if c.isprintable() or c == " " else
        f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
        for c in body
    )
    return f'"{body}"'


def number(value: Decimal) -> str:
    text = format(value, "f")
    return text


def names(refs: tuple[ast.Ref, ...]) -> str:
    return ", ".join(r.name for r in refs)


def citation(c: ast.Citation) -> str:
    return f"per {c.instrument.name}" + (f" {c.provision}" if c.provision else "")


# ---------------------------------------------------------------- conditions and expressions


def expression(e: ast.Expression) -> str:
    if isinstance(e, ast.Field):
        return e.name.name
    if isinstance(e, ast.Quantity):
        return number(e.value) + (f" {e.unit}" if e.unit else "")
    if isinstance(e, ast.DateLiteral):
        return e.date.text
    if isinstance(e, ast.TextLiteral):
        return quote(e.text.value)
    if isinstance(e, ast.CountOf):
        return f"count of declarations {window(e.window)}"
    if isinstance(e, ast.SumOf):
        return f"sum of {e.field.name} over declarations {window(e.window)}"
    if isinstance(e, ast.Arithmetic):
        inner = f"{expression(e.left)} {e.op} {expression(e.right)}"
        return f"[{inner}]" if e.bracketed else inner
    raise TypeError(e)  # pragma: no cover


def reaches_text(c: ast.Reaches) -> str:
    """`X reaches P [of Y]` as a finding's evidence says it, after the values of the
    aggregates in X and Y: a fact by its name ("quantity kg reaches large-bulk-consignment"),
    an aggregate as what was just stated ("reaching split-parts", "quantity kg reaches
    split-largest-part of it", "the first reaches surge-rise of the second")."""
    def aggregate(e: ast.Expression | None) -> bool:
        return isinstance(e, ast.CountOf | ast.SumOf) or (
            isinstance(e, ast.Arithmetic) and (aggregate(e.left) or aggregate(e.right)))

    def words(e: ast.Expression) -> str:
        return e.name.name.replace("_", " ") if isinstance(e, ast.Field) else expression(e)

    p = c.parameter.name
    if c.of is None:
        return f"reaching {p}" if aggregate(c.subject) else f"{words(c.subject)} reaches {p}"
    if aggregate(c.subject) and aggregate(c.of):
        return f"the first reaches {p} of the second"
    if aggregate(c.subject):
        return f"reaching {p} of {words(c.of)}"
    return f"{words(c.subject)} reaches {p} of {'it' if aggregate(c.of) else words(c.of)}"


def window(w: ast.Window) -> str:
    text = f"within {w.parameter.name}" if w.parameter else f"within {w.days} days"
    return text + (f" with same {names(w.same)}" if w.same else "")


def condition(c: ast.Condition) -> str:
    """A condition on one line; and/or chains are split into lines by `when_lines`."""
    if isinstance(c, ast.AllOf):
        return " and ".join(condition(p) for p in c.parts)
    if isinstance(c, ast.AnyOf):
        return " or ".join(condition(p) for p in c.parts)
    if isinstance(c, ast.Negation):
        return f"not {condition(c.part)}"
    if isinstance(c, ast.Concluded):
        return f"{c.name} holds"
    if isinstance(c, ast.Parenthesised):
        return f"({condition(c.part)})"
    if isinstance(c, ast.ConclusionRef):
        return f"{c.name.name} holds"
    if isinstance(c, ast.Reaches):
        return (f"{expression(c.subject)} reaches {c.parameter.name}"
                + (f" of {expression(c.of)}" if c.of is not None else ""))
    if isinstance(c, ast.ItemIn):
        return f"item {'not in' if c.negated else 'in'} {names(c.members)}"
    if isinstance(c, ast.CodeUnder):
        return f"{c.subject.name} under {', '.join(x.text for x in c.codes)}"
    if isinstance(c, ast.InSet):
        return (f"{c.subject.name} {'not in' if c.negated else 'in'} "
                f"{'codes of ' if c.any_time else ''}{names(c.members)}")
    if isinstance(c, ast.IsMissing):
        return f"{c.subject.name} is {'not missing' if c.negated else 'missing'}"
    if isinstance(c, ast.Mentions):
        terms = ", ".join(t.name if isinstance(t, ast.Ref) else quote(t.value) for t in c.terms)
        return f"{c.subject.name} mentions {terms}"
    if isinstance(c, ast.DualUse):
        return f"item is {'not ' if c.negated else ''}dual-use"
    if isinstance(c, ast.Listed):
        return (f"{c.subject.name} listed" + (f" on {names(c.lists)}" if c.lists else "")
                + (f" with {names(c.measures)}" if c.measures else ""))
    if isinstance(c, ast.Related):
        other = c.other.name if isinstance(c.other, ast.Ref) else \
            f"party listed on {names(c.other.lists)}"
        text = f"{c.subject.name} related to {other}"
        if c.hops is not None:
            text += f" within {c.hops} hop{'s' if c.hops != 1 else ''}"
        if c.hops_parameter is not None:
            text += f" within {c.hops_parameter.name} hops"
        if c.via:
            text += f" via {names(c.via)}"
        if c.ownership is not None:
            text += f" reaching {c.ownership.name}"
        return text
    if isinstance(c, ast.FirstSeen):
        return f"{c.subject.name} first seen " + window(ast.Window(c.days, (), c.span,
                                                                      c.parameter))
    if isinstance(c, ast.InRange):
        return f"{c.subject.name} within range of {names(c.members)}"
    if isinstance(c, ast.Comparison):
        return f"{expression(c.left)} {c.op} {expression(c.right)}"
    raise TypeError(c)  # pragma: no cover


def condition_lines(keyword: str, c: ast.Condition) -> list[str]:
    """`when A` then `and B` / `or C` lines, the joiner right-aligned under the keyword.

    A part too long for one line is split further: a parenthesised and/or opens its own
    aligned block, an `and` chain inside an `or` continues on deeper-indented lines.
    """
    return _block(keyword, c, len(INDENT))


def _joined(c: ast.Condition) -> tuple[str, tuple[ast.Condition, ...]] | None:
    if isinstance(c, ast.AllOf):
        return "and", c.parts
    if isinstance(c, ast.AnyOf):
        return "or", c.parts
    return None


def _block(keyword: str, c: ast.Condition, indent: int) -> list[str]:
    chain = _joined(c)
    if chain is None:
        return _part(keyword, c, indent)
    joiner, parts = chain
    pad = " " * max(0, len(keyword) - len(joiner))
    lines = _part(keyword, parts[0], indent)
    for p in parts[1:]:
        lines += _part(pad + joiner, p, indent)
    return lines


def _part(prefix: str, part: ast.Condition, indent: int) -> list[str]:
    one = f"{prefix} {condition(part)}"
    if indent + len(one) <= WIDTH:
        return [one]
    lead = " " * (len(prefix) - len(prefix.lstrip()))
    if isinstance(part, ast.Parenthesised) and _joined(part.part):
        # "prefix (" then the inner chain aligned one column right of the parenthesis
        column = len(prefix) + 2
        inner = _block("", part.part, indent + column)
        first = f"{prefix} ({inner[0].lstrip()}"
        rest = [" " * column + ln.lstrip() if not ln.startswith(" ") else " " * column + ln
                for ln in inner[1:]]
        lines = [first, *rest]
        lines[-1] += ")"
        return lines
    if _joined(part) is not None:
        inner = _block(prefix, part, indent)
        return [inner[0], *(lead + INDENT * 2 + ln.lstrip() for ln in inner[1:])]
    return [one]


# ---------------------------------------------------------------- attributes


def outcome(o: ast.Outcome | None) -> str:
    if o is None:
        return "no finding"
    return f"risk {o.severity}" if o.kind == "risk" else o.kind


_FIELD_WORDS = {
    "declared_on": "on", "hs_code": "code", "destination_country": "to", "consignee": "consignee",
    "end_user": "end user", "exporter": "exporter", "description": "description",
    "licence_no": "under licence", "holder": "holder", "agents": "agent", "country": "country",
    "address": "address", "phone": "phone", "parent": "parent",
}


def _value(v: object) -> str:
    """A field value as written: names and codes bare, texts quoted, quantities with units."""
    if isinstance(v, ast.Text):
        return quote(v.value)
    if isinstance(v, ast.Ref):
        return v.name
    if isinstance(v, ast.DateValue | ast.Code):
        return v.text
    if isinstance(v, ast.Quantity):
        return expression(v)
    if isinstance(v, ast.ItemList):
        return ", ".join(e.name if isinstance(e, ast.Ref) else e.text for e in v.entries)
    raise TypeError(v)  # pragma: no cover


def field_text(f: ast.DeclarationField) -> str:
    in_country = f" in {f.country.name}" if f.country else ""
    if f.name in _FIELD_WORDS:
        return f"{_FIELD_WORDS[f.name]} {_value(f.value)}{in_country}"
    if f.name == "purity_pct" and isinstance(f.value, ast.Quantity):
        return f"purity {_value(f.value)}"
    if f.name == "kind" or f.name in ("quantity_kg", "value_usd", "amount"):
        return _value(f.value)
    if f.name == "items":
        return f"items {_value(f.value)}"
    return f"with {f.name} {_value(f.value)}"


def wrapped(head: str, parts: list[str], indent: str) -> list[str]:
    """`head part part …`, continued on lines indented two more spaces past WIDTH."""
    lines = [indent + head]
    for p in parts:
        if len(lines[-1]) + 1 + len(p) > WIDTH - len(INDENT) and lines[-1].strip() != head:
            lines.append(indent + INDENT + p)
        else:
            lines[-1] += " " + p
    return lines


def attribute(a: object) -> list[str]:
    """The lines of one attribute, without indentation."""
    if isinstance(a, ast.Note):
        return [f"note {quote(a.text.value)}"]
    if isinstance(a, ast.Source):
        return [f"source {quote(a.text.value)}"]
    if isinstance(a, ast.Unverified):
        return [f"unverified {quote(a.text.value)}"]
    if isinstance(a, ast.Confidence):
        return [f"confidence {a.level}"]
    if isinstance(a, ast.ValidFrom):
        return [f"from {a.date.text}"]
    if isinstance(a, ast.ValidUntil):
        return [f"until {a.date.text}"]
    if isinstance(a, ast.Citation):
        return [citation(a)]
    if isinstance(a, ast.Jurisdiction):
        return [f"jurisdiction {a.country.name}"]
    if isinstance(a, ast.Judges):
        return [f"judges {', '.join(movement_words(m) for m in a.movements)}"]
    if isinstance(a, ast.SourcesChecked):
        return [f"sources checked through {a.date.text}"]
    if isinstance(a, ast.Title):
        return [f"title {a.lang + ' ' if a.lang else ''}{quote(a.text.value)}"]
    if isinstance(a, ast.Issuer):
        return [f"issuer {names(a.names)}"]
    if isinstance(a, ast.Number):
        return [f"number {quote(a.text.value)}"]
    if isinstance(a, ast.Issued):
        return [f"issued {a.date.text}"]
    if isinstance(a, ast.InForce):
        return [f"in force {a.date.text}"]
    if isinstance(a, ast.Url):
        return [f"url {quote(a.text.value)}"]
    if isinstance(a, ast.Provision):
        text = f"{a.kind} {a.label} {quote(a.text.value)}"
        return [text + (f" zh {quote(a.text_zh.value)}" if a.text_zh else "")]
    if isinstance(a, ast.NameZh):
        return [f"zh {quote(a.text.value)}"]
    if isinstance(a, ast.TitleZh):
        return [f"title zh {quote(a.text.value)}"]
    if isinstance(a, ast.Control):
        return [f"control {a.code.text}"]
    if isinstance(a, ast.MemberOf):
        return [f"member of {names(a.groups)}"]
    if isinstance(a, ast.Customs):
        return wrapped("customs", [
            c.text + ("," if i < len(a.codes) - 1 else "") for i, c in enumerate(a.codes)], "")
    if isinstance(a, ast.ControlledIf):
        return condition_lines("controlled if", a.condition)
    if isinstance(a, ast.Members):
        return [f"members {names(a.names)}"]
    if isinstance(a, ast.ParameterValue):
        value = number(a.value) + (f" {a.unit}" if a.unit else "")
        return [" ".join(x for x in (
            COMPARATOR_WORDS[a.op], value,
            f"from {a.valid_from.date.text}" if a.valid_from else "",
            f"until {a.valid_until.date.text}" if a.valid_until else "",
            citation(a.citation) if a.citation else "") if x)]
    if isinstance(a, ast.FactType):
        if a.kind == "one of":
            return [f"type one of {', '.join(quote(c.value) for c in a.choices)}"]
        return [f"type {fact_type_words(a)}"]
    if isinstance(a, ast.FactAlias):
        return [f"alias {names(a.names)}"]
    if isinstance(a, ast.ReadFrom):
        return [f"read from {quote(a.text.value)}"]
    if isinstance(a, ast.BelongsTo):
        return [f"for {names(a.names)}"]
    if isinstance(a, ast.Words):
        return [f"words {', '.join(quote(w.value) for w in a.words)}"]
    if isinstance(a, ast.MatchThreshold):
        return [f"match threshold {number(a.value)}"]
    if isinstance(a, ast.PriceRange):
        return [f"range {number(a.low)} {a.low_unit} to {number(a.high)} {a.high_unit}"]
    if isinstance(a, ast.Country):
        return [f"country {a.code.name}"]
    if isinstance(a, ast.Alias):
        return [f"alias {', '.join(quote(n.value) for n in a.names)}"]
    if isinstance(a, ast.Listing):
        text = f"listed on {a.list.name} {citation(a.citation)} from {a.valid_from.date.text}"
        text += f" until {a.valid_until.date.text}" if a.valid_until else ""
        if a.measures is not None:
            text += f" with {names(a.measures)}" if a.measures else " with no measures"
        return [text]
    if isinstance(a, ast.ControlAct):
        text = citation(a.citation)
        text += f" from {a.valid_from.date.text}" if a.valid_from else ""
        return [text + (f" until {a.valid_until.date.text}" if a.valid_until else "")]
    if isinstance(a, ast.Measures):
        return [f"measures {names(a.names)}"]
    if isinstance(a, ast.Address):
        return [f"address {quote(a.text.value)}"]
    if isinstance(a, ast.Phone):
        return [f"phone {quote(a.text.value)}"]
    if isinstance(a, ast.OwnedBy):
        share = f" {number(a.share_pct)} %" if a.share_pct is not None else ""
        return [f"owned by {a.owner.name}{share}"]
    if isinstance(a, ast.When):
        return condition_lines("when", a.condition)
    if isinstance(a, ast.Then):
        return [f"then {outcome(a.outcome)}" + (f" zh {quote(a.zh.value)}" if a.zh else "")]
    if isinstance(a, ast.Explain):
        return [f"explain {quote(a.template.value)}"]
    if isinstance(a, ast.ExplainZh):
        return [f"explain zh {quote(a.template.value)}"]
    if isinstance(a, ast.Overrides):
        return [f"overrides {names(a.rules)}"]
    if isinstance(a, ast.Alongside):
        return [f"alongside {names(a.rules)}"]
    if isinstance(a, ast.IfMissing):
        return [f"if missing {a.field.name} then {outcome(a.outcome)}"]
    if isinstance(a, ast.Excepts):
        return [f"excepts {names(a.rules)}"]
    if isinstance(a, ast.AsOf):
        return [f"as of {a.date.text}"]
    if isinstance(a, ast.ExampleDeclaration):
        head = "declaration" + (f" {a.id.name}" if a.id else "")
        return wrapped(head, [field_text(f) for f in a.fields], "")
    if isinstance(a, ast.ExampleLicence):
        parts = [attribute(f)[0] if not isinstance(f, ast.DeclarationField) else field_text(f)
                 for f in a.fields]
        return wrapped(f"licence {a.number.name}", parts, "")
    if isinstance(a, ast.Company):
        return wrapped(f"company {quote(a.name.value)}", [field_text(f) for f in a.fields], "")
    if isinstance(a, ast.Expect):
        text = "expect " + ("" if a.present else "no ") + a.outcome
        if a.rule:
            text += f" by {a.rule.name}"
        if a.declaration:
            text += f" for {a.declaration.name}"
        if a.missing:
            text += f" missing {a.missing.name}"
        if a.citing:
            text += " citing " + citation(a.citing)[4:]
        if a.basis:
            text += f" resting on {a.basis.name}"
        return [text]
    raise TypeError(a)  # pragma: no cover


def _target(t: ast.Target) -> str:
    if t.kind == "listings":
        return f"listings under {t.name.name}"
    if t.kind == "listing":
        return f"listing of {t.name.name} on {t.list.name if t.list else ''}"
    return t.name.name + (f" {t.provision}" if t.provision else "")


def header(d: ast.Declaration) -> str:
    if isinstance(d, ast.RulebookDecl):
        return f"rulebook {d.name.name} {quote(d.title.value)}"
    if isinstance(d, ast.Use):
        return f"use {quote(d.path.value)}"
    if isinstance(d, ast.Instrument):
        return f"instrument {d.name.name}"
    if isinstance(d, ast.Amendment):
        verb = {"suspend": "suspend", "extend": "extend suspension of", "repeal": "repeal",
                "lift": "lift"}
        return f"{verb[d.action]} {', '.join(_target(t) for t in d.targets)}"
    if isinstance(d, ast.Example):
        return f"example {quote(d.title.value)}"
    keyword = {
        ast.Item: "item", ast.Group: "group", ast.CountryGroup: "countries", ast.Terms: "terms",
        ast.ValueRange: "value range",
        ast.PartyList: "list", ast.Party: "party", ast.Rule: "rule",
        ast.Exception_: "exception", ast.Conclusion: "conclusion", ast.Parameter: "parameter",
        ast.Fact: "fact",
    }[type(d)]
    title = getattr(d, "title", None)
    name: ast.Ref = d.name
    return f"{keyword} {name.name}" + (f" {quote(title.value)}" if title else "")


# ---------------------------------------------------------------- files, with comments


def _join_validity(attrs: tuple[object, ...]) -> list[tuple[list[object], list[str]]]:
    """Group attributes into printed lines: `from A` directly followed by `until B` share one."""
    out: list[tuple[list[object], list[str]]] = []
    i = 0
    while i < len(attrs):
        a = attrs[i]
        if isinstance(a, ast.ValidFrom) and i + 1 < len(attrs) and \
                isinstance(attrs[i + 1], ast.ValidUntil):
            b = attrs[i + 1]
            out.append(([a, b], [f"from {a.date.text} until {b.date.text}"]))  # type: ignore[attr-defined]
            i += 2
            continue
        out.append(([a], attribute(a)))
        i += 1
    return out


def format_file(sf: ast.SourceFile) -> str:
    """The canonical text of a parsed file."""
    comments = sorted(sf.comments, key=lambda c: (c.span.line, c.span.column))
    standalone = [c for c in comments if not c.trailing]
    trailing = {c.span.line: c for c in comments if c.trailing}
    pending = list(standalone)
    out: list[str] = []

    def leading(before_line: int, indent: str) -> None:
        """Comments above a line; at the top level a blank line after a comment is kept."""
        while pending and pending[0].span.line < before_line:
            c = pending.pop(0)
            out.append(indent + c.text.rstrip())
            following = pending[0].span.line if pending and pending[0].span.line < before_line \
                else before_line
            if not indent and following > c.span.line + 1:
                out.append("")

    # A trailing comment belongs to the last construct that has code on its line.
    owner: dict[int, tuple[int, int]] = {}
    for n, d in enumerate(sf.declarations):
        owner[d.span.line] = (n, -1)
        for g, (group, _) in enumerate(_join_validity(getattr(d, "attrs", ()))):
            start = _line(group[0])
            for line in range(start, max(_end_line(a) for a in group) + 1) if start else ():
                owner[line] = (n, g)

    def emit(lines: list[str], indent: str, first: int, last: int, key: tuple[int, int],
             anchors: list[int] | None = None) -> None:
        """Print an attribute's lines with the trailing comments of its source lines: each on
        the printed line that starts at or before its source line (`anchors`: the source line
        of each printed line, for a condition written over several), else on the last."""
        tail = [trailing.pop(n) for n in sorted(trailing)
                if first <= n <= last and owner.get(n, key) == key]
        printed = [indent + ln for ln in lines]
        for c in tail:
            at = len(printed) - 1
            if anchors is not None and len(anchors) == len(printed):
                at = max((i for i, a in enumerate(anchors) if a <= c.span.line), default=at)
            printed[at] += "  " + c.text.rstrip()
        # full-line comments between the attribute's own lines stay inside it: before the
        # part of a condition they precede, else above the attribute (they were moved below
        # the whole declaration)
        inner = [c for c in pending if first < c.span.line <= last] if key[1] >= 0 else []
        for c in reversed(inner):
            pending.remove(c)
            at = 0
            if anchors is not None and len(anchors) == len(printed):
                at = next((i for i, a in enumerate(anchors) if a > c.span.line), len(printed))
            near = printed[min(at, len(printed) - 1)]
            pad = near[:len(near) - len(near.lstrip())] if at else indent
            printed.insert(at, pad + c.text.rstrip())
        out.extend(printed)

    for n, d in enumerate(sf.declarations):
        if n:
            out.append("")
        leading(d.span.line, "")
        attrs = getattr(d, "attrs", ())
        head_end = d.span.line
        first_attr_line = min((_line(a) for a in attrs if _line(a)), default=d.span.end_line + 1)
        emit([header(d)], "", d.span.line, max(head_end, first_attr_line - 1), (n, -1))
        for g, (group, lines) in enumerate(_join_validity(attrs)):
            start = _line(group[0]) or head_end
            end = max(_end_line(a) for a in group) or start
            leading(start, INDENT)
            emit(lines, INDENT, start, end, (n, g), _anchors(group))
    if pending and sf.declarations and pending[0].span.line > sf.declarations[-1].span.end_line + 1:
        out.append("")
    leading(10**12, "")
    for c in sorted(trailing.values(), key=lambda c: c.span.line):
        out.append(c.text.rstrip())
    text = "\n".join(out).rstrip("\n")
    return text + "\n" if text else ""


def _anchors(group: list[object]) -> list[int] | None:
    """For a `when` whose chain of conditions prints one part per line, the source line each
    part starts on (so that a comment stays beside its part)."""
    if len(group) != 1 or not isinstance(group[0], ast.When):
        return None
    chain = _joined(group[0].condition)
    return [_line(p) for p in chain[1]] if chain else None


def _line(a: object) -> int:
    span = getattr(a, "span", None)
    return span.line if span else 0


def _end_line(a: object) -> int:
    span = getattr(a, "span", None)
    return span.end_line if span else 0
