"""The shape of a finding, as every engine's checks, the interpreter and every export give it:
its columns, its outcomes and what it may rest on. Plain data, importable without the rest of
the language (a screener started from excon's cache reads only this)."""

from __future__ import annotations

# The outcomes of findings, the most serious first.
FINDING_OUTCOMES = ("prohibited", "presumption-of-denial", "unlicensed", "case-by-case", "risk",
                    "undetermined")
# the columns of a finding, in every engine's `findings` and every export
FINDING_COLUMNS = ("declaration_id", "rule", "outcome", "severity", "instrument", "provision",
                   "explanation", "rulebook_version", "basis", "caveat", "rulebook",
                   "jurisdiction")
# what a finding rests on (`dsl.basis`)
BASES = ("settled", "lapsed-by-text", "unverified")
