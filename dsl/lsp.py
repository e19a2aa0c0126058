"""`excon lsp`: a language server for rulebooks (pygls, over stdio).

An editor that speaks the Language Server Protocol (VS Code, Neovim, Emacs; editors/README.md)
gets, for `*.excon` files:
- **diagnostics as you type**: the checker's, for the whole rulebook the file belongs to (every
  `.excon` file of its folder, with the editor's unsaved text in place of the file's);
- **hover**: an instrument's title (and Chinese title), issuer, dates and provisions; an item's
  title, control code, customs codes and the acts that control it with their periods; a rule's
  outcome, citation and condition; a group's, list's or party's title;
- **go to definition** of an instrument, item, group, country group, list, party, rule or
  exception, and **find references**: every rule, example and declaration naming it;
- **completion** in context: instruments after `per`, their provision labels after
  `per INSTRUMENT`, items and groups after `item in`, countries and country groups after
  `destination in`, lists after `listed on`, rules after `by`, keywords elsewhere;
- **formatting**: `excon fmt`'s canonical layout (nothing while the file has syntax errors).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

import dsl
from dsl import ast
from dsl.diagnostics import Diagnostic
from dsl.parse import DECLARATION_KEYWORDS
from dsl.rulebook import CheckedRulebook
from dsl.schema import Schema
from dsl.textmate import keywords

WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_NOTES = ("note", "source", "unverified", "confidence")
_DATED = ("per", "from", "until")
# The attribute keywords of each kind of declaration (the grammar's `_<kind>_attr` rules),
# offered at the start of an indented line below it.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "rulebook": ("jurisdiction", "sources checked through", "judges", *_NOTES),
    "instrument": ("title", "issuer", "number", "issued", "in force", "url", "article",
                   "clause", "paragraph", "part", "annex", "section", "entry", *_NOTES),
    "item": ("zh", "control", "member of", "per", "customs", "controlled if", *_NOTES),
    "group": ("members", "per", *_NOTES),
    "countries": ("members", *_DATED, *_NOTES),
    "terms": ("words", "for", *_NOTES),
    "value": ("customs", "range", "per", "for", *_NOTES),
    "list": ("title", "issuer", "per", "match threshold", "measures", *_NOTES),
    "party": ("title", "country", "alias", "listed on", "address", "phone", "owned by",
              *_NOTES),
    "rule": (*_DATED, "when", "then", "explain", "overrides", "alongside", "if missing",
             "judges", *_NOTES),
    "parameter": ("at least", "more than", "at most", "less than", *_NOTES),
    "fact": ("type", "alias", "read from", *_NOTES),
    "conclusion": ("per", "when", *_NOTES),
    "exception": ("excepts", *_DATED, "when", *_NOTES),
    "suspend": (*_DATED, *_NOTES), "extend": (*_DATED, *_NOTES),
    "repeal": (*_DATED, *_NOTES), "lift": (*_DATED, *_NOTES),
    "example": ("as of", "declaration", "licence", "company", "expect", "note", "source"),
}
# Every attribute keyword: offered where the declaration above cannot be told.
ATTRIBUTE_KEYWORDS = (
    "title", "issuer", "number", "issued", "in force", "url", "per", "from", "until", "when",
    "sources checked through",
    "then", "explain", "overrides", "alongside", "excepts", "if missing", "control",
    "customs", "member of", "members", "controlled if", "alias", "country", "listed on",
    "address", "phone", "owned by", "measures", "match threshold", "note", "source",
    "unverified", "confidence", "declaration", "licence", "expect", "as of", "words",
    "type", "read from",
)


@dataclasses.dataclass
class Analysis:
    """One rulebook folder, checked: its files' ASTs, its diagnostics, the rulebook."""

    folder: Path
    files: list[ast.SourceFile]
    diagnostics: list[Diagnostic]
    rulebook: CheckedRulebook | None
    paths: dict[str, Path]  # a file's name in the diagnostics → its path
    schema: Schema  # the facts the rulebook was checked against


