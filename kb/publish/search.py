"""Full-text search that finds Chinese, pinyin and English.

SQLite's `unicode61` tokenizer keeps a run of Chinese characters as one token, so 金属镓
("gallium metal") is one word and a search for 镓 finds nothing; its `trigram` tokenizer
finds nothing shorter than three characters, and a mineral's name is one character (镓 Ga,
锗 Ge, 锑 Sb, 钨 W). The search tables (`<table>_fts`, FTS5, built once at the end of a build)
therefore index Chinese text one character per token, and a query's Chinese characters are
split the same way into a phrase (`escape_query`, which replaces Datasette's `escape_fts` on
the served connections): 氧化镓 finds 氧化镓 and nothing that merely holds the three characters
apart. Each row also gets the toneless pinyin of its Chinese text, by syllable and by word
(`jia`, `yang hua jia`, `yanghuajia`), so an analyst without a Chinese keyboard finds it too.
English is indexed as written (case and diacritics folded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from datasette.utils import escape_fts
from sqlite_utils import Database

from kb.store.tables import SPECS

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_HAN_RUN = re.compile(HAN.pattern + "+")
_SPACES = re.compile(r"\s+")
_PHRASE = re.compile(r'"([^"]*)"')
TOKENIZER = "unicode61 remove_diacritics 2"

# What each table's search indexes besides its own searched columns (SQL over the table as
# `t`): a party is found by any of its aliases.
EXTRA = {"parties": {"aliases": "(SELECT group_concat(alias, ' ') FROM party_aliases AS a "
                                "WHERE a.party = t.name)"}}


def han_spaced(text: str) -> str:
    """Text with each Chinese character set apart, so the tokenizer makes it a token."""
    return _SPACES.sub(" ", HAN.sub(lambda m: f" {m.group(0)} ", text)).strip()


def pinyin_terms(texts: Iterable[str | None]) -> str:
    """The toneless pinyin of every run of Chinese characters: each syllable and the run."""
    terms: list[str] = []
    for text in texts:
        runs = _HAN_RUN.findall(text or "")
        if runs:  # pypinyin's tables take half a second to load: only for Chinese text
            from pypinyin import lazy_pinyin
        for run in runs:
            syllables = lazy_pinyin(run)
            terms += [*syllables, "".join(syllables)] if len(syllables) > 1 else syllables
    return " ".join(terms)


def escape_query(query: str) -> str:
    """Datasette's escaping of a search (each word a quoted phrase), with each Chinese
    character a word of its phrase, as `han_spaced` indexed it."""
    return _PHRASE.sub(lambda m: f'"{han_spaced(m.group(1))}"', escape_fts(query))


def searched_tables() -> dict[str, tuple[str, ...]]:
    """Each searchable table and the columns its search indexes (the pinyin aside)."""
    return {s.name: (*s.fts, *EXTRA.get(s.name, {})) for s in SPECS.values() if s.fts}


def build_search(db: Database) -> None:
    """Replace each searchable table's trigger-kept FTS table (sqlite-utils') by a search
    table of the same name built from the final rows: Chinese one character per token, with
    the pinyin. Run once the knowledge base is filled; Datasette finds it through the
    metadata's `fts_table`."""
    for table, columns in searched_tables().items():
        if db.table(table).detect_fts():
            db.table(table).disable_fts()
        fts = f"{table}_fts"
        db.execute(f'DROP TABLE IF EXISTS "{fts}"')  # names are ours
        quoted = ", ".join(f'"{c}"' for c in columns)
        db.execute(f'CREATE VIRTUAL TABLE "{fts}" USING fts5({quoted}, pinyin, '
                   f"tokenize = '{TOKENIZER}')")
        own = [c for c in columns if c not in EXTRA.get(table, {})]
        select = ", ".join([*(f't."{c}"' for c in own),
                            *EXTRA.get(table, {}).values()])
        rows = db.execute(f'SELECT t.rowid, {select} FROM "{table}" AS t').fetchall()
        db.conn.executemany(
            f'INSERT INTO "{fts}" (rowid, {quoted}, pinyin) '
            f"VALUES ({', '.join('?' * (len(columns) + 2))})",
            [(rowid, *(han_spaced(v) if isinstance(v, str) else v for v in values),
              pinyin_terms(v for v in values if isinstance(v, str)))
             for rowid, *values in rows])
