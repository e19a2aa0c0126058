"""The checker: pass 2 over every declaration, the examples, and `check()`, which returns the
resolved rulebook and every diagnostic.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

from dsl import ast
from dsl.check.conditions import example_unit
from dsl.check.time import TimeChecks
from dsl.diagnostics import Diagnostic, did_you_mean
from dsl.findings import BASES
from dsl.rulebook import EXPORT_COUNTRY, CheckedRulebook
from dsl.schema import UNIT_DIMENSIONS, FieldSpec, Schema


class Checker(TimeChecks):
    """One pass to collect names, one to check every declaration against them and the schema."""

    # ------------------------------------------------------------ pass 2: check
    def check(self, files: list[ast.SourceFile]) -> CheckedRulebook:
        self.rb.files = files
        # declarations the parser could not read (their syntax error is reported): a reference
        # to one is not an error of its own, and must not suggest another name
        self.broken = {name for f in files for _, name, _ in f.broken}
        self.collect(files)
        # conditions and examples read the declared facts as fields of the declarations
        for f in self.rb.facts.values():
            self.check_fact(f)
        self.schema = self.rb.schema(self.schema)
        self._expand_groups()
        self._expand_countries()
        for d in self.rb.rulebooks.values():
            self._annotations(d, "rulebook", d.name.name)
            for j in ast.attrs_of(d, ast.Jurisdiction):  # a country, or a union of them
                self.country_code(j.country, groups_allowed=True)
            self.judges(d, d)
            checked = ast.attrs_of(d, ast.SourcesChecked)
            self.at_most_one(checked, "sources checked through")
            for c in checked:
                self.date(c.date)
        for ins in self.rb.instruments.values():
            self.check_instrument(ins)
        for it in self.rb.items.values():
            self.check_item(it)
        for g in self.rb.groups.values():
            self.control_acts(g)
            self._annotations(g, "group", g.name.name)
        for cg in self.rb.country_groups.values():
            self.check_country_group(cg)
        for t in self.rb.terms.values():
            self.required(t, ast.attrs_of(t, ast.Words), "some words", t.name, t.name.span)
            self.belongs_to(t)
        for vr in self.rb.value_ranges.values():
            self.check_value_range(vr)
        for pl in self.rb.lists.values():
            self.check_party_list(pl)
        for p in self.rb.parties.values():
            self.check_party(p)
        for r in self.rb.rules.values():
            self.check_rule(r)
            name = self.rb.rulebook_of(r.span.file)
            self.judges(r, self.rb.rulebooks.get(name) if name else None)
        for e in self.rb.exceptions.values():
            self.check_exception(e)
        for conclusion in self.rb.conclusions.values():
            self.check_conclusion(conclusion)
        for parameter in self.rb.parameters.values():
            self.check_parameter(parameter)
        self.check_amendments()
        self.check_item_periods()
        self.check_conflicts()
        for ex in self.rb.examples:
            self.check_example(ex)
        self.rb.version = _version(files)
        return self.rb

    def judges(self, decl: object, book: ast.RulebookDecl | None) -> None:
        """`judges …`: once, of countries or groups, re-exports only with a jurisdiction, on
        a schema that has the export country."""
        found = ast.attrs_of(decl, ast.Judges)
        self.at_most_one(found, "judges")
        for j in found:
            self.field_ref(ast.Ref(EXPORT_COUNTRY, j.span))
            for m in j.movements:
                if m.place is not None:
                    self.country_code(m.place, groups_allowed=True)
                if m.kind == "re-exports" and (
                        book is None or not ast.attrs_of(book, ast.Jurisdiction)):
                    self.error("E205", "'re-exports' needs the rulebook's jurisdiction: "
                               "re-exports are exports from outside it", m.span,
                               "add `jurisdiction COUNTRY` to the rulebook")

    # ------------------------------------------------------------ examples
    def check_example(self, ex: ast.Example) -> None:
        decls = ast.attrs_of(ex, ast.ExampleDeclaration)
        expects = ast.attrs_of(ex, ast.Expect)
        if not decls:
            self.error("E602", f"example \"{ex.title.value}\" has no declaration", ex.title.span)
        if not expects:
            self.error("E602", f"example \"{ex.title.value}\" expects nothing", ex.title.span,
                       "add a line such as: expect prohibited by RULE")
        for a in ast.attrs_of(ex, ast.AsOf):
            self.date(a.date)
        ids: dict[str, ast.Span] = {}
        for d in decls:
            if d.id is not None:
                if d.id.name in ids:
                    self.error("E201", f"declaration '{d.id.name}' appears twice in this example",
                               d.id.span)
                ids[d.id.name] = d.id.span
            self.example_fields(d.fields, d.span)
            have = {f.name for f in d.fields}
            for needed, words in (("declared_on", "a date (on DATE)"),
                                  ("hs_code", "a customs code (code …)"),
                                  ("destination_country", "a destination (to XX)")):
                if needed not in have:
                    self.error("E205", f"this example declaration needs {words}", d.span)
        licences = {lic.number.name for lic in ast.attrs_of(ex, ast.ExampleLicence)}
        for lic in ast.attrs_of(ex, ast.ExampleLicence):
            self.example_fields(tuple(f for f in lic.fields
                                      if isinstance(f, ast.DeclarationField)), lic.span)
            iv = self.interval(lic, None)
            del iv
        for d in decls:
            for f in d.fields:
                if f.name == "licence_no" and isinstance(f.value, ast.Ref) and \
                        f.value.name not in licences:
                    self.error("E601", f"this example has no licence '{f.value.name}'",
                               f.value.span, did_you_mean(f.value.name, licences))
        for c in ast.attrs_of(ex, ast.Company):
            self.example_fields(c.fields, c.span)
        for x in expects:
            if x.rule is not None and x.rule.name not in self.rb.rules and \
                    x.rule.name not in self.broken:
                self.error("E601", f"the expectation names rule '{x.rule.name}', which is not "
                           "declared", x.rule.span, did_you_mean(x.rule.name, self.rb.rules))
            if x.declaration is not None and x.declaration.name not in ids:
                self.error("E601", f"this example has no declaration '{x.declaration.name}'",
                           x.declaration.span, did_you_mean(x.declaration.name, ids))
            if x.missing is not None:
                self.field_ref(x.missing)
            if x.citing is not None:
                self.citation(x.citing)
            if x.basis is not None and x.basis.name not in BASES:
                self.error("E601", f"'{x.basis.name}' is not a basis", x.basis.span,
                           f"a finding rests on one of: {', '.join(BASES)}")
            if x.outcome == "findings" and x.present:
                self.error("E205", "write 'expect no findings', or name the outcome expected",
                           x.span)

    def example_fields(self, fields: tuple[ast.DeclarationField, ...], span: ast.Span) -> None:
        for f in fields:
            v = f.value
            if f.country is not None:
                self.country_code(f.country)
            if f.name in ("destination_country", "country") and isinstance(v, ast.Ref):
                self.country_code(v)
            elif isinstance(v, ast.DateValue):
                self.date(v)
                spec = self.schema.field(f.name)
                if spec is not None and spec.declared and spec.type != "date":
                    self.error("E401", f"'{f.name}' is {_a(spec)}, not a date", v.span)
            elif isinstance(v, ast.Text) and (spec := self.schema.field(f.name)) is not None \
                    and spec.declared:
                if spec.type == "country":
                    self.country_code(ast.Ref(v.value, v.span))
                elif spec.type != "text":
                    self.error("E401", f"'{f.name}' is {_a(spec)}, not a text", v.span)
                else:
                    self.choice(ast.Ref(f.name, f.span), v)
            elif isinstance(v, ast.Code) and f.name == "hs_code":
                self.customs_code(v)
            elif isinstance(v, ast.ItemList):
                for entry in v.entries:
                    if isinstance(entry, ast.Ref):
                        self.resolve(entry, "item or item group", self.rb.items, self.rb.groups)
                    elif not re.fullmatch(r"\d[A-E]\d{3}.*", entry.text):
                        self.customs_code(entry)
            elif isinstance(v, ast.Quantity):
                spec = self.schema.field(f.name)
                if spec is None and f.name not in ("amount",):
                    self.field_ref(ast.Ref(f.name, f.span))
                if spec is not None and spec.declared and spec.type != "number":
                    self.error("E401", f"'{f.name}' is {_a(spec)}, not a number", v.span)
                dim = UNIT_DIMENSIONS.get(v.unit) if v.unit else None
                if spec is not None and spec.dimension and dim != spec.dimension:
                    self.error("E402", f"'{f.name}' is a {spec.dimension}, not a "
                               f"{dim or 'plain number'}", f.span,
                               f"write the unit, for example {example_unit(spec.dimension)}")
                if dim == "percent" and not Decimal(0) <= v.value <= Decimal(100):
                    self.error("E403", f"{v.value} % is not a percentage between 0 and 100",
                               f.span)
                if f.name == "amount":
                    self.error("E402", f"'{v.unit}' is neither a quantity (kg, t, g) nor a "
                               "value (USD)", f.span)
            elif f.name not in ("kind", "licence_no", "holder", "agents", "consignee", "end_user",
                                "exporter", "description", "address", "phone", "parent",
                                "items") and self.schema.field(f.name) is None:
                self.field_ref(ast.Ref(f.name, f.span))


def _a(spec: FieldSpec) -> str:
    """A declared fact's type in words: 'a number in MPa', 'a date'."""
    if spec.type == "number":
        return f"a number in {spec.unit}"
    if spec.choices:
        return " or ".join(f'"{c}"' for c in spec.choices)
    return f"a {spec.type}"


def _version(files: list[ast.SourceFile]) -> str:
    """The rulebook version: a hash of its declarations (comments and layout do not count)."""
    h = hashlib.sha256()
    for sf in sorted(files, key=lambda f: f.path):
        h.update(repr(sf.declarations).encode("utf-8"))
    return h.hexdigest()[:16]


def check(files: list[ast.SourceFile], schema: Schema) -> tuple[CheckedRulebook, list[Diagnostic]]:
    """Check parsed files against a schema; return the resolved rulebook and every diagnostic."""
    checker = Checker(schema)
    rb = checker.check(files)
    return rb, checker.diags
