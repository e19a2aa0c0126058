"""The lists as FollowTheMoney entities: `excon export --format ftm` writes entities that
FollowTheMoney's own model reads, with every listed party, its owners and each period of each
listing; and a parties file of FtM entities screens as its CSV twin does, problems reported on
their JSON lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dsl.periods import listing_periods
from kb.cli import cli
from kb.inputs import demo
from kb.inputs.ftm import ftm_model
from kb.screen import Screener
from tests.conftest import RULEBOOKS

model = ftm_model()  # the library's, with the csv module's limit as excon reads it


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    folder = tmp_path_factory.mktemp("ftm")
    result = CliRunner().invoke(cli, ["export", "--format", "ftm", "--out", str(folder),
                                      "--rulebooks", str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    lines = (folder / "lists.ftm.jsonl").read_text(encoding="utf-8").splitlines()
    return [model.get_proxy(json.loads(line), cleaned=False) for line in lines]


def test_the_export_holds_every_party_owner_and_listing_period(exported: list[Any]) -> None:
    screener = Screener([RULEBOOKS])
    by_id = {e.id: e for e in exported}
    parties = dict(screener.db.conn.execute(
        "SELECT name, legal_name FROM parties"))
    legal = {e.id: e for e in exported if e.schema.is_a("LegalEntity")}
    assert {e.first("name") for e in legal.values()} == set(parties.values())
    lockheed = legal["excon-lockheed-martin"]
    assert lockheed.schema.name == "Company" and lockheed.first("country") == "us"
    assert "export.control" in lockheed.get("topics")
    aliases = {a for (a,) in screener.db.conn.execute(
        "SELECT alias FROM party_aliases WHERE party = 'lockheed-martin'")}
    assert aliases and aliases <= set(lockheed.get("alias"))
    # each period a listing is in force (suspensions applied) is a Sanction of its party
    sanctions = [e for e in exported if e.schema.name == "Sanction"]
    periods = [(lp, iv) for lp in listing_periods(screener.rulebook)
               for iv in lp.periods.intervals]
    assert len(sanctions) == len(periods)
    for lp, iv in periods[:50]:
        found = [s for s in sanctions if s.first("entity") == f"excon-{lp.party}"
                 and s.first("programId") == lp.list
                 and s.first("startDate") == (iv.start.isoformat() if iv.start else None)]
        assert found, (lp, iv)
        assert found[0].first("endDate") == (iv.end.isoformat() if iv.end else None)
        assert lp.instrument in found[0].first("provisions")
    # every reference points at an entity of the file
    for e in exported:
        for prop in ("entity", "owner", "asset"):
            for ref in e.get(prop, quiet=True):
                assert ref in by_id, (e.id, prop, ref)
    owned = [e for e in exported if e.schema.name == "Ownership"]
    assert len(owned) == screener.db.conn.execute(
        "SELECT COUNT(*) FROM parties WHERE owner IS NOT NULL").fetchone()[0]


def _ftm_twin(parties_csv: Path, out: Path) -> None:
    """The parties file as a compliance team's FtM register holds it: a Company per row, an
    entity for each owner the file names, an Ownership per owner with its share, and a
    sanction entity, which is not a party."""
    with parties_csv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    entities: dict[str, Any] = {}

    def company(name: str) -> Any:
        if name not in entities:
            e = model.make_entity("Company")
            e.make_id("party", name)
            e.add("name", name)
            entities[name] = e
        return entities[name]

    for r in rows:
        e = company(r["name"])
        e.add("country", r["country"].lower())
        e.add("address", r["address"])
        e.add("phone", r["phone"], quiet=True, cleaned=True)
    links = []
    for r in rows:
        for part in filter(None, (p.strip() for p in r["parent"].split(";"))):
            name, _, _share = part.rpartition(" ") if part.endswith("%") else (part, "", "")
            name = name.rsplit(" ", 1)[0] if part.endswith(" %") else name
            o = model.make_entity("Ownership")
            o.make_id("own", part, r["name"])
            o.add("owner", company(name).id)
            o.add("asset", entities[r["name"]].id)
            if part.endswith("%"):
                o.add("percentage", part.rsplit(" ", 2)[-2])
            links.append(o)
    sanction = model.make_entity("Sanction")
    sanction.make_id("s", "1")
    sanction.add("entity", next(iter(entities.values())).id)
    with out.open("w", encoding="utf-8") as f:
        for e in [*entities.values(), *links, sanction]:
            f.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")


def test_an_ftm_parties_file_screens_as_its_csv_twin(tmp_path: Path) -> None:
    inputs = demo.write(demo.generate(3000, seed=5, rulebooks=[RULEBOOKS]), tmp_path / "in")
    twin = tmp_path / "parties.ftm.jsonl"
    _ftm_twin(inputs["parties"], twin)
    screener = Screener([RULEBOOKS])
    from_csv, _ = screener.screen_files(inputs["declarations"], inputs["licences"],
                                        inputs["parties"])
    from_ftm, loads = screener.screen_files(inputs["declarations"], inputs["licences"], twin)
    parties = next(r for r in loads if r.table == "trade_parties")
    assert parties.rejected_rows == 0 and parties.skipped_entities == 1
    assert "not parties" in parties.warnings()[0]
    related = {"exporter-consignee-linked", "consignee-owned-by-listed"}
    assert related & {f.rule for f in from_csv}  # the ownership and link rules are there
    assert [f.as_dict() for f in from_ftm] == [f.as_dict() for f in from_csv]


def test_ftm_lines_that_are_not_parties_are_rejected_on_their_line(tmp_path: Path) -> None:
    good = model.make_entity("Company")
    good.make_id("good")
    good.add("name", "Good Trading Ltd")
    good.add("country", "hk")
    nameless = model.make_entity("Organization")
    nameless.make_id("nameless")
    nameless.add("country", "hk")
    orphan = model.make_entity("Ownership")
    orphan.make_id("orphan")
    orphan.add("owner", "no-such-entity")
    orphan.add("asset", good.id)
    path = tmp_path / "parties.jsonl"
    path.write_text("\n".join([json.dumps(good.to_dict()), "{not json",
                               json.dumps({"id": "x", "schema": "NoSuchSchema"}),
                               json.dumps(nameless.to_dict()), json.dumps(orphan.to_dict()),
                               json.dumps({**good.to_dict(), "id": "bad-country",
                                           "properties": {"name": ["Bad Country Ltd"],
                                                          "country": ["zz"]}})]) + "\n",
                    encoding="utf-8")
    screener = Screener([RULEBOOKS], parties=None)
    with screener.loaded(None, parties=path) as loads:
        report = loads[0]
        names = [n for (n,) in screener.db.conn.execute("SELECT name FROM trade_parties")]
        rejected = screener.db.conn.execute(
            "SELECT line, \"column\", expected FROM rejected_rows ORDER BY line").fetchall()
    assert names == ["Good Trading Ltd"]
    assert report.loaded == 1 and report.rejected_rows == 5
    assert [r[0] for r in rejected] == [2, 3, 4, 5, 6]
    assert "JSON object" in rejected[0][2] and "FollowTheMoney" in rejected[1][2]
    assert rejected[2][1] == "name" and rejected[3][1] == "owner"
    assert rejected[4][1] == "country"  # validated as the CSV column is
    assert [p.line for p in report.problems] == [2, 3, 4, 5, 6]
