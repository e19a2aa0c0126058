"""Parse rulebook text into the typed AST, and turn every syntax error into a Diagnostic.

The grammar is LALR with `strict=True`; the AST is built inline while parsing (Lark's
`transformer=` option, `dsl.transform`), so there is no intermediate parse tree. When a file
has syntax errors the parser recovers declaration by declaration (a declaration starts at
column 1), so one run reports an error in every broken declaration, not only the first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import cache
from importlib import resources

import lark
from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from dsl import ast
from dsl.diagnostics import Diagnostic, did_you_mean
from dsl.schema import UNIT_DIMENSIONS
from dsl.transform import AstBuilder, SyntaxProblem

DECLARATION_KEYWORDS = (
    "rulebook", "use", "instrument", "item", "group", "countries", "terms", "value", "list",
    "party",
    "rule", "conclusion", "parameter", "fact", "exception", "suspend", "extend", "repeal", "lift",
    "example",
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
    "FINDING": "prohibited, presumption-of-denial, unlicensed, case-by-case, undetermined, "
               "risk or findings",
    "KIND": "individual or general",
    "ZH": "'zh'",
    "$END": "the end of the file",
}


def grammar_text() -> str:
    return resources.files("dsl").joinpath("grammar.lark").read_text(encoding="utf-8")


class _Parser:
    """One Lark parser with its inline AST builder and comment sink; parses are serialised."""

    def __init__(self) -> None:
        self.builder = AstBuilder()
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
_OUTCOME_WORDS = frozenset({"prohibited", "licence", "presumption", "case-by-case", "permitted",
                            "undetermined", "risk"})
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
        if hint is None and re.fullmatch(r"[A-Za-z/µ]+", value):
            hint = did_you_mean(value, UNITS)  # `kgs`, `USD/kgs`
        if "DATE" in (err.expected or ()):
            at = tok.start_pos or 0
            hint = hint or _bad_date_hint(text[at : at + 12])
        if hint is not None and hint.startswith("did you mean"):
            # the likely fix first; what the grammar accepts here after it
            return Diagnostic("E101", f"unexpected '{shown}' here; {hint}", span,
                              f"expected {expected}")
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


UNITS = tuple(UNIT_DIMENSIONS)
_MISSPELT_DECLARATION = re.compile(
    r"(?P<kind>[A-Za-z]+)[ \t]+(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)")
_DECLARED_KINDS = ("instrument", "item", "group", "countries", "terms", "list", "party", "rule",
                   "exception")


def _broken_name(chunk: str, file: str, offset: int) -> tuple[str, str, ast.Span] | None:
    """The kind and name of a declaration that failed to parse, read from its first line
    (its keyword may be misspelt: `rul us-ban` still declares `us-ban`, so references to it
    add no errors of their own)."""
    m = _DECLARED_NAME.match(chunk)
    if m is None:
        m = _MISSPELT_DECLARATION.match(chunk)
        if m is None or did_you_mean(m.group("kind"), _DECLARED_KINDS) is None:
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
