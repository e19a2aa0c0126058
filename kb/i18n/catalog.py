"""The catalogue: each English phrase of the pages and the command line, and its Chinese
(kb/i18n/zh.json). A phrase without a Chinese entry is shown in English: the test suite fails
on any phrase the templates mark (`_("…")`) that has none."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("en", "zh")

# A finding's outcome, and a rule's, in Chinese (the standard words; a rulebook's
# `then … zh "…"` gives a rule's own)
OUTCOMES_ZH = {
    "prohibited": "禁止", "unlicensed": "未经许可", "licence required": "须经许可",
    "presumption-of-denial": "推定拒绝", "presumption of denial": "推定拒绝",
    "case-by-case": "逐案审查", "case-by-case review": "逐案审查",
    "undetermined": "无法判定", "risk": "风险", "permitted": "允许", "exception": "例外",
}


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang == "en":
        return {}
    text = resources.files("kb.i18n").joinpath(f"{lang}.json").read_text(encoding="utf-8")
    found: dict[str, str] = json.loads(text)
    return found


def gettext(lang: str, text: str) -> str:
    """`text` in `lang` (English when the catalogue has no entry for it)."""
    return catalogue(lang).get(text, text) if lang != "en" else text


def outcome_word(lang: str, outcome: str | None) -> str:
    if outcome is None:
        return ""
    return OUTCOMES_ZH.get(outcome, outcome) if lang == "zh" else outcome
