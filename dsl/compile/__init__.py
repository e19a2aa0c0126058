"""Compile a checked rulebook into SQL checks, built as sqlglot expression trees.

Each rule becomes a view `check_<rule>` with one row per finding, and `findings` is their
union, with the columns `declaration_id, rule, outcome, severity, instrument, provision,
explanation, rulebook_version`. Values are literals made by sqlglot; identifiers come from the
schema and the documented support relations, never from rulebook text.

Conditions are three-valued: for each condition the compiler builds the SQL that makes it
certainly true (t) and certainly false (f); when neither holds, a fact the rule needs is
missing and the finding is `undetermined`, naming the missing fields — never a silent pass.

Support relations the checks read (the knowledge base creates them, `excon export` documents
them): `judged_declarations` (declarations with `judged_on`, the date the law is taken from,
and `unit_value`), `declaration_items` (declaration → matching item) and
`item_declarations` (the same by item), `licence_cover`
(declaration → whether its licence covers it, and why not), `party_name_keys` and
`listed_party_keys` (normalised names), `listed_matches` (declared names matching a listed
party, with each listing's period and the note a finding gives), `list_entry_periods`
(listings in force).

One module per stage, as sqlglot splits its optimizer: `sql` (the trees every stage builds
with), `facts`, `conditions`, `rules` (each a class the next extends) and `dialects` (the
shaping per engine, `CREATE VIEW`, the portable-core lint).
"""

from dsl.compile.dialects import create_view, fold_case, for_dialect, lint
from dsl.compile.rules import (
    CompiledRule,
    CompiledRulebook,
    Compiler,
    compile_conditions,
    compile_rulebook,
    view_name,
)
from dsl.compile.sql import (
    DIALECTS,
    OUTCOME_OF,
    OUTCOME_RANK,
    ROW_KEY,
    CompileError,
    in_force,
    union_all,
)
from dsl.findings import FINDING_COLUMNS, FINDING_OUTCOMES
from dsl.rulebook import LICENSABLE, listing_nodes, required_items

__all__ = ["DIALECTS", "FINDING_COLUMNS", "FINDING_OUTCOMES", "LICENSABLE", "OUTCOME_OF",
           "OUTCOME_RANK", "ROW_KEY",
           "CompileError", "CompiledRule", "CompiledRulebook", "Compiler", "compile_conditions",
           "compile_rulebook",
           "create_view", "fold_case", "for_dialect", "in_force", "lint", "listing_nodes",
           "required_items",
           "union_all", "view_name"]
