"""`excon diff`: what a rulebook change does, before it is published.

Two versions of the rulebooks (folders, git revisions `git:REV[:PATH]`, or the rulebooks a
knowledge base keeps, `db:kb.db`) are each loaded into a screener's private knowledge base.
The report says:
- what changed in the law, in plain words, from the rulebook tables both versions fill
  (instruments, provisions, items and their codes and controls, rules, amendments, listings,
  parties) and from each rule's resolved timeline: "suspension of MOFCOM-2024-46 clause 2 now
  ends 2026-11-27 instead of 2026-11-10";
- which findings appear, disappear, or change outcome, instrument or explanation, when the
  same declarations (and licences and parties) are screened under each version, as of their
  own dates or `as_of`;
- counts by rule, by outcome and by destination, and a sample of declarations per kind.

Formats: text, JSON and a self-contained HTML page for review. `fail_kinds` says which changes
make `excon diff --fail-on-change` exit 1 (a gate for a rulebook repository's CI).
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from kb.screen.screener import Finding, Screener, ScreeningError, Source, write_kept_rulebooks

SAMPLE = 5  # declarations shown per kind of change
FAIL_KINDS = ("any", "law", "findings", "appeared", "disappeared", "changed", "outcome")

# The rulebook tables compared: (table, noun, key columns, compared columns). Where a row
# was written in the rulebook (file, line, text) is not compared: moving a rule is no change.
LAW_TABLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("instruments", "instrument", ("id",),
     ("title", "title_zh", "issuer", "number", "issued", "in_force", "url", "confidence",
      "unverified")),
    ("provisions", "provision", ("instrument_id", "provision"), ("label", "text", "text_zh")),
    ("items", "item", ("name",),
     ("title", "title_zh", "control_code", "instrument_id", "provision", "controlled_if",
      "unverified")),
    ("item_customs_codes", "customs code", ("item", "code"), ()),
    ("item_controls", "control of item", ("item", "instrument_id", "controlled_from"),
     ("provision", "controlled_until")),
    ("item_groups", "item group", ("name",), ("title", "instrument_id", "provision")),
    ("item_group_members", "member of item group", ("group_name", "item"), ()),
    ("country_groups", "country group", ("name",),
     ("title", "valid_from", "valid_until", "instrument_id", "unverified")),
    ("country_group_members", "member of country group", ("group_name", "country"), ()),
    ("rules", "rule", ("name",),
     ("kind", "title", "outcome", "severity", "instrument_id", "provision", "valid_from",
      "valid_until", "condition", "excepts", "overrides", "explain", "unverified")),
    ("amendments", "amendment", ("action", "target"),
     ("instrument_id", "provision", "valid_from", "valid_until")),
    ("parties", "party", ("name",), ("legal_name", "country")),
    ("party_aliases", "alias of party", ("party", "alias"), ()),
    ("list_entries", "listing of", ("party", "list", "instrument_id"),
     ("provision", "listed_from", "listed_until", "measures")),
    ("declared_facts", "declared fact", ("name",),
     ("title", "type", "aliases", "read_from")),
)
# How a changed column reads ("… now ends 2026-11-27 instead of 2026-11-10").
VERBS = {"valid_from": "starts", "valid_until": "ends", "in_force": "comes into force",
         "issued": "is issued", "listed_from": "is listed from",
         "listed_until": "is listed until", "controlled_until": "is controlled until",
         "instrument_id": "cites", "outcome": "has the outcome"}
AMENDMENT_NOUNS = {"suspend": "suspension of", "extend": "extension of the suspension of",
                   "repeal": "repeal of", "lift": "lift of"}


class DiffError(Exception):
    """A version of the rulebooks that cannot be read, or inputs that cannot be screened."""


@dataclass
class LawChange:
    kind: str  # added, removed, changed
    what: str  # table
    text: str  # in plain words

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "what": self.what, "text": self.text}


@dataclass
class FindingChange:
    kind: str  # appeared, disappeared, changed
    declaration_id: str
    rule: str
    destination: str | None
    old: Finding | None
    new: Finding | None
    changed: tuple[str, ...] = ()  # for `changed`: outcome, instrument, explanation

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "declaration_id": self.declaration_id, "rule": self.rule,
                "destination": self.destination, "changed": list(self.changed),
                "old": self.old.as_dict() if self.old else None,
                "new": self.new.as_dict() if self.new else None}


@dataclass
class Diff:
    old: str
    new: str
    old_version: str
    new_version: str
    law: list[LawChange] = field(default_factory=list)
    findings: list[FindingChange] = field(default_factory=list)
    screened: int = 0
    as_of: str | None = None
    # what reading the inputs warned of: unread columns, an empty file, rows dated after today
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """Changed findings by kind, rule, outcome (the new one, or the old if it went) and
        destination."""
        def outcome(c: FindingChange) -> str:
            f = c.new or c.old
            return f.outcome if f else ""

        return {
            "by_kind": dict(Counter(c.kind for c in self.findings)),
            "by_rule": _nested(self.findings, lambda c: c.rule),
            "by_outcome": _nested(self.findings, outcome),
            "by_destination": _nested(self.findings, lambda c: c.destination or "(none)"),
        }

    def samples(self) -> dict[str, list[FindingChange]]:
        out: dict[str, list[FindingChange]] = {}
        for c in sorted(self.findings, key=lambda c: (c.declaration_id, c.rule)):
            if len(out.setdefault(c.kind, [])) < SAMPLE:
                out[c.kind].append(c)
        return out

    def has(self, kind: str) -> bool:
        """Whether the diff holds a change of `kind` (one of FAIL_KINDS)."""
        if kind == "any":
            return bool(self.law or self.findings)
        if kind == "law":
            return bool(self.law)
        if kind == "findings":
            return bool(self.findings)
        if kind == "outcome":
            return any("outcome" in c.changed for c in self.findings)
        return any(c.kind == kind for c in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "old_version": self.old_version,
                "new_version": self.new_version, "as_of": self.as_of,
                "declarations_screened": self.screened, "warnings": self.warnings,
                "law": [c.as_dict() for c in self.law],
                "findings": [c.as_dict() for c in self.findings],
                "counts": self.counts(),
                "samples": {k: [c.as_dict() for c in v] for k, v in self.samples().items()}}


def _nested(changes: list[FindingChange], key: Any) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for c in changes:
        out.setdefault(str(key(c)), Counter())[c.kind] += 1
    return {k: dict(v) for k, v in sorted(out.items(), key=lambda kv: -sum(kv[1].values()))}


# ------------------------------------------------------------------------ versions

@contextlib.contextmanager
def rulebooks_of(spec: str) -> Iterator[list[Path]]:
    """A version of the rulebooks as the paths to load. `db:PATH`: the rulebook files a
    knowledge base keeps, written to a temporary folder (its declarations are not history
    here: both versions screen the same inputs); `git:REV[:PATH]`: the files of PATH (default
    `rulebooks`) at REV in the git repository of the working directory."""
    if spec.startswith("db:"):
        db = Path(spec[3:])
        if not db.is_file():
            raise DiffError(f"{spec}: no such knowledge base")
        with tempfile.TemporaryDirectory(prefix="excon-diff-") as tmp:
            try:
                write_kept_rulebooks(db, Path(tmp))
            except ScreeningError as e:
                raise DiffError(str(e)) from None
            yield [Path(tmp)]
        return
    if not spec.startswith("git:"):
        path = Path(spec)
        if not path.exists():
            raise DiffError(f"{spec}: no such rulebook file or folder")
        yield [path]
        return
    rev, _, sub = spec[4:].partition(":")
    sub = sub or "rulebooks"
    try:
        listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", sub],
                                capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise DiffError(f"{spec}: git cannot list {sub} at {rev}: {detail.strip()}") from None
    files = [f for f in listed if f.endswith(".excon")]
    if not files:
        raise DiffError(f"{spec}: no rulebook file (*.excon) under {sub} at {rev}")
    with tempfile.TemporaryDirectory(prefix="excon-diff-") as tmp:
        root = Path(tmp)
        for f in files:
            data = subprocess.run(["git", "show", f"{rev}:{f}"], capture_output=True,
                                  check=True).stdout
            rel = Path(f).relative_to(sub) if Path(f).is_relative_to(sub) else Path(f)
            target = root / (rel if str(rel) != "." else Path(f).name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        yield [root]


@contextlib.contextmanager
def inputs_of(db: Path | None) -> Iterator[dict[str, Path]]:
    """The declarations, licences and parties a knowledge base holds, written out as CSV
    files for a screening (`excon diff --db`); nothing without one."""
    if db is None:
        yield {}
        return
    import csv
    import sqlite3

    from kb.inputs.contracts import contract_for

    with tempfile.TemporaryDirectory(prefix="excon-diff-") as tmp, \
            contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        held = {}
        for table, name in (("declarations", "declarations"), ("licences", "licences"),
                            ("trade_parties", "parties")):
            columns = [c for c, _ in contract_for(conn, table).fields]
            have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}  # our names
            path = Path(tmp) / f"{name}.csv"
            with path.open("w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(columns)
                select = ", ".join(f'"{c}"' if c in have else "NULL" for c in columns)
                writer.writerows(conn.execute(f'SELECT {select} FROM "{table}"'))  # ours
            held[name] = path
        yield held


def _screener(spec: str, paths: list[Path]) -> Screener:
    try:
        return Screener(rulebooks=paths)
    except ScreeningError as e:
        raise DiffError(f"{spec}: {e}") from None


# ------------------------------------------------------------------------ the law

def law_changes(old: Screener, new: Screener) -> list[LawChange]:
    """The rulebook tables of two screeners compared, and each rule's timeline."""
    changes: list[LawChange] = []
    for table, noun, keys, columns in LAW_TABLES:
        before, after = _rows(old, table, keys, columns), _rows(new, table, keys, columns)
        for key in sorted(before.keys() | after.keys(), key=lambda k: tuple(map(str, k))):
            subject = _subject(table, noun, key)
            if key not in before:
                changes.append(LawChange("added", table, f"{subject} added"
                                         f"{_details(after[key], columns)}"))
            elif key not in after:
                changes.append(LawChange("removed", table, f"{subject} removed"))
            else:
                for column, was, now in zip(columns, before[key], after[key], strict=True):
                    if was != now:
                        verb = VERBS.get(column, f"has {column.replace('_', ' ')}")
                        changes.append(LawChange(
                            "changed", table, f"{subject} now {verb} {_shown(column, now)} "
                            f"instead of {_shown(column, was)}"))
    old_lines, new_lines = _timelines(old), _timelines(new)
    for rule in sorted(old_lines.keys() & new_lines.keys()):
        if old_lines[rule] != new_lines[rule]:
            changes.append(LawChange("changed", "rule timeline",
                                     f"rule {rule} is now {new_lines[rule]} (was "
                                     f"{old_lines[rule]})"))
    return changes


