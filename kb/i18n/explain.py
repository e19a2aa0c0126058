"""A finding's explanation in Chinese.

The compiled checks write each finding's sentence in English: the rule's sentence (its
`explain` template, or the standard "ITEM (code CODE) to COUNTRY on DAY: TITLE"), the act it
cites in brackets, then notes, each "; …" in one of a few standard forms (the licence, a
window's count or sum, a listed party matched, a first-seen date, a word mentioned, a link
between parties, a unit-value range, what is missing). The Chinese sentence is made from the
same finding: the rule's sentence is read back against its English template (which gives the
facts it was filled with), written again from the rule's `explain zh` template or the standard
Chinese one (the item's Chinese name, the rule's `title zh`, its outcome's `then … zh`), and
each note is put in its standard Chinese form. A note in no standard form is kept as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

from dsl.compile.explanation import STANDARD_DECLARATION, STANDARD_ITEMS

DEFAULT_ITEMS_ZH = "{item_title}（海关编码 {hs_code}）于 {declared_on} 出口至 {destination_country}"
DEFAULT_DECLARATION_ZH = "报关单 {id} 于 {declared_on} 出口至 {destination_country}"
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

PROVISION_ZH = {"article": "第{}条", "clause": "第{}款", "paragraph": "第{}项", "part": "第{}部分",
                "annex": "附件{}", "section": "第{}节", "entry": "第{}目"}
# the facts and roles the notes name
WORDS_ZH = {
    "consignee": "收货人", "exporter": "出口商", "end user": "最终用户", "end use": "最终用途",
    "description": "货物描述", "destination country": "目的国", "destination_country": "目的国",
    "consignee_country": "收货人所在国", "end_user_country": "最终用户所在国", "group": "物项组",
    "item": "物项", "quantity_kg": "数量", "value_usd": "金额", "unit value": "单价",
    "unit_value": "单价", "hs_code": "海关编码", "licence_no": "许可证号", "end_user": "最终用户",
    "end_use": "最终用途", "purity_pct": "纯度", "origin": "原产地", "parameters": "技术参数",
}
LICENCE_ZH = [
    (re.compile(r"^none declared$"), "未申报"),
    (re.compile(r"^licence (?P<no>.+?) quantity exhausted: (?P<rest>.*)$"),
     "许可证 {no} 数量已用尽：{rest}"),
    (re.compile(r"^licence (?P<no>.+?) value exhausted: (?P<rest>.*)$"),
     "许可证 {no} 金额已用尽：{rest}"),
    (re.compile(r"^licence (?P<no>.+?) is held by another exporter and does not name this one$"),
     "许可证 {no} 由其他出口商持有，且未列明本出口商"),
]


def word(text: str) -> str:
    return WORDS_ZH.get(text.strip(), text.strip())


def words(text: str) -> str:
    return "、".join(word(w) for w in text.split(", "))


def provision_zh(provision: str | None) -> str:
    if not provision:
        return ""
    kind, _, label = provision.partition(" ")
    return PROVISION_ZH[kind].format(label) if kind in PROVISION_ZH and label else provision


def _licence(m: re.Match[str]) -> str:
    problem = m.group("problem")
    for pattern, zh in LICENCE_ZH:
        found = pattern.match(problem)
        if found:
            return "；许可证：" + zh.format(**found.groupdict())
    return "；许可证：" + problem


def _window(m: re.Match[str]) -> str:
    what = "报关单数" if m.group("agg") == "count" else f"{word(m.group('field'))}合计"
    value = m.group("value").replace(" kg", " 千克").replace(" USD", " 美元")
    return f"；{m.group('days')} 天内同一{words(m.group('keys'))}的{what}：{value}"


# each standard note's English form, and how to write it in Chinese
NOTES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"; licence: (?P<problem>.*?)(?=; |$)"), _licence),
    (re.compile(r"; (?P<agg>count|sum) of (?:(?P<field>\w+) over )?declarations within "
                r"(?P<days>\d+) days with same (?P<keys>[^:;]+): (?P<value>[^;]*?)(?=; |$)"),
     _window),
    (re.compile(r"; (?P<who>[\w ]+?) matches (?P<name>.+?) on (?P<list>\S+) \(listed by "
                r"(?P<ins>[^;)]+)(?:; (?P<measure>[^;]+))?; as '(?P<alias>.*?)', score "
                r"(?P<score>[\d.]+)\)(?=; |$)"),
     lambda m: (f"；{word(m['who'])}与清单 {m['list']} 上的 {m['name']} 匹配（由 {m['ins']} 列入"
                + (f"；措施 {m['measure']}" if m["measure"] else "")
                + f"；匹配名称“{m['alias']}”，得分 {m['score']}）")),
    (re.compile(r"; (?P<who>[\w ]+?) first seen on (?P<day>\d{4}-\d\d-\d\d)(?=; |$)"),
     lambda m: f"；{word(m['who'])}首次出现于 {m['day']}"),
    (re.compile(r"; (?P<who>[\w ]+?) mentions '(?P<w>.*?)' \((?P<t>[^;]*)\)(?=; |$)"),
     lambda m: f"；{word(m['who'])}提及“{m['w']}”（{m['t']}）"),
    (re.compile(r"; (?P<who>[\w ]+?) is linked to a party on (?P<list>\S+) \(listed by "
                r"(?P<ins>[^)]+)\) within (?P<n>\d+) hops?: (?P<path>[^;]*?)(?=; |$)"),
     lambda m: (f"；{word(m['who'])}在 {m['n']} 层关联内与清单 {m['list']} 上的当事方相连"
                f"（由 {m['ins']} 列入）：{m['path']}")),
    (re.compile(r"; (?P<who>[\w ]+?) is linked to (?P<other>[\w ]+?) within (?P<n>\d+) "
                r"hops?: (?P<path>[^;]*?)(?=; |$)"),
     lambda m: f"；{word(m['who'])}与{word(m['other'])}在 {m['n']} 层关联内相连：{m['path']}"),
    (re.compile(r"; (?P<who>[\w ]+?) inside the range of (?P<t>.+?) \((?P<lo>[\d.]+) to "
                r"(?P<hi>[\d.]+) USD/kg\)(?=; |$)"),
     lambda m: f"；{word(m['who'])}处于 {m['t']} 的区间内（{m['lo']} 至 {m['hi']} 美元/千克）"),
    (re.compile(r"; cannot be judged, missing:(?P<what>[^;]*)(?=; |$)"),
     lambda m: "；无法判定，缺少：" + "、".join(word(w) for w in m["what"].split())),
    (re.compile(r"; cannot be judged: a fact it needs is missing(?=; |$)"),
     lambda m: "；无法判定：缺少所需事实"),
    (re.compile(r"; cannot be judged: (?P<kind>exception|permission) (?P<name>\S+) may apply"
                r"(?:, missing:(?P<what>[^;]*))?(?=; |$)"),
     lambda m: (f"；无法判定：{'例外' if m['kind'] == 'exception' else '许可规则'} {m['name']} "
                "可能适用" + ("，缺少：" + "、".join(word(w) for w in m["what"].split())
                          if m["what"] else ""))),
]


@dataclass(frozen=True)
class RuleWords:
    title: str | None = None
    title_zh: str | None = None
    explain: str | None = None
    explain_zh: str | None = None
    outcome_zh: str | None = None


@dataclass
class ChineseWords:
    """What the rulebook says in Chinese: each rule's wording, each item's Chinese name (by
    its English title, as the English sentence names it)."""

    rules: dict[str, RuleWords] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rules: Iterable[Mapping[str, object]],
                  items: Iterable[Mapping[str, object]]) -> ChineseWords:
        """From the knowledge base's `rules` and `items` rows (or rows like them)."""
        def text(row: Mapping[str, object], key: str) -> str | None:
            value = row.get(key)
            return str(value) if value else None

        return cls(
            {str(r["name"]): RuleWords(text(r, "title"), text(r, "title_zh"), text(r, "explain"),
                                       text(r, "explain_zh"), text(r, "outcome_zh"))
             for r in rules},
            {str(i["title"]): str(i["title_zh"]) for i in items
             if i.get("title") and i.get("title_zh")})


