"""The knowledge base's tables: columns with their documentation, keys, indexes, full-text
search. One description serves the migrations (below), the loaders, and the Datasette metadata.

Schema changes are sqlite-utils migrations: add a function to `MIGRATIONS`, never edit one that
has shipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from dsl.schema import FieldSpec
from kb.store.schema import DECLARATION_FIELDS


@dataclass(frozen=True)
class Column:
    name: str
    type: type
    doc: str
    not_null: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    doc: str
    columns: tuple[Column, ...]
    pk: str | tuple[str, ...]
    foreign_keys: tuple[tuple[str, str, str], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    fts: tuple[str, ...] = ()
    public: bool = True  # reference data; declarations, licences, findings and runs are not
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, typ: type, doc: str, not_null: bool = False) -> Column:
    return Column(name, typ, doc, not_null)


TABLES: tuple[TableSpec, ...] = (
    TableSpec("hs_sections", "Harmonized System 2022 sections", (
        _c("section", str, "Section number in Roman numerals", True),
        _c("name", str, "Section title"),
    ), pk="section"),
    TableSpec("hs_codes", "Harmonized System 2022 nomenclature: chapters, headings, subheadings",
              (
        _c("hscode", str, "HS code: 2 (chapter), 4 (heading) or 6 (subheading) digits", True),
        _c("description", str, "Official description"),
        _c("parent", str, "Code of the parent level (TOTAL for chapters)"),
        _c("level", int, "2, 4 or 6"),
        _c("section", str, "HS section"),
    ), pk="hscode", foreign_keys=(("section", "hs_sections", "section"),),
        indexes=(("parent",),), fts=("description",)),
    TableSpec("countries", "ISO 3166-1 countries (from pycountry)", (
        _c("alpha2", str, "ISO 3166-1 alpha-2 code", True),
        _c("alpha3", str, "ISO 3166-1 alpha-3 code"),
        _c("numeric", str, "ISO 3166-1 numeric code"),
        _c("name", str, "Short name"),
        _c("official_name", str, "Official name, where ISO gives one"),
    ), pk="alpha2"),
    TableSpec("rulebooks", "Rulebooks in this knowledge base", (
        _c("name", str, "Rulebook name", True),
        _c("title", str, "Title"),
        _c("jurisdiction", str, "Country whose law it encodes, or the country group of a "
                                "union's (such as the EU's member states)"),
        _c("version", str, "Version hash of the rulebook's declarations"),
        _c("sources_checked", str, "The last day its sources were checked through: findings "
                                   "that rest on a suspension ending by its own text after it "
                                   "are lapsed-by-text"),
    ), pk="name"),
    TableSpec("instruments", "Laws, regulations and announcements, by canonical id", (
        _c("id", str, "Canonical id, issuer-year-number (e.g. MOFCOM-2024-46)", True),
        _c("title", str, "Title in English"),
        _c("title_zh", str, "Title in Chinese, where known"),
        _c("issuer", str, "Issuing authorities"),
        _c("number", str, "Number as printed"),
        _c("issued", str, "Date issued (ISO)"),
        _c("in_force", str, "Date in force (ISO)"),
        _c("url", str, "Where the text is published"),
        _c("confidence", str, "high / medium / low, from the sources"),
        _c("notes", str, "Notes, later history"),
        _c("unverified", str, "What the sources could not confirm"),
        _c("source_file", str, "Rulebook file"),
        _c("source_line", int, "Line in the rulebook file"),
    ), pk="id", fts=("title", "title_zh", "notes")),
    TableSpec("provisions", "Citable provisions of instruments (articles, clauses, parts…)", (
        _c("instrument_id", str, "Instrument", True),
        _c("provision", str, "Provision reference, e.g. 'clause 2'", True),
        _c("kind", str, "article, clause, paragraph, part, annex, section or entry"),
        _c("label", str, "Number or label"),
        _c("text", str, "Summary in English"),
        _c("text_zh", str, "Original Chinese text, where known"),
    ), pk=("instrument_id", "provision"),
        foreign_keys=(("instrument_id", "instruments", "id"),), fts=("text", "text_zh")),
    TableSpec("item_groups", "Groups of controlled items (by mineral)", (
        _c("name", str, "Group name", True),
        _c("title", str, "Title"),
        _c("instrument_id", str, "Instrument the group rests on"),
        _c("provision", str, "Provision"),
    ), pk="name", foreign_keys=(("instrument_id", "instruments", "id"),)),
    TableSpec("items", "Controlled items", (
        _c("name", str, "Item name", True),
        _c("title", str, "Title in English"),
        _c("title_zh", str, "Name in Chinese"),
        _c("control_code", str, "Control code (ECCN-style, e.g. 1C902)"),
        _c("instrument_id", str, "Instrument the item rests on (its own or its group's)"),
        _c("provision", str, "Provision"),
        _c("controlled_if", str, "Parameter thresholds: controlled only when this holds"),
        _c("confidence", str, "high / medium / low"),
        _c("notes", str, "Notes"),
        _c("unverified", str, "What the sources could not confirm"),
        _c("source_file", str, "Rulebook file"),
        _c("source_line", int, "Line in the rulebook file"),
    ), pk="name", foreign_keys=(("instrument_id", "instruments", "id"),),
        indexes=(("control_code",),), fts=("title", "title_zh")),
    TableSpec("item_group_members", "Which items belong to which groups (expanded)", (
        _c("group_name", str, "Group", True),
        _c("item", str, "Item", True),
    ), pk=("group_name", "item"), foreign_keys=(
        ("group_name", "item_groups", "name"), ("item", "items", "name")),
        indexes=(("item",),)),
    TableSpec("item_customs_codes", "Reference customs codes of items (many-to-many)", (
        _c("item", str, "Item", True),
        _c("code", str, "Customs code, digits only (8-digit tariff line or 10-digit code)", True),
        _c("written", str, "As written in the rulebook"),
        _c("hs6", str, "Six-digit HS subheading"),
        _c("rulebook", str, "Rulebook of the item: a code's most precise match is taken within "
                            "each rulebook"),
    ), pk=("item", "code"), foreign_keys=(("item", "items", "name"), ("hs6", "hs_codes", "hscode")),
        indexes=(("code",),)),
    TableSpec("country_groups", "Groups of countries used by rules", (
        _c("name", str, "Group name", True),
        _c("title", str, "Title"),
        _c("valid_from", str, "In force from (inclusive)"),
        _c("valid_until", str, "In force until (inclusive)"),
        _c("instrument_id", str, "Instrument"),
        _c("source", str, "Where the grouping comes from (capacity tables, hubs)"),
        _c("unverified", str, "What is not verified"),
    ), pk="name", foreign_keys=(("instrument_id", "instruments", "id"),)),
    TableSpec("country_group_members", "Countries of each group (expanded)", (
        _c("group_name", str, "Group", True),
        _c("country", str, "ISO alpha-2", True),
    ), pk=("group_name", "country"), foreign_keys=(
        ("group_name", "country_groups", "name"), ("country", "countries", "alpha2"))),
    TableSpec("party_lists", "Lists of parties (Control List, Unreliable Entity List)", (
        _c("name", str, "List name", True),
        _c("title", str, "Title"),
        _c("title_zh", str, "Title in Chinese"),
        _c("issuer", str, "Issuer"),
        _c("instrument_id", str, "Instrument establishing the list"),
        _c("match_threshold", float, "Name-matching threshold, 0–100"),
    ), pk="name", foreign_keys=(("instrument_id", "instruments", "id"),)),
    TableSpec("parties", "Parties named by the rulebooks (listed entities)", (
        _c("name", str, "Party id in the rulebook", True),
        _c("legal_name", str, "Legal name"),
        _c("country", str, "Country (ISO alpha-2)"),
        _c("address", str, "Address"),
        _c("phone", str, "Phone"),
        _c("owner", str, "Owning party"),
        _c("owner_share_pct", float, "Share held by the owner, %"),
        _c("unverified", str, "What the sources could not confirm"),
    ), pk="name", foreign_keys=(("country", "countries", "alpha2"),), fts=("legal_name",)),
    TableSpec("party_aliases", "Other names of parties (spellings, translations)", (
        _c("party", str, "Party", True),
        _c("alias", str, "Alias as written", True),
    ), pk=("party", "alias"), foreign_keys=(("party", "parties", "name"),), fts=("alias",)),
    TableSpec("list_entries", "Listings of parties, with their dates and instruments", (
        _c("party", str, "Party", True),
        _c("list", str, "List", True),
        _c("instrument_id", str, "Instrument that listed the party", True),
        _c("provision", str, "Provision"),
        _c("listed_from", str, "Listed from (inclusive)"),
        _c("listed_until", str, "Listed until (inclusive), if delisted"),
        _c("measures", str, "Measures the listing imposes (';'-separated; empty: none)"),
    ), pk=("party", "list", "instrument_id"), foreign_keys=(
        ("party", "parties", "name"), ("list", "party_lists", "name"),
        ("instrument_id", "instruments", "id")), indexes=(("list",),)),
    TableSpec("item_controls", "When each item is controlled, and by which act (amendments "
              "applied; the act that started last governs where several are in force)", (
        _c("item", str, "Item", True),
        _c("instrument_id", str, "Instrument that controls the item then", True),
        _c("provision", str, "Provision"),
        _c("controlled_from", str, "Controlled from (inclusive; empty: always)"),
        _c("controlled_until", str, "Controlled until (inclusive; empty: open-ended)"),
    ), pk=("item", "instrument_id", "controlled_from"), foreign_keys=(
        ("item", "items", "name"), ("instrument_id", "instruments", "id"))),
    TableSpec("rules", "Rules and exceptions, with their citations and validity", (
        _c("name", str, "Rule name", True),
        _c("kind", str, "rule or exception"),
        _c("title", str, "Title"),
        _c("outcome", str, "prohibited, licence required, presumption of denial, "
                           "case-by-case review, permitted, undetermined, risk"),
        _c("severity", str, "For risk indicators: high, medium, low"),
        _c("instrument_id", str, "Instrument cited"),
        _c("provision", str, "Provision cited"),
        _c("valid_from", str, "In force from (inclusive)"),
        _c("valid_until", str, "In force until (inclusive)"),
        _c("condition", str, "When it applies, as written in the rulebook"),
        _c("excepts", str, "For exceptions: the rules excepted"),
        _c("overrides", str, "Rules this one takes precedence over"),
        _c("explain", str, "Explanation template"),
        _c("unverified", str, "What the sources could not confirm"),
        _c("source_file", str, "Rulebook file"),
        _c("source_line", int, "Line in the rulebook file"),
        _c("source_text", str, "The rule as written"),
        _c("rulebook", str, "Rulebook"),
        _c("title_zh", str, "Title in Chinese, where the rulebook gives it (zh)"),
        _c("outcome_zh", str, "The outcome's wording in Chinese, where given (then … zh)"),
        _c("explain_zh", str, "Explanation template in Chinese, where given (explain zh)"),
    ), pk="name", foreign_keys=(("instrument_id", "instruments", "id"),
                                 ("rulebook", "rulebooks", "name")),
        indexes=(("instrument_id",),)),
    TableSpec("amendments", "Suspensions, extensions and repeals, each citing its instrument", (
        _c("id", int, "Sequence in the rulebook", True),
        _c("action", str, "suspend, extend or repeal"),
        _c("target", str, "What it acts on, as written"),
        _c("target_kind", str, "rule or instrument, listings (of an instrument), listing"),
        _c("target_name", str, "Rule, instrument or party"),
        _c("target_provision", str, "Provision of the target instrument"),
        _c("target_list", str, "List, for a listing"),
        _c("instrument_id", str, "Instrument making the amendment"),
        _c("provision", str, "Provision of that instrument"),
        _c("valid_from", str, "From (inclusive)"),
        _c("valid_until", str, "Until (inclusive)"),
        _c("source_file", str, "Rulebook file"),
        _c("source_line", int, "Line in the rulebook file"),
    ), pk="id", foreign_keys=(("instrument_id", "instruments", "id"),),
        indexes=(("target_name",),)),
    TableSpec("lapses", "Suspensions that ended by their own text (after every extension), with "
              "no later lift or repeal: what they suspended applies again from the next day, "
              "unless a later decision the rulebook does not know extended them", (
        _c("id", int, "Sequence, by the day it ended", True),
        _c("target", str, "What was suspended"),
        _c("target_kind", str, "rule or instrument, listings (of an instrument), listing"),
        _c("target_name", str, "Rule, instrument or party"),
        _c("target_provision", str, "Provision of the target instrument"),
        _c("suspended_by", str, "The instruments that suspended and extended it, in order"),
        _c("ended", str, "Its last day, by its own text"),
        _c("resumes", str, "The day the target applies again"),
        _c("after_sources", int, "1 when it ended after the day the rulebook's sources were "
                                 "checked through: findings resting on it are lapsed-by-text"),
        _c("caveat", str, "What to check, in words"),
        _c("rulebook", str, "Rulebook"),
    ), pk="id", indexes=(("target_name",), ("resumes",))),
    TableSpec("examples", "Examples written next to the rules (run as tests)", (
        _c("id", int, "Sequence in the rulebook", True),
        _c("title", str, "What the example shows"),
        _c("rules", str, "Rules its expectations name"),
        _c("expectations", str, "Expected outcomes, as written"),
        _c("source_file", str, "Rulebook file"),
        _c("source_line", int, "Line in the rulebook file"),
        _c("source_text", str, "The example as written"),
    ), pk="id"),
    TableSpec("value_ranges", "Typical unit values of goods by customs code (`value range` in the "
              "rulebooks), for the relabelling indicators", (
        _c("name", str, "Value range", True),
        _c("title", str, "Goods"),
        _c("customs_codes", str, "Customs codes it applies to (6, 8 or 10 digits; a declared "
                                 "code takes the range of the longest code it begins with)"),
        _c("low_usd_per_kg", float, "Low end, USD per kg"),
        _c("high_usd_per_kg", float, "High end, USD per kg"),
        _c("instrument_id", str, "Instrument cited, if any"),
        _c("source", str, "Where the range comes from"),
        _c("unverified", str, "What is not verified"),
        _c("rulebook", str, "Rulebook"),
    ), pk="name", fts=("name", "title", "customs_codes")),
    TableSpec("unit_values", "Published unit values by customs code (`excon build "
              "--unit-values`), which take precedence over the rulebooks' indicative ranges", (
        _c("code", str, "Customs code or prefix (4 to 10 digits); a declared code takes the "
                        "value of the longest code it begins with", True),
        _c("low", float, "Low end, in `unit`", True),
        _c("high", float, "High end, in `unit`", True),
        _c("unit", str, "USD/kg or USD/t", True),
        _c("source", str, "Where the values are published", True),
    ), pk="code"),
    TableSpec("unverified_facts", "Facts the rulebooks mark as not confirmed by the sources", (
        _c("id", int, "Sequence", True),
        _c("kind", str, "Kind of entry"),
        _c("entry", str, "Entry name"),
        _c("note", str, "What is not verified"),
        _c("source_file", str, "Rulebook file"),
        _c("source_line", int, "Line"),
    ), pk="id"),
    TableSpec("declared_facts", "Facts the rulebooks declare beyond the declaration's own "
              "columns: each is a column of declarations.csv", (
        _c("name", str, "Fact (the column of declarations.csv)", True),
        _c("title", str, "What it is"),
        _c("type", str, "number in UNIT, percentage, country, text, yes/no, date, or one of …"),
        _c("unit", str, "Unit of a number"),
        _c("choices", str, "Values a choice may take, ';'-separated"),
        _c("aliases", str, "Other column names a file may give it, ';'-separated"),
        _c("read_from", str, "Where its value comes from"),
        _c("rulebook", str, "Rulebook that declares it"),
        _c("source_file", str, "Rulebook file"),
        _c("source_line", int, "Line"),
    ), pk="name"),
    TableSpec("declarations", "Export declaration lines (declarations.csv)", (
        _c("id", str, "Declaration line id", True),
        _c("declared_on", str, "Declaration date (ISO)", True),
        _c("exporter", str, "Exporter", True),
        _c("consignee", str, "Consignee", True),
        _c("consignee_country", str, "Consignee country (ISO alpha-2)", True),
        _c("end_user", str, "End user, if declared"),
        _c("end_user_country", str, "End user country, if declared"),
        _c("destination_country", str, "Destination country (ISO alpha-2)", True),
        _c("hs_code", str, "Customs code, digits only (8 or 10)", True),
        _c("description", str, "Goods description", True),
        _c("quantity_kg", float, "Net quantity, kg", True),
        _c("value_usd", float, "Value, USD", True),
        _c("purity_pct", float, "Declared purity, %"),
        _c("licence_no", str, "Licence number, if any"),
        _c("end_use", str, "Declared end use (e.g. civil, military), if stated"),
        _c("re_content_pct", float, "China-origin rare-earth content, % of the item's value "
                                    "(foreign-made items, MOFCOM-2025-61), if stated"),
        _c("export_country", str, "Country the goods are exported from (ISO alpha-2), when "
                                  "the file mixes jurisdictions; empty: not stated"),
        _c("parameters", str, "Stated item parameters, 'name=value unit' pairs separated by "
                              "';' (canonical units), if stated"),
        *(_c(f.name, float if f.type == "number" else str, f.description)
          for f in DECLARATION_FIELDS if f.is_parameter),
    ), pk="id", indexes=(("hs_code",), ("exporter", "declared_on"), ("consignee",),
                         ("end_user",)),
        public=False),
    TableSpec("licences", "Export licences (licences.csv)", (
        _c("licence_no", str, "Licence number", True),
        _c("kind", str, "individual or general", True),
        _c("holder", str, "Licence holder (exporter)", True),
        _c("agents", str, "Other exporters the licence names (export agents), ';'-separated; "
                          "empty: none"),
        _c("items", str, "Items covered: ';'-separated control or customs codes", True),
        _c("destination_country", str, "Destination (empty: any)"),
        _c("end_user", str, "End user (empty: any)"),
        _c("quantity_kg", float, "Quantity limit, kg (empty: no limit)"),
        _c("value_usd", float, "Value limit, USD (empty: no limit)"),
        _c("valid_from", str, "Valid from (inclusive)", True),
        _c("valid_to", str, "Valid to (inclusive)", True),
    ), pk="licence_no", indexes=(("holder",),), public=False),
    TableSpec("trade_parties", "Facts about trading parties (parties.csv)", (
        _c("name", str, "Party name", True),
        _c("country", str, "Country (ISO alpha-2)"),
        _c("address", str, "Address"),
        _c("phone", str, "Phone"),
        _c("parent", str, "Parent company"),
    ), pk="name", indexes=(("address",), ("phone",), ("parent",)), public=False),
    TableSpec("runs", "Audit of builds and loads", (
        _c("id", int, "Run number", True),
        _c("started_at", str, "When (UTC; SOURCE_DATE_EPOCH when set)"),
        _c("kind", str, "build or load"),
        _c("rulebook_version", str, "Version hash of the rulebooks"),
        _c("software_version", str, "excon version"),
        _c("inputs", str, "Input files with their SHA-256 (JSON)"),
        _c("counts", str, "Rows loaded and rejected per table (JSON)"),
    ), pk="id", public=False),
    TableSpec("rejected_rows", "Input rows that were not loaded, with the reason", (
        _c("id", int, "Sequence", True),
        _c("run_id", int, "Run"),
        _c("file", str, "Input file"),
        _c("line", int, "Line in the file (header is line 1)"),
        _c("column", str, "Column"),
        _c("value", str, "The value found"),
        _c("expected", str, "What was expected"),
        _c("row", str, "The whole row (JSON)"),
        _c("end_line", int, "The row's last line (a quoted field may run over line breaks)"),
        _c("raw", str, "The row as CSV text, every line of it"),
    ), pk="id", foreign_keys=(("run_id", "runs", "id"),), indexes=(("file", "line"),),
        public=False),
)

SPECS = {t.name: t for t in TABLES}
# the rulebook files a knowledge base keeps (path, text): what it was built from
SOURCES_TABLE = "excon_rulebook_sources"

MIGRATIONS = Migrations("excon")


@MIGRATIONS()
def m001_initial_schema(db: Database) -> None:
    """Every table, with keys, indexes and full-text search."""
    for spec in TABLES:
        create_table(db, spec)


@MIGRATIONS()
def m002_optional_declaration_facts(db: Database) -> None:
    """Optional declaration facts: end use (MOFCOM-2024-46 clause 1), China-origin
    rare-earth content (MOFCOM-2025-61) and the export country (rulebooks of other
    jurisdictions). New databases get them from the table spec."""
    have = db.table("declarations").columns_dict
    for name, typ in (("end_use", str), ("re_content_pct", float), ("export_country", str)):
        if name not in have:
            db.table("declarations").add_column(name, typ)
    # listed-party checks probe end users by index
    db.execute("CREATE INDEX IF NOT EXISTS idx_declarations_end_user ON declarations (end_user)")


@MIGRATIONS()
def m003_indicator_reference_data(db: Database) -> None:
    """Reference data of the indicators (issue 6): unit values per customs code, and the
    sources of country groups (processing capacity, transshipment hubs)."""
    if not db.table("value_ranges").exists():
        create_table(db, SPECS["value_ranges"])
    have = db.table("country_groups").columns_dict
    for name in ("source", "unverified"):
        if name not in have:
            db.table("country_groups").add_column(name, str)


@MIGRATIONS()
def m004_screening_indexes(db: Database) -> None:
    """Indexes the checks' candidate sets probe (issue 8): the customs code with the value, the
    quantity and the id (a unit value against the code's range is read from the index alone), the
    destination and end-user countries (country sets), and the export country, mostly absent
    (a partial index of the rows that have one)."""
    db.execute("DROP INDEX IF EXISTS idx_declarations_hs_code")
    db.execute("CREATE INDEX IF NOT EXISTS idx_declarations_hs_code_value "
               "ON declarations (hs_code, value_usd, quantity_kg, id)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_declarations_destination_country "
               "ON declarations (destination_country)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_declarations_end_user_country "
               "ON declarations (end_user_country)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_declarations_export_country "
               "ON declarations (export_country) WHERE export_country IS NOT NULL")


@MIGRATIONS()
def m005_declared_parameters(db: Database) -> None:
    """Stated item parameters (issue 17): the `parameters` column as given, and one column per
    parameter in its own unit, which the items' thresholds read."""
    _add_missing_columns(db, ("declarations", "list_entries"))
    if not db.table("item_controls").exists():
        create_table(db, SPECS["item_controls"])


@MIGRATIONS()
def m006_text_parameters(db: Database) -> None:
    """Stated text parameters (issue 18): the kind of graphite on lines that hold natural and
    artificial graphite, and the control code stated in the remarks (MOFCOM-2025-58); and the
    published unit values that take precedence over the rulebooks' indicative ranges."""
    _add_missing_columns(db, ("declarations", "licences"))
    if not db.table("unit_values").exists():
        create_table(db, SPECS["unit_values"])


@MIGRATIONS()
def m007_lapses(db: Database) -> None:
    """What findings rest on (issue 36): each rulebook's `sources checked through` day, and the
    suspensions that ended by their own text."""
    _add_missing_columns(db, ("rulebooks",))
    if not db.table("lapses").exists():
        create_table(db, SPECS["lapses"])


@MIGRATIONS()
def m008_licence_value_limits(db: Database) -> None:
    """A licence's value limit in USD (issue 37), beside its quantity limit."""
    _add_missing_columns(db, ("licences",))


@MIGRATIONS()
def m009_declared_facts(db: Database) -> None:
    """The facts rulebooks declare (issue 37); their columns are added to `declarations` when
    a rulebook that declares them is installed (`add_fact_columns`)."""
    if not db.table("declared_facts").exists():
        create_table(db, SPECS["declared_facts"])


@MIGRATIONS()
def m010_item_code_rulebooks(db: Database) -> None:
    """Each item's customs codes name the item's rulebook (issue 37): a declared code is
    matched most precisely within each rulebook, so one rulebook's codes never hide
    another's."""
    _add_missing_columns(db, ("item_customs_codes",))


@MIGRATIONS()
def m011_rejected_rows_whole(db: Database) -> None:
    """A rejected row keeps its text and the lines it spans (issue 40): a quote that closes in
    a later row made one rejected row of two, and the second was reported nowhere."""
    _add_missing_columns(db, ("rejected_rows",))


def add_fact_columns(db: Database, facts: Iterable[FieldSpec]) -> None:
    """A column of `declarations` for each declared fact it lacks: REAL for numbers, TEXT for
    the rest (countries, texts, yes/no, dates and choices are stored as text)."""
    have = db.table("declarations").columns_dict
    for f in facts:
        if f.name not in have:
            db.table("declarations").add_column(f.name, float if f.type == "number" else str)


def _add_missing_columns(db: Database, tables: tuple[str, ...]) -> None:
    for table in tables:
        have = db.table(table).columns_dict
        for c in SPECS[table].columns:
            if c.name not in have:
                db.table(table).add_column(c.name, c.type)


def create_table(db: Database, spec: TableSpec) -> None:
    pk = spec.pk if isinstance(spec.pk, str) else list(spec.pk)
    table = db.table(spec.name)
    table.create(
        {c.name: c.type for c in spec.columns},
        pk=pk,
        not_null={c.name for c in spec.columns if c.not_null},
        foreign_keys=list(spec.foreign_keys),
    )
    for cols in spec.indexes:
        table.create_index(list(cols))
    if spec.fts:
        table.enable_fts(list(spec.fts), create_triggers=True, tokenize="unicode61")
