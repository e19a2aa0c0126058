"""What `excon screen` and `excon add` write: findings as CSV, JSON or JSON lines, and the
answers of `excon screen --stdin`, one JSON line per declaration as it arrives."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

_WORDS: dict[str, Any] = {}  # by rulebook version


def chinese_words(rb: Any) -> Any:
    """What a rulebook says in Chinese (`kb.i18n.ChineseWords`), worked out once per rulebook
    version."""
    from dsl.model import law
    from kb.i18n import ChineseWords
    from kb.store.rulebook_rows import rule_rows

    if rb.version not in _WORDS:
        _WORDS[rb.version] = ChineseWords.from_rows(
            rule_rows(rb), [{"title": it.title, "title_zh": it.title_zh}
                            for it in law(rb).items.values()])
    return _WORDS[rb.version]


def in_language(findings: list[Any], screener: Any, lang: str) -> list[Any]:
    """The findings with their explanations in `lang` ("en": as they are; "zh": in Chinese,
    from the rulebook's own Chinese wording, `kb.i18n.explain`)."""
    if lang == "en" or not findings:
        return findings
    import dataclasses

    from kb.i18n import explanation_zh

    words = chinese_words(screener.rulebook)
    return [dataclasses.replace(f, explanation=explanation_zh(words, f.rule, f.explanation))
            for f in findings]


def screen_lines(screener: Any, as_of: str | None, engine: str, lang: str = "en") -> None:
    """`excon screen --stdin`: each line of standard input a declaration (a JSON object with
    the columns of declarations.csv), each answered at once by one line of standard output:
    `{"line", "declaration_id", "findings": [...]}`, or `{"line", "error"}` for a line that is
    not a declaration excon can read (the process goes on). Ends at the end of the input."""
    from kb.screen.screener import ScreeningError

    print(f"excon screen: ready (rulebook version {screener.version}); one declaration per "
          "line as JSON", file=sys.stderr, flush=True)
    out = sys.stdout
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        answer: dict[str, Any] = {"line": n}
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("expected a JSON object")
            answer["declaration_id"] = row.get("id")
            answer["findings"] = [f.as_dict() for f in in_language(
                screener.screen([row], as_of=as_of, engine=engine), screener, lang)]
        except (ValueError, ScreeningError) as e:
            answer.pop("findings", None)
            answer["error"] = str(e)
        out.write(json.dumps(answer, ensure_ascii=False) + "\n")
        out.flush()
    screener.close()


def write_findings(findings: list[Any], fmt: str, output: str | None) -> None:
    """Findings as CSV (cells a spreadsheet would run as formulas made safe), JSON or JSON
    lines, to a file or stdout."""
    import csv as csv_module

    from dsl.findings import FINDING_COLUMNS
    from kb.screen.screener import spreadsheet_safe

    with (Path(output).open("w", encoding="utf-8", newline="") if output
          else contextlib.nullcontext(sys.stdout)) as out:
        if fmt == "csv":
            writer = csv_module.writer(out, lineterminator="\n")
            writer.writerow(FINDING_COLUMNS)
            writer.writerows([spreadsheet_safe(getattr(f, c)) for c in FINDING_COLUMNS]
                             for f in findings)
        elif fmt == "json":
            out.write(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=2))
            out.write("\n")
        else:
            for f in findings:
                out.write(json.dumps(f.as_dict(), ensure_ascii=False) + "\n")
