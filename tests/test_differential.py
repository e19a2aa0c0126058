"""The reference interpreter, SQLite and DuckDB give identical findings: on every rulebook
example, and on Hypothesis-generated declarations around the dates and thresholds that matter.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import ast
from dsl.findings import FINDING_OUTCOMES
from dsl.interpret import Interpreter
from dsl.schema import FieldSpec
from kb.screen import Finding, Screener
from kb.screen.examples import typed_row
from kb.store.schema import declaration_schema
from tests.conftest import DATA, RULEBOOKS

SCREENERS: dict[str, Screener] = {}


def screener(path: str) -> Screener:
    if path not in SCREENERS:
        SCREENERS[path] = Screener([DATA / "semantics" if path == "semantics" else RULEBOOKS])
    return SCREENERS[path]


def key(f: Finding) -> tuple[Any, ...]:
    return (f.declaration_id, f.rule, f.outcome, f.severity, f.instrument, f.provision,
            f.basis, f.caveat)


def compare(path: str, declarations: list[dict[str, Any]], licences: list[dict[str, Any]],
            as_of: str | None, postgres: str | None = None,
            parties: list[dict[str, Any]] | None = None,
            explanations: bool = False) -> list[tuple[Any, ...]]:
    """Screen once on each engine and judge with the interpreter: the same findings everywhere
    (and, with `explanations`, the same explanations on every engine). SQLite's, as keys."""
    s = screener(path)
    parties = parties or []
    engines = ["sqlite", "duckdb"] + ([postgres] if postgres is not None else [])
    found = {engine: s.screen(declarations, licences, parties, as_of=as_of, engine=engine)
             for engine in engines}
    on_sqlite = [key(f) for f in found["sqlite"]]
    for engine in engines[1:]:
        assert [key(f) for f in found[engine]] == on_sqlite, engine
        if explanations:
            assert [f.explanation for f in found[engine]] == \
                [f.explanation for f in found["sqlite"]], engine
    assert on_sqlite == interpreted(s, declarations, licences, as_of, parties)
    return on_sqlite