def analyse(folder: Path, open_texts: dict[Path, str], schema: Schema) -> Analysis:
    """Parse and check every `.excon` file of `folder` against `schema`, the editor's texts in
    place of the files' own."""
    files: list[ast.SourceFile] = []
    diags: list[Diagnostic] = []
    paths: dict[str, Path] = {}
    wanted = {p.resolve() for p in folder.glob("*.excon")} | {
        p for p in open_texts if p.parent == folder}
    for path in sorted(wanted):
        name = str(path)
        text = open_texts.get(path)
        if text is None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
        sf, errs = dsl.parse_text(text, name)
        files.append(sf)
        diags.extend(errs)
        paths[name] = path
    rb, found = dsl.check(files, schema)
    diags.extend(found)
    return Analysis(folder, files, diags, rb, paths, schema)


def lsp_range(span: ast.Span) -> t.Range:
    line = max(0, span.line - 1)
    end_line = max(line, span.end_line - 1)
    start = max(0, span.column - 1)
    end = max(0, span.end_column - 1)
    if end_line == line:
        end = max(start + 1, end)  # at least one character under the squiggle
    return t.Range(t.Position(line, start), t.Position(end_line, end))


def lsp_diagnostic(d: Diagnostic) -> t.Diagnostic:
    message = d.message + (f"\n{d.hint}" if d.hint else "")
    return t.Diagnostic(
        range=lsp_range(d.span), message=message, code=d.code, source="excon",
        severity=t.DiagnosticSeverity.Error if d.is_error else t.DiagnosticSeverity.Warning)


def refs_in(node: Any) -> Iterator[ast.Ref]:
    """Every name reference in an AST node, however deep."""
    if isinstance(node, ast.Ref):
        yield node
    elif isinstance(node, tuple | list):
        for x in node:
            yield from refs_in(x)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            if f.name != "span":
                yield from refs_in(getattr(node, f.name))


def declarations(rb: CheckedRulebook) -> dict[str, tuple[str, Any]]:
    """Every declared name: (its kind, its declaration)."""
    out: dict[str, tuple[str, Any]] = {}
    for kind, table in (("instrument", rb.instruments), ("item", rb.items),
                        ("item group", rb.groups), ("country group", rb.country_groups),
                        ("terms", rb.terms), ("value range", rb.value_ranges),
                        ("party list", rb.lists), ("party", rb.parties), ("rule", rb.rules),
                        ("exception", rb.exceptions), ("conclusion", rb.conclusions),
                        ("parameter", rb.parameters), ("fact", rb.facts)):
        for name, decl in table.items():
            out.setdefault(name, (kind, decl))
    return out


def word_at(text: str, position: t.Position) -> str | None:
    lines = text.split("\n")
    if position.line >= len(lines):
        return None
    line = lines[position.line]
    for m in WORD.finditer(line):
        if m.start() <= position.character <= m.end():
            return m.group(0)
    return None


def hover_text(a: Analysis, name: str) -> str | None:
    """What an editor shows on hover over a name."""
    rb = a.rulebook
    if rb is None:
        return None
    found = declarations(rb).get(name)
    if found is None:
        return None
    kind, decl = found
    model = dsl.law(rb)
    lines = []
    if kind == "instrument" and name in model.instruments:
        i = model.instruments[name]
        lines.append(f"**{name}** (instrument): {i.title}")
        if i.title_zh:
            lines.append(i.title_zh)
        dates = [f"issued {i.issued}" if i.issued else "", f"in force {i.in_force}"
                 if i.in_force else ""]
        lines.append(", ".join(x for x in [i.issuer or "", *dates] if x))
        for p in i.provisions:
            lines.append(f"- {p.kind} {p.label}: {p.text or ''}")
    elif kind == "item" and name in model.items:
        from dsl.periods import item_controls

        it = model.items[name]
        lines.append(f"**{name}** (item): {it.title}" + (f" ({it.title_zh})"
                                                         if it.title_zh else ""))
        if it.control_code:
            lines.append(f"control code {it.control_code}")
        if it.codes:
            lines.append("customs codes " + ", ".join(c.written for c in it.codes))
        for c in item_controls(rb).get(name, []):
            span = f"{c.start or '…'} – {c.end}" if c.end else (
                f"from {c.start}" if c.start else "at all times")
            lines.append(f"- controlled {span} by {c.instrument}"
                         + (f" {c.provision}" if c.provision else ""))
    elif kind in ("rule", "exception"):
        title = decl.title.value if decl.title else ""
        lines.append(f"**{name}** ({kind}): {title}")
        then = ast.first_attr(decl, ast.Then)
        if then is not None:
            lines.append(f"then {dsl.format.outcome(then.outcome)}")
        for cite in ast.attrs_of(decl, ast.Citation):
            lines.append(dsl.format.citation(cite))  # "per ACT PROVISION"
        when = ast.first_attr(decl, ast.When)
        if when is not None:
            lines.append(f"when {dsl.format.condition(when.condition)}")
    else:
        title = getattr(getattr(decl, "title", None), "value", None)
        lines.append(f"**{name}** ({kind})" + (f": {title}" if title else ""))
        if isinstance(decl, ast.Fact):
            spec = next(f for f in a.rulebook.declared_fields() if f.name == name)  # type: ignore[union-attr]
            lines.append(f"type {spec.type_words}; a column of declarations.csv"
                         + (f" (also {', '.join(spec.aliases)})" if spec.aliases else ""))
    return "\n\n".join(x for x in lines if x)


