"""The facts a rulebook may talk about, described by whoever embeds the language.

`dsl` never imports `kb`: the knowledge base passes a `Schema` describing its declarations table
(and, when it has them, the valid country codes and HS subheadings) to the checker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Dimensions of the units the language knows; a comparison must not mix dimensions.
UNIT_DIMENSIONS: dict[str, str] = {
    "%": "percent",
    "kg": "mass",
    "t": "mass",
    "g": "mass",
    "USD": "money",
    "USD/kg": "money per mass",
    "MPa": "pressure",
    "g/cm3": "density",
    "um": "length",
    "µm": "length",
    "nm": "length",
    "Wh/kg": "specific energy",
    "per cm2": "areal density",
    "days": "duration",
    "ohm cm": "resistivity",
}

# Factors to the base unit of each dimension (kg, µm), so thresholds compare across units.
UNIT_FACTORS: dict[str, float] = {"kg": 1.0, "t": 1000.0, "g": 0.001, "um": 1.0, "µm": 1.0,
                                  "nm": 0.001}

FIELD_TYPES = ("text", "number", "date", "country", "code", "party")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One fact of a declaration: its type, dimension (for numbers), and whether it may be empty."""

    name: str
    type: str
    dimension: str | None = None
    required: bool = False
    description: str = ""
    aliases: tuple[str, ...] = ()
    country_field: str | None = None  # for parties: the field holding their country
    # an item parameter a declaration may state (`parameters` column): a number stored in
    # `parameter_unit`, or a text whose values match the regular expression `parameter_values`
    parameter_unit: str | None = None
    parameter_values: str | None = None
    # a fact a rulebook declares (`fact NAME`): its type as written ("number", "percentage",
    # "country", "text", "yes/no", "date", "one of"), the unit its numbers are in, the values
    # a choice may take, where its value comes from, and the rulebook that declares it
    declared: str | None = None
    unit: str | None = None
    choices: tuple[str, ...] = ()
    read_from: str = ""
    rulebook: str = ""

    @property
    def type_words(self) -> str:
        """A declared fact's type as written: 'number in MPa', 'one of civil, military'."""
        if self.declared == "number":
            return f"number in {self.unit}"
        if self.declared == "one of":
            return "one of " + ", ".join(self.choices)
        return self.declared or self.type

    @property
    def is_parameter(self) -> bool:
        return self.parameter_unit is not None or self.parameter_values is not None


@dataclass(frozen=True, slots=True)
class Schema:
    """What the checker type-checks conditions, examples and explanations against."""

    fields: tuple[FieldSpec, ...]
    party_links: tuple[str, ...] = ("address", "owner", "parent", "phone")
    countries: frozenset[str] | None = None
    hs_subheadings: frozenset[str] | None = None
    window_keys: tuple[str, ...] = ("group", "item")
    _index: dict[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self._index[f.name] = f
            for a in f.aliases:
                self._index[a] = f

    def with_fields(self, extra: tuple[FieldSpec, ...]) -> Schema:
        """This schema with more fields (a rulebook's declared facts); itself when none."""
        if not extra:
            return self
        return Schema(self.fields + extra, self.party_links, self.countries, self.hs_subheadings,
                      self.window_keys)

    def declared(self) -> list[FieldSpec]:
        """The facts rulebooks declare, beyond the declaration's own columns."""
        return [f for f in self.fields if f.declared]

    def field(self, name: str) -> FieldSpec | None:
        return self._index.get(name)

    def names(self) -> list[str]:
        return sorted(self._index)

    def parameters(self) -> list[FieldSpec]:
        """The item parameters a declaration may state."""
        return [f for f in self.fields if f.is_parameter]

    def party_roles(self) -> list[str]:
        return [f.name for f in self.fields if f.type == "party"]
