"""The pages in Chinese or English: the reader's choice (`?_lang=zh` for one page, or the
switch in every page's header, which `/-/excon/lang` remembers in a cookie for a year), the
catalogue's words for it in the templates (`_("…")`), and findings' explanations in Chinese
from the knowledge base's own Chinese wording (its `rules` and `items` rows, `kb.i18n`)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from kb.i18n import LANGUAGES, ChineseWords, explanation_zh, gettext, outcome_word

COOKIE = "excon_lang"
# the tables whose rows carry a finding's rule and explanation, shown in Chinese on their pages
EXPLAINED = frozenset({"finding_details", "findings"})
NAMES = {"en": "English", "zh": "中文"}
YEAR = 365 * 24 * 3600


def request_lang(request: Any) -> str:
    """This request's language: `?_lang=`, else the reader's remembered choice, else English."""
    if request is None:
        return "en"
    asked = request.args.get("_lang")
    if asked in LANGUAGES:
        return str(asked)
    kept = request.cookies.get(COOKIE)
    return str(kept) if kept in LANGUAGES else "en"


def _local(path: str | None) -> str:
    """A path on this site to go back to (never another site's: `//host` or a scheme)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


async def choose(request: Any, datasette: Any) -> Any:
    """`/-/excon/lang?to=zh&next=/kb/…`: remember the reader's language, go back."""
    from datasette.utils.asgi import Response

    to = request.args.get("to")
    if to not in LANGUAGES:
        return Response.text("unknown language: give to=en or to=zh", status=400)
    response = Response.redirect(_local(request.args.get("next")))
    response.set_cookie(COOKIE, to, max_age=YEAR, samesite="lax", httponly=True,
                        secure=request.scheme == "https")
    return response


def template_vars(request: Any) -> dict[str, Any]:
    """What every page's template needs to speak the reader's language."""
    lang = request_lang(request)
    here = request.full_path if request is not None else "/"
    return {
        "lang": lang,
        "_": functools.partial(gettext, lang),
        "excon_outcome_word": functools.partial(outcome_word, lang),
        "excon_languages": [(code, NAMES[code], "/-/excon/lang?" + urlencode(
            {"to": code, "next": here})) for code in LANGUAGES],
    }


# The Chinese wording of each served file, read once: by path, and the file's inode and time
# (a rebuild swaps a new file in at the same path)
_WORDS: dict[tuple[str, int, int], ChineseWords] = {}


async def chinese_words(db: Any) -> ChineseWords:
    """The knowledge base's Chinese wording (its `rules` and `items` rows)."""
    try:
        seen = Path(db.path).stat()
        key: tuple[str, int, int] | None = (str(db.path), seen.st_ino, seen.st_mtime_ns)
    except (OSError, TypeError):  # an in-memory database: read each time
        key = None
    if key is not None and key in _WORDS:
        return _WORDS[key]
    rows = []
    for sql in ("SELECT name, title, title_zh, explain, explain_zh, outcome_zh FROM rules",
                "SELECT title, title_zh FROM items"):
        found = await db.execute(sql)
        rows.append([dict(zip(found.columns, r, strict=True)) for r in found.rows])
    words = ChineseWords.from_rows(rows[0], rows[1])
    if key is not None:
        _WORDS.clear()  # only the file served now
        _WORDS[key] = words
    return words


async def in_chinese(db: Any, findings: list[dict[str, Any]],
                     declaration: dict[str, Any] | None = None) -> None:
    """Each finding's explanation in Chinese, in place."""
    if not findings:
        return
    words = await chinese_words(db)
    for f in findings:
        f["explanation"] = explanation_zh(words, f["rule"], f["explanation"], declaration)


def row_in_chinese(words: ChineseWords, row: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A table page's row (Datasette's cells) with its finding's explanation in Chinese."""
    row = list(row)
    raw = {c["column"]: c.get("raw") for c in row}
    if not raw.get("explanation") or not raw.get("rule"):
        return row
    said = explanation_zh(words, str(raw["rule"]), str(raw["explanation"]))
    return [{**c, "value": said} if c["column"] == "explanation" else c for c in row]
