"""`excon build`: the whole knowledge base, atomically swapped in, deterministic, ready to serve."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import kb.build
from kb.build import BuildError, build
from kb.cli import cli
from kb.screen import Screener
from tests.conftest import DATA, RULEBOOKS

INPUTS = DATA / "inputs"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for the module: no test may change it (the failed builds prove they
    did not)."""
    db = tmp_path_factory.mktemp("built") / "kb.db"
    build(db, [RULEBOOKS], INPUTS / "declarations.csv", INPUTS / "licences.csv",
          INPUTS / "parties.csv")
    return db


def test_the_rulebook_is_in_the_knowledge_base_with_its_citations(built: Path) -> None:
    assert query(built, "select outcome, instrument_id, provision, valid_from from rules "
                 "where name = 'us-critical-minerals-ban'") == [
        ("presumption of denial", "MOFCOM-2024-46", "clause 2", "2024-12-03")]
    assert query(built, "select action, target_name, target_provision, instrument_id, "
                 "valid_from, valid_until from amendments where instrument_id = 'MOFCOM-2025-72'"
                 ) == [("suspend", "MOFCOM-2024-46", "clause 2", "MOFCOM-2025-72", "2025-11-09",
                        "2026-11-27")]
    assert query(built, "select item from item_customs_codes where code = '8112929010'") == [
        ("gallium-metal",)]
    assert ("antimony", "antimony-oxides") in query(
        built, "select group_name, item from item_group_members")
    assert query(built, "select count(*) from examples")[0][0] >= 3
    notes = query(built, "select kind, entry from unverified_facts")
    assert ("item", "germanium-tetrachloride") in notes


def test_reference_data_and_full_text_search(built: Path) -> None:
    assert query(built, "select description from hs_codes where hscode = '811292'")[0][0]
    assert query(built, "select name from countries where alpha2 = 'TH'") == [("Thailand",)]
    found = query(built, "select items.name from items join items_fts on items.rowid = "
                 "items_fts.rowid where items_fts match 'gallium' order by 1")
    assert ("gallium-metal",) in found
    assert query(built, "select parties.name from parties join party_aliases_fts f on 1=1 "
                 "join party_aliases a on a.rowid = f.rowid and a.party = parties.name "
                 "where party_aliases_fts match 'lockheed corporation'") == [("lockheed-martin",)]


def test_inputs_rejected_rows_and_the_audit_run(built: Path) -> None:
    assert query(built, "select count(*) from declarations") == [(3,)]
    assert query(built, "select count(*), count(distinct line) from rejected_rows "
                 "where file like '%declarations.csv'") == [(6, 3)]
    run = query(built, "select kind, rulebook_version, inputs, counts from runs")[0]
    assert run[0] == "build" and len(str(run[1])) == 16
    inputs = {i["table"]: i for i in json.loads(str(run[2]))}
    assert inputs["declarations"]["sha256"] == sha(INPUTS / "declarations.csv")
    assert json.loads(str(run[3]))["declarations_rejected"] == 3


def test_ready_to_serve_no_side_files_analyzed_and_migrated(built: Path) -> None:
    assert sorted(p.name for p in built.parent.iterdir()) == ["kb.db"]
    assert query(built, "pragma journal_mode") == [("delete",)]
    assert query(built, "select count(*) from sqlite_stat1")[0][0] > 0
    assert query(built, "select name from _sqlite_migrations order by name") == [
        ("m001_initial_schema",), ("m002_optional_declaration_facts",),
        ("m003_indicator_reference_data",), ("m004_screening_indexes",),
        ("m005_declared_parameters",), ("m006_text_parameters",), ("m007_lapses",),
        ("m008_licence_value_limits",), ("m009_declared_facts",),
        ("m010_item_code_rulebooks",), ("m011_rejected_rows_whole",)]
    assert query(built, "pragma integrity_check") == [("ok",)]


