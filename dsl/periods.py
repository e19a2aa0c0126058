"""When each rule, item control and listing is in force, once its amendments are applied:
the one resolved account of the law over time that the compiler, `excon explain`, `excon docs`
and the knowledge base's rows all read. The reference interpreter answers the same question one
day at a time on its own (`dsl.naive.Calendar`), so that the differential tests check this.

A rule is in force from its `from` date (or its instrument's `in force` date) until its `until`
date, both inclusive, except while a suspension of it — or of its instrument, or of the
provision it cites — is in force, and not after a repeal or a lift. A suspension that ends
restores the rule the next day. Extensions move a suspension's end.

An item is controlled by the acts (`per INSTRUMENT [provision] [from] [until]`) written on it,
or else on the groups it belongs to, each from its instrument's in-force date, cut by the
amendments of that instrument or provision. When several acts are in force on a day, the one
that started last is the one that controls the item then (the unified dual-use list takes over
an announcement's items on 2024-12-01).

A listing is in force from its `from` date, cut by the amendments of the announcement that made
it (`listings under INSTRUMENT`), of the single entry (`listing of PARTY on LIST`) and of the
instrument itself; it imposes the measures it states.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from dsl import ast
from dsl.rulebook import CheckedRulebook, Interval, parse_date

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Gap:
    """A stretch of time when something is not in force, and why."""

    start: dt.date
    end: dt.date | None
    action: str  # "suspend" | "repeal" | "lift"
    instrument: str
    span: ast.Span

    def describe(self) -> str:
        until = f" until {self.end}" if self.end else ""
        verb = {"suspend": "suspended", "lift": "lifted"}.get(self.action, "repealed")
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


@dataclass(frozen=True)
class Stretch:
    """One consecutive stretch of something's life: in force, suspended, repealed or lifted
    (by `instrument`), not in force, or expired. Both ends inclusive; None is open."""

    start: dt.date | None
    end: dt.date | None
    status: str
    instrument: str | None = None


_STATUS = {"suspend": "suspended", "repeal": "repealed", "lift": "lifted"}


def timeline(periods: Periods) -> list[Stretch]:
    """Consecutive stretches of a rule's or a listing's life from the start of its validity:
    what the rule pages, `in_force_on` and `excon docs` show."""
    out: list[Stretch] = []
    validity = periods.validity

    def gap(start: dt.date, end: dt.date | None) -> Stretch:
        found = periods.gap_on(start)
        return Stretch(start, end, _STATUS[found.action] if found else "not in force",
                       found.instrument if found else None)

    cursor = validity.start
    for iv in periods.intervals:
        if cursor is not None and iv.start is not None and iv.start > cursor:
            out.append(gap(cursor, iv.start - ONE_DAY))
        out.append(Stretch(iv.start, iv.end, "in force"))
        cursor = iv.end + ONE_DAY if iv.end else None
    # after the last stretch in force: consecutive gaps (a suspension, then a repeal…)
    while cursor is not None and (validity.end is None or cursor <= validity.end):
        found = periods.gap_on(cursor)
        if found is None:
            break
        end = min((d for d in (found.end, validity.end) if d), default=None)
        out.append(gap(cursor, end))
        cursor = end + ONE_DAY if end else None
    if cursor is not None and validity.end is not None and cursor > validity.end:
        out.append(Stretch(cursor, None, "expired"))
    return out


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
                    base, _, by = last.instrument.partition(" (extended by ")
                    by = f"{by[:-1]}, {instrument}" if by else instrument
                    earlier[earlier.index(last)] = Gap(last.start, end, "suspend",
                                                       f"{base} (extended by {by})", last.span)
                continue
            if start is None:
                continue
            gaps.setdefault(key, []).append(
                Gap(start, end if am.action == "suspend" else None, am.action, instrument,
                    am.span))
    for found in gaps.values():
        found.sort(key=lambda g: g.start)
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
    """One listing of a party on a list: the act that made it (announcement and entry), the
    measures it imposes, and when it is in force."""

    party: str
    list: str
    instrument: str
    periods: Periods
    provision: str | None = None
    measures: tuple[str, ...] = ()


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
                                              [g for k in keys for g in gaps.get(k, [])]),
                                      str(lst.citation.provision)
                                      if lst.citation.provision else None,
                                      rb.listing_measures(lst)))
    return out


def parameter_periods(rb: CheckedRulebook, name: str
                      ) -> list[tuple[Interval, ast.ParameterValue, ast.Citation | None]]:
    """A parameter's values with the days each applies: its own period (`from`, else its act's
    in-force date; `until`), less the days its act, or the provision cited, is suspended,
    repealed or lifted. Each piece of a cut period is listed apart, in date order."""
    cached = rb.derived.setdefault("parameter_periods", {})
    if name not in cached:
        gaps = _amendment_gaps(rb)
        out = []
        for iv, v, cite in rb.parameter_values(name):
            keys = []
            if cite is not None:
                keys.append(f"instrument:{cite.instrument.name}")
                if cite.provision is not None:
                    keys.append(f"instrument:{cite.instrument.name}:{cite.provision}")
            periods = Periods(iv, [g for k in keys for g in gaps.get(k, [])])
            out += [(piece, v, cite) for piece in periods.intervals]
        cached[name] = sorted(out, key=lambda x: x[0].start or dt.date.min)
    return cached[name]  # type: ignore[no-any-return]


def parameter_in_force(rb: CheckedRulebook, name: str, day: dt.date
                       ) -> tuple[Interval, ast.ParameterValue, ast.Citation | None] | None:
    """The value of a parameter that applies on `day`, with its period and act, or None."""
    return next(((iv, v, cite) for iv, v, cite in parameter_periods(rb, name)
                 if (iv.start is None or iv.start <= day) and (iv.end is None or day <= iv.end)),
                None)


@dataclass(frozen=True)
class Control:
    """A stretch of days (both ends inclusive, None open) in which one act controls an item."""

    start: dt.date | None
    end: dt.date | None
    instrument: str
    provision: str | None

    def covers(self, day: dt.date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)


def item_controls(rb: CheckedRulebook) -> dict[str, tuple[Control, ...]]:
    """For every item, the disjoint stretches of days in which it is controlled, each with the
    act that controls it then (computed once per checked rulebook)."""
    cached = rb.derived.get("item_controls")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    gaps = _amendment_gaps(rb)
    out: dict[str, tuple[Control, ...]] = {}
    for name in rb.items:
        acts = []
        for order, act in enumerate(rb.control_acts(name)):
            ins = act.citation.instrument.name
            start = parse_date(act.valid_from.date.text) if act.valid_from else \
                rb.in_force_date(ins)
            end = parse_date(act.valid_until.date.text) if act.valid_until else None
            keys = [f"instrument:{ins}"]
            prov = rb.act_provision(name, act)
            if prov is not None:
                keys.append(f"instrument:{ins}:{prov}")
            periods = Periods(Interval(start, end), [g for k in keys for g in gaps.get(k, [])])
            acts.append(((start or dt.date.min, order), ins, prov, periods.intervals))
        painted: list[Control] = []
        # later acts take over where they are in force: paint them over the earlier ones
        for _, ins, prov, intervals in sorted(acts, key=lambda a: a[0]):
            for iv in intervals:
                painted = [p for c in painted for p in _cut(c, iv)]
                painted.append(Control(iv.start, iv.end, ins, prov))
        out[name] = _merged(painted)
    rb.derived["item_controls"] = out
    return out


def control_on(controls: tuple[Control, ...], day: dt.date) -> Control | None:
    """The act that controls an item on a day, if any."""
    for c in controls:
        if c.covers(day):
            return c
    return None


def _cut(c: Control, iv: Interval) -> list[Control]:
    """What is left of `c` outside `iv`."""
    out = []
    if iv.start is not None and (c.start is None or c.start < iv.start):
        end = iv.start - ONE_DAY
        out.append(Control(c.start, end if c.end is None else min(c.end, end), c.instrument,
                           c.provision))
    if iv.end is not None and (c.end is None or c.end > iv.end):
        start = iv.end + ONE_DAY
        out.append(Control(start if c.start is None else max(c.start, start), c.end,
                           c.instrument, c.provision))
    return [x for x in out if x.start is None or x.end is None or x.start <= x.end]


def _merged(controls: list[Control]) -> tuple[Control, ...]:
    """Sorted by start, adjacent stretches of the same act joined."""
    out: list[Control] = []
    for c in sorted(controls, key=lambda c: c.start or dt.date.min):
        last = out[-1] if out else None
        if last is not None and (last.instrument, last.provision) == \
                (c.instrument, c.provision) and last.end is not None and \
                c.start is not None and last.end + ONE_DAY >= c.start:
            out[-1] = Control(last.start, c.end if c.end is None or c.end > last.end
                              else last.end, c.instrument, c.provision)
        else:
            out.append(c)
    return tuple(out)