def interpreted(s: Screener, declarations: list[dict[str, Any]],
                licences: list[dict[str, Any]], as_of: str | None,
                parties: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The reference interpreter's findings, as `key`s."""
    interpreter = Interpreter(s.rulebook, declaration_schema())
    facts = s.rulebook.declared_fields()
    judged = interpreter.judge([typed_row("declarations", d, facts) for d in declarations],
                               [typed_row("licences", lic) for lic in licences], as_of,
                               [typed_row("trade_parties", p) for p in parties])
    return [(j.declaration_id, j.rule, j.outcome, j.severity, j.instrument, j.provision,
             j.basis, j.caveat) for j in judged]


DATES = ["2023-07-31", "2023-08-01", "2024-01-09", "2024-01-10", "2024-05-31", "2024-06-01",
         "2024-06-30", "2024-07-01", "2024-09-14", "2024-09-15", "2024-12-02", "2024-12-03",
         "2025-01-01", "2025-01-02", "2025-11-08", "2025-11-09", "2026-11-27", "2026-11-28",
         "2024-11-30", "2024-12-01", "2025-04-03", "2025-04-04", "2025-08-11", "2025-08-12",
         "2025-11-10", "2026-11-09", "2026-11-10", "2026-11-11", "2026-12-06"]
CODES = ["8112929010", "8112929099", "7105102000", "71051020", "81129290", "2825800010",
         "8112921010", "2504101000", "9403600000", "8112.92.90.10", "8507600000",
         "2846901940", "7901110000"]
NAMES = ["Acme GmbH", "LOCKHEED MARTIN CORPORATION", "Lockheed Martin Corp.", "洛克希德·马丁",
         "Ｌｏｃｋｈｅｅｄ　Ｍａｒｔｉｎ", "Lockheed Electronics Ltd", "Zoë's Ünïcode Café",
         "Echodyne", "Source Intelligence", "Illumina", "Cyberlux", "Leidos",
         "Gadget Traders Ltd", "U.S. Army Research Laboratory", "美国海军研究所",
         "ÉCOLE MİLİTAİRE Straẞe", "LOCKHEED MARTİN CORPORATION"]
# Texts in every case of letters outside ASCII: a Turkish dotted capital İ, which DuckDB's and
# Spark's LOWER fold to an ASCII i ("GALLİUM" is "gallium" there, not on SQLite), a Kelvin
# sign K, which Python's lower() folds to k, a capital sharp ẞ, accented and Greek capitals.
DESCRIPTIONS = ["widgets", "x'; drop table declarations; -- y", "含镓", "gallium ingots",
                'a back\\slash "quoted"', "GALLİUM ingots", "ÉTAIN Straẞe", "FLA\u212aE GRAPHITE",
                "ΚΑΣΣΊΤΕΡΟΣ"]

dates = st.one_of(st.sampled_from(DATES), st.dates(
    min_value=__import__("datetime").date(2023, 1, 1),
    max_value=__import__("datetime").date(2027, 1, 1)).map(str))


def fact_values(spec: FieldSpec) -> list[Any]:
    """Values of a declared fact, by its type, around the thresholds the rules use (and
    missing)."""
    if spec.choices:
        return [None, *spec.choices]
    if spec.declared == "percentage":
        return [None, 0, 0.1, 10, 10.01, 25, 100]
    if spec.type == "number":
        return [None, 0, 0.499, 0.5, 2, 1000]
    if spec.type == "country":
        return [None, "US", "CN", "DE", "JP"]
    if spec.type == "date":
        return [None, *DATES]
    return [None, "exempt", "x", "含镓", "ÉXEMPT", "İ"]


@st.composite
def declaration(draw: st.DrawFn, n: int, facts: tuple[FieldSpec, ...] = ()) -> dict[str, Any]:
    to = draw(st.sampled_from(["US", "DE", "FR", "TH", "HK", "BE"]))
    end_user = draw(st.one_of(st.none(), st.sampled_from(NAMES)))
    return {
        "id": f"d{n}", "declared_on": draw(dates),
        "exporter": draw(st.sampled_from(["Hunan Widgets Co.", "Hunan Widgets Co.",
                                          "Ganzhou Oxides Ltd"])),
        "consignee": draw(st.sampled_from(NAMES)), "consignee_country": to,
        "end_user": end_user,
        # an end user without an end-user country, too
        "end_user_country": draw(st.sampled_from(["US", None])) if end_user else None,
        "destination_country": to, "hs_code": draw(st.sampled_from(CODES)),
        "description": draw(st.sampled_from(DESCRIPTIONS)),
        "quantity_kg": draw(st.sampled_from([0.5, 1, 50, 600, 1200, 5000, 25_000])),
        "value_usd": draw(st.sampled_from([0, 100, 25000])),
        "purity_pct": draw(st.sampled_from([None, 99.98, 99.99, 99.999])),
        "licence_no": draw(st.sampled_from([None, "L-1", "L-1", "L-9"])),
        # stated parameters around the items' thresholds
        "energy_density": draw(st.sampled_from([None, 150, 299.9, 300])),
        "particle_size": draw(st.sampled_from([None, 40, 50, 50.5, 500, 600])),
        # every fact the rulebooks declare
        **{f.name: draw(st.sampled_from(fact_values(f))) for f in facts},
    }


# Licence items that name something in each rulebook (besides customs codes).
WORDS = {"semantics": ["widgets", "gizmo"], "repository": ["1C902", "gallium-metal",
                                                           "controlled-minerals"]}


@st.composite
def scenario(draw: st.DrawFn, words: list[str], facts: tuple[FieldSpec, ...] = ()
             ) -> tuple[Any, ...]:
    count = draw(st.integers(1, 6))
    decls = [draw(declaration(i, facts)) for i in range(count)]
    if count > 1 and draw(st.booleans()):  # a run of shipments days apart (windows)
        first = decls[0]["declared_on"]
        import datetime as dt

        for i, d in enumerate(decls[1:], 1):
            day = dt.date.fromisoformat(first) + dt.timedelta(days=draw(st.sampled_from(
                [0, 1, 9, 10, 11, 29, 30])) + i - 1)
            d["declared_on"] = day.isoformat()
    parties = [{"name": "Hunan Widgets Co.", "address": "1 Main St., Changsha",
                "phone": "+86 731 1234 5678"}]
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True)):
        parties.append({
            "name": name,
            "address": draw(st.sampled_from([None, "1 MAIN ST, Changsha", "9 Other Road",
                                             "1 MAİN ST, CHANGSHA"])),
            "phone": draw(st.sampled_from([None, "86-731-12345678", "+1 555 0100"])),
            # a party is never its own parent: parties.csv rejects such a row. Owners with
            # shares: on the threshold, below it, and adding up through a company
            "parent": draw(st.sampled_from([p for p in (
                None, "Hunan Widgets Co.", "Lockheed Martin Corp", "Acme GmbH",
                "Ganzhou Oxides", "Lockheed Martin Corp 50 %; Ganzhou Oxides 50 %",
                "Lockheed Martin Corp 49 %", "Lockheed Martin Corp 30 %; Acme GmbH 30 %",
                "Acme GmbH 60 %; Hunan Widgets Co. 40 %") if p is None or name not in p])),
        })
    start = draw(st.sampled_from(DATES))
    licence = {"licence_no": "L-1", "kind": draw(st.sampled_from(["individual", "general"])),
               "holder": draw(st.sampled_from(["Hunan Widgets Co.", "Ganzhou Oxides Ltd"])),
               "items": draw(st.sampled_from(["8112929010", "71051020", *words,
                                              "8112929010;2825800010"])),
               "destination_country": draw(st.sampled_from([None, "DE", "US", "HK"])),
               "end_user": draw(st.sampled_from([None, None, "Acme GmbH"])),
               "quantity_kg": draw(st.sampled_from([None, 1000, 1250, 30_000])),
               "valid_from": start, "valid_to": draw(st.sampled_from([*DATES, "2099-12-31"])),
               "agents": draw(st.sampled_from([None, "Hunan Widgets Co."]))}
    if licence["valid_to"] < licence["valid_from"]:
        licence["valid_to"] = licence["valid_from"]
    as_of = draw(st.one_of(st.none(), st.sampled_from(DATES)))
    return decls, [licence], as_of, parties


