"""Party names: the normalised key two spellings of one company share, and fuzzy matching of
declared names against the aliases of listed parties.

`LOCKHEED MARTIN CORP.`, `Lockheed Martin Corporation` and `Ｌｏｃｋｈｅｅｄ　Ｍａｒｔｉｎ` all
become `lockheed martin`: Unicode compatibility forms (full-width), case, diacritics (and any
other non-Latin script, through unidecode), punctuation and whitespace are folded, Chinese is
written in pinyin (`洛克希德·马丁公司` → `luokexide mading`, one word per run of characters,
Chinese legal forms dropped), common abbreviations are spelled out and legal forms at the end are
dropped.

`PartyMatcher` scores a name against every alias of the listed parties that shares a block
with it (a word's first four letters, or the first three or four letters or the last four of the
name without spaces), so
the cost grows with the names that look alike, not with the size of the list. Scores are
rapidfuzz ratios (0–100) of the normalised names, with and without spaces (so `Hunan Youse
Jinshu` meets `湖南有色金属`); a match needs the list's `match threshold`.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from rapidfuzz import fuzz, process
from unidecode import unidecode

# Legal-form words dropped from the end of a name (after folding), longest first.
LEGAL_FORMS = (
    "corporation", "incorporated", "company", "limited", "holdings", "group", "corp", "inc",
    "ltd", "llc", "llp", "lp", "plc", "co", "gmbh", "ag", "sa", "sas", "sarl", "spa", "srl",
    "bv", "nv", "kk", "pte", "pvt", "pty", "jsc", "oy", "ab", "as", "de cv", "sa de cv",
)
# Chinese legal forms, dropped wherever they end a run of Chinese characters.
ZH_LEGAL_FORMS = ("股份有限公司", "有限责任公司", "有限公司", "集团公司", "株式会社", "集团",
                  "公司")
ABBREVIATIONS = {"intl": "international", "mfg": "manufacturing", "tech": "technology",
                 "techs": "technologies", "sys": "systems", "natl": "national",
                 "assoc": "associates", "bros": "brothers", "elec": "electronics",
                 "mat": "materials", "mats": "materials", "svcs": "services",
                 "inds": "industries", "ind": "industries", "eng": "engineering"}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_ZH_TAIL = re.compile("(?:" + "|".join(ZH_LEGAL_FORMS) + ")+$")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_LETTERS = re.compile(r"\b(\w) (?=\w\b)")  # "s a" (from "S.A.") → "sa"
_TAIL = re.compile(r"(?:\s+(?:" + "|".join(sorted({re.escape(f) for f in LEGAL_FORMS},
                                                  key=len, reverse=True)) + r"))+$")


def _pinyin(match: re.Match[str]) -> str:
    # imported on the first Chinese name (its phrase tables take a tenth of a second to load,
    # which every command paid at start-up)
    from pypinyin import lazy_pinyin

    run = _ZH_TAIL.sub("", match.group(0)) or match.group(0)
    return " " + "".join(lazy_pinyin(run)) + " "


@lru_cache(maxsize=65536)
def party_key(name: str) -> str:
    """The normalised form of a party name, for exact matching across spellings."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _CJK.sub(_pinyin, text)
    text = unidecode(text).casefold()
    text = text.replace("&", " and ")
    words = [ABBREVIATIONS.get(w, w) for w in _PUNCT.sub(" ", text.replace("'", "")).split()]
    text = _LETTERS.sub(r"\1", _SPACE.sub(" ", " ".join(words)).strip())
    shorter = _TAIL.sub("", text).strip()
    return shorter or text


def similarity(a: str, b: str) -> float:
    """Score (0–100) of two normalised names: word order does not matter, nor do spaces."""
    if a == b:
        return 100.0
    return max(fuzz.token_sort_ratio(a, b), fuzz.ratio(a.replace(" ", ""), b.replace(" ", "")))


@dataclass(frozen=True, slots=True)
class Match:
    name: str      # the declared name
    party: str     # the listed party's id
    alias: str     # the spelling on the list it matched best
    score: float


def _blocks(key: str) -> set[str]:
    """Block keys of a normalised name: each word, each word's first four letters, each pair
    of neighbouring words' first three letters, and, without spaces, the first four letters,
    the first three and the last four, and for names of up to eight letters the first two and
    the last three: one typing error (a letter dropped, doubled or swapped with the next)
    cannot change both the start and the end, so `Andruil` and `Anudril` meet `Anduril`."""
    words = key.split()
    found = {w[:4] for w in words if len(w) >= 2} | {"w:" + w for w in words}
    found |= {f"{a[:3]}+{b[:3]}" for a, b in pairwise(words)}
    joined = key.replace(" ", "")
    if joined:
        found |= {"=" + joined[:4], "<" + joined[:3], ">" + joined[-4:]}
        if len(joined) <= 8:
            found |= {"<<" + joined[:2], ">>" + joined[-3:]}
    return found


