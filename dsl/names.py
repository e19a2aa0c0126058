"""Normalised party names: the key two spellings of one company share.

`LOCKHEED MARTIN CORP.`, `Lockheed Martin Corporation` and `Ｌｏｃｋｈｅｅｄ　Ｍａｒｔｉｎ` all
become `lockheed martin`: Unicode compatibility forms (full-width), case, diacritics,
punctuation and whitespace are folded, and legal forms at the end are dropped.
"""

from __future__ import annotations

import re
import unicodedata

# Legal-form words dropped from the end of a name (after folding), longest first.
LEGAL_FORMS = (
    "corporation", "incorporated", "company", "limited", "holdings", "group", "corp", "inc",
    "ltd", "llc", "llp", "lp", "plc", "co", "gmbh", "ag", "sa", "sas", "sarl", "spa", "srl",
    "bv", "nv", "kk", "pte", "pvt", "pty", "jsc", "oy", "ab", "as", "de cv", "sa de cv",
)
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_TAIL = re.compile(r"(?:\s+(?:" + "|".join(sorted({re.escape(f) for f in LEGAL_FORMS},
                                                  key=len, reverse=True)) + r"))+$")


def party_key(name: str) -> str:
    """The normalised form of a party name, for exact matching across spellings."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _PUNCT.sub(" ", text.replace("&", " and "))
    text = _SPACE.sub(" ", text).strip()
    shorter = _TAIL.sub("", text).strip()
    return shorter or text
