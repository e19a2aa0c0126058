"""An evaluator of excon's rules, written from `rules.json` and its JSON Schema alone.

It imports nothing of excon (nor any package: the standard library only; a test checks): it is
what another tool would write to judge declarations by
excon's rules without running excon's checks. Its inputs are what `excon prepare` writes for
a bundle (`inputs/*.csv`: the declarations and licences as validated, each licence's items and
agents, every party name with its normalised key) and the document `excon export --format
json` writes. It judges every rule that reads one declaration at a time, with its licences:
items and their control periods, thresholds and the item-choice rule, customs codes and
headings, countries and their groups, comparisons with units and arithmetic, missing facts,
words mentioned, value ranges, parameters, conclusions, the licence walk (each use drawing on
what is left), exceptions and permissions, unknown facts (`if missing`), the act a finding
cites, its basis and caveat, and the explanation's sentence.

Listed parties are judged from the matches `excon prepare` found (`listed_names`: each
declared name's fuzzy match against the lists' spellings, with its score), the lists'
thresholds and the listings' resolved periods. It does not judge the rules that read other
declarations (windows, first-seen dates, unit values learnt from history) or the party graph:
`Evaluator.skipped` names them with the reason.
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

Row = dict[str, Any]
Truth = bool | None

# nodes that read other declarations, the party graph or fuzzy list matches
NOT_JUDGED = {"Window": "reads earlier declarations", "CountOf": "reads earlier declarations",
              "SumOf": "reads earlier declarations", "FirstSeen": "reads earlier declarations",
              "Related": "reads the party graph",
              "ListedParty": "reads the party graph"}
HISTORY_FIELDS = {"code_value_low": "reads unit values learnt from earlier declarations",
                  "code_value_high": "reads unit values learnt from earlier declarations"}
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _and(values: Iterable[Truth]) -> Truth:
    out: Truth = True
    for v in values:
        if v is False:
            return False
        if v is None:
            out = None
    return out


def _or(values: Iterable[Truth]) -> Truth:
    out: Truth = False
    for v in values:
        if v is True:
            return True
        if v is None:
            out = None
    return out


def _nodes(tree: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(tree, Mapping):
        if "node" in tree:
            yield tree
        for v in tree.values():
            yield from _nodes(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _nodes(v)


def mention_forms(word: str) -> list[str]:
    """The forms of a word a text (ASCII letters lower-cased) may hold: rules.json's
    `text_matching` says how."""
    lower = word.lower()
    choices = [tuple(dict.fromkeys((c, c.upper(), c.upper().lower())))
               if not c.isascii() and c.upper() != c and len(c.upper()) == 1 else (c,)
               for c in lower]
    count = 1
    for options in choices:
        count *= len(options)
    if count <= 64:
        return ["".join(p) for p in itertools.product(*choices)]
    upper = "".join(o[1] if len(o) > 1 else o[0] for o in choices)
    refolded = "".join(c.upper().lower() if len(c.upper()) == 1 else c for c in lower)
    return list(dict.fromkeys([lower, upper, refolded, upper[0] + lower[1:]]))


def read_inputs(folder: Path) -> dict[str, list[Row]]:
    """`excon prepare`'s CSV files (a missing value is an unquoted \\N, as the bundles'
    load scripts read it)."""
    out = {}
    for name in ("declarations", "licences", "licence_items", "licence_agent_keys",
                 "party_name_keys", "listed_names", "excon_settings"):
        with (folder / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            out[name] = [{k: (None if v == "\\N" else v) for k, v in row.items()}
                         for row in csv.DictReader(f)]
    return out


class Evaluator:
    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.fields: dict[str, Mapping[str, Any]] = {}
        for f in doc["fields"]:
            for name in (f["field"], *f["aliases"]):
                self.fields[name] = f
        self.facts = {f["name"]: f for f in doc["facts"]}
        self.units = doc["units"]
        self.items = {it["name"]["name"]: it for it in doc["items"]}
        choice = doc["item_choice"]
        self.steps = choice["steps"]
        self.codes_by_rulebook: dict[str, dict[str, list[str]]] = defaultdict(dict)
        for item, codes in doc["customs_codes"].items():
            self.codes_by_rulebook[choice["item_rulebooks"][item]][item] = codes
        self.groups = doc["item_groups"]
        self.country_groups = doc["country_groups"]
        self.country_periods = doc["country_group_periods"]
        self.controls = doc["item_controls"]
        self.terms = doc["terms"]
        self.parameters = {p["name"]: p["values"] for p in doc["parameters"]}
        self.rules = {r["name"]: r for r in doc["rules"]}
        self.listings: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for lp in doc["listing_periods"]:
            self.listings[lp["party"]].append(lp)
        self.thresholds = doc["match_thresholds"]
        self.party_titles = {p["name"]["name"]: p["title"]["value"] for p in doc["parties"]}
        self.skipped = {name: why for name, r in self.rules.items()
                        if (why := self.why_not_judged(r)) is not None}

    # ------------------------------------------------------------ what is judged
    def why_not_judged(self, rule: Mapping[str, Any]) -> str | None:
        ev = rule["evaluation"]
        for tree in (ev["condition"], *(self.rules[s]["evaluation"]["condition"]
                                        for s in ev["suppressed_by"])):
            for node in _nodes(tree):
                if node["node"] in NOT_JUDGED:
                    return NOT_JUDGED[node["node"]]
                if node["node"] == "Field" and node["name"]["name"] in HISTORY_FIELDS:
                    return HISTORY_FIELDS[node["name"]["name"]]
        return None

    # ------------------------------------------------------------ facts
    def items_of(self, code: str) -> list[str]:
        found: set[str] = set()
        for items in self.codes_by_rulebook.values():
            for step in self.steps:
                n = step["reference_digits"]
                hits = {item for item, codes in items.items() for ref in codes if len(ref) == n
                        and (code == ref if step["match"] == "exact" else code.startswith(ref))}
                if hits:
                    found |= hits
                    break
        return sorted(found)

    def members(self, refs: Iterable[Mapping[str, Any]]) -> set[str]:
        out: set[str] = set()
        for r in refs:
            out |= set(self.groups.get(r["name"], [r["name"]] if r["name"] in self.items
                                       else []))
        return out

    def control(self, item: str, day: str) -> Mapping[str, Any] | None:
        return next((c for c in self.controls.get(item, [])
                     if (c["from"] is None or c["from"] <= day)
                     and (c["until"] is None or day <= c["until"])), None)

    def field(self, name: str) -> Mapping[str, Any]:
        return self.fields[name]

    def typed(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        if self.field(name)["type"] == "number":
            return float(value)
        return value

    def value(self, d: Row, name: str) -> Any:
        f = self.field(name)
        column = f["field"]
        if column == "unit_value":
            q, v = self.value(d, "quantity_kg"), self.value(d, "value_usd")
            return None if q in (None, 0) or v is None else v / q
        if column == "exporter_on_licence":
            lic = self.licences.get(d.get("licence_no") or "")
            return None if lic is None else self.exporter_role(lic, d)
        value = self.typed(column, d.get(column))
        fact = self.facts.get(column)
        if fact is not None and fact["unit"] and value is not None:
            value *= self.units[fact["unit"]]["factor"]
        return value

    # ------------------------------------------------------------ conditions
    def truth(self, c: Mapping[str, Any], d: Row, item: str | None, day: str) -> Truth:
        kind = c["node"]
        if kind in ("Parenthesised", "Concluded"):
            return self.truth(c["part"], d, item, day)
        if kind == "AllOf":
            return _and(self.truth(p, d, item, day) for p in c["parts"])
        if kind == "AnyOf":
            return _or(self.truth(p, d, item, day) for p in c["parts"])
        if kind == "Negation":
            v = self.truth(c["part"], d, item, day)
            return None if v is None else not v
        if kind == "Reaches":
            for v in self.parameters[c["parameter"]["name"]]:
                if (v["from"] is None or v["from"] <= day) and \
                        (v["until"] is None or day <= v["until"]):
                    x = self.expression(c["subject"], d)
                    if c.get("of") is None:  # the value itself, in its unit
                        limit = v["value"] * self.units.get(v["unit"] or "",
                                                            {"factor": 1})["factor"]
                    else:  # a percentage of the other number
                        whole = self.expression(c["of"], d)
                        limit = None if whole is None else v["value"] / 100 * whole
                    if x is None or limit is None:
                        return None
                    return self.compare(v["comparator"], x, limit)
            return False
        if kind == "ItemIn":
            result: Truth = False
            if item is not None and item in self.members(c["members"]) and \
                    self.control(item, day) is not None:
                test = next((a for a in self.items[item]["attrs"]
                             if a["node"] == "ControlledIf"), None)
                result = True if test is None else self.truth(test["condition"], d, item, day)
            return (None if result is None else not result) if c["negated"] else result
        if kind == "CodeUnder":
            code = str(self.value(d, c["subject"]["name"]) or "")
            return any(code.startswith(x["text"].replace(".", "")) for x in c["codes"])
        if kind == "InSet" and self.field(c["subject"]["name"])["type"] == "code":
            inside = any(c["any_time"] or self.control(i, day) is not None
                         for i in set(self.items_of(d["hs_code"])) & self.members(c["members"]))
            return not inside if c["negated"] else inside
        if kind == "InSet":
            v = self.value(d, c["subject"]["name"])
            if v is None:
                return None
            inside = False
            for ref in c["members"]:
                name = ref["name"]
                if name in self.country_groups:
                    p = self.country_periods[name]
                    inside |= ((p["from"] is None or p["from"] <= day)
                               and (p["until"] is None or day <= p["until"])
                               and v in self.country_groups[name])
                else:
                    inside |= v == name
            return not inside if c["negated"] else inside
        if kind == "IsMissing":
            missing = self.value(d, c["subject"]["name"]) is None
            return not missing if c["negated"] else missing
        if kind == "Mentions":
            v = self.value(d, c["subject"]["name"])
            if v is None:
                return None
            words = []
            for t in c["terms"]:
                if t["node"] == "Text":
                    words.append(t["value"])
                    continue
                term = self.terms[t["name"]]
                if term["for_items"] is None or any(self.control(i, day) is not None
                                                    for i in term["for_items"]):
                    words += term["words"]
            text = str(v).translate(ASCII_LOWER)
            return any(form in text for w in words for form in mention_forms(w))
        if kind == "Listed":
            v = self.value(d, c["subject"]["name"])
            if v is None:
                return None
            return self.best_listing(c, v, day) is not None
        if kind == "InRange":
            v = self.value(d, c["subject"]["name"])
            if v is None:
                return None
            ranges = self.rule_ranges[",".join(m["name"] for m in c["members"])]
            return any(low <= v <= high and (gate is None or any(
                self.control(i, day) is not None for i in gate)) for low, high, gate in ranges)
        if kind == "Comparison":
            left, right = self.expression(c["left"], d), self.expression(c["right"], d)
            if left is None or right is None:
                return None
            return self.compare(c["op"], left, right)
        raise NotImplementedError(kind)

    def best_listing(self, c: Mapping[str, Any], name: Any, day: str
                     ) -> Mapping[str, Any] | None:
        """The listing in force on `day`, on one of the lists and imposing one of the measures
        the test names, of the party `name` matches best (listed_names: its score at least the
        list's threshold), first by score, then the party's title, list, act, provision."""
        lists = {r["name"] for r in c["lists"]} or set(self.thresholds)
        measures = {m["name"] for m in c["measures"]}
        found = [(-hit["score"], self.party_titles[hit["party"]], lp["list"], lp["instrument"],
                  lp["provision"] or "", lp)
                 for hit in self.listed.get(str(name), ())
                 for lp in self.listings[hit["party"]]
                 if lp["list"] in lists and hit["score"] >= self.thresholds[lp["list"]]
                 and self.in_force(lp["periods"], day)
                 and (not measures or measures & set(lp["measures"]))]
        return min(found, key=lambda f: f[:5])[5] if found else None

    @staticmethod
    def compare(op: str, a: Any, b: Any) -> bool:
        return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "=": a == b,
                "!=": a != b}[op]

    def expression(self, e: Mapping[str, Any], d: Row) -> Any:
        kind = e["node"]
        if kind == "Field":
            return self.value(d, e["name"]["name"])
        if kind == "Quantity":
            return float(e["value"]) * self.units.get(e["unit"] or "", {"factor": 1})["factor"]
        if kind == "DateLiteral":
            return e["date"]["text"]
        if kind == "TextLiteral":
            return e["text"]["value"]
        if kind == "Arithmetic":
            a, b = self.expression(e["left"], d), self.expression(e["right"], d)
            if a is None or b is None or (e["op"] == "/" and b == 0):
                return None
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[e["op"]]
        raise NotImplementedError(kind)

    # ------------------------------------------------------------ licences
    def key(self, name: Any) -> str | None:
        return None if name is None else self.name_keys[str(name)]

    def exporter_role(self, lic: Row, d: Row) -> str:
        exporter = self.key(d["exporter"])
        if self.key(lic["holder"]) == exporter:
            return "holder"
        return "agent" if exporter in self.agent_keys[lic["licence_no"]] else "not named"

    def fits(self, lic: Row, d: Row) -> bool:
        if not lic["valid_from"] <= d["declared_on"] <= lic["valid_to"]:
            return False
        if self.exporter_role(lic, d) == "not named":
            return False
        if lic["destination_country"] not in (None, d["destination_country"]):
            return False
        if lic["end_user"] is not None and (
                d["end_user"] is None or self.key(lic["end_user"]) != self.key(d["end_user"])):
            return False
        items = self.items_of(d["hs_code"])
        controls = {a["code"]["text"] for i in items for a in self.items[i]["attrs"]
                    if a["node"] == "Control"}
        groups = {g for g, members in self.groups.items() if set(members) & set(items)}
        code = d["hs_code"]
        return any(e == code or (len(e) < 10 and code[:len(e)] == e) or e in controls
                   or e in items or e in groups for e in self.licence_items[lic["licence_no"]])

    def licence_cover(self, declarations: list[Row]) -> dict[str, bool]:
        covered: dict[str, bool] = {}
        uses: dict[str, list[Row]] = defaultdict(list)
        for d in declarations:
            if d["licence_no"]:
                uses[d["licence_no"]].append(d)
        for number, rows in uses.items():
            lic = self.licences.get(number)
            kg = usd = 0.0
            for d in sorted(rows, key=lambda r: (r["declared_on"], r["id"])):
                if lic is None or not self.fits(lic, d):
                    covered[d["id"]] = False
                    continue
                limit_kg = self.typed("quantity_kg", lic["quantity_kg"])
                limit_usd = self.typed("value_usd", lic.get("value_usd"))
                q, value = float(d["quantity_kg"]), float(d["value_usd"] or 0)
                ok = (limit_kg is None or kg + q <= limit_kg + 0.0005) and \
                    (limit_usd is None or usd + value <= limit_usd + 0.005)
                if ok:
                    kg, usd = kg + q, usd + value
                covered[d["id"]] = ok
        return covered

    # ------------------------------------------------------------ rules
    def judge(self, inputs: Mapping[str, list[Row]]) -> list[Row]:
        declarations = inputs["declarations"]
        settings = inputs["excon_settings"]
        as_of = settings[0]["as_of"] if settings else None
        self.licences = {lic["licence_no"]: lic for lic in inputs["licences"]}
        self.licence_items: dict[str, list[str]] = defaultdict(list)
        for row in inputs["licence_items"]:
            self.licence_items[row["licence_no"]].append(row["entry"])
        self.agent_keys: dict[str, set[str]] = defaultdict(set)
        for row in inputs["licence_agent_keys"]:
            self.agent_keys[row["licence_no"]].add(row["key"])
        self.name_keys = {row["name"]: row["key"] for row in inputs["party_name_keys"]}
        self.listed: dict[str, list[Row]] = defaultdict(list)
        for row in inputs["listed_names"]:
            self.listed[row["name"]].append({**row, "score": float(row["score"])})
        cover = self.licence_cover(declarations)
        out = []
        for name, rule in self.rules.items():
            ev = rule["evaluation"]
            if rule["kind"] != "rule" or name in self.skipped or ev["outcome"] is None:
                continue
            suppressors = [self.rules[s] for s in ev["suppressed_by"]]
            for d in declarations:
                day = as_of or d["declared_on"]
                if not self.in_force(rule["in_force"], day):
                    continue
                found = self.judge_one(rule, suppressors, d, day, cover)
                if found is not None:
                    out.append(found)
        return sorted(out, key=lambda f: (f["declaration_id"], f["rule"], f["outcome"]))

    @staticmethod
    def in_force(periods: list[list[str | None]], day: str) -> bool:
        return any((a is None or a <= day) and (b is None or day <= b) for a, b in periods)

    def judge_one(self, rule: Mapping[str, Any], suppressors: list[Mapping[str, Any]], d: Row,
                  day: str, cover: Mapping[str, bool]) -> Row | None:
        ev = rule["evaluation"]
        self.rule_ranges = ev["value_ranges"]
        candidates: list[str | None] = [*self.items_of(d["hs_code"])] if ev["per_item"] \
            else []
        best: tuple[int, str, str] | None = None
        for item in candidates or [None]:
            t = self.truth(ev["condition"], d, item, day)
            if ev["licensable"] and cover.get(d["id"], False):
                continue
            if t is False:
                continue
            if t is None and not all(self.value(d, m["field"]) is not None
                                     for m in ev["if_missing"] if m["outcome"] is None):
                continue
            applying = []
            for s in suppressors:
                if self.in_force(s["in_force"], day):
                    self.rule_ranges = s["evaluation"]["value_ranges"]
                    applying.append(self.truth(s["evaluation"]["condition"], d, item, day))
            self.rule_ranges = ev["value_ranges"]
            if any(x is True for x in applying):
                continue
            maybe = any(x is None for x in applying)
            if t and maybe:
                outcome = "undetermined"
            elif t:
                outcome = ev["outcome"]
            else:
                outcome = "undetermined"
                for m in ev["if_missing"]:
                    if m["outcome"] is not None and self.value(d, m["field"]) is None:
                        outcome = m["outcome"]
            candidate = (0 if t and not maybe else 1, item or "", outcome)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        if best is None:
            return None
        item = best[1] or None
        instrument, provision = ev["citation"]["instrument"], ev["citation"]["provision"]
        required = ev["required_items"]
        for test in ev["cites_listing"] or ():
            v = self.value(d, test["subject"]["name"])
            listing = self.best_listing(test, v, day) if v is not None else None
            if listing is not None:
                instrument, provision = listing["instrument"], listing["provision"]
                break
        if ev["cites_control"] and item is not None and (required is None or item in required):
            act = self.control(item, day)
            if act is not None:
                instrument, provision = act["instrument"], act["provision"]
        basis, caveat = self.basis(rule["basis"], day, instrument, provision, item)
        return {"declaration_id": d["id"], "rule": rule["name"], "outcome": best[2],
                "severity": ev["severity"], "instrument": instrument, "provision": provision,
                "basis": basis, "caveat": caveat,
                "sentence": self.sentence(rule["explanation"], d, item, instrument, provision)}

    @staticmethod
    def basis(plan: Mapping[str, Any], day: str, instrument: str | None,
              provision: str | None, item: str | None) -> tuple[str, str | None]:
        lapse = next((t["caveat"] for t in plan["lapses"] if day >= t["resumes"] and (
            t["instrument"] is None or (instrument == t["instrument"] and (
                t["provision"] is None or provision == t["provision"])))), None)
        unverified = plan["rule_unverified"] or plan["items_unverified"].get(item or "") or \
            plan["acts_unverified"].get(instrument or "")
        caveat = f"{lapse} {unverified}" if lapse and unverified else (lapse or unverified)
        return ("lapsed-by-text" if lapse else "unverified" if unverified else "settled"), caveat

    def sentence(self, explanation: Mapping[str, Any], d: Row, item: str | None,
                 instrument: str | None, provision: str | None) -> str:
        """The explanation's sentence (its notes, which follow, are not written here)."""
        text = explanation["sentence"]
        for name in explanation["placeholders"]:
            if name == "item_title":
                v = self.items[item]["title"]["value"] if item else "an item"
            elif name == "control_code":
                v = next((a["code"]["text"] for a in self.items[item]["attrs"]
                          if a["node"] == "Control"), "?") if item else "?"
            else:
                v = d.get(name if name == "id" else self.field(name)["field"])
            text = text.replace("{" + name + "}", "(not declared)" if v is None else str(v))
        if explanation["act_citation"] and instrument:
            text += f" ({instrument}{' ' + provision if provision else ''})"
        return text