class PartyMatcher:
    """The aliases of listed parties, indexed by block, and the scoring of names against them."""

    def __init__(self, aliases: Iterable[tuple[str, str]], max_block: int = 64) -> None:
        """`aliases`: (party id, a spelling of its name) pairs. Blocks holding more than
        `max_block` spellings (a word every second name has) are not used on their own."""
        self.entries: list[tuple[str, str, str]] = []  # (party, alias, key)
        seen: set[tuple[str, str]] = set()
        for party, alias in aliases:
            key = party_key(alias)
            if key and (party, key) not in seen:
                seen.add((party, key))
                self.entries.append((party, alias, key))
        self.keys = [k for _, _, k in self.entries]
        self.joined = [k.replace(" ", "") for k in self.keys]
        self.index: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(self.keys):
            for block in _blocks(key):
                self.index[block].append(i)
        self.max_block = max_block

    def candidates(self, key: str) -> set[int]:
        small: set[int] = set()
        large: list[list[int]] = []
        for block in _blocks(key):
            members = self.index.get(block)
            if not members:
                continue
            if len(members) <= self.max_block:
                small.update(members)
            else:
                large.append(members)
        if not small and large:
            # only common words: the spellings in every one of their blocks (a name made of
            # common words is matched by names that have all of them)
            common = set(large[0]).intersection(*large[1:])
            if len(common) <= 8 * self.max_block:
                small = common
        return small

    def match(self, name: str, threshold: float) -> list[Match]:
        """The listed parties `name` matches with a score ≥ threshold, best alias each."""
        key = party_key(name)
        found = sorted(self.candidates(key))
        if not found:
            return []
        scores: dict[int, float] = {}
        # scored in rapidfuzz's C loops: with word order ignored, and without spaces
        for _, score, i in process.extract(key, [self.keys[i] for i in found],
                                           scorer=fuzz.token_sort_ratio,
                                           score_cutoff=threshold, limit=None):
            scores[found[i]] = score
        for _, score, i in process.extract(key.replace(" ", ""),
                                           [self.joined[i] for i in found], scorer=fuzz.ratio,
                                           score_cutoff=threshold, limit=None):
            scores[found[i]] = max(score, scores.get(found[i], 0.0))
        best: dict[str, Match] = {}
        for i, score in scores.items():
            party, alias, _ = self.entries[i]
            if party not in best or score > best[party].score:
                best[party] = Match(name, party, alias, round(score, 1))
        return sorted(best.values(), key=lambda m: (-m.score, m.party))

    def match_all(self, names: Sequence[str], threshold: float) -> list[Match]:
        out: list[Match] = []
        for name in names:
            out.extend(self.match(name, threshold))
        return out


def is_web_url(text: str) -> bool:
    """An absolute http or https URL with a host: the only links excon renders."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and text == text.strip() \
        and not any(c.isspace() or ord(c) < 32 for c in text)


def web_url(value: object) -> str:
    """A link target only when it is an absolute http(s) URL; '' otherwise: a `javascript:` or
    relative address in a rulebook is never rendered as a link (the checker's E408 rejects it;
    this guards a knowledge base built before that check). Every template renders links so."""
    return value if isinstance(value, str) and is_web_url(value) else ""


MENTION_FORMS_LIMIT = 64  # forms of a word at most, before only its four main forms are used


def mention_forms(word: str, limit: int = MENTION_FORMS_LIMIT) -> list[str]:
    """See `_mention_forms`: worked out once per word (the interpreter asks per row)."""
    return list(_mention_forms(word, limit))


@functools.lru_cache(maxsize=4096)
def _mention_forms(word: str, limit: int) -> tuple[str, ...]:
    """The forms a `mentions` test looks for in a text whose ASCII letters an engine has
    lower-cased: the word in lower case, and each form with some of its other cased letters
    (É, Ü, Σ …) in upper case. SQLite's LOWER lowers ASCII only, DuckDB's and Spark's all of
    Unicode, PostgreSQL's as its locale says: whichever an engine does, "ÉTAIN ingots" then
    mentions "étain" on every engine and in the interpreter. A word with more such letters
    than `limit` forms allow (a Greek or Cyrillic word) is looked for in lower case, with all
    of them upper case, and with its first letter upper case."""
    lower = word.lower()
    # a letter, its upper case, and the lower case of that (a final ς is σ once an engine
    # lowers Σ)
    choices = [tuple(dict.fromkeys((c, c.upper(), c.upper().lower())))
               if not c.isascii() and c.upper() != c and len(c.upper()) == 1 else (c,)
               for c in lower]
    count = 1
    for options in choices:
        count *= len(options)
    if count <= limit:
        return tuple("".join(p) for p in itertools.product(*choices))
    upper = "".join(options[1] if len(options) > 1 else options[0] for options in choices)
    refolded = "".join(c.upper().lower() if len(c.upper()) == 1 else c for c in lower)
    first = upper[0] + lower[1:]
    return tuple(dict.fromkeys([lower, upper, refolded, first]))