def _rows(s: Screener, table: str, keys: tuple[str, ...], columns: tuple[str, ...]
          ) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    have = {r[1] for r in s.db.conn.execute(f'PRAGMA table_info("{table}")')}  # our names
    cols = [c if c in have else "NULL" for c in columns]
    select = ", ".join([*(f'"{k}"' for k in keys), *(f'"{c}"' if c != "NULL" else c
                                                     for c in cols)])
    rows = s.db.conn.execute(f'SELECT {select} FROM "{table}"').fetchall()  # our names
    return {tuple(r[:len(keys)]): tuple(r[len(keys):]) for r in rows}


def _subject(table: str, noun: str, key: tuple[Any, ...]) -> str:
    if table == "amendments":
        return f"{AMENDMENT_NOUNS.get(str(key[0]), str(key[0]))} {key[1]}"
    if table == "provisions":
        return f"{key[1]} of {key[0]}"
    if table == "list_entries":
        return f"listing of {key[0]} on {key[1]} by {key[2]}"
    if table == "item_controls":
        return f"control of item {key[0]} by {key[1]} from {key[2] or 'the start'}"
    if len(key) == 2:
        return f"{noun} {key[1]} of {key[0]}" if table in (
            "item_customs_codes", "party_aliases") else f"{key[1]}, {noun} {key[0]},"
    return f"{noun} {key[0]}"