@cache
def _template_regex(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """The English sentence a template makes, as a regex: the facts it was filled with are its
    groups (f0, f1, …, in the order of `names`), then the act cited, then the notes."""
    parts: list[str] = []
    names: list[str] = []
    pos = 0
    for m in PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[pos:m.start()]))
        parts.append(f"(?P<f{len(names)}>.*?)")
        names.append(m.group(1).strip())
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return (re.compile("^" + "".join(parts) + r"(?: \((?P<cite>[^()]*)\))?(?P<tail>(?:; .*)?)$",
                       re.S), tuple(names))


def _fill(template: str, facts: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: facts.get(m.group(1).strip(), m.group(0)), template)


def notes_zh(tail: str) -> str:
    """Each "; …" note in its standard Chinese form (as written when it has none)."""
    out, pos = [], 0
    while pos < len(tail):
        for pattern, zh in NOTES:
            m = pattern.match(tail, pos)
            if m:
                out.append(zh(m))
                pos = m.end()
                break
        else:  # no standard form: up to the next note, as written
            nxt = tail.find("; ", pos + 2)
            end = len(tail) if nxt < 0 else nxt
            out.append("；" + tail[pos + 2:end] if tail.startswith("; ", pos) else tail[pos:end])
            pos = end
    return "".join(out)


def explanation_zh(words: ChineseWords, rule: str, explanation: str | None,
                   declaration: Mapping[str, object] | None = None) -> str:
    """The finding's explanation in Chinese. `declaration`: its facts, for an `explain zh`
    template that names a fact the English sentence does not."""
    if not explanation:
        return explanation or ""
    said = words.rules.get(rule, RuleWords())
    title = said.title or rule
    candidates = [said.explain] if said.explain else [
        STANDARD_ITEMS + ": " + title[:1].lower() + title[1:],
        STANDARD_DECLARATION + ": " + title[:1].lower() + title[1:]]
    for template in candidates:
        assert template is not None
        pattern, names = _template_regex(template)
        m = pattern.match(explanation)
        if m:
            break
    else:  # not a sentence of this rule's (another rulebook version): the notes only
        return notes_zh(explanation) if explanation.startswith("; ") else explanation
    facts = {str(k): str(v) for k, v in (declaration or {}).items() if v is not None}
    facts.update({name: m.group(f"f{n}") for n, name in enumerate(names)})
    if "item_title" in facts:
        facts["item_title"] = words.items.get(facts["item_title"], facts["item_title"])
    default = DEFAULT_ITEMS_ZH if "hs_code" in facts and "item_title" in facts \
        else DEFAULT_DECLARATION_ZH
    if said.explain_zh:
        head = _fill(said.explain_zh, facts)
    else:
        head = _fill(default, facts) if all(
            n in facts for n in PLACEHOLDER.findall(default)) else ""
        head += ("：" if head else "") + (said.title_zh or title)
        if said.outcome_zh:
            head += f"，{said.outcome_zh}"
    cite = m.group("cite")
    if cite:
        ins, _, provision = cite.partition(" ")
        head += f"（{ins}{' ' + provision_zh(provision) if provision else ''}）"
    return head + notes_zh(m.group("tail"))
