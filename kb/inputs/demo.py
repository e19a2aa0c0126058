"""Synthetic but realistic demo data: declarations, licences, parties, and a truth file.

Controlled goods use the rulebook's own items and reference customs codes, in shares and at
unit values close to the real trade (gallium a few hundred USD/kg, germanium over a thousand,
antimony oxide tens); other goods use real HS codes of everyday exports. Licences cover most
controlled shipments. Planted among them, and listed in `truth.csv` with their kind: unlicensed
exports, shipments to a banned destination, listed consignees under other spellings, relabelled
goods, transshipment, split consignments, related parties, withheld end users, borrowed licences
and new exporters.

The planted cases follow the smuggling typology, not the rules' thresholds: a split shipment is
a normal order cut into two to six parts over up to 45 days, a surge brings a route country more
of a mineral in one to four months than it received in the year before, and so on; some of them
fall outside what an indicator looks for, as real cases do. Ordinary trade carries the
look-alikes an analyst meets: Hong Kong traders that name no end user, exporters and consignees
sharing an agent's or a forwarder's address, new legitimate customers and exporters, export
agents named on licences, repeated consignments near the thresholds, and steady trade to the
route countries. Near misses sit on both sides of every threshold the rulebook names as a
parameter, at several distances from it (`NEAR`), and every indicator has a look-alike in
ordinary trade: goods under their own codes whose description names a mineral, premium unit
values, toll processing for a US end user, a company's own subsidiary abroad, companies part-
owned by a listed party under the ownership threshold, names that resemble a listed party's.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import gc
import itertools
import math
import operator
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dsl
from dsl import ast
from dsl.model import law
from dsl.schema import UNIT_FACTORS
from kb.inputs.demo_words import (
    CITIES,
    FOREIGN_STEMS,
    FOREIGN_TRADES,
    LEGAL_FORMS,
    LISTED_LOOKALIKES,
    LISTED_SPELLINGS,
    NAMED_GOODS,
    ORDINARY,
    RELABEL_AS,
    TRADES,
)
from kb.store.schema import declaration_schema

# Ordinary trade from 2022, a year and a half before the first controls: indicators that compare
# a flow with its past year (surges) or look for first appearances need a history, as real
# customs data has one.
START = dt.date(2022, 1, 1)
END = dt.date(2026, 11, 27)
# A surge's largest consignment (a bulk carrier's cargo): surges grow with their route's flow,
# so with the data's size (over 500,000 t a consignment at 10M); larger ones take more ships
LARGEST_CONSIGNMENT_KG = 50_000_000.0

# group -> (USD/kg low, high, date its licence requirement starts, typical consignment kg)
CONTROLLED = {
    "gallium": (280.0, 720.0, dt.date(2023, 8, 1), (20, 400)),
    "germanium": (1200.0, 3200.0, dt.date(2023, 8, 1), (10, 250)),
    "graphite": (0.6, 6.0, dt.date(2023, 12, 1), (2000, 25000)),
    "antimony": (8.0, 60.0, dt.date(2024, 9, 15), (500, 20000)),
    "tungsten": (30.0, 65.0, dt.date(2025, 2, 4), (500, 10000)),
    "medium-heavy-rare-earths": (20.0, 90.0, dt.date(2025, 4, 4), (50, 2000)),
    "superhard": (100.0, 450.0, dt.date(2099, 1, 1), (5, 200)),  # No. 55 suspended
}
GROUP_SHARE = {"gallium": 10, "germanium": 6, "graphite": 30, "antimony": 22, "tungsten": 18,
               "medium-heavy-rare-earths": 10, "superhard": 4}
BANNED_TO_US = ("gallium", "germanium", "antimony")
MINOR = ("gallium", "germanium", "medium-heavy-rare-earths", "superhard")  # traded by the kg
# (mineral, route country): the transshipment routes of the typology
ROUTES = (("antimony", "TH"), ("antimony", "MX"), ("germanium", "BE"), ("gallium", "HK"),
          ("tungsten", "TH"), ("medium-heavy-rare-earths", "HK"))
ZH = {"gallium": "镓", "germanium": "锗", "antimony": "锑", "tungsten": "仲钨酸铵",
      "medium-heavy-rare-earths": "镝"}
TRANSIT = ("VN", "MY", "AE", "TH", "MX", "KR", "IN")
# one planted case of each kind per this many declarations (at least 3 of each; the surges,
# a few per route and year, come on top): the demo's default, about 8 % of its declarations
CASES_PER = 200
# look-alike rates of ordinary trade, fixed before the indicators were measured against them
HK_WITHOUT_END_USER = 0.10    # Hong Kong traders that name no end user
WITHOUT_END_USER = 0.01       # other controlled shipments that name none
AGENT_ADDRESS = 0.15          # exporters (and consignees) using an agent's (forwarder's) address
INDICATORS_FROM = dt.date(2023, 8, 1)  # the rulebook's indicators apply from the first controls
BAN = (dt.date(2024, 12, 3), dt.date(2025, 11, 8))  # No. 46 cl. 2, before No. 72's suspension

COUNTRY_MIX = {"JP": 15, "KR": 12, "US": 12, "DE": 10, "NL": 7, "BE": 4, "TW": 6, "IN": 6,
               "VN": 5, "GB": 5, "FR": 4, "HK": 5, "TH": 2, "MX": 2, "IT": 3, "CA": 2, "MY": 1,
               "AE": 1}
# (the running totals `random.choices` would make of the weights at every call)
_COUNTRIES, _COUNTRY_WEIGHTS = tuple(COUNTRY_MIX), tuple(itertools.accumulate(COUNTRY_MIX.values()))
# near misses sit at these multiples of a threshold: both sides of it, several distances
NEAR = (0.5, 0.8, 0.95, 1.05, 1.25, 2.0)


@dataclass
class Company:
    name: str
    country: str
    address: str
    phone: str
    parent: str = ""


@dataclass
class DemoData:
    declarations: list[dict[str, object]] = field(default_factory=list)
    licences: list[dict[str, object]] = field(default_factory=list)
    parties: list[Company] = field(default_factory=list)
    truth: list[dict[str, object]] = field(default_factory=list)


def _rulebook_facts(rulebooks: Sequence[Path]
                    ) -> tuple[dict[str, list[str]], dict[str, float], dict[str, float]]:
    """From the rulebook itself: the reference customs codes of each item group, each
    parameter's last value (kg, days, %, or a count), and the top of each value range by
    code."""
    result = dsl.load(rulebooks, declaration_schema())
    if result.rulebook is None or not result.ok:
        raise ValueError("the rulebooks have errors; run `excon check` first")
    rb = result.rulebook
    model = law(rb)
    codes: dict[str, list[str]] = {}
    for group in CONTROLLED:
        found: list[str] = []
        for item in model.groups[group].members if group in model.groups else ():
            found.extend(c.digits for c in model.items[item].codes)
        codes[group] = sorted({c if len(c) == 10 else c + "00" for c in found})
    thresholds = {name: float(v.value) * UNIT_FACTORS.get(v.unit or "", 1.0)
                  for name, p in rb.parameters.items()
                  for v in ast.attrs_of(p, ast.ParameterValue)[-1:]}
    tops = {c.digits: vr.high_usd_per_kg for vr in model.value_ranges.values()
            if vr.high_usd_per_kg is not None for c in vr.codes}
    return {g: c for g, c in codes.items() if c}, thresholds, tops


def _day_and_kg(row: dict[str, object]) -> tuple[int, float]:
    return (dt.date.fromisoformat(str(row["declared_on"])).toordinal(),
            float(str(row["quantity_kg"])))


class _Generator:
    def __init__(self, n: int, seed: int, rulebooks: Sequence[Path],
                 cases_per: int = CASES_PER) -> None:
        self.n = n
        self.cases_per = cases_per
        self.rng = random.Random(seed)
        self.codes, self.thresholds, self.range_tops = _rulebook_facts(rulebooks)
        self.data = DemoData()
        self.names: set[str] = set()
        self.agent_addresses = [f"Room {self.rng.randint(100, 2999)}, "
                                f"{self.rng.choice(CITIES)} Export Service Centre, China"
                                for _ in range(3)]
        self.forwarder_addresses = [f"{self.rng.randint(1, 99)} Logistics Park, Unit "
                                    f"{self.rng.randint(1, 80)}" for _ in range(3)]
        self.exporters = [self._exporter(i) for i in range(max(12, n // 400 + 1))]
        self.consignees: dict[str, list[Company]] = {
            c: [self._consignee(c, i) for i in range(max(3, n // 1500 + 1))]
            for c in COUNTRY_MIX
        }
        self.days = (END - START).days
        self.case = 0
        self.fronts = 0
        self.surge_distances: list[float] = []  # the near-miss surges still to make

    # ---------------------------------------------------------------- companies
    def _exporter(self, i: int) -> Company:
        rng = self.rng
        city = rng.choice(CITIES)
        name = f"{city} {rng.choice(TRADES)} Co., Ltd."
        while name in self.names:
            name = f"{city} {rng.choice(CITIES)} {rng.choice(TRADES)} Co., Ltd."
            if name in self.names:
                name = f"{city} {rng.choice(TRADES)} {rng.randint(2, 9999)} Co., Ltd."
        self.names.add(name)
        return Company(
            name, "CN",
            rng.choice(self.agent_addresses) if rng.random() < AGENT_ADDRESS else
            f"No. {rng.randint(1, 999)} {rng.choice(('Renmin', 'Jiefang', 'Zhongshan', 'Xinhua'))}"
            f" Road, {city}, China",
            f"+86 {rng.randint(10, 999)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        )

    def _consignee(self, country: str, i: int) -> Company:
        rng = self.rng
        stem, trade = rng.choice(FOREIGN_STEMS), rng.choice(FOREIGN_TRADES)
        name = f"{stem} {trade} {LEGAL_FORMS[country]}"
        while name in self.names:
            name = f"{stem} {trade} {rng.randint(2, 9999)} {LEGAL_FORMS[country]}"
        self.names.add(name)
        return Company(
            name, country,
            f"{rng.choice(self.forwarder_addresses)}, {country}" if rng.random() < AGENT_ADDRESS
            else f"{rng.randint(1, 400)} Harbour Street, {country}",
            f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(100000, 999999)}",
        )

    def _country(self) -> str:
        return self.rng.choices(_COUNTRIES, cum_weights=_COUNTRY_WEIGHTS)[0]

    def _date(self, lo: dt.date = START, hi: dt.date = END) -> dt.date:
        return lo + dt.timedelta(days=self.rng.randint(0, (hi - lo).days))

    def _plantable(self) -> list[str]:
        """The groups whose items are controlled long enough before the data ends."""
        return [g for g in self.codes if CONTROLLED[g][2] <= END - dt.timedelta(days=90)]

    def _controlled_date(self, group: str, lo: dt.date, hi: dt.date = END) -> dt.date:
        """A day from `lo` on, once the group's items are controlled: a planted case is a
        violation only while the law it breaks applies to the goods. (The control's first day
        when that is after `hi`.)"""
        lo = max(lo, CONTROLLED[group][2])
        return self._date(lo, hi) if lo <= hi else lo

    # ---------------------------------------------------------------- declarations
    def _row(self, when: dt.date, exporter: Company, consignee: Company, code: str,
             description: str, kg: float, usd_per_kg: float, purity: float | None = None,
             destination: str | None = None, end_user: Company | None = None,
             licence: str = "") -> dict[str, object]:
        return {
            "id": "", "declared_on": when.isoformat(), "exporter": exporter.name,
            "consignee": consignee.name, "consignee_country": consignee.country,
            "end_user": end_user.name if end_user else "",
            "end_user_country": end_user.country if end_user else "",
            "destination_country": destination or consignee.country, "hs_code": code,
            "description": description, "quantity_kg": round(kg, 1),
            "value_usd": round(kg * usd_per_kg, 2),
            "purity_pct": "" if purity is None else purity, "licence_no": licence,
            "end_use": "civil", "parameters": "",
        }

    def _parameters(self, group: str, code: str, purity: float | None) -> str:
        """What the declaration states beyond its code: the kind of graphite on the lines that
        hold both kinds, the thresholds of artificial graphite, the particle size of diamond
        powder, the control code of machines on the residual line. A few leave it out."""
        rng = self.rng
        if rng.random() < 0.03:
            return ""
        if group == "graphite" and code in ("3801909010", "6815190020"):
            if rng.random() < 0.85:
                return "graphite_type=natural"
            return (f"graphite_type=artificial; flexural_strength={rng.randint(20, 60)} MPa; "
                    f"density={rng.uniform(1.6, 1.95):.2f} g/cm3")
        if group == "graphite" and code.startswith("3801100"):
            return (f"flexural_strength={rng.randint(20, 60)} MPa; "
                    f"density={rng.uniform(1.6, 1.95):.2f} g/cm3")
        if code.startswith("710510"):
            return f"particle_size={rng.choice((20, 40, 45, 80, 200, 600))} µm"
        if code.startswith("847989"):
            return f"dual_use_code={rng.choice(('2B005.b', 'none', 'none'))}"
        return ""

    def _controlled(self, group: str, when: dt.date | None = None,
                    country: str | None = None) -> dict[str, object]:
        rng = self.rng
        lo, hi, _, (kg_lo, kg_hi) = CONTROLLED[group]
        code = rng.choice(self.codes[group])
        when = when or self._date()
        country = country or self._country()
        if group in BANNED_TO_US and country == "US" and BAN[0] <= when <= BAN[1]:
            country = "JP"  # ordinary trade follows the law; violations are planted separately
        if group == "antimony" and country in ("TH", "MX") and rng.random() < 0.8:
            country = "KR"  # little processing capacity there, little ordinary demand (brief)
        consignee = rng.choice(self.consignees[country])
        purity = None if rng.random() < 0.06 else round(rng.uniform(99.0, 99.9999), 4)
        # licensed dual-use exports name their end user, mostly the consignee itself; some
        # Hong Kong traders, and a few others, name none
        omit = HK_WITHOUT_END_USER if country == "HK" else WITHOUT_END_USER
        row = self._row(when, rng.choice(self.exporters), consignee, code,
                        f"{group.replace('-', ' ')} products", rng.uniform(kg_lo, kg_hi),
                        rng.uniform(lo, hi), purity,
                        end_user=None if rng.random() < omit else consignee)
        row["parameters"] = self._parameters(group, code, purity)
        row["_group"] = group
        return row

    def _ordinary(self) -> dict[str, object]:
        rng = self.rng
        code, desc, lo, hi = rng.choice(ORDINARY)
        consignee = rng.choice(self.consignees[self._country()])
        return self._row(self._date(), rng.choice(self.exporters), consignee, code, desc,
                         rng.uniform(200, 30000), rng.uniform(lo, hi))

    @staticmethod
    def _ship_to(row: dict[str, object], consignee: Company, end_user: Company | None) -> None:
        row.update(consignee=consignee.name, consignee_country=consignee.country,
                   destination_country=consignee.country,
                   end_user=end_user.name if end_user else "",
                   end_user_country=end_user.country if end_user else "")

    def _numbered(self, name: Callable[[int], str]) -> str:
        """The name with the next number of the planted companies that no other company has
        (an exporter's numbered name took 'Ganzhou New Materials 7437 Co., Ltd.' at 1,000,000
        declarations, and parties.csv had the name twice)."""
        self.fronts += 1
        while name(self.fronts) in self.names:
            self.fronts += 1
        self.names.add(name(self.fronts))
        return name(self.fronts)

    def _front(self, country: str, kind: str) -> Company:
        """A company first seen in the planted case (a new name in the data)."""
        rng = self.rng
        legal = LEGAL_FORMS.get(country, "Ltd")
        stem = rng.choice(FOREIGN_STEMS)
        name = self._numbered(lambda n: f"{stem} {kind} {legal} {n}")
        return Company(name, country,
                       f"{rng.randint(1, 400)} {rng.choice(('Queen', 'King', 'Harbour'))} "
                       f"Road, {country}",
                       f"+{rng.randint(20, 99)} {rng.randint(1000, 9999)} "
                       f"{rng.randint(1000, 9999)}")

    def _new_exporter(self) -> Company:
        """A domestic company first seen now."""
        rng = self.rng
        city, trade = rng.choice(CITIES), rng.choice(TRADES)
        return Company(self._numbered(lambda n: f"{city} {trade} {n} Co., Ltd."), "CN",
                       f"No. {rng.randint(1, 999)} Keji Road, {city}, China",
                       f"+86 {rng.randint(10, 999)} {rng.randint(1000, 9999)} "
                       f"{rng.randint(1000, 9999)}")

    def _plant(self, kind: str, rows: list[dict[str, object]], detail: str) -> None:
        self.case += 1
        for r in rows:
            r["_truth"] = (self.case, kind, detail)
            r.setdefault("_group", None)
        self.data.declarations.extend(rows)

    def _order(self, group: str) -> float:
        """The quantity of one large order of the group's goods, kg."""
        rng = self.rng
        return rng.uniform(400, 1500) if group in MINOR else rng.uniform(8000, 40000)

    def plant_cases(self) -> None:
        rng = self.rng
        per_kind = max(3, self.n // self.cases_per)
        few = max(2, per_kind // 2)
        plantable = self._plantable()
        for _ in range(per_kind):
            group: str = rng.choice([g for g in ("gallium", "germanium", "antimony", "graphite")
                                     if g in self.codes])
            start = CONTROLLED[group][2]
            row = self._controlled(group, self._date(start + dt.timedelta(days=1)))
            row["_no_licence"] = True
            self._plant("unlicensed", [row], f"{group} exported without a licence")
        for _ in range(per_kind):
            group = rng.choice([g for g in BANNED_TO_US if g in self.codes])
            row = self._controlled(group, self._date(*BAN), "JP")
            us = rng.choice(self.consignees["US"])
            self._ship_to(row, us, us)
            row["_no_licence"] = True  # clause 2: a licence is in principle refused
            self._plant("banned_destination", [row],
                        f"{group} to the US under MOFCOM-2024-46, without a licence")
        for _ in range(per_kind):
            group = rng.choice([g for g in ("graphite", "tungsten", "germanium")
                                if g in self.codes])
            row = self._controlled(group, self._controlled_date(group, *BAN), "US")
            us = rng.choice(self.consignees["US"])
            self._ship_to(row, us, us)
            row.update(end_use=rng.choice(("military", "defense systems", "military radar")))
            self._plant("military_end_use", [row],
                        f"{group} to the US for a military end use (MOFCOM-2024-46 clause 1)")
        for _ in range(per_kind):
            group = rng.choice(plantable)
            row = self._controlled(group, self._controlled_date(group, dt.date(2025, 1, 3)), "US")
            row.update(consignee=rng.choice(LISTED_SPELLINGS), consignee_country="US",
                       destination_country="US")
            self._plant("listed_party", [row], "consignee on the Control List (MOFCOM-2025-1)")
        # false declarations: a controlled mineral declared as cover goods at its own price; the
        # description gives the mineral away in some cases
        relabelled = [g for g in ("gallium", "germanium", "antimony", "tungsten",
                                  "medium-heavy-rare-earths") if g in self.codes]
        for _ in range(per_kind):
            group = rng.choice(relabelled)
            code, desc = rng.choice(RELABEL_AS)
            lo, hi, *_ = CONTROLLED[group]
            consignee = rng.choice(self.consignees[self._country()])
            when = self._controlled_date(group, dt.date(2023, 9, 1))
            mineral = "rare earths" if group == "medium-heavy-rare-earths" else group
            label = rng.choice((desc, desc, desc, f"{desc} ({ZH.get(group, mineral)})",
                                f"{desc}, contains {mineral}"))
            kg = self._order(group) / rng.uniform(3, 20)
            row = self._row(when, rng.choice(self.exporters), consignee, code, label, kg,
                            rng.uniform(lo, hi))
            named = label != desc
            self._plant("relabelled_name" if named else "relabelled_value", [row],
                        f"{group} declared as {desc} ({code})"
                        + (f", description '{label}'" if named else ""))
        # transshipment: the declared end user is in the US, the goods go elsewhere
        for _ in range(per_kind):
            group = rng.choice([g for g in plantable if g != "superhard"])
            via = rng.choice(TRANSIT)
            row = self._controlled(group, self._controlled_date(group, dt.date(2024, 12, 3)), "JP")
            self._ship_to(row, rng.choice(self.consignees[via]), rng.choice(self.consignees["US"]))
            self._plant("transshipment", [row], f"{group} to {via}, end user in the US")
        # front companies in third countries receiving repeated shipments
        for _ in range(few):
            group = rng.choice([g for g in ("gallium", "germanium", "antimony", "tungsten")
                                if g in self.codes])
            country = rng.choice(("VN", "MY", "AE", "HK"))
            front = self._front(country, "Trading")
            self.data.parties.append(front)
            first = self._controlled_date(group, dt.date(2023, 10, 1), END - dt.timedelta(days=130))
            k, span = rng.randint(2, 5), rng.randint(10, 120)
            rows = []
            for j in range(k):
                row = self._controlled(group, first + dt.timedelta(days=span * j // (k - 1)), "JP")
                self._ship_to(row, front, front)
                rows.append(row)
            self._plant("new_consignee", rows, f"{front.name}, first seen {first}, receives "
                        f"{k} {group} consignments in {span} days")
        for _ in range(per_kind):
            group = rng.choice(plantable)
            row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM), "HK")
            other = rng.choice((None, rng.choice(self.consignees["KR"])))
            self._ship_to(row, rng.choice(self.consignees["HK"]), other)
            self._plant("hub_routing", [row], f"{group} to Hong Kong, "
                        + (f"end user in {other.country}" if other else "no end user"))
        # end user withheld on a controlled export to a transit country
        for _ in range(per_kind):
            group = rng.choice(plantable)
            via = rng.choice(TRANSIT)
            row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM), via)
            self._ship_to(row, rng.choice(self.consignees[via]), None)
            self._plant("no_end_user", [row], f"{group} to {via}, no end user declared")
        # split shipments: one large order cut into parts over a few weeks
        for _ in range(per_kind):
            group = rng.choice([g for g in plantable if g != "superhard"])
            first = self._controlled_date(group, dt.date(2023, 9, 1), END - dt.timedelta(days=50))
            exporter = rng.choice(self.exporters)
            consignee = rng.choice(self.consignees[rng.choice(("DE", "NL", "JP", "KR"))])
            k, span = rng.randint(2, 6), rng.randint(3, 45)
            total = self._order(group)
            rows = []
            for j in range(k):
                row = self._controlled(group, first + dt.timedelta(days=span * j // (k - 1)),
                                       consignee.country)
                kg = round(total / k * rng.uniform(0.9, 1.1), 1)
                usd_per_kg = float(str(row["value_usd"])) / float(str(row["quantity_kg"]))
                row.update(exporter=exporter.name, quantity_kg=kg,
                           value_usd=round(kg * usd_per_kg, 2))
                self._ship_to(row, consignee, consignee)
                rows.append(row)
            self._plant("split_minor" if group in MINOR else "split_bulk", rows,
                        f"{total:,.0f} kg of {group} in {k} consignments over {span} days")
        for _ in range(per_kind):
            exporter = rng.choice(self.exporters)
            country = rng.choice(("HK", "SG" if "SG" in self.consignees else "VN"))
            link = rng.choice(("address", "phone", "parent"))
            front = Company(f"{rng.choice(FOREIGN_STEMS)} Global Trading Ltd {self.case}",
                            country, f"{rng.randint(1, 400)} Queen's Road, {country}",
                            f"+852 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}")
            if link == "address":
                front.address = exporter.address
            elif link == "phone":
                front.phone = exporter.phone
            else:
                front.parent = exporter.name
            self.data.parties.append(front)
            group = rng.choice(plantable)
            row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM), "JP")
            row.update(exporter=exporter.name)
            self._ship_to(row, front, front)
            self._plant("related_parties", [row], f"consignee shares the exporter's {link}")
        for _ in range(few):
            country = rng.choice(("JP", "DE", "GB", "KR"))
            front = self._front(country, "Aerospace")
            front.parent = rng.choice(LISTED_SPELLINGS)
            self.data.parties.append(front)
            group = rng.choice(plantable)
            row = self._controlled(group, self._controlled_date(group, dt.date(2025, 1, 3)), "JP")
            self._ship_to(row, front, front)
            self._plant("listed_subsidiary", [row],
                        f"consignee is a subsidiary of {front.parent} (Control List)")
        # a licence holder lets another exporter, named on the licence as its agent, ship
        for _ in range(few):
            group = rng.choice([g for g in plantable if g != "superhard"])
            row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM))
            holder = rng.choice(self.exporters)
            agent = rng.choice([e for e in self.exporters if e is not holder])
            row.update(exporter=agent.name, _holder=holder.name)
            self._plant("licence_borrowing", [row],
                        f"{agent.name} ships under {holder.name}'s licence as its agent")
        # a new domestic company whose first export is a large controlled consignment
        for _ in range(few):
            group = rng.choice([g for g in plantable if g != "superhard"])
            exporter = self._new_exporter()
            self.data.parties.append(exporter)
            row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM))
            kg = self._order(group) * rng.uniform(0.8, 2.5)
            lo, hi, *_ = CONTROLLED[group]
            row.update(exporter=exporter.name, quantity_kg=round(kg, 1),
                       value_usd=round(kg * rng.uniform(lo, hi), 2))
            self._plant("new_exporter", [row], f"{exporter.name}'s first export: "
                        f"{kg:,.0f} kg of {group}")

    def plant_surges(self) -> None:
        """Surges on the transshipment routes, as the brief describes them: over one to four
        months a route country receives more of a mineral than it did in the whole year
        before (antimony to Thailand and Mexico, Dec 2024 - Apr 2025: more than the previous
        three years together). Planted after ordinary trade, so that each surge is measured
        against the route's own flow: one to three times the year's volume before it (at
        least two large orders), in three to eight consignments to one to three consignees."""
        rng = self.rng
        # each route's consignments (day, kg), in the declarations' order (the surges' own
        # added as they are planted): each year's baseline is summed from its route's alone
        flows: dict[tuple[object, object], list[tuple[int, float]]] = defaultdict(list)
        routes = {route for route in ROUTES if route[0] in self.codes}
        for r in self.data.declarations:
            if (r.get("_group"), r["destination_country"]) in routes:
                flows[r.get("_group"), r["destination_country"]].append(_day_and_kg(r))
        for group, hub in ROUTES:
            if group not in self.codes:
                continue
            for year in (2024, 2025, 2026):
                first = self._controlled_date(group, dt.date(year, 1, 1), dt.date(year, 7, 31))
                if first.year != year:
                    continue
                day = first.toordinal()
                before = sum(kg for when, kg in flows[group, hub] if 0 < day - when <= 365)
                total = max(before * rng.uniform(1, 3), 2 * self._order(group))
                k, span = max(rng.randint(3, 8), math.ceil(total * 1.2 / LARGEST_CONSIGNMENT_KG)), \
                    rng.randint(30, 120)
                consignees = rng.sample(self.consignees[hub], rng.randint(1, 3))
                rows = []
                for j in range(k):
                    when = first + dt.timedelta(days=span * j // (k - 1))
                    row = self._controlled(group, min(when, END), "JP")
                    consignee = consignees[j % len(consignees)]
                    self._ship_to(row, consignee, consignee)
                    kg = total / k * rng.uniform(0.8, 1.2)
                    lo, hi, *_ = CONTROLLED[group]
                    row.update(quantity_kg=round(kg, 1),
                               value_usd=round(kg * rng.uniform(lo, hi), 2))
                    rows.append(row)
                self._plant("surge", rows, f"{k} {group} consignments to {hub} in {span} days, "
                            f"{total:,.0f} kg against {before:,.0f} kg in the year before")
                flows[group, hub] += map(_day_and_kg, rows)

    def look_alikes(self) -> None:
        """Ordinary trade that resembles the cases: new legitimate customers receiving repeated
        shipments, new legitimate exporters, export agents named on licences, repeated
        consignments near the split thresholds, steady trade on the routes."""
        rng = self.rng
        plantable = [g for g in self._plantable() if g != "superhard"]
        for _ in range(max(1, self.n // 2000)):
            group = rng.choice(plantable)
            country = rng.choice(("JP", "DE", "KR", "NL"))
            customer = self._front(country, "Materials")
            self.data.parties.append(customer)
            first = self._controlled_date(group, dt.date(2023, 10, 1), END - dt.timedelta(days=90))
            for j in range(rng.randint(3, 5)):
                row = self._controlled(group, first + dt.timedelta(days=15 * j), country)
                self._ship_to(row, customer, customer)
                self.data.declarations.append(row)
        for _ in range(max(1, self.n // 4000)):
            group = rng.choice(plantable)
            exporter = self._new_exporter()
            self.data.parties.append(exporter)
            row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM))
            row.update(exporter=exporter.name)
            self.data.declarations.append(row)
        for _ in range(max(1, self.n // 2000)):
            group = rng.choice(plantable)
            row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM))
            holder = rng.choice(self.exporters)
            row.update(_holder=holder.name)
            self.data.declarations.append(row)
        for _ in range(max(1, self.n // 1000)):
            group = rng.choice(plantable)
            exporter = rng.choice(self.exporters)
            consignee = rng.choice(self.consignees[rng.choice(("DE", "JP", "KR"))])
            first = self._controlled_date(group, dt.date(2023, 9, 1), END - dt.timedelta(days=60))
            order = self._order(group)
            # two parts (not three), or three adding up to less than the split totals
            parts = rng.choice(((0.45, 0.45), (0.3, 0.3, 0.3)))
            for j, share in enumerate(parts):
                row = self._controlled(group, first + dt.timedelta(days=7 * j), consignee.country)
                kg = round((order if len(parts) == 2 else min(order, 1200 if group in MINOR
                                                               else 25000)) * share / 1.5, 1)
                usd_per_kg = float(str(row["value_usd"])) / float(str(row["quantity_kg"]))
                row.update(exporter=exporter.name, quantity_kg=kg,
                           value_usd=round(kg * usd_per_kg, 2))
                self._ship_to(row, consignee, consignee)
                self.data.declarations.append(row)

    # ---------------------------------------------------------------- near misses
    # Ordinary trade on both sides of each threshold the rulebook names as a parameter, at
    # several distances from it (NEAR: half, four fifths, 95 %, 105 %, five quarters and twice
    # the value), and a look-alike for every indicator. Whatever an indicator flags among them
    # is a false alarm: what real trade near a threshold gives an analyst. The thresholds are
    # read from the rulebook, so the near misses follow a threshold it moves; a rulebook
    # without them gets none of that kind.
    def near_misses(self) -> None:
        rng = self.rng
        for _ in range(max(1, self.n // 20000)):
            for d in NEAR:
                self._near_split(d)
                self.surge_distances.append(d)  # made once ordinary trade is there
                self._near_new_consignee(d)
                self._near_new_exporter(d)
                self._near_unit_value(d)
                self._near_owned(d)
        for _ in range(max(1, self.n // 2000)):
            code, desc = rng.choice(NAMED_GOODS)  # a mineral named, under the goods' own code
            self.data.declarations.append(self._row(
                self._date(), rng.choice(self.exporters),
                rng.choice(self.consignees[self._country()]), code, desc,
                rng.uniform(100, 5000), rng.uniform(5, 40)))
            self._listed_lookalike()
            self._own_subsidiary()
        for _ in range(max(1, self.n // 5000)):  # toll processing for a US end user
            group = rng.choice([g for g in ("graphite", "tungsten") if g in self.codes]
                               or self._plantable())
            country = rng.choice(("JP", "KR"))
            row = self._controlled(group, self._controlled_date(group, dt.date(2024, 12, 3)),
                                   country)
            self._ship_to(row, rng.choice(self.consignees[country]),
                          rng.choice(self.consignees["US"]))
            self.data.declarations.append(row)

    def _set_kg(self, row: dict[str, object], kg: float) -> None:
        usd_per_kg = float(str(row["value_usd"])) / float(str(row["quantity_kg"]))
        row.update(quantity_kg=round(kg, 1), value_usd=round(kg * usd_per_kg, 2))

    def _near_split(self, d: float) -> None:
        """A regular customer's repeat order in two parts: the total d times a split order's,
        or the parts d times the window apart, or the larger part d times the largest share."""
        rng, p = self.rng, self.thresholds
        group = rng.choice([g for g in self._plantable() if g != "superhard"])
        total = p.get("split-total-minor-metals" if group in MINOR else
                      "split-total-bulk-minerals")
        window, largest = p.get("split-window"), p.get("split-largest-part")
        if not (total and window and largest):
            return
        which = rng.choice(("total", "window", "largest"))
        kg = total * (d if which == "total" else rng.uniform(1.3, 2.0))
        gap = round(window * d) if which == "window" else max(1, round(window * 0.3))
        share = min(0.95, largest / 100 * d) if which == "largest" else 0.5
        first = self._controlled_date(group, dt.date(2023, 9, 1), END - dt.timedelta(days=200))
        exporter = rng.choice(self.exporters)
        consignee = rng.choice(self.consignees[rng.choice(("DE", "JP", "KR", "NL"))])
        for day, part in ((0, 1 - share), (gap, share)):
            row = self._controlled(group, first + dt.timedelta(days=day), consignee.country)
            self._set_kg(row, kg * part)
            row.update(exporter=exporter.name)
            self._ship_to(row, consignee, consignee)
            self.data.declarations.append(row)

    def near_surges(self) -> None:
        """A route's ordinary demand rising, after ordinary trade: three consignments in the
        surge window, d times what ordinary trade brought it in its year before (d = 1: half)."""
        rng, p = self.rng, self.thresholds
        window, year = p.get("surge-window"), p.get("surge-baseline-window")
        routes = [(g, hub) for g, hub in ROUTES if g in self.codes]
        if not (window and year and routes):
            return
        flows: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        for r in self.data.declarations:
            if r.get("_group") and not r.get("_truth"):
                flows[str(r["_group"]), str(r["destination_country"])].append(_day_and_kg(r))
        sums: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        for key, rows in flows.items():
            rows.sort()
            sums[key] = ([day for day, _ in rows],
                         list(itertools.accumulate((kg for _, kg in rows), initial=0.0)))
        for d in self.surge_distances:
            group, hub = rng.choice(routes)
            first = self._controlled_date(group, dt.date(2024, 1, 1), END - dt.timedelta(days=150))
            days, totals = sums.get((group, hub), ([], [0.0]))
            day = first.toordinal()
            before = (totals[bisect.bisect_left(days, day)]
                      - totals[bisect.bisect_left(days, day - int(year - window))])
            kg = max(before, self._order(group)) * d
            consignees = rng.sample(self.consignees[hub], 3)  # (3 or more each)
            parts = max(3, math.ceil(kg / LARGEST_CONSIGNMENT_KG))
            for j in range(parts):
                row = self._controlled(
                    group, first + dt.timedelta(days=int(window) * j // (2 * parts)), "JP")
                self._ship_to(row, consignees[j % 3], consignees[j % 3])
                self._set_kg(row, kg / parts)
                self.data.declarations.append(row)

    def _near_new_consignee(self, d: float) -> None:
        """A new customer in a third country (a battery plant, a refinery): its second
        shipment d times the new-consignee period after its first."""
        rng, period = self.rng, self.thresholds.get("new-consignee-period")
        if not period:
            return
        group = rng.choice([g for g in self._plantable() if g != "superhard"])
        country = rng.choice(("VN", "MY", "AE"))
        customer = self._front(country, "Industries")
        self.data.parties.append(customer)
        first = self._controlled_date(group, dt.date(2023, 10, 1), END - dt.timedelta(days=300))
        for day in (0, round(period * d)):
            row = self._controlled(group, first + dt.timedelta(days=day), country)
            self._ship_to(row, customer, customer)
            self.data.declarations.append(row)

    def _near_new_exporter(self, d: float) -> None:
        """A new legitimate exporter whose first consignment is d times a large one."""
        rng = self.rng
        group = rng.choice([g for g in self._plantable() if g != "superhard"])
        large = self.thresholds.get("large-minor-metal-consignment" if group in MINOR
                                    else "large-bulk-consignment")
        if not large:
            return
        exporter = self._new_exporter()
        self.data.parties.append(exporter)
        row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM))
        row.update(exporter=exporter.name)
        self._set_kg(row, large * d)
        self.data.declarations.append(row)

    def _near_unit_value(self, d: float) -> None:
        """Cover goods of a premium grade or with a mis-keyed value: a unit value d times the
        relabelled-value factor over the top of the code's range."""
        rng, share = self.rng, self.thresholds.get("far-below-unit-value")
        code, desc, *_ = rng.choice(ORDINARY)
        top = self.range_tops.get(next((code[:n] for n in (10, 8, 6, 4)
                                        if code[:n] in self.range_tops), ""))
        if not share or top is None:
            return
        self.data.declarations.append(self._row(
            self._date(INDICATORS_FROM), rng.choice(self.exporters),
            rng.choice(self.consignees[self._country()]), code, f"{desc}, premium grade",
            rng.uniform(200, 5000), top * 100 / share * d))

    def _near_owned(self, d: float) -> None:
        """A company part-owned by a listed party, its share d times the ownership threshold:
        from the threshold on it is the listed party's subsidiary, not a near miss."""
        rng = self.rng
        threshold = self.thresholds.get("subsidiary-ownership", 50.0)
        share = round(threshold * d, 1)
        if share >= threshold:
            return
        country = rng.choice(("JP", "DE", "GB", "KR"))
        company = self._front(country, "Components")
        company.parent = (f"{rng.choice(LISTED_SPELLINGS)} {share:g} %; "
                          f"{rng.choice(FOREIGN_STEMS)} Holdings {100 - share:g} %")
        self.data.parties.append(company)
        group = rng.choice(self._plantable())
        row = self._controlled(group, self._controlled_date(group, dt.date(2025, 1, 3)), country)
        self._ship_to(row, company, company)
        self.data.declarations.append(row)

    def _listed_lookalike(self) -> None:
        """A US consignee whose name resembles a listed party's, and is another company."""
        group = self.rng.choice([g for g in self._plantable() if g not in BANNED_TO_US]
                                or self._plantable())
        row = self._controlled(group, self._controlled_date(group, dt.date(2025, 1, 3)), "US")
        row.update(consignee=self.rng.choice(LISTED_LOOKALIKES), consignee_country="US",
                   destination_country="US", end_user="", end_user_country="")
        self.data.declarations.append(row)

    def _own_subsidiary(self) -> None:
        """An exporter's own subsidiary abroad as its consignee: intra-group trade."""
        rng = self.rng
        exporter = rng.choice(self.exporters)
        country = rng.choice(("DE", "JP", "KR", "NL"))
        sub = self._front(country, "Materials")
        sub.parent = exporter.name
        self.data.parties.append(sub)
        group = rng.choice(self._plantable())
        row = self._controlled(group, self._controlled_date(group, INDICATORS_FROM), country)
        row.update(exporter=exporter.name)
        self._ship_to(row, sub, sub)
        self.data.declarations.append(row)

    # ---------------------------------------------------------------- licences
    def licences(self) -> None:
        """One licence per exporter, group, destination and year, covering its shipments."""
        rng = self.rng
        need: dict[tuple[str, str, str, int], list[dict[str, object]]] = defaultdict(list)
        controlled_from = {g: c[2].isoformat() for g, c in CONTROLLED.items()}
        for r in self.data.declarations:
            group = r.get("_group")
            if not group or r.get("_no_licence"):
                continue
            when = str(r["declared_on"])  # (ISO days: compared as text)
            if when < controlled_from[str(group)]:
                continue
            need[(str(r.get("_holder") or r["exporter"]), str(group),
                  str(r["destination_country"]), int(when[:4]))].append(r)
        for n, (key, rows) in enumerate(sorted(need.items()), 1):
            exporter, group, country, year = key
            number = f"MOFCOM-{year}-{n:06d}"
            total = sum(float(str(r["quantity_kg"])) for r in rows)
            general = len(rows) > 3
            self.data.licences.append({
                "licence_no": number, "kind": "general" if general else "individual",
                "holder": exporter, "items": ";".join(self.codes[group]),
                "destination_country": country, "end_user": "",
                "agents": ";".join(sorted({str(r["exporter"]) for r in rows
                                           if r.get("_holder")})),
                "quantity_kg": round(total * rng.uniform(1.1, 1.6), 1),
                "valid_from": f"{year}-01-01", "valid_to": f"{year}-12-31",
            })
            for r in rows:
                r["licence_no"] = number

    # ---------------------------------------------------------------- all
    def generate(self) -> DemoData:
        rng = self.rng
        self.plant_cases()
        self.look_alikes()
        self.near_misses()
        planted = len(self.data.declarations)
        groups = [g for g in GROUP_SHARE if g in self.codes]
        weights = list(itertools.accumulate(GROUP_SHARE[g] for g in groups))
        for _ in range(max(0, self.n - planted)):
            if rng.random() < 0.3:
                self.data.declarations.append(
                    self._controlled(rng.choices(groups, cum_weights=weights)[0]))
            else:
                self.data.declarations.append(self._ordinary())
        self.near_surges()
        self.plant_surges()
        # the surges came on top: as many rows of ordinary trade go, so that n stays n
        ordinary = range(planted, max(self.n, planted))
        excess = min(len(self.data.declarations) - len(ordinary) - planted, len(ordinary))
        if excess > 0:
            dropped = set(rng.sample(ordinary, excess))
            self.data.declarations = [r for i, r in enumerate(self.data.declarations)
                                      if i not in dropped]
        # by day, and in a day by a draw for each row in the list's order (two sorts on
        # plain keys: one on (day, draw) pairs took twice as long)
        rows, draws = self.data.declarations, [rng.random() for _ in self.data.declarations]
        order = sorted(range(len(rows)), key=draws.__getitem__)
        days = [str(r["declared_on"]) for r in rows]
        order.sort(key=days.__getitem__)
        self.data.declarations = [rows[i] for i in order]
        for i, r in enumerate(self.data.declarations, 1):
            r["id"] = f"D{i:08d}"
            truth = r.get("_truth")
            if isinstance(truth, tuple):
                self.data.truth.append({"case_id": truth[0], "declaration_id": r["id"],
                                        "kind": truth[1], "detail": truth[2]})
        self.licences()
        self.data.parties[:0] = [*self.exporters,
                                 *(c for cs in self.consignees.values() for c in cs)]
        return self.data


def generate(n: int, seed: int = 1, rulebooks: Sequence[Path] = (Path("rulebooks"),),
             cases_per: int = 0) -> DemoData:
    """Demo data with about `n` declarations (at least the planted cases): one planted case of
    each kind per `cases_per` declarations (default `CASES_PER`, about 8 % of the declarations
    in planted cases; 2,000 gives under 1 %, a realistic prevalence)."""
    if cases_per < 0:
        raise ValueError(f"cases_per must be positive, not {cases_per}")
    # millions of rows and no reference cycles among them: the cyclic collector's passes over
    # them were an eighth of generating 4,000,000 declarations, and grow with the rows
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Generator(n, seed, rulebooks, cases_per or CASES_PER).generate()
    finally:
        if collecting:
            gc.enable()


DECLARATION_COLUMNS = ("id", "declared_on", "exporter", "consignee", "consignee_country",
                       "end_user", "end_user_country", "destination_country", "hs_code",
                       "description", "quantity_kg", "value_usd", "purity_pct", "licence_no",
                       "end_use", "parameters")
LICENCE_COLUMNS = ("licence_no", "kind", "holder", "items", "destination_country", "end_user",
                   "quantity_kg", "valid_from", "valid_to", "agents")


def write(data: DemoData, out: Path) -> dict[str, Path]:
    """Write declarations.csv, licences.csv, parties.csv and truth.csv into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / f"{name}.csv" for name in ("declarations", "licences", "parties",
                                                    "truth")}
    tables: dict[str, tuple[tuple[str, ...], list[dict[str, object]]]] = {
        "declarations": (DECLARATION_COLUMNS, data.declarations),
        "licences": (LICENCE_COLUMNS, data.licences),
        "parties": (("name", "country", "address", "phone", "parent"),
                    [vars(c) for c in data.parties]),
        "truth": (("case_id", "declaration_id", "kind", "detail"), data.truth),
    }
    for name, (columns, rows) in tables.items():
        with files[name].open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            w.writerows(map(operator.itemgetter(*columns), rows))  # (every row has each)
    return files
