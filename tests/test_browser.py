"""The published knowledge base in a real headless browser (Debian's chromium, driven by
Playwright), against a real `excon serve` process on loopback.

Screenshots are kept under test-artifacts/browser/ for people to look at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kb.build import build
from kb.inputs.demo import generate, write
from kb.publish.auth import hash_password
from tests.conftest import ROOT, RULEBOOKS
from tests.postgres import free_port

# end to end (a server, a browser, a knowledge base built for them): `make test` and CI run
# them, `make test-fast` does not
pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
PASSWORD = "a long analyst passphrase"
# Chromium as root, offline: no sandbox, no background traffic to hosts it cannot reach.
SHOT_HEIGHT = 6000
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[str]
    db: Path
    inputs: list[Path]

    def workers(self) -> set[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(pid) for pid in path.read_text().split()}

    def rebuild_and_reload(self) -> None:
        """`excon build` over the served file, then SIGHUP: new workers on the new build."""
        build(self.db, [RULEBOOKS], *self.inputs)
        before = self.workers()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while self.workers() & before or not self.workers():
            assert time.monotonic() < deadline, "the workers were not replaced"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("browser")
    write(generate(2000, 3, [RULEBOOKS]), folder / "demo")
    db = folder / "kb.db"
    inputs = [folder / "demo" / f for f in ("declarations.csv", "licences.csv", "parties.csv")]
    build(db, [RULEBOOKS], *inputs)
    port = free_port()
    env = dict(os.environ, EXCON_CREDENTIALS=f"analyst:{hash_password(PASSWORD)}")
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--db", str(db),
                             "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise RuntimeError(f"excon serve did not start:\n{out}") from None
                time.sleep(0.2)
        yield Served(base, proc, db, inputs)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(served: Served) -> str:
    return served.base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make system-deps`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A browser page that records console errors and failed requests."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console",
                      lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str) -> None:
        """A picture of the page for the reviewer, its top SHOT_HEIGHT pixels at most. The
        viewport is stretched to the picture's height for the shot: a full-page picture,
        even clipped, makes Chromium lay out and paint the whole page (the rulebook document
        is 58,000 pixels tall: 13 s here, over the 30 s timeout on a loaded machine); a
        stretched viewport takes half a second."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height = self.page.evaluate("document.documentElement.scrollHeight")
        size = self.page.viewport_size
        self.page.set_viewport_size({"width": size["width"],
                                     "height": max(size["height"], min(height, SHOT_HEIGHT))})
        try:
            self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        finally:
            self.page.set_viewport_size(size)

    def decide(self, outcome: str, decision: str, reason: str, licence: str = "") -> str:
        """On the page of the first declaration with a finding of `outcome`, the first
        finding's form filled in and sent; the declaration's id."""
        self.open(f"/kb/finding_details?outcome={outcome}&_size=1")
        declaration: str = self.page.locator("td.col-declaration_id a").first.inner_text()
        self.open(f"/kb/declarations/{declaration}")
        form = self.page.locator("table.excon-findings form").first
        form.locator("select[name=decision]").select_option(decision)
        if licence:
            form.locator("input[name=licence_no]").fill(licence)
        form.locator("textarea[name=reason]").fill(reason)
        form.locator("input[type=submit]").click()
        self.page.wait_for_load_state("networkidle")
        return declaration

    def login(self) -> None:
        self.open("/-/login")
        self.page.fill("input[name=username]", "analyst")
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("input[type=submit]")
        self.page.wait_for_load_state("networkidle")


