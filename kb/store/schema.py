"""The facts of an export declaration (the `declarations.csv` contract in docs/inputs.md), described
for the rules-language checker, plus the reference sets it validates codes against.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import pycountry

from dsl.schema import FieldSpec, Schema

DECLARATION_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", "text", required=True, description="Declaration line identifier"),
    FieldSpec("declared_on", "date", required=True, description="Date of the export declaration",
              aliases=("date",)),
    FieldSpec("exporter", "party", required=True, description="Exporter (domestic consignor)"),
    FieldSpec("consignee", "party", required=True, description="Foreign consignee",
              country_field="consignee_country"),
    FieldSpec("consignee_country", "country", required=True,
              description="Consignee's country, ISO 3166 alpha-2"),
    FieldSpec("end_user", "party", description="Declared end user (may be empty)",
              country_field="end_user_country"),
    FieldSpec("end_user_country", "country", description="End user's country (may be empty)"),
    FieldSpec("destination_country", "country", required=True,
              description="Country of destination, ISO 3166 alpha-2", aliases=("destination",)),
    FieldSpec("hs_code", "code", required=True, description="Customs code, 8 or 10 digits",
              aliases=("code",)),
    FieldSpec("description", "text", required=True, description="Goods description as declared"),
    FieldSpec("quantity_kg", "number", "mass", required=True, description="Net quantity in kg",
              aliases=("quantity",)),
    FieldSpec("value_usd", "number", "money", required=True, description="Declared value, USD",
              aliases=("value",)),
    FieldSpec("purity_pct", "number", "percent", description="Declared purity in % (may be empty)",
              aliases=("purity",)),
    FieldSpec("licence_no", "text", description="Export licence number (may be empty)",
              aliases=("licence",)),
    FieldSpec("end_use", "text",
              description="Declared end use, e.g. civil or military (optional column)"),
    FieldSpec("re_content_pct", "number", "percent",
              description="China-origin rare-earth content of a foreign-made item, % of its "
                          "value (optional column; MOFCOM-2025-61)",
              aliases=("rare_earth_content",)),
    FieldSpec("export_country", "country",
              description="Country the goods are exported from, ISO 3166 alpha-2 (optional "
                          "column; for rulebooks of other jurisdictions)"),
    # Item parameters (the customs declaration elements), stated in the optional `parameters`
    # column as `name=value unit; …` and stored in this unit: thresholds of items whose
    # control depends on them are judged on the stated value, `undetermined` without one.
    FieldSpec("energy_density", "number", "specific energy", parameter_unit="Wh/kg",
              description="Stated energy density of battery cells, Wh/kg (parameters column)"),
    FieldSpec("particle_size", "number", "length", parameter_unit="µm",
              description="Stated particle size of powders and crystals, µm (parameters "
                          "column)"),
    FieldSpec("flexural_strength", "number", "pressure", parameter_unit="MPa",
              description="Stated flexural strength, MPa (parameters column)"),
    FieldSpec("density", "number", "density", parameter_unit="g/cm3",
              description="Stated density, g/cm3 (parameters column)"),
    FieldSpec("graphite_type", "text", parameter_values="natural|artificial",
              description="Stated kind of graphite, natural or artificial, for tariff lines "
                          "that hold both (parameters column)"),
    FieldSpec("dual_use_code", "text", parameter_values=r"\d[A-E]\d{3}(\.[a-z0-9]+)*|none",
              description="Dual-use control code stated in the declaration's remarks, or "
                          "'none' for goods stated not to be controlled (parameters column; "
                          "required by MOFCOM-2025-58 for goods close to a controlled item)"),
    FieldSpec("exporter_on_licence", "text",
              description="Derived: how the licence the declaration names names its exporter: "
                          "'holder', 'agent' (named among the licence's agents) or 'not named'; "
                          "missing without a licence or with an unknown one"),
    FieldSpec("unit_value", "number", "money per mass",
              description="Derived: value_usd / quantity_kg (USD per kg)"),
    FieldSpec("code_value_low", "number", "money per mass",
              description="Derived: low end of the typical unit value (USD per kg) of the "
                          "declared customs code: the rulebook's `value range` for the longest "
                          "matching code, else the 5th percentile of the code's own declarations "
                          "when there are at least 30; missing otherwise"),
    FieldSpec("code_value_high", "number", "money per mass",
              description="Derived: high end of that range (95th percentile of the history)"),
)


@cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes from pycountry."""
    return frozenset(c.alpha_2 for c in pycountry.countries)


@cache
def hs_subheadings() -> frozenset[str]:
    """Six-digit HS 2022 subheadings, from the nomenclature shipped in kb/data/hs2022 (without
    UN Comtrade's 999999, "commodities not specified according to kind", which is not an HS
    subheading: a customs code 9999999999 gets W101)."""
    path = resources.files("kb").joinpath("data/hs2022/harmonized-system.csv")
    with path.open(encoding="utf-8-sig") as f:
        return frozenset(
            row["hscode"] for row in csv.DictReader(f)
            if row["level"] == "6" and row["hscode"] != "999999"
        )


@cache
def declaration_schema() -> Schema:
    """The schema the checker uses for rulebooks that run on this knowledge base."""
    return Schema(
        fields=DECLARATION_FIELDS,
        countries=country_codes(),
        hs_subheadings=hs_subheadings(),
    )