@pytest.mark.parametrize("path", ["semantics", pytest.param("repository", marks=pytest.mark.slow)])
# 12 examples: the generated batches below cover the breadth; these look for edge cases
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_interpreter_sqlite_duckdb_and_postgres_agree(path: str, data: st.DataObject,
                                                      postgres_dsn: str) -> None:
    decls, licences, as_of, parties = data.draw(scenario(
        WORDS[path], screener(path).rulebook.declared_fields()))
    compare(path, decls, licences, as_of, postgres=postgres_dsn, parties=parties)


def test_every_repository_example_agrees_with_the_interpreter(postgres_dsn: str) -> None:
    """Every example's declarations, judged on all four; examples with the same `as of` are
    screened together (ids and licence numbers prefixed so they cannot meet)."""
    from dsl.model import law
    from kb.screen.examples import declaration_rows, licence_rows

    s = screener("repository")
    batches: dict[str | None, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for n, ex in enumerate(law(s.rulebook).examples):
        decls, lics = batches.setdefault(ex.as_of, ([], []))
        for d in declaration_rows(ex):
            decls.append({**d, "id": f"e{n}-{d['id']}",
                          "licence_no": f"e{n}-{d['licence_no']}" if d.get("licence_no")
                          else d.get("licence_no")})
        lics.extend({**lic, "licence_no": f"e{n}-{lic['licence_no']}"}
                    for lic in licence_rows(ex))
    assert sum(len(d) for d, _ in batches.values()) >= len(s.rulebook.examples)
    found = [f for as_of, (decls, lics) in batches.items()
             for f in compare("repository", decls, lics, as_of, postgres_dsn)]
    assert {"prohibited", "unlicensed", "undetermined"} <= {f[2] for f in found}


# --- generated batches that fire every rule ---------------------------------------------------

DESTINATIONS = ["US", "DE", "FR", "TH", "HK", "BE", "MX", "JP", "NL", "IN", "CA", "RU"]
QUANTITIES = [0.5, 1, 50, 600, 1200, 5000, 25_000, 120_000]
EXPORTERS = ["Hunan Widgets Co.", "Ganzhou Oxides Ltd", "Yunnan Minerals Trading",
             "New Exporter 7 Ltd", "ÖLWERK İzmir Straẞe"]


def repository_codes(rb: Any) -> list[str]:
    """One declared code per item of the rulebooks (every item appears), and cover goods."""
    from dsl.model import law

    codes = []
    for item in law(rb).items.values():
        if item.codes:
            codes.append(item.codes[0].digits.ljust(10, "0")[:10])
    return [*sorted(set(codes)), "9403600000", "7901110000", "2504101000", "8479899990"]


def broad_batch(rng: Any, codes: list[str], n: int, facts: tuple[FieldSpec, ...] = ()
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """`n` declarations drawn over every item, destination, size, missing fact and stated
    parameter that the rules read, with runs of shipments (windows), agents and licences of
    every shape."""
    import datetime as dt
    import random

    def day() -> str:
        if rng.random() < 0.5:
            return rng.choice(DATES)
        return (dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(1430))).isoformat()

    def maybe(values: list[Any], none: float = 0.4) -> Any:
        return None if rng.random() < none else rng.choice(values)

    facts_rng = random.Random(n)

    decls: list[dict[str, Any]] = []
    while len(decls) < n:
        to = rng.choice(DESTINATIONS)
        end_user = maybe(NAMES)
        d = {
            "id": f"g{len(decls)}", "declared_on": day(), "exporter": rng.choice(EXPORTERS),
            "consignee": rng.choice(NAMES), "consignee_country": to, "end_user": end_user,
            "end_user_country": (rng.choice(["US", to, None]) if end_user else None),
            "destination_country": to, "hs_code": rng.choice(codes),
            "description": rng.choice([*DESCRIPTIONS, "锑锭", "tungsten carbide", "rare earth",
                                       "ANTİMONY ingots", "Rare EARTH ÉLÉMENTS"]),
            "quantity_kg": rng.choice(QUANTITIES),
            "value_usd": rng.choice([1, 100, 25_000, 400_000, 2_000_000]),
            "purity_pct": maybe([99.9, 99.98, 99.99, 99.999, 99.9999]),
            "licence_no": maybe(["L-1", "L-2", "L-3", "L-9"], 0.5),
            "end_use": maybe(["civil", "military", "导弹制导", "冠军奖杯", "MİLİTARY use",
                              "Défense NATIONALE"], 0.6),
            "re_content_pct": maybe([0.05, 0.1, 5.0], 0.7),
            "export_country": maybe(["CN", "US"], 0.7),
            "energy_density": maybe([150, 299.9, 300]),
            "particle_size": maybe([40, 50.5, 500]),
            "flexural_strength": maybe([20, 30, 50]),
            "density": maybe([1.5, 1.73, 1.9]),
            "graphite_type": maybe(["natural", "artificial"]),
            "dual_use_code": maybe(["2B005.b", "3B901.a", "none"]),
            # every fact the rulebooks declare, of every type (from a stream of their own, so
            # the rest of the batch does not depend on which facts the rulebooks declare)
            **{f.name: None if facts_rng.random() < 0.4 else facts_rng.choice(
                fact_values(f)[1:]) for f in facts},
        }
        if facts_rng.random() < 0.2:  # an export from a member state of the EU
            d["export_country"] = facts_rng.choice(["DE", "FR", "NL"])
        decls.append(d)
        if rng.random() < 0.15:  # a run: the same trade again, days apart
            for k in range(rng.randrange(1, 6)):
                again = dict(d, id=f"g{len(decls)}")
                again["declared_on"] = (dt.date.fromisoformat(d["declared_on"])
                                        + dt.timedelta(days=rng.choice([1, 3, 9, 20])
                                                       * (k + 1))).isoformat()
                decls.append(again)
    # goods named under the headings of items whose tariff lines are not in the sources: the
    # k-th is the k-th of every (date, code, text) in turn (6, 5 and 7 have no common factor,
    # so 210 in a row hold each once), from a place drawn per batch
    u_dates = ["2023-07-31", "2024-06-01", "2025-06-01", "2026-11-10", "2026-11-11",
               "2026-12-01"]
    u_codes = ["2827399000", "2846901990", "2805301990", "8101990000", "8101940000"]
    u_texts = ["GeCl4", "四氯化锗", "Lutetium oxide", "erbium oxide", "镱", "W-Ni-Fe bar",
               "zinc chloride"]
    start = facts_rng.randrange(210)
    for k in range(n // 20):
        i = start + k
        decls.append(dict(decls[k], id=f"u{k}", declared_on=u_dates[i % 6],
                          hs_code=u_codes[i % 5], description=u_texts[i % 7]))
    licences = []
    for no, holder in zip(["L-1", "L-2", "L-3"], EXPORTERS, strict=False):
        start = rng.choice(["2023-01-01", "2024-06-01", "2025-01-01"])
        licences.append({
            "licence_no": no, "kind": rng.choice(["individual", "general"]), "holder": holder,
            "items": ";".join(rng.sample(codes[:-4], 4)),
            "destination_country": maybe(DESTINATIONS, 0.5), "end_user": None,
            "quantity_kg": maybe([1000, 30_000], 0.3), "valid_from": start,
            "valid_to": rng.choice([d for d in ("2024-12-31", "2026-12-31", "2099-12-31")
                                    if d >= start]),
            "agents": EXPORTERS[3] if no == "L-1" else None})
    parties = [{"name": "Hunan Widgets Co.", "address": "1 Main St., Changsha",
                "phone": "+86 731 1234 5678"},
               {"name": "Gadget Traders Ltd", "address": "1 MAIN ST, Changsha",
                "phone": None, "parent": None},
               {"name": "Acme GmbH", "address": None, "phone": None,
                "parent": "Lockheed Martin Corp"},
               {"name": "ÖLWERK İzmir Straẞe", "address": "RUE DE L'ÉTOILE 1, İZMİR",
                "phone": None, "parent": "ÉCOLE MİLİTAİRE Straẞe"},
               {"name": "ÉCOLE MİLİTAİRE Straẞe", "address": "Rue de l'étoile 1, İzmir",
                "phone": None, "parent": None}]
    return decls, licences, parties


@pytest.mark.slow
def test_generated_batches_fire_every_rule_and_all_engines_agree(postgres_dsn: str) -> None:
    """Generated batches over every item of the repository (two of 2,000 declarations, four
    of 400 judged by the law as of either side of a suspension's start and end), with texts in
    every case of letters outside ASCII and end users without a country, on the
    interpreter, SQLite, DuckDB and PostgreSQL: the same findings, and on the three engines
    the same explanations (halves rounded up and sums to the thousandth everywhere); every rule
    whose examples say it can fire fires, and every rule whose examples include an
    `undetermined` case is undetermined somewhere. The counts are printed (`pytest -s`)."""
    import random
    from collections import Counter

    from dsl.model import law

    s = screener("repository")
    model = law(s.rulebook)
    codes = repository_codes(s.rulebook)
    fired: Counter[tuple[str, str]] = Counter()
    # the law as of six dates: today's, and both sides of the US ban's suspension's edges
    for seed, as_of, size in ((1, None, 2000), (2, "2025-06-01", 2000), (3, "2025-11-08", 400),
                              (4, "2025-11-09", 400), (5, "2026-11-27", 400),
                              (6, "2026-11-28", 400)):
        decls, licences, parties = broad_batch(random.Random(seed), codes, size,
                                               s.rulebook.declared_fields())
        on_sqlite = compare("repository", decls, licences, as_of, postgres_dsn, parties,
                            explanations=True)
        fired.update((rule, outcome) for _, rule, outcome, *_ in on_sqlite)
    # rules whose outcome is `undetermined` (items whose tariff lines the sources do not give)
    # never fire with a certain outcome: their examples show them on every engine
    rules = {name for name, r in s.rulebook.rules.items()
             if (then := ast.first_attr(r, ast.Then)) is None
             or then.outcome.kind != "undetermined"}
    table = "\n".join(f"  {rule:40} " + ", ".join(
        f"{o} {fired[rule, o]}" for o in FINDING_OUTCOMES if fired[rule, o])
        for rule in sorted(rules))
    print(f"findings per rule and outcome:\n{table}")
    # a rule fires when its examples say it can (one whose items have no codes yet cannot)
    certain = [o for o in FINDING_OUTCOMES if o != "undetermined"]
    can_fire = {x.rule for ex in model.examples for x in ex.expectations if x.present
                and x.outcome in certain and x.rule}
    assert len(can_fire) >= len(rules) - 2, sorted(rules - can_fire)
    never = sorted(r for r in can_fire if not any(fired[r, o] for o in certain))
    assert not never, f"rules that never fired: {never}\n{table}"
    can_be_undetermined = {x.rule for ex in model.examples for x in ex.expectations
                           if x.outcome == "undetermined" and x.rule}
    never_undetermined = sorted(r for r in can_be_undetermined if not fired[r, "undetermined"])
    assert not never_undetermined, f"never undetermined: {never_undetermined}\n{table}"