def test_anonymous_visitor_browses_reference_data_and_searches_items(browser: Any,
                                                                     server: str) -> None:
    p = Page(browser, server)
    p.open("/")
    assert "excon" in p.page.title()
    assert p.page.locator("text=Declarations, licences and findings need a login").count() == 1
    p.shot("home")
    p.open("/kb/items")
    p.page.fill("input#_search", "germanium")
    p.page.press("input#_search", "Enter")
    p.page.wait_for_load_state("networkidle")
    assert "_search=germanium" in p.page.url
    titles = p.page.locator("table.rows-and-columns td.col-title").all_inner_texts()
    assert titles and all("ermanium" in t for t in titles)
    p.shot("items-search")
    p.open("/kb/rules/us-critical-minerals-ban")
    assert p.page.locator("h1").first.inner_text().startswith("Rule us-critical-minerals-ban")
    timeline = p.page.locator("ol.excon-timeline li").all_inner_texts()
    assert any("suspended" in t and "MOFCOM-2025-72" in t for t in timeline)
    p.page.click("text=Show the SQL")
    assert p.page.locator("pre.excon-sql").is_visible()
    p.shot("rule-page-anonymous")
    # the rules table: long sources and conditions scroll inside their cells (the page was
    # 28,000 pixels tall), and facet labels wrap between words
    p.open("/kb/rules?_facet=instrument_id")
    height = p.page.evaluate("document.documentElement.scrollHeight")
    assert height < 12_000, height
    assert p.page.locator("td.col-source_text .excon-clamp").count() > 0
    assert p.page.evaluate("getComputedStyle(document.querySelector("
                           "'.facet-info ul.tight-bullets li')).wordBreak") == "normal"
    assert p.open("/kb/declarations").status == 403
    assert not [e for e in p.errors if "403" not in e], p.errors
    p.context.close()


def test_analyst_logs_in_and_sees_a_declarations_findings(browser: Any, server: str) -> None:
    p = Page(browser, server)
    p.login()
    assert p.page.locator("text=analyst").count() >= 1
    p.open("/kb/rules/ga-ge-licence")
    first = p.page.locator(".excon-rule table.rows-and-columns a[href*='/declarations/']").first
    declaration = first.inner_text()
    p.shot("rule-page-analyst")
    p.open(f"/kb/declaration_findings?declaration_id={declaration}&as_of=")
    cells = p.page.locator("table.rows-and-columns td").all_inner_texts()
    assert declaration in cells and "ga-ge-licence" in cells
    p.shot("declaration-findings")
    p.open("/-/dashboards/findings")
    p.page.wait_for_selector("svg, canvas", timeout=15_000)
    p.shot("dashboard")
    assert p.errors == [], p.errors
    p.context.close()


def test_rulebook_document_renders_and_prints(browser: Any, tmp_path: Path) -> None:
    from kb.documents.html import write as write_docs

    page_file = write_docs(RULEBOOKS / "cn-strategic-minerals", tmp_path)
    p = Page(browser, "")
    p.open(page_file.as_uri())
    assert p.page.locator("h1").inner_text().startswith("China")
    bars = p.page.locator(".tl-row").count()
    assert bars >= 15
    # the timeline's bars have a width: the layout did not collapse
    box = p.page.locator(".tl-row .tl-seg.suspended").first.bounding_box()
    assert box is not None and box["width"] > 20
    p.shot("rulebook-document")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "rulebook-document.pdf"
    p.page.emulate_media(media="print")
    p.page.pdf(path=str(pdf), format="A4", print_background=True)
    assert pdf.read_bytes().count(b"/Type /Page") > 10  # several printed pages
    assert p.errors == [], p.errors
    p.context.close()


def test_analyst_follows_a_finding_to_its_declaration_rule_and_instrument(
        browser: Any, server: str) -> None:
    p = Page(browser, server)
    p.login()
    findings = "/kb/finding_details?instrument__notblank=1&_size=10"
    p.open(findings)
    assert p.page.locator("dl.column-descriptions").is_hidden()  # tooltips instead
    assert p.page.locator("th.col-explanation").get_attribute("title")
    row = p.page.locator("table.rows-and-columns tbody tr").first
    box = row.bounding_box()
    assert box is not None and box["height"] < 160, box  # a readable row, not 470 px
    assert p.page.locator("th.col-Link, th.col-rowid").count() == 0
    p.shot("findings-table")
    cells = {c: row.locator(f"td.col-{c}").inner_text() for c in
             ("declaration_id", "rule", "instrument")}
    row.locator("td.col-declaration_id a").click()
    p.page.wait_for_load_state("networkidle")
    assert p.page.url.endswith(f"/kb/declarations/{cells['declaration_id']}")
    assert p.page.locator("h1").first.inner_text() == f"Declaration {cells['declaration_id']}"
    assert cells["rule"] in p.page.locator("table.excon-findings").inner_text()
    p.shot("declaration-page")
    for column, table in (("rule", "rules"), ("instrument", "instruments")):
        p.open(findings)
        p.page.locator("table.rows-and-columns tbody tr").first.locator(
            f"td.col-{column} a").click()
        p.page.wait_for_load_state("networkidle")
        assert p.page.url.endswith(f"/kb/{table}/{cells[column]}"), p.page.url
        assert cells[column] in p.page.locator("h1").first.inner_text()
    assert p.errors == [], p.errors
    p.context.close()


