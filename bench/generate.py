"""Synthetic rulebooks of a given size, shaped like the real one (for benchmarks and tests)."""

from __future__ import annotations

import random

from kb.store.schema import hs_subheadings


def rulebook_text(lines: int, seed: int = 7) -> str:
    """About `lines` lines of valid rulebook text: instruments, items, groups, rules, examples.
    Clean, as a rulebook in use is: its customs codes are under real HS 2022 subheadings of
    chapters 28 and 81 (inorganic chemicals, other base metals), and each ban states that it
    overrides the licence rule on the same items."""
    rng = random.Random(seed)
    subheadings = sorted(h for h in hs_subheadings() if h[:2] in ("28", "81"))
    out: list[str] = ['rulebook bench "Generated rulebook"', "  jurisdiction CN", ""]
    out += ["countries usa \"United States\"", "  members US", ""]
    n = 0
    while len(out) < lines:
        n += 1
        ins = f"MOFCOM-2024-{n}"
        out += [
            f"instrument {ins}",
            f'  title "Announcement No. {n} of 2024 on dual-use items"',
            "  issuer MOFCOM, GAC",
            "  issued 2024-08-15",
            "  in force 2024-09-15",
            '  clause 1 "Items in the annex need a licence" zh "附件所列物项须经许可"',
            '  clause 2 "Items to the United States are in principle not permitted"',
            "",
            f'group g{n} "Group {n}"',
            f"  per {ins}",
            "",
        ]
        for k in range(3):
            code = f"{rng.choice(subheadings)}{rng.randint(1000, 9999)}"
            out += [
                f'item i{n}-{k} "Item {n}.{k}"',
                f"  member of g{n}",
                f"  customs {code}, {code[:8]}",
                f"  controlled if purity >= {rng.randint(90, 99)}.{rng.randint(0, 99)} %",
                "",
            ]
        out += [
            f'rule r{n}-licence "Group {n} needs a licence"',
            f"  per {ins} clause 1",
            f"  when item in g{n}",
            "  then licence required",
            "",
            f'rule r{n}-us "Group {n} to the US"',
            f"  per {ins} clause 2",
            "  from 2024-12-03",
            f"  overrides r{n}-licence",
            f"  when item in g{n}",
            "   and destination in usa",
            f"   and (quantity > {rng.randint(1, 500)} kg or value > 10000 USD)",
            "  then prohibited",
            '  explain "{item_title} to {destination_country} on {declared_on}"',
            "",
            f'example "Group {n} to the US is prohibited"',
            f"  declaration on 2025-01-15 code {code} to US 600 kg 20000 USD purity 99.999 %",
            f"  expect prohibited by r{n}-us",
            "",
        ]
    return "\n".join(out) + "\n"