def test_a_database_from_before_the_optional_facts_is_migrated(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from kb.store.tables import MIGRATIONS

    db = Database(tmp_path / "old.db")
    MIGRATIONS.apply(db)
    # as a database made by m001 alone looked: no optional declaration facts
    db.execute("DROP INDEX idx_declarations_export_country")
    db.execute("ALTER TABLE declarations DROP COLUMN end_use")
    db.execute("ALTER TABLE declarations DROP COLUMN re_content_pct")
    db.execute("ALTER TABLE declarations DROP COLUMN export_country")
    db.execute("DELETE FROM _sqlite_migrations WHERE name IN "
               "('m002_optional_declaration_facts', 'm004_screening_indexes')")
    db.conn.commit()
    MIGRATIONS.apply(db)
    assert {"end_use", "re_content_pct", "export_country"} <= set(
        db.table("declarations").columns_dict)


def test_a_database_from_before_the_indicators_is_migrated(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from kb.store.tables import MIGRATIONS

    db = Database(tmp_path / "old.db")
    MIGRATIONS.apply(db)
    db.table("value_ranges").disable_fts()
    db.execute("DROP TABLE value_ranges")
    db.execute("ALTER TABLE country_groups DROP COLUMN source")
    db.execute("ALTER TABLE country_groups DROP COLUMN unverified")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_indicator_reference_data'")
    db.conn.commit()
    MIGRATIONS.apply(db)
    assert "high_usd_per_kg" in db.table("value_ranges").columns_dict
    assert {"source", "unverified"} <= set(db.table("country_groups").columns_dict)


def test_a_database_from_before_the_lapses_is_migrated(tmp_path: Path) -> None:
    """m007: the rulebooks' sources date and the lapses table come to an older database."""
    from sqlite_utils import Database

    from kb.store.tables import MIGRATIONS

    db = Database(tmp_path / "old.db")
    MIGRATIONS.apply(db)
    db.execute("DROP TABLE lapses")
    db.execute("ALTER TABLE rulebooks DROP COLUMN sources_checked")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_lapses'")
    db.conn.commit()
    MIGRATIONS.apply(db)
    assert {"resumes", "after_sources", "caveat"} <= set(db.table("lapses").columns_dict)
    assert "sources_checked" in db.table("rulebooks").columns_dict


def test_a_database_from_before_licence_value_limits_is_migrated(tmp_path: Path) -> None:
    """m008: licences gain their value limit; the licences already there keep theirs."""
    from sqlite_utils import Database

    from kb.store.tables import MIGRATIONS

    db = Database(tmp_path / "old.db")
    MIGRATIONS.apply(db)
    db.execute("ALTER TABLE licences DROP COLUMN value_usd")
    db.execute("INSERT INTO licences (licence_no, kind, holder, items, valid_from, valid_to) "
               "VALUES ('L-1', 'individual', 'A', '1C902', '2025-01-01', '2025-12-31')")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_licence_value_limits'")
    db.conn.commit()
    MIGRATIONS.apply(db)
    assert list(db.query("SELECT licence_no, value_usd FROM licences")) == [
        {"licence_no": "L-1", "value_usd": None}]


def test_a_database_from_before_the_screening_indexes_is_migrated(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from kb.store.tables import MIGRATIONS

    db = Database(tmp_path / "old.db")
    MIGRATIONS.apply(db)
    for name in ("hs_code_value", "destination_country", "end_user_country", "export_country"):
        db.execute(f"DROP INDEX idx_declarations_{name}")
    db.execute("CREATE INDEX idx_declarations_hs_code ON declarations (hs_code)")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm004_screening_indexes'")
    db.conn.commit()
    MIGRATIONS.apply(db)
    indexes = {i.name: i.columns for i in db.table("declarations").indexes}
    assert "idx_declarations_hs_code" not in indexes
    assert indexes["idx_declarations_hs_code_value"] == [
        "hs_code", "value_usd", "quantity_kg", "id"]
    assert indexes["idx_declarations_destination_country"] == ["destination_country"]


def test_country_and_unit_value_candidates_are_read_from_indexes(built: Path) -> None:
    """The indicators' candidate sets are index probes, not scans of every declaration."""
    plans = {}
    for view in ("check_hub_routing", "check_end_user_elsewhere",
                 "check_relabelled_unit_value", "check_ear_3c001_ns1"):
        plans[view] = " | ".join(r[-1] for r in query(built,
                                                       f"explain query plan select * from {view}"))
    # (by the destination's own index, or the one a window keeps by destination and date)
    assert re.search(r"INDEX (idx_declarations_|excon_window__)destination_country",
                     plans["check_hub_routing"])
    assert "idx_declarations_end_user_country" in plans["check_end_user_elsewhere"]
    assert "idx_declarations_hs_code_value" in plans["check_relabelled_unit_value"]
    # the EAR also judges exports from other countries (de minimis): its check starts from
    # the 3C001 matches no licence covers, a range of the item's declarations
    assert "SEARCH x USING PRIMARY KEY (item=?)" in plans["check_ear_3c001_ns1"]
    for view, plan in plans.items():
        assert "SCAN x" not in plan.split(" | "), (view, plan)


def test_name_and_country_candidates_read_no_row_and_find_each_by_rowid(built: Path) -> None:
    """A candidate set found through a name or country index selects rowids (the index holds
    them: a set of listed names reads no declaration), and each candidate is one probe by
    rowid, not one of the id index and then one by rowid."""
    # (a fact's own index, or the one a window keeps by that fact and the date: both hold it)
    for view, index in (("check_control_list_consignee", "consignee"),
                        ("check_unreliable_entity_party", "end_user"),
                        ("check_hub_routing", "destination_country")):
        plan = [r[-1] for r in query(built, f"explain query plan select * from {view}")]
        assert "SEARCH d USING INTEGER PRIMARY KEY (rowid=?)" in plan, (view, plan)
        assert not any("sqlite_autoindex_declarations" in p for p in plan), (view, plan)
        covering = re.search(rf"SEARCH x USING COVERING INDEX (idx_declarations_{index}|"
                             rf"excon_window__{index}(__\w+)?) ", " | ".join(plan)) is not None
        # the country set also tests the row's dates: the index a window keeps by destination
        # and date holds them (the destination's own index alone would read the row)
        assert covering, (view, plan)
    # other engines have no rowid: the checks printed for them keep the declaration id
    compiled = Screener([RULEBOOKS]).compiled
    rule = next(r for r in compiled.rules if r.name == "control-list-consignee")
    assert "row_key" in rule.sql("sqlite") and "rowid" not in rule.sql("duckdb")


def test_relations_probed_by_a_unique_key_are_stored_by_it(built: Path) -> None:
    """A derived relation with a unique key is clustered by it (WITHOUT ROWID): a check finds
    a row in one B-tree descent, not one in an index and another in the table; a relation
    whose rows may repeat its declaration (links to listed parties) keeps an index."""
    clustered = {name for (name,) in query(
        built, "select name from sqlite_master where type = 'table' "
               "and sql like '%WITHOUT ROWID'")}
    assert {"licence_cover", "licence_uses", "declaration_days", "declaration_minerals",
            "party_first_seen", "party_name_keys", "item_declarations"} <= clustered
    keyed = dict(query(built, "select name, unique_key from excon_windows"))
    assert keyed and all((key is not None) == (name in clustered)
                         for name, key in keyed.items()), keyed
    assert any(name.startswith("links_") and key is None for name, key in keyed.items())
    plan = " | ".join(r[-1] for r in query(
        built, "explain query plan select * from check_new_consignee_volume"))
    for alias in ("dd", "w1", "w2", "w3"):  # day, name key, first seen, the window
        assert f"SEARCH {alias} USING PRIMARY KEY" in plan, (alias, plan)


def test_item_candidates_are_ranges_of_the_matches_by_item(built: Path) -> None:
    """A check that needs some items starts from their matches: a range per item of
    `item_declarations`, which holds the declaration, instead of a row of
    `declaration_items` per match. `declaration_items` has no index with the item (SQLite would
    then probe a declaration's matches once per item of an `IN` list)."""
    plan = " | ".join(r[-1] for r in query(
        built, "explain query plan select * from check_ga_ge_licence"))
    assert "SEARCH x USING PRIMARY KEY (item=?)" in plan, plan
    assert "SEARCH xl USING PRIMARY KEY (declaration_id=?)" in plan, plan
    assert query(built, "select i.name from pragma_index_list('declaration_items') as l "
                        "join pragma_index_info(l.name) as i") == [("declaration_id",)]
    assert query(built, "select count(*) from item_declarations") == query(
        built, "select count(*) from declaration_items")


def test_same_inputs_give_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764000000")
    a, b = tmp_path / "a" / "kb.db", tmp_path / "b" / "kb.db"
    for db in (a, b):
        build(db, [RULEBOOKS], INPUTS / "declarations.csv", INPUTS / "licences.csv")
    assert sha(a) == sha(b)
    assert query(a, "select started_at from runs") == [("2025-11-24T16:00:00+00:00",)]


def test_a_bad_rulebook_leaves_the_previous_database_untouched(built: Path,
                                                               tmp_path: Path) -> None:
    before = sha(built)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "rules.excon").write_text("rule r\n  per NOWHERE\n  then prohibited\n",
                                     encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", "--db", str(built), str(bad)])
    assert result.exit_code == 1
    assert "error[E202]" in result.output and "nothing was built" in result.output
    assert sha(built) == before
    assert sorted(p.name for p in built.parent.iterdir()) == ["kb.db"]


def test_a_bad_input_file_leaves_the_previous_database_untouched(built: Path,
                                                                 tmp_path: Path) -> None:
    before = sha(built)
    bad = tmp_path / "declarations.csv"
    bad.write_text("id;declared_on\n", encoding="utf-8")
    with pytest.raises(BuildError, match="header lacks"):
        build(built, [RULEBOOKS], bad)
    assert sha(built) == before


@pytest.mark.parametrize(("step", "exc"), [
    ("load_reference", sqlite3.OperationalError("database or disk is full")),
    ("load_rulebook", KeyboardInterrupt()),
    ("install", sqlite3.OperationalError("database or disk is full")),
    ("load_csv", KeyboardInterrupt()),
    ("load_csv", sqlite3.OperationalError("database or disk is full")),
    ("refresh_inputs", MemoryError()),
    ("publish", KeyboardInterrupt()),
    ("_refuse_losses", sqlite3.OperationalError("disk I/O error")),
    ("fsync", OSError(28, "No space left on device")),
])
def test_a_build_failing_at_any_step_leaves_the_previous_database_untouched(
        built: Path, monkeypatch: pytest.MonkeyPatch, step: str, exc: BaseException) -> None:
    before = sha(built)

    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(kb.build, step, fail)
    with pytest.raises((type(exc), BuildError)):
        build(built, [RULEBOOKS], INPUTS / "declarations.csv")
    assert sha(built) == before
    assert sorted(p.name for p in built.parent.iterdir()) == ["kb.db"]


def test_a_killed_builds_half_built_file_is_removed_by_the_next_build(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left = [tmp_path / f".kb.db.building-{dead}", tmp_path / f".kb.db.building-{dead}-journal"]
    for f in left:
        f.write_bytes(b"half a database")
    running = tmp_path / f".kb.db.building-{os.getpid()}x"  # not a pid: not ours to touch
    running.write_bytes(b"?")
    build(tmp_path / "kb.db", [RULEBOOKS])
    assert not any(f.exists() for f in left) and running.exists()


def test_the_indicators_reference_data_is_in_the_knowledge_base(built: Path) -> None:
    """Value ranges per customs code and the country-capacity groups, with their sources."""
    pig_iron = query(built, "select customs_codes, low_usd_per_kg, high_usd_per_kg, unverified "
                            "from value_ranges where name = 'pig-iron'")
    assert pig_iron == [("720110; 720120; 720150", 0.3, 0.7,
                         "Indicative price range; not from the domain brief.")]
    routes = dict(query(built, "select g.name, group_concat(m.country) from country_groups g "
                               "join country_group_members m on m.group_name = g.name "
                               "where g.name like '%-routes' group by g.name"))
    assert sorted(routes["transshipment-routes"].split(",")) == ["HK", "MX", "TH"]
    assert routes["germanium-routes"] == "BE"
    [(source,)] = query(built, "select source from country_groups "
                               "where name = 'germanium-routes'")
    assert "germanium reportedly via Belgium" in source
    # every controlled mineral has a range, and so do the campaign's cover goods
    names = {n for (n,) in query(built, "select name from value_ranges")}
    assert {"gallium-metal", "germanium-products", "natural-graphite", "antimony-products",
            "tungsten-products", "rare-earth-metals", "indium", "bismuth", "tellurium",
            "molybdenum", "zinc-unwrought", "artists-colours"} <= names
