"""Rulebooks loaded together judge as they judge alone: a declared code is matched within each
rulebook, an example speaks for its own rulebook, and one rulebook's items, groups and facts
never change another's findings."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from kb.screen import Finding, Screener
from tests.conftest import RULEBOOKS
from tests.test_differential import broad_batch, repository_codes

FOLDERS = sorted(p for p in RULEBOOKS.iterdir() if (p / "rulebook.excon").exists()
                 or any(p.glob("*.excon")))


def key(f: Finding) -> tuple[Any, ...]:
    return (f.declaration_id, f.rule, f.outcome, f.severity, f.instrument, f.provision,
            f.explanation, f.basis, f.caveat)


@pytest.mark.slow
def test_each_rulebook_alone_gives_its_share_of_the_findings_of_all() -> None:
    """Generated declarations over every item of every rulebook, exported from China, the
    United States, member states of the EU and Japan (and unstated), with every declared fact:
    the findings of each rulebook's rules with every rulebook loaded equal its findings alone,
    explanations included."""
    together = Screener([RULEBOOKS])
    codes = repository_codes(together.rulebook)
    decls, licences, parties = broad_batch(random.Random(7), codes, 1200,
                                           together.rulebook.declared_fields())
    licences = [lic for lic in licences if lic["valid_to"] >= lic["valid_from"]]
    origins = random.Random(8)
    for d in decls:  # where the goods leave from: whose law judges them
        d["export_country"] = origins.choice([None, None, "CN", "US", "DE", "FR", "JP"])
    rulebook_of = together.rulebook.rule_rulebooks()
    shares: dict[str | None, list[tuple[Any, ...]]] = defaultdict(list)
    for f in together.screen(decls, licences, parties):
        shares[rulebook_of[f.rule]].append(key(f))
    assert len(FOLDERS) >= 3
    for folder in FOLDERS:
        alone = Screener([folder])
        [name] = alone.rulebook.rulebooks
        found = [key(f) for f in alone.screen(decls, licences, parties)]
        assert found, f"{name} finds nothing in the batch: the test would prove nothing"
        assert sorted(found) == sorted(shares[name]), name


def test_a_code_one_rulebook_lists_exactly_does_not_hide_another_rulebooks_heading(
        tmp_path: Path) -> None:
    """China lists gallium nitride under 2850001901; the EU's 3C005 entry names the heading
    2850.00. A boule of gallium nitride exported from France is the EU's to judge, whatever
    China's list says."""
    row = {"id": "b1", "declared_on": "2025-06-01", "exporter": "Saint-Gobain Cristaux",
           "consignee": "Seoul Semi", "consignee_country": "KR", "destination_country": "KR",
           "hs_code": "2850001901", "description": "GaN boule", "quantity_kg": 3,
           "value_usd": 90000, "export_country": "FR", "resistivity": 20000}
    alone = Screener([RULEBOOKS / "eu-dual-use-ga-ge"]).screen([row])
    together = Screener([RULEBOOKS]).screen([row])
    eu = [f for f in together if f.rule == "eu-annex-i-authorisation"]
    assert [(f.outcome, f.instrument, f.provision) for f in eu] == [
        ("unlicensed", "EU-2021-821", "entry 3C005")]
    assert [key(f) for f in eu] == [key(f) for f in alone]


def test_no_rule_fires_outside_what_its_rulebook_judges() -> None:
    """The same generated declarations, exported from China, the United States, EU member
    states, Japan or from no stated country: China's rules judge exports from China and those
    that state no country (its rules on foreign-made items re-exports too), the EU's exports
    from a member state, the EAR's exports from the United States and re-exports."""
    s = Screener([RULEBOOKS])
    rng = random.Random(11)
    decls, licences, parties = broad_batch(random.Random(3), repository_codes(s.rulebook), 800,
                                           s.rulebook.declared_fields())
    licences = [lic for lic in licences if lic["valid_to"] >= lic["valid_from"]]
    for d in decls:
        d["export_country"] = rng.choice([None, "CN", "US", "DE", "FR", "JP"])
    country = {d["id"]: d["export_country"] for d in decls}
    eu = {"DE", "FR"}
    allowed = {
        "cn-strategic-minerals": {None, "CN"},
        "eu-dual-use-ga-ge": eu,
        "us-ear-3c001": {"US", "CN", "DE", "FR", "JP"},
    }
    extraterritorial = {"rare-earth-content-licence", "rare-earth-content-denial"}
    seen: dict[str, set[str | None]] = defaultdict(set)
    for f in s.screen(decls, licences, parties):
        book = s.rulebook.rulebook_of(s.rulebook.rules[f.rule].span.file)
        where = country[f.declaration_id]
        ok = allowed[book or ""] | ({"US", "DE", "FR", "JP"} if f.rule in extraterritorial
                                    else set())
        assert where in ok, (f.rule, f.declaration_id, where)
        if f.rule not in extraterritorial:
            seen[book or ""].add(where)
    assert seen["cn-strategic-minerals"] == {None, "CN"}
    assert seen["eu-dual-use-ga-ge"] <= eu and seen["eu-dual-use-ga-ge"]


def test_re_exports_need_a_jurisdiction(tmp_path: Path) -> None:
    import dsl
    from kb.store.schema import declaration_schema

    (tmp_path / "rules.excon").write_text(
        'rulebook x "X"\n  judges re-exports\n', encoding="utf-8")
    found = {(d.code, d.message) for d in dsl.load([tmp_path], declaration_schema()).diagnostics
             if d.severity == "error"}
    assert found == {("E205", "'re-exports' needs the rulebook's jurisdiction: re-exports are "
                              "exports from outside it")}


def test_each_finding_names_its_rulebook_and_jurisdiction(tmp_path: Path) -> None:
    """In `excon screen`'s output, and in the DuckDB bundle other tools read."""
    import csv

    from click.testing import CliRunner

    from kb.cli import cli

    decls = tmp_path / "declarations.csv"
    decls.write_text(
        "id,declared_on,exporter,consignee,consignee_country,end_user,end_user_country,"
        "destination_country,hs_code,description,quantity_kg,value_usd,purity_pct,licence_no,"
        "export_country,p_type_layer\n"
        "eu,2025-06-01,Aixtron,Acme,CN,,,CN,3818000010,wafers,2,9000,,,DE,no\n"
        "cn,2025-06-01,Yunnan Germanium Co.,Acme,DE,,,DE,8112921010,germanium,10,9000,,,,\n",
        encoding="utf-8")
    out = tmp_path / "findings.csv"
    result = CliRunner().invoke(cli, ["screen", str(decls), "--rulebooks", str(RULEBOOKS),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as f:
        named = {(r["declaration_id"], r["rule"], r["rulebook"], r["jurisdiction"])
                 for r in csv.DictReader(f)}
    assert ("eu", "eu-annex-i-authorisation", "eu-dual-use-ga-ge", "eu-member-states") in named
    assert ("cn", "ga-ge-licence", "cn-strategic-minerals", "CN") in named
    # and the EAR cannot tell without the wafer's U.S. content (undetermined, named as such)
    assert ("eu", "ear-3c001-ns1", "us-ear-3c001", "US") in named
