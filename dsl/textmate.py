"""The TextMate grammar for rulebooks (editors/excon.tmLanguage.json), made from the Lark
grammar: its keywords are the words the Lark grammar writes in quotes, so a keyword added to
the language is highlighted once the file is made again (`python -m dsl.textmate`; a test
fails while the shipped file differs).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from dsl.parse import DECLARATION_KEYWORDS, grammar_text

OUTCOMES = ("prohibited", "licence", "required", "presumption", "denial", "case-by-case", "review",
            "permitted", "undetermined", "risk",
            "high", "medium", "low", "findings", "finding")


def keywords() -> list[str]:
    """Every word the Lark grammar writes in quotes (keywords and multi-word keywords' parts)."""
    words: set[str] = set()
    for literal in re.findall(r'"([^"\\]+)"', grammar_text()):
        words.update(w for w in literal.split() if re.fullmatch(r"[a-z][a-z\-]*", w))
    return sorted(words)


def _alternation(words: list[str] | tuple[str, ...]) -> str:
    return r"(?<![\w-])(?:" + "|".join(re.escape(w) for w in sorted(words, key=len,
                                                                     reverse=True)) + r")(?![\w-])"


def grammar() -> dict[str, Any]:
    words = keywords()
    declarations = [w for w in words if w in DECLARATION_KEYWORDS]
    outcomes = list(OUTCOMES)  # some are terminals (levels, outcomes), not quoted words
    others = [w for w in words if w not in DECLARATION_KEYWORDS and w not in OUTCOMES]
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/"
                   "tmlanguage.json",
        "name": "excon",
        "scopeName": "source.excon",
        "fileTypes": ["excon"],
        "patterns": [
            {"name": "comment.line.number-sign.excon", "match": "#.*$"},
            {"name": "string.quoted.double.excon", "begin": '"', "end": '"|$',
             "patterns": [{"name": "constant.character.escape.excon", "match": r"\\."},
                          {"name": "variable.other.placeholder.excon",
                           "match": r"\{[a-z_]+\}"}]},
            {"name": "constant.numeric.date.excon", "match": r"\b\d{4}-\d{2}-\d{2}\b"},
            {"name": "keyword.control.declaration.excon",
             "match": "^" + _alternation(declarations)},
            {"name": "constant.language.outcome.excon", "match": _alternation(outcomes)},
            {"name": "keyword.other.excon", "match": _alternation(others)},
            {"name": "constant.numeric.excon",
             "match": r"(?<![\w-])\d[\d.]*(?:\s*(?:%|kg|t|g|USD/kg|USD|MPa|g/cm3|µm|nm|Wh/kg|"
                      r"days))?(?![\w-])"},
        ],
    }


def text() -> str:
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(text())