def _shown(column: str, value: Any) -> str:
    if value is None or value == "":
        return "open-ended" if column.endswith(("until", "_to")) else "nothing"
    return str(value)


def _details(values: tuple[Any, ...], columns: tuple[str, ...]) -> str:
    shown = [f"{VERBS.get(c, c.replace('_', ' '))} {v}" for c, v in zip(columns, values,
                                                                       strict=True)
             if v not in (None, "") and c in ("valid_from", "valid_until", "in_force",
                                               "outcome", "listed_from", "listed_until",
                                               "controlled_until", "instrument_id")]
    return f" ({', '.join(shown)})" if shown else ""


def _timelines(s: Screener) -> dict[str, str]:
    from dsl.periods import timeline

    out = {}
    for rule, periods in s.compiled.periods.items():
        parts = []
        for t in timeline(periods):
            if t.start and t.end:
                dates = f"{t.start} – {t.end}"
            elif t.start or t.end:
                dates = f"from {t.start}" if t.start else f"until {t.end}"
            else:
                dates = "always"
            by = f" by {t.instrument}" if t.instrument else ""
            parts.append(f"{t.status} {dates}{by}")
        out[rule] = "; ".join(parts)
    return out


# ------------------------------------------------------------------------ the findings

def _findings(s: Screener) -> dict[tuple[str, str], Finding]:
    """The loaded screener's findings by declaration and rule."""
    findings: dict[tuple[str, str], Finding] = {}
    for row in s.db.conn.execute("SELECT * FROM findings ORDER BY declaration_id, rule, "
                                 "outcome"):
        f = Finding(*row)
        findings.setdefault((f.declaration_id, f.rule), f)
    return findings


