"""Reference data shipped with excon: the HS 2022 nomenclature and ISO 3166 countries."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pycountry
from sqlite_utils import Database

HS_SOURCE = (
    "Harmonized System 2022, World Customs Organization, via UN Comtrade and the "
    "datasets/harmonized-system data package (ODC-PDDL-1.0)"
)
COUNTRIES_SOURCE = f"ISO 3166-1 via pycountry {getattr(pycountry, '__version__', '')}".strip()


def _csv(name: str) -> Iterator[dict[str, str]]:
    data = resources.files("kb").joinpath(f"data/hs2022/{name}").read_text(encoding="utf-8-sig")
    yield from csv.DictReader(io.StringIO(data, newline=""))


def hs_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sections = [{"section": r["section"], "name": r["name"]} for r in _csv("sections.csv")]
    codes = [
        {"hscode": r["hscode"], "description": r["description"], "parent": r["parent"],
         "level": int(r["level"]),
         # four chapter-99 style rows sit outside any section ("TOTAL" in the data package)
         "section": None if r["section"] == "TOTAL" else r["section"]}
        for r in _csv("harmonized-system.csv")
    ]
    return sections, codes


def country_rows() -> list[dict[str, Any]]:
    return sorted(
        (
            {"alpha2": c.alpha_2, "alpha3": c.alpha_3, "numeric": c.numeric, "name": c.name,
             "official_name": getattr(c, "official_name", None)}
            for c in pycountry.countries
        ),
        key=lambda r: r["alpha2"],
    )


def load_reference(db: Database) -> dict[str, int]:
    """Fill the reference tables; returns row counts."""
    sections, codes = hs_rows()
    db.table("hs_sections").insert_all(sections)
    db.table("hs_codes").insert_all(codes, batch_size=2000)
    countries = country_rows()
    db.table("countries").insert_all(countries)
    return {"hs_sections": len(sections), "hs_codes": len(codes), "countries": len(countries)}
