"""`excon demo-data`: realistic, reproducible, valid input files with planted cases."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from kb.cli import cli
from kb.inputs.demo import CONTROLLED
from kb.inputs.load import load_csv
from kb.store.tables import MIGRATIONS
from tests.conftest import RULEBOOKS


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def make(tmp_path: Path, name: str, seed: int = 3) -> Path:
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["demo-data", "--declarations", "3000", "--seed",
                                      str(seed), "--out", str(out), "--rulebooks",
                                      str(RULEBOOKS)])
    assert result.exit_code == 0, result.output
    return out


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a, b, c = make(tmp_path, "a"), make(tmp_path, "b"), make(tmp_path, "c", seed=4)
    for name in ("declarations.csv", "licences.csv", "parties.csv", "truth.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "declarations.csv").read_bytes() != (c / "declarations.csv").read_bytes()


def test_every_generated_row_passes_validation(tmp_path: Path) -> None:
    out = make(tmp_path, "demo")
    db = Database(tmp_path / "kb.db")
    MIGRATIONS.apply(db)
    for table, name in (("declarations", "declarations.csv"), ("licences", "licences.csv"),
                        ("trade_parties", "parties.csv")):
        report = load_csv(db, table, out / name)
        assert report.rejected_rows == 0, report.problems[:3]
        assert report.loaded > 0


def test_truth_file_lists_every_kind_of_planted_case(tmp_path: Path) -> None:
    out = make(tmp_path, "demo")
    truth = rows(out / "truth.csv")
    kinds = Counter(r["kind"] for r in truth)
    assert set(kinds) == {"unlicensed", "banned_destination", "military_end_use",
                          "listed_party", "relabelled_name", "relabelled_value",
                          "transshipment", "surge", "new_consignee", "hub_routing",
                          "no_end_user", "split_minor", "split_bulk", "related_parties",
                          "listed_subsidiary", "licence_borrowing", "new_exporter"}
    decl = {r["id"]: r for r in rows(out / "declarations.csv")}
    licences = {r["licence_no"]: r for r in rows(out / "licences.csv")}
    first_export: dict[str, str] = {}
    for d in sorted(decl.values(), key=lambda d: (d["declared_on"], d["id"])):
        first_export.setdefault(d["exporter"], d["id"])
    for t in truth:
        d = decl[t["declaration_id"]]
        if t["kind"] == "banned_destination":
            assert d["destination_country"] == "US" and "2024-12-03" <= d["declared_on"] <= \
                "2025-11-08"
        if t["kind"] in ("relabelled_name", "relabelled_value"):
            # declared as cover goods at the price of the mineral it is
            group = t["detail"].split(" declared as ")[0]
            unit_value = float(d["value_usd"]) / float(d["quantity_kg"])
            assert CONTROLLED[group][0] <= unit_value <= CONTROLLED[group][1]
        if t["kind"] == "licence_borrowing":
            lic = licences[d["licence_no"]]
            assert lic["holder"] != d["exporter"] and d["exporter"] in lic["agents"].split(";")
        if t["kind"] == "new_exporter":
            assert first_export[d["exporter"]] == d["id"]
        if t["kind"] == "no_end_user":
            assert d["end_user"] == "" and d["destination_country"] != "HK"
        if t["kind"] == "transshipment":
            assert d["end_user_country"] == "US" != d["destination_country"]
        if t["kind"] == "unlicensed":
            assert d["licence_no"] == ""
        if t["kind"] == "military_end_use":
            assert d["destination_country"] == "US"
            assert d["end_use"] in ("military", "defense systems", "military radar")


def test_licences_cover_most_controlled_shipments(tmp_path: Path) -> None:
    out = make(tmp_path, "demo")
    planted = {r["declaration_id"] for r in rows(out / "truth.csv")}
    controlled_codes = {c for lic in rows(out / "licences.csv") for c in lic["items"].split(";")}
    shipments = [d for d in rows(out / "declarations.csv")
                 if d["hs_code"] in controlled_codes and d["id"] not in planted
                 and d["declared_on"] >= "2025-04-04"]
    licensed = [d for d in shipments if d["licence_no"]]
    assert len(shipments) > 100
    assert len(licensed) / len(shipments) > 0.85


def test_cases_per_sets_how_many_declarations_are_planted(tmp_path: Path) -> None:
    """`--cases-per 2000`: one case of each kind per 2,000 declarations, under 1 % of them
    planted (a realistic prevalence for measuring the indicators), every kind still there;
    the default, one per 200, plants about 8 %."""
    shares, kinds = {}, {}
    for per, n in (("200", 20_000), ("2000", 100_000)):  # (the surges, a few a route and
        out = tmp_path / per                              # year, are not scaled)
        result = CliRunner().invoke(cli, ["demo-data", "--declarations", str(n),
                                          "--cases-per", per, "--out", str(out),
                                          "--rulebooks", str(RULEBOOKS)])
        assert result.exit_code == 0, result.output
        with (out / "truth.csv").open(encoding="utf-8") as f:
            truth = list(csv.DictReader(f))
        shares[per] = len({t["declaration_id"] for t in truth}) / n
        kinds[per] = {t["kind"] for t in truth}
    assert shares["2000"] < 0.01 < 0.05 < shares["200"]
    assert kinds["2000"] == kinds["200"]
    bad = CliRunner().invoke(cli, ["demo-data", "--cases-per", "0", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--cases-per" in bad.output


def test_a_surge_larger_than_a_ship_goes_in_more_consignments(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A surge is sized against its route's flow, which grows with the data: at 10,000,000
    declarations three consignments came to over 500,000 t each, which validation rejects.
    A surge larger than the largest consignment (here made small) goes in more of them,
    none larger, its cases as many as before."""
    import kb.inputs.demo as demo

    def surges(data: demo.DemoData) -> tuple[int, list[float]]:
        ids = Counter(t["declaration_id"] for t in data.truth if t["kind"] == "surge")
        cases = {t["case_id"] for t in data.truth if t["kind"] == "surge"}
        return len(cases), [float(str(r["quantity_kg"])) for r in data.declarations
                            if r["id"] in ids]

    cases, kg = surges(demo.generate(3000, seed=3, rulebooks=[RULEBOOKS]))
    cap = sorted(kg)[len(kg) // 2]  # half the surges' consignments are larger
    monkeypatch.setattr(demo, "LARGEST_CONSIGNMENT_KG", cap)
    capped_cases, capped = surges(demo.generate(3000, seed=3, rulebooks=[RULEBOOKS]))
    assert capped_cases == cases
    assert len(capped) > len(kg) and max(capped) <= cap + 0.05