def test_searching_a_chinese_character_finds_gallium(browser: Any, server: str) -> None:
    p = Page(browser, server)
    p.open("/kb/items")
    p.page.fill("input#_search", "镓")
    p.page.press("input#_search", "Enter")
    p.page.wait_for_load_state("networkidle")
    titles = p.page.locator("table.rows-and-columns td.col-title").all_inner_texts()
    assert len(titles) >= 5 and all("allium" in t for t in titles), titles
    chinese = p.page.locator("table.rows-and-columns td.col-title_zh").all_inner_texts()
    assert all("镓" in t for t in chinese)
    p.shot("search-chinese")  # with Debian's Noto CJK: characters, not boxes
    assert p.errors == [], p.errors
    p.context.close()


def test_a_decision_is_recorded_and_survives_a_rebuild(browser: Any, served: Served) -> None:
    p = Page(browser, served.base)
    p.login()
    declaration = p.decide("prohibited", "escalated", "Consignee's address matches a listed agent")
    decided = p.page.locator("table.excon-findings .excon-decision").first.inner_text()
    assert "escalated by analyst" in decided
    assert "Consignee's address matches a listed agent" in decided
    p.shot("decision-recorded")
    served.rebuild_and_reload()
    p.open(f"/kb/declarations/{declaration}")
    decided = p.page.locator("table.excon-findings .excon-decision").first.inner_text()
    assert "escalated by analyst" in decided and "Review" not in decided
    p.open("/decisions/decision_log")
    assert "Consignee's address matches a listed agent" in p.page.content()
    # the decision facet of the log, and the decision column of the findings table
    p.page.locator("#facet-decision a", has_text="escalated").first.click()
    p.page.wait_for_load_state("networkidle")
    assert set(p.page.locator("td.col-decision").all_inner_texts()) == {"escalated"}
    p.open(f"/kb/finding_details?declaration_id={declaration}")
    statuses = p.page.locator("table.rows-and-columns td.col-decision").all_inner_texts()
    rules = p.page.locator("table.rows-and-columns td.col-rule").all_inner_texts()
    assert "escalated" in statuses and len(statuses) == len(rules)
    assert set(statuses) <= {"escalated", "undecided"}
    p.shot("findings-decision-column")
    assert p.errors == [], p.errors
    p.context.close()
    anonymous = Page(browser, served.base)
    anonymous.open("/kb/finding_details")  # no decision column for a visitor (403 anyway)
    assert anonymous.page.locator("td.col-decision").count() == 0
    anonymous.context.close()
    # an anonymous visitor sees no form and cannot post one
    anonymous = Page(browser, served.base)
    assert anonymous.open(f"/kb/declarations/{declaration}").status == 403
    assert anonymous.page.locator("form[action$='/-/excon/decide']").count() == 0
    answer = anonymous.page.request.post(
        served.base + "/-/excon/decide",
        form={"declaration_id": declaration, "rule": "x", "decision": "cleared",
              "reason": "anonymous"})
    assert answer.status == 403
    anonymous.context.close()


