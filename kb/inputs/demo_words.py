"""The words of the demo's trade (`kb.inputs.demo`): everyday goods under their real customs
codes, the goods that relabelled minerals are declared as, the parts of companies' names and
their legal forms, a listed party's spellings and names that resemble it, and goods whose
description names a controlled mineral under their own, uncontrolled codes."""

from __future__ import annotations

# (customs code, description, USD/kg low, high): everyday exports, real HS codes
ORDINARY = (
    ("7201100000", "pig iron, non-alloy", 0.35, 0.55),
    ("7208510000", "hot-rolled steel plate", 0.6, 0.9),
    ("7901120000", "unwrought zinc blocks", 2.4, 3.4),
    ("7403111100", "refined copper cathodes", 8.0, 10.5),
    ("7601100000", "unwrought aluminium ingots", 2.0, 2.9),
    ("6907210000", "ceramic floor tiles", 0.3, 0.8),
    ("3213100000", "artists' colours in sets (art supplies)", 3.0, 9.0),
    ("8539520000", "LED lamps", 6.0, 15.0),
    ("9403600000", "wooden furniture", 2.0, 6.0),
    ("6109100000", "cotton T-shirts", 8.0, 20.0),
    ("7202210000", "ferro-silicon", 1.0, 1.8),
)
RELABEL_AS = (("7201100000", "iron ingots"), ("7901120000", "zinc blocks"),
              ("3213100000", "art supplies"), ("7208510000", "iron plates"))
CITIES = ("Changsha", "Ganzhou", "Baotou", "Kunming", "Shenzhen", "Hengyang", "Xiamen",
          "Zhuzhou", "Jinan", "Nanning", "Qingdao", "Shanghai")
TRADES = ("Nonferrous Metals", "Rare Metals", "Minerals", "New Materials", "Metallurgy",
          "Import & Export", "Advanced Materials", "Mining")
FOREIGN_STEMS = ("Apex", "Northgate", "Bluewater", "Meridian", "Keystone", "Silverline",
                 "Orion", "Crescent", "Summit", "Harbor", "Pioneer", "Atlas", "Vertex", "Lumen")
FOREIGN_TRADES = ("Metals", "Materials", "Trading", "Electronics", "Semiconductors", "Alloys",
                  "Industries", "Resources")
LEGAL_FORMS = {"US": "Inc.", "DE": "GmbH", "NL": "B.V.", "BE": "NV", "JP": "K.K.",
               "KR": "Co., Ltd.", "TW": "Co., Ltd.", "IN": "Pvt. Ltd.", "VN": "JSC",
               "GB": "Ltd", "FR": "SAS", "HK": "Limited", "TH": "Co., Ltd.", "MX": "S.A. de C.V.",
               "IT": "S.p.A.", "CA": "Inc.", "MY": "Sdn. Bhd.", "AE": "FZE"}
LISTED_SPELLINGS = ("LOCKHEED MARTIN CORP", "Lockheed Martin Corporation",
                    "Lockheed Martin Corp.", "lockheed martin corp")
# names like a listed party's that are another company's
LISTED_LOOKALIKES = ("Lockheed Materials Corp", "Martin Lockwood Inc.", "Lockhart Martin LLC",
                     "Lock Heed Marine Supply Co.")
# goods under their own, uncontrolled codes whose description names a controlled mineral
NAMED_GOODS = (("8539520000", "LED lamps with gallium nitride chips"),
               ("8541410000", "gallium arsenide light-emitting diodes"),
               ("7228300000", "molybdenum alloy steel bars"),
               ("8311300000", "bismuth-tin solder wire"),
               ("7020009000", "indium tin oxide coated glass"),
               ("8505111000", "rare earth permanent magnets"),
               ("8207190000", "tungsten carbide drill bits"),
               ("9609100000", "graphite pencils HB"))