def finding_changes(old: dict[tuple[str, str], Finding], new: dict[tuple[str, str], Finding],
                    destinations: dict[str, str]) -> list[FindingChange]:
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        dest = destinations.get(key[0])
        if a is None:
            out.append(FindingChange("appeared", *key, dest, None, b))
        elif b is None:
            out.append(FindingChange("disappeared", *key, dest, a, None))
        else:
            changed = tuple(c for c in ("outcome", "instrument", "explanation")
                            if getattr(a, c) != getattr(b, c))
            if changed:
                out.append(FindingChange("changed", *key, dest, a, b, changed))
    return out


def diff(old: str, new: str, declarations: Source, licences: Source | None = None,
         parties: Source | None = None, as_of: str | None = None) -> Diff:
    """The law and the findings of two versions of the rulebooks, compared."""
    with rulebooks_of(old) as old_paths, rulebooks_of(new) as new_paths:
        before = _screener(old, old_paths)
        after = _screener(new, new_paths)
        try:
            result = Diff(old, new, before.version, after.version, as_of=as_of)
            result.law = law_changes(before, after)
            # the inputs are read and validated once; the newer version screens a copy
            try:
                with before.loaded(declarations, licences, parties, as_of,
                                   last=True) as reports:
                    for r in reports:
                        result.warnings += r.warnings()
                        if r.problems and r.loaded == 0:
                            p = r.problems[0]
                            raise DiffError(f"{r.file}:{p.line}: {p.column}: {p.value!r}: "
                                            f"expected {p.expected}")
                    was = _findings(before)
                    with after.loaded(None, None, None, as_of, rows_from=before, last=True):
                        now = _findings(after)
                    destinations = dict(before.db.conn.execute(
                        "SELECT id, destination_country FROM declarations"))
            except ScreeningError as e:
                raise DiffError(str(e)) from None
            result.screened = len(destinations)
            result.findings = finding_changes(was, now, destinations)
        finally:
            before.close()
            after.close()
    return result


# ------------------------------------------------------------------------ reports

def text_report(d: Diff) -> str:
    lines = [f"excon diff {d.old} ({d.old_version}) → {d.new} ({d.new_version})"]
    lines.append("")
    lines.append(f"The law: {len(d.law)} change(s)")
    lines += [f"  {c.text}" for c in d.law] or ["  no change"]
    lines.append("")
    counts = d.counts()
    kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(counts["by_kind"].items())) or "none"
    lines.append(f"Findings on {d.screened:,} declarations"
                 f"{' as of ' + d.as_of if d.as_of else ''}: {kinds}")
    for title, key in (("by rule", "by_rule"), ("by outcome", "by_outcome"),
                       ("by destination", "by_destination")):
        if counts[key]:
            lines.append(f"  {title}:")
            for name, kinds_of in counts[key].items():
                lines.append(f"    {name:40} " + ", ".join(
                    f"{n:,} {k}" for k, n in sorted(kinds_of.items())))
    for kind, sample in d.samples().items():
        lines.append(f"  {kind}, for example:")
        for c in sample:
            lines.append(f"    {c.declaration_id} {c.rule}: {_change_text(c)}")
    return "\n".join(lines)


def _change_text(c: FindingChange) -> str:
    if c.kind == "appeared" and c.new:
        return f"{c.new.outcome}: {c.new.explanation}"
    if c.kind == "disappeared" and c.old:
        return f"was {c.old.outcome}: {c.old.explanation}"
    assert c.old and c.new
    parts = []
    for column in c.changed:
        if column == "explanation":
            parts.append(f"explanation now: {c.new.explanation}")
        else:
            parts.append(f"{column} {getattr(c.new, column)} instead of "
                         f"{getattr(c.old, column)}")
    return "; ".join(parts)


_env = jinja2.Environment(loader=jinja2.PackageLoader("kb.screen", "templates"),
                          autoescape=jinja2.select_autoescape(default=True),
                          undefined=jinja2.StrictUndefined)


def html_report(d: Diff) -> str:
    """One self-contained page (no scripts, no network) for review."""
    return _env.get_template("diff.html.j2").render(
        d=d, counts=d.counts(), samples=d.samples(), change_text=_change_text)


def check_fail_kinds(kinds: Sequence[str]) -> list[str]:
    unknown = [k for k in kinds if k not in FAIL_KINDS]
    if unknown:
        raise DiffError(f"unknown change kind(s) {', '.join(unknown)}: one of "
                        f"{', '.join(FAIL_KINDS)}")
    return list(kinds)