def test_in_force_on_agrees_with_the_rule_timeline_on_suspension_boundaries(
        browser: Any, server: str) -> None:
    import datetime as dt

    p = Page(browser, server)
    p.open("/kb/rules/us-critical-minerals-ban")
    segments = []  # (first day or "", last day or "", status), as the rule page shows them
    for li in p.page.locator("ol.excon-timeline li").all():
        first, last = (d.strip() for d in li.locator(".excon-dates").inner_text().split("–"))
        segments.append((first if first[:1].isdigit() else "",
                         last if last[:1].isdigit() else "",
                         li.locator("strong").inner_text()))
    assert [s[2] for s in segments] == ["in force", "suspended", "in force"]
    boundaries = set()
    for day in {d for first, last, _ in segments for d in (first, last) if d}:
        d = dt.date.fromisoformat(day)
        boundaries |= {d - dt.timedelta(days=1), d, d + dt.timedelta(days=1)}
    for day in sorted(boundaries):
        iso = day.isoformat()
        # before the first day the rule did not exist yet: no row at all
        expected = [status for first, last, status in segments
                    if (not first or first <= iso) and (not last or iso <= last)]
        p.open(f"/kb/in_force_on?date={iso}&_size=max")
        shown = [r.locator("td.col-status").inner_text()
                 for r in p.page.locator("table.rows-and-columns tbody tr").all()
                 if r.locator("td.col-name").inner_text() == "us-critical-minerals-ban"]
        assert shown == expected, (iso, shown, segments)
    assert p.errors == [], p.errors
    p.context.close()


def test_party_search_finds_a_misspelt_name_under_each_minimum_score(browser: Any,
                                                                     server: str) -> None:
    """The canned query's form, filled in and run: 'Lockhed Martn' (92.9) is found with no
    minimum, 0 and 80, and not with 95 (the text parameter was compared with a number, and
    every minimum found nothing)."""
    p = Page(browser, server)
    for minimum, found in (("", True), ("0", True), ("80", True), ("95", False)):
        p.open("/kb/party_search")
        p.page.fill("input[name=name]", "Lockhed Martn")
        p.page.fill("input[name=min_score]", minimum)
        p.page.locator("form.sql input[type=submit]").first.click()
        p.page.wait_for_load_state("networkidle")
        parties = p.page.locator("table.rows-and-columns td.col-party").all_inner_texts()
        assert ("lockheed-martin" in parties) is found, (minimum, parties)
        if found:
            score = float(p.page.locator("table.rows-and-columns td.col-score").first
                          .inner_text())
            assert score >= float(minimum or 60)
    p.shot("party-search")
    assert p.errors == [], p.errors
    p.context.close()


def test_the_search_box_leads_a_misspelt_name_to_the_party_search_and_finds_gallium(
        browser: Any, server: str) -> None:
    p = Page(browser, server)
    p.open("/")
    p.page.fill("form.excon-search input[name=q]", "Lockhed Martn")
    p.page.press("form.excon-search input[name=q]", "Enter")
    p.page.wait_for_load_state("networkidle")
    p.page.get_by_text("listed parties it resembles").click()
    p.page.wait_for_load_state("networkidle")
    parties = p.page.locator("table.rows-and-columns td.col-party").all_inner_texts()
    assert parties[:1] == ["lockheed-martin"], parties
    p.open("/")
    p.page.fill("form.excon-search input[name=q]", "镓")
    p.page.press("form.excon-search input[name=q]", "Enter")
    p.page.wait_for_load_state("networkidle")
    items = p.page.locator("ul.excon-search-results a").all_inner_texts()
    assert "gallium-metal" in items, items
    p.shot("search-box-gallium")
    assert p.errors == [], p.errors
    p.context.close()


def test_a_release_under_an_unknown_licence_is_refused_and_keeps_the_typed_reason(
        browser: Any, served: Served) -> None:
    p = Page(browser, served.base)
    p.login()
    reason = "Licence shown at the border; 已核对"
    p.decide("unlicensed", "released", reason, licence="NO-SUCH-LICENCE")
    form = p.page.locator("table.excon-findings form").first
    assert "there is no licence 'NO-SUCH-LICENCE'" in \
        form.locator(".excon-draft-problem").inner_text()
    assert form.locator("textarea[name=reason]").input_value() == reason
    assert form.locator("input[name=licence_no]").input_value() == "NO-SUCH-LICENCE"
    assert form.locator("select[name=decision]").input_value() == "released"
    p.shot("release-refused")
    p.open("/decisions/decision_log")
    assert "NO-SUCH-LICENCE" not in p.page.content()  # nothing was recorded
    assert p.errors == [], p.errors
    p.context.close()


