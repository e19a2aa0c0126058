"""The rulebooks' party lists as FollowTheMoney entities, the sanctions ecosystem's own model
(OpenSanctions, yente, nomenklatura).

`excon export --format ftm` writes, as JSON lines, each made and validated with the
`followthemoney` library (the `ftm` extra):

- every listed party as a `Company` (a name ending in a legal form) or an `Organization`,
  with its legal name, aliases, country, address, phone, the rulebook's `unverified` note
  and the topic `export.control`;
- each owner a rulebook gives a party as an `Ownership` (owner, asset, percentage);
- each listing, for each period it is in force (suspensions and amendments applied,
  `dsl.periods.listing_periods`), as a `Sanction`: the party, the list as program (its id
  and title), the issuing authority, the act and entry as provisions with the measures,
  start and end dates, the act's address and the rulebook's jurisdiction.

Ids are stable: `excon-<party>` for a party, and a digest of what a sanction or an ownership
joins for those, so that a newer export replaces an older one's entities in a store.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from dsl.names import LEGAL_FORMS, ZH_LEGAL_FORMS
from dsl.periods import listing_periods
from dsl.rulebook import CheckedRulebook
from kb.inputs.ftm import ftm_model as library_model

ENTITY_ID = re.compile(r"^[0-9a-zA-Z]([0-9a-zA-Z.\-]*[0-9a-zA-Z])?$")
_FORM = re.compile(r"(?:\b(?:" + "|".join(re.escape(f) for f in LEGAL_FORMS) + r")\.?|"
                   + "|".join(ZH_LEGAL_FORMS) + r")\s*$", re.IGNORECASE)


class FtmError(Exception):
    """The followthemoney library is missing, or refused an entity."""


def ftm_model() -> Any:
    try:
        return library_model()
    except ImportError:  # pragma: no cover - the extra is in the test environment
        raise FtmError("the followthemoney library is not installed: "
                       "pip install 'excon[ftm]'") from None


def _id(*parts: str) -> str:
    text = "-".join(parts)
    if ENTITY_ID.match(f"excon-{text}") and len(text) < 200:
        return f"excon-{text}"
    return "excon-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


def party_entities(conn: sqlite3.Connection, rb: CheckedRulebook) -> Iterator[dict[str, Any]]:
    """Every listed party, ownership and listing period of a knowledge base's (or a
    screener's) tables, as FtM entities (dicts), validated by the library's model."""
    model = ftm_model()
    conn.row_factory = sqlite3.Row
    try:
        parties = conn.execute("SELECT * FROM parties ORDER BY name").fetchall()
        aliases: dict[str, list[str]] = {}
        for party, alias in conn.execute(
                "SELECT party, alias FROM party_aliases ORDER BY party, alias"):
            aliases.setdefault(party, []).append(alias)
        lists = {r["name"]: r for r in conn.execute("SELECT * FROM party_lists")}
        acts = {r["id"]: r for r in conn.execute("SELECT * FROM instruments")}
        jurisdiction = {r["name"]: r["jurisdiction"]
                        for r in conn.execute("SELECT name, jurisdiction FROM rulebooks")}
    finally:
        conn.row_factory = None

    def made(schema: str, entity_id: str, values: dict[str, Any]) -> dict[str, Any]:
        proxy = model.make_entity(schema)
        proxy.id = entity_id
        for prop, value in values.items():
            for v in value if isinstance(value, list | tuple) else [value]:
                if v not in (None, ""):
                    try:
                        proxy.add(prop, v, quiet=False)
                    except Exception as e:  # the library's InvalidData
                        raise FtmError(f"{schema} {entity_id}: {prop} {v!r}: {e}") from None
        return dict(proxy.to_dict())

    owned_by = {}
    for p in parties:
        legal = p["legal_name"] or p["name"]
        schema = "Company" if _FORM.search(legal) else "Organization"
        yield made(schema, _id(p["name"]), {
            "name": legal, "alias": aliases.get(p["name"], []),
            "country": (p["country"] or "").lower(), "address": p["address"],
            "phone": p["phone"], "notes": p["unverified"], "topics": "export.control"})
        if p["owner"]:
            owned_by[p["name"]] = (p["owner"], p["owner_share_pct"])
    for asset, (owner, share) in sorted(owned_by.items()):
        yield made("Ownership", _id("ownership", owner, asset), {
            "owner": _id(owner), "asset": _id(asset),
            "percentage": None if share is None else f"{share:g}"})
    rulebook_of = {name: rb.rulebook_of(decl.span.file) for name, decl in rb.parties.items()}
    for lp in listing_periods(rb):
        listing = lists.get(lp.list)
        act = acts.get(lp.instrument)
        country = jurisdiction.get(rulebook_of.get(lp.party) or "")
        for n, iv in enumerate(lp.periods.intervals, 1):
            start = iv.start.isoformat() if iv.start else None
            end = iv.end.isoformat() if iv.end else None
            yield made("Sanction", _id("sanction", lp.party, lp.list, lp.instrument, str(n)), {
                "entity": _id(lp.party), "programId": lp.list,
                "program": listing["title"] if listing is not None else lp.list,
                "authority": (listing["issuer"] if listing is not None else None)
                or (act["issuer"] if act is not None else None),
                "provisions": " ".join(filter(None, [lp.instrument, lp.provision])),
                "reason": "; ".join(lp.measures) or None,
                "startDate": start, "endDate": end,
                "sourceUrl": act["url"] if act is not None else None,
                "country": (country or "").lower() if country and len(country) == 2 else None})


def write_party_entities(conn: sqlite3.Connection, rb: CheckedRulebook, out: Any) -> int:
    """The entities as JSON lines (FtM's own format); how many."""
    n = 0
    for entity in party_entities(conn, rb):
        out.write(json.dumps(entity, ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n