def location_of(a: Analysis, span: ast.Span) -> t.Location:
    path = a.paths.get(span.file, Path(span.file))
    return t.Location(uri=from_fs_path(str(path)) or str(path), range=lsp_range(span))


def completions(a: Analysis, text: str, position: t.Position) -> list[t.CompletionItem]:
    """What may come at the cursor, from the text before it on its line."""
    rb = a.rulebook
    lines = text.split("\n")
    before = lines[position.line][:position.character] if position.line < len(lines) else ""
    items: list[tuple[str, t.CompletionItemKind, str]] = []
    names = declarations(rb) if rb else {}

    def of(*kinds: str) -> list[tuple[str, t.CompletionItemKind, str]]:
        return [(n, t.CompletionItemKind.Reference, k) for n, (k, _) in sorted(names.items())
                if k in kinds]

    provision = re.search(r"\bper ([A-Za-z0-9_.\-]+) +\w*$", before)
    if provision and rb and provision.group(1) in dsl.law(rb).instruments:
        i = dsl.law(rb).instruments[provision.group(1)]
        items = [(f"{p.kind} {p.label}", t.CompletionItemKind.EnumMember, p.text or "")
                 for p in i.provisions]
    elif re.search(r"\bper +\S*$", before):
        items = of("instrument")
    elif re.search(r"\b(item in|item not in|members|member of|excepts)( +\S+,)* *\S*$",
                   before):
        items = of("item", "item group")
    elif re.search(r"\b(destination|country|_country|jurisdiction)( +not)?( +in)?"
                   r"( +\S+,)* *\S*$", before):
        items = [(c, t.CompletionItemKind.Constant, "country")
                 for c in sorted(a.schema.countries or ())]
        items += of("country group")
    elif re.search(r"\b(when|and|or|not|if missing|controlled if)\s+[A-Za-z_]*$", before) \
            and rb is not None:
        # the facts of a declaration, the rulebooks' declared facts among them
        items = [(f.name, t.CompletionItemKind.Field, f.description)
                 for f in sorted(rb.schema(a.schema).fields, key=lambda f: f.name)]
    elif re.search(r"\blisted on +\S*$", before):
        items = of("party list")
    elif re.search(r"\b(by|overrides|alongside)( +\S+,)* *\S*$", before):
        items = of("rule", "exception")
    elif before.strip() == "" and before.startswith((" ", "\t")):
        kind = _declaration_above(lines, position.line)
        items = [(k, t.CompletionItemKind.Keyword, "")
                 for k in ATTRIBUTES.get(kind or "", ATTRIBUTE_KEYWORDS)]
    elif before.strip() == before:
        items = [(k, t.CompletionItemKind.Keyword, "") for k in DECLARATION_KEYWORDS]
    else:
        items = [(k, t.CompletionItemKind.Keyword, "") for k in keywords()]
    return [t.CompletionItem(label=label, kind=kind, detail=detail or None)
            for label, kind, detail in items]


def _declaration_above(lines: list[str], line: int) -> str | None:
    """The keyword of the declaration a line belongs to: the first word of the nearest line
    above it that starts at the margin (comments and blank lines skipped)."""
    for text in reversed(lines[:line]):
        if text and not text[0].isspace() and not text.startswith("#"):
            return text.split(None, 1)[0]
    return None


class RulebookServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("excon", "0.1")
        self.schema = Schema(fields=())  # `main` gives the facts the rulebooks are checked against
        self.texts: dict[Path, str] = {}
        self.analyses: dict[Path, Analysis] = {}

    def analysis(self, uri: str) -> tuple[Analysis, Path]:
        path = Path(to_fs_path(uri) or uri).resolve()
        folder = path.parent
        if folder not in self.analyses:
            self.analyses[folder] = analyse(folder, self.texts, self.schema)
        return self.analyses[folder], path

    def changed(self, uri: str, text: str | None) -> None:
        path = Path(to_fs_path(uri) or uri).resolve()
        if text is None:
            self.texts.pop(path, None)
        else:
            self.texts[path] = text
        self.analyses.pop(path.parent, None)
        a, _ = self.analysis(uri)
        for name, file in a.paths.items():  # every file of the rulebook: a change in one
            diags = [lsp_diagnostic(d) for d in a.diagnostics if d.span.file == name]
            if file in self.texts or diags:  # can clear or raise errors in another
                self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
                    uri=from_fs_path(str(file)) or str(file), diagnostics=diags))

    def text_of(self, uri: str) -> str:
        """An open document's text, else the file's; "" for a file that is neither (a hover
        on it answered an internal error with a Python traceback)."""
        try:  # the workspace keeps an open document's edits, and reads another from disk
            return str(self.workspace.get_text_document(uri).source)
        except (OSError, UnicodeDecodeError):
            return ""


server = RulebookServer()


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: RulebookServer, params: t.DidOpenTextDocumentParams) -> None:
    ls.changed(params.text_document.uri, params.text_document.text)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: RulebookServer, params: t.DidChangeTextDocumentParams) -> None:
    ls.changed(params.text_document.uri, ls.text_of(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: RulebookServer, params: t.DidSaveTextDocumentParams) -> None:
    ls.changed(params.text_document.uri, ls.text_of(params.text_document.uri))


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: RulebookServer, params: t.DidCloseTextDocumentParams) -> None:
    ls.changed(params.text_document.uri, None)


@server.feature(t.TEXT_DOCUMENT_HOVER)
def hover(ls: RulebookServer, params: t.HoverParams) -> t.Hover | None:
    a, _ = ls.analysis(params.text_document.uri)
    name = word_at(ls.text_of(params.text_document.uri), params.position)
    text = hover_text(a, name) if name else None
    if text is None:
        return None
    return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=text))


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
def definition(ls: RulebookServer, params: t.DefinitionParams) -> t.Location | None:
    a, _ = ls.analysis(params.text_document.uri)
    name = word_at(ls.text_of(params.text_document.uri), params.position)
    found = declarations(a.rulebook).get(name or "") if a.rulebook else None
    if found is None:
        return None
    return location_of(a, found[1].name.span)


@server.feature(t.TEXT_DOCUMENT_REFERENCES)
def references(ls: RulebookServer, params: t.ReferenceParams) -> list[t.Location]:
    a, _ = ls.analysis(params.text_document.uri)
    name = word_at(ls.text_of(params.text_document.uri), params.position)
    if not name:
        return []
    found = declarations(a.rulebook).get(name) if a.rulebook else None
    declared = found[1].name.span if found else None
    out = []
    for f in a.files:
        for ref in refs_in(f.declarations):
            if ref.name == name and (ref.span != declared or
                                     params.context.include_declaration):
                out.append(location_of(a, ref.span))
    return out


@server.feature(t.TEXT_DOCUMENT_COMPLETION,
                t.CompletionOptions(trigger_characters=[" ", ","]))
def completion(ls: RulebookServer, params: t.CompletionParams) -> t.CompletionList:
    a, _ = ls.analysis(params.text_document.uri)
    items = completions(a, ls.text_of(params.text_document.uri), params.position)
    return t.CompletionList(is_incomplete=False, items=items)


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: RulebookServer, params: t.DocumentFormattingParams) -> list[t.TextEdit]:
    text = ls.text_of(params.text_document.uri)
    formatted, _ = dsl.format_text(text, params.text_document.uri)
    if formatted is None or formatted == text:
        return []
    lines = text.split("\n")
    end = t.Position(len(lines) - 1, len(lines[-1]))
    return [t.TextEdit(range=t.Range(t.Position(0, 0), end), new_text=formatted)]


def main(schema: Schema) -> None:
    """Serve over stdio, checking rulebooks against `schema` (the knowledge base gives the
    declarations' facts: `excon lsp`)."""
    server.schema = schema
    server.start_io()