def test_licence_balances_and_findings_page_and_facet(browser: Any, server: str) -> None:
    """licence_balances comes a page at a time (it stopped at 2,000 on one page); the
    findings page facets by severity, and a facet value filters the rows."""
    p = Page(browser, server)
    p.login()
    p.open("/kb/licence_balances")
    first = p.page.locator("table.rows-and-columns td.col-licence_no").all_inner_texts()
    total = int(p.page.locator("h3").first.inner_text().split()[0].replace(",", ""))
    assert 0 < len(first) < total  # a page of them, and the count of all
    p.page.get_by_text("Next page").click()
    p.page.wait_for_load_state("networkidle")
    second = p.page.locator("table.rows-and-columns td.col-licence_no").all_inner_texts()
    assert second and not set(second) & set(first)
    p.open("/kb/finding_details")
    facet = p.page.locator("#facet-severity")
    assert facet.count() == 1
    facet.locator("a", has_text="high").first.click()
    p.page.wait_for_load_state("networkidle")
    severities = p.page.locator("table.rows-and-columns td.col-severity").all_inner_texts()
    assert severities and set(severities) == {"high"}, severities
    p.shot("findings-severity-facet")
    assert p.errors == [], p.errors
    p.context.close()


def test_a_findings_page_in_english_and_in_chinese_and_the_choice_is_remembered(
        browser: Any, server: str) -> None:
    """The language switch in the header: a declaration's page (its findings, their outcomes
    and explanations) in English, then in Chinese from the rulebook's own Chinese wording;
    the choice stays for the next page, and switches back."""
    p = Page(browser, server)
    p.login()
    p.open("/kb/finding_details?rule=ga-ge-licence&_size=1")
    declaration = p.page.locator("td.col-declaration_id a").first.inner_text()
    p.open(f"/kb/declarations/{declaration}")
    row = p.page.locator("tr#finding-ga-ge-licence")
    english = row.locator("td.col-explanation").inner_text()
    assert "need a licence" in english and "licence: " in english, english
    assert p.page.locator("h2", has_text="Licence draw-down").count() == 1
    assert row.locator(".excon-outcome").inner_text() == "unlicensed"
    p.shot("finding-page-en")
    p.page.locator(".excon-lang a[hreflang=zh]").click()
    p.page.wait_for_load_state("networkidle")
    assert p.page.url.endswith(f"/kb/declarations/{declaration}")  # back on the same page
    row = p.page.locator("tr#finding-ga-ge-licence")
    assert row.count() == 1, p.page.content()[:2000]  # not an error page
    chinese = row.locator("td.col-explanation").inner_text()
    assert "镓、锗相关物项出口须经许可" in chinese and "许可证：" in chinese, chinese
    assert row.locator(".excon-outcome").inner_text() == "未经许可"
    assert p.page.locator("h2", has_text="许可证额度使用").count() == 1
    assert p.page.locator("th", has_text="说明").count() == 1
    p.shot("finding-page-zh")
    assert p.page.locator("html").get_attribute("lang") == "zh"
    p.open("/kb/finding_details?rule=ga-ge-licence&_size=5")  # the findings table too
    cells = p.page.locator("td.col-explanation").all_inner_texts()
    assert cells and all("镓、锗相关物项出口须经许可" in c for c in cells), cells
    p.open("/kb/rules/ga-ge-licence")  # remembered on the next page
    assert "镓、锗相关物项出口须经许可" in p.page.locator("h1").inner_text()
    assert p.page.locator("h2", has_text="法律依据").count() == 1
    p.open("/kb/instruments/MOFCOM-2024-46")  # an instrument by its Chinese title
    assert "商务部公告2024年第46号" in p.page.locator("article h1").inner_text()
    assert p.page.locator("h2", has_text="条款").count() == 1
    p.open("/-/dashboards/findings")  # the dashboard
    p.page.wait_for_selector("svg, canvas", timeout=15_000)
    assert p.page.locator("h1").inner_text() == "发现趋势"
    assert p.page.locator("text=按结果统计的每月发现").count() == 1
    p.open("/")
    assert p.page.locator("h2", has_text="近期变化").count() == 1
    p.page.locator(".excon-lang a[hreflang=en]").click()
    p.page.wait_for_load_state("networkidle")
    assert p.page.locator("h2", has_text="What changed recently").count() == 1
    assert p.page.locator("html").get_attribute("lang") == "en"
    assert p.errors == [], p.errors
    p.context.close()
