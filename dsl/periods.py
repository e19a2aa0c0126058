"""When each rule and each listing is in force, once its amendments are applied.

A rule is in force from its `from` date (or its instrument's `in force` date) until its `until`
date, both inclusive, except while a suspension of it — or of its instrument, or of the
provision it cites — is in force, and not after a repeal. A suspension that ends restores the
rule the next day. Extensions move a suspension's end. The result is a list of closed intervals
with the reasons for each gap, used by the compiler, the interpreter and `excon explain`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from dsl import ast
from dsl.check import CheckedRulebook, Interval, parse_date

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Gap:
    """A stretch of time when something is not in force, and why."""

    start: dt.date
    end: dt.date | None
    action: str  # "suspend" | "repeal"
    instrument: str
    span: ast.Span

    def describe(self) -> str:
        until = f" until {self.end}" if self.end else ""
        verb = "suspended" if self.action == "suspend" else "repealed"
        return f"{verb} by {self.instrument} from {self.start}{until}"


@dataclass
class Periods:
    """In-force intervals of one rule or listing, with the gaps that cut them."""

    validity: Interval
    gaps: list[Gap] = field(default_factory=list)

    @cached_property
    def intervals(self) -> list[Interval]:
        """Computed once (the interpreter asks per declaration); gaps are complete when a
        Periods is made."""
        pieces = [self.validity]
        for gap in sorted(self.gaps, key=lambda g: g.start):
            out = []
            for iv in pieces:
                out.extend(_subtract(iv, gap.start, gap.end))
            pieces = out
        return pieces

    def in_force(self, day: dt.date) -> bool:
        return any((iv.start is None or iv.start <= day) and (iv.end is None or day <= iv.end)
                   for iv in self.intervals)

    def gap_on(self, day: dt.date) -> Gap | None:
        for g in self.gaps:
            if g.start <= day and (g.end is None or day <= g.end):
                return g
        return None


def _subtract(iv: Interval, start: dt.date, end: dt.date | None) -> list[Interval]:
    out = []
    if iv.start is None or iv.start < start:
        left_end = start - ONE_DAY
        if iv.end is None or iv.end >= left_end:
            out.append(Interval(iv.start, left_end))
        else:
            out.append(iv)
    if end is not None and (iv.end is None or iv.end > end):
        right_start = end + ONE_DAY
        out.append(Interval(max(right_start, iv.start) if iv.start else right_start, iv.end))
    return [i for i in out if i.start is None or i.end is None or i.start <= i.end]


def _amendment_gaps(rb: CheckedRulebook) -> dict[str, list[Gap]]:
    """Gaps by target key: 'rule:NAME', 'instrument:ID', 'instrument:ID:clause 2',
    'listings:ID', 'listing:PARTY:LIST'."""
    gaps: dict[str, list[Gap]] = {}
    for am in rb.amendments:
        cite = ast.first_attr(am, ast.Citation)
        start_attr = ast.first_attr(am, ast.ValidFrom)
        end_attr = ast.first_attr(am, ast.ValidUntil)
        start = parse_date(start_attr.date.text) if start_attr else None
        end = parse_date(end_attr.date.text) if end_attr else None
        instrument = cite.instrument.name if cite else "?"
        for t in am.targets:
            key = target_key(t, rb)
            if am.action == "extend":
                earlier = gaps.get(key, [])
                suspensions = [g for g in earlier if g.action == "suspend"]
                if suspensions and end is not None:
                    last = suspensions[-1]
                    earlier[earlier.index(last)] = Gap(last.start, end, "suspend",
                                                       f"{last.instrument} (extended by "
                                                       f"{instrument})", last.span)
                continue
            if start is None:
                continue
            gaps.setdefault(key, []).append(
                Gap(start, end if am.action == "suspend" else None, am.action, instrument,
                    am.span))
    return gaps


def target_key(t: ast.Target, rb: CheckedRulebook) -> str:
    if t.kind == "listings":
        return f"listings:{t.name.name}"
    if t.kind == "listing":
        return f"listing:{t.name.name}:{t.list.name if t.list else ''}"
    if t.name.name in rb.rules or t.name.name in rb.exceptions:
        return f"rule:{t.name.name}"
    if t.provision is not None:
        return f"instrument:{t.name.name}:{t.provision}"
    return f"instrument:{t.name.name}"


def rule_periods(rb: CheckedRulebook) -> dict[str, Periods]:
    """In-force periods of every rule and exception."""
    gaps = _amendment_gaps(rb)
    out: dict[str, Periods] = {}
    for name, decl in [*rb.rules.items(), *rb.exceptions.items()]:
        cite = ast.first_attr(decl, ast.Citation)
        keys = [f"rule:{name}"]
        if cite is not None:
            keys.append(f"instrument:{cite.instrument.name}")
            if cite.provision is not None:
                keys.append(f"instrument:{cite.instrument.name}:{cite.provision}")
        validity = rb.validity.get(name, Interval(None, None))
        out[name] = Periods(validity, [g for k in keys for g in gaps.get(k, [])])
    return out


@dataclass(frozen=True)
class ListingPeriods:
    party: str
    list: str
    instrument: str
    periods: Periods


def listing_periods(rb: CheckedRulebook) -> list[ListingPeriods]:
    """In-force periods of every listing of a party on a list."""
    gaps = _amendment_gaps(rb)
    out = []
    for name, party in rb.parties.items():
        for lst in ast.attrs_of(party, ast.Listing):
            start = parse_date(lst.valid_from.date.text)
            end = parse_date(lst.valid_until.date.text) if lst.valid_until else None
            ins = lst.citation.instrument.name
            keys = [f"listings:{ins}", f"listing:{name}:{lst.list.name}", f"instrument:{ins}"]
            out.append(ListingPeriods(name, lst.list.name, ins,
                                      Periods(Interval(start, end),
                                              [g for k in keys for g in gaps.get(k, [])])))
    return out
