"""Analysts' decisions on findings: recorded through the declaration page's form by a logged-in
analyst only, appended to a log nobody can rewrite, kept in a file of their own that rebuilds
never touch, carried forward when a rebuild makes the same finding, flagged for review when
its explanation changed, and exported."""

from __future__ import annotations

import html
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from kb.build import build
from kb.publish.decisions import DecisionError, connect, current, record, validated
from tests.conftest import RULEBOOKS
from tests.serving import Server
from tests.test_serve import query


def _finding(db: Path) -> tuple[str, str, str]:
    [row] = query(db, "SELECT declaration_id, rule, explanation FROM finding_details "
                      "WHERE outcome = 'prohibited' ORDER BY declaration_id, rule LIMIT 1")
    return row


def _decide(server: Server, declaration: str, fields: dict[str, str],
            opener: Any = None) -> tuple[int, dict[str, str], str]:
    _, _, page = server.request(f"/kb/declarations/{declaration}", opener=opener)
    token = re.search(r'name="csrftoken" value="([^"]+)"', page)
    form = {"csrftoken": token.group(1) if token else "", "declaration_id": declaration,
            **fields}
    return server.request("/-/excon/decide", urllib.parse.urlencode(form).encode(),
                          opener=opener)


def _text(page: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))


def _copy(demo_kb: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    """A copy of the demo knowledge base to rebuild, and the input files it was built from."""
    db = tmp_path / "kb.db"
    shutil.copy(demo_kb, db)
    return db, [demo_kb.parent / "demo" / f for f in
                ("declarations.csv", "licences.csv", "parties.csv")]


def _sighup(server: Server) -> None:
    before = set(server.workers())
    server.proc.send_signal(signal.SIGHUP)
    server.wait_until(lambda: not (set(server.workers()) & before)
                      and len(server.workers()) == 1)


def test_a_decision_is_recorded_survives_rebuilds_and_is_exported(demo_kb: Path,
                                                                 tmp_path: Path) -> None:
    db, inputs = _copy(demo_kb, tmp_path)
    declaration, rule, explanation = _finding(db)
    server = Server(db)
    try:
        # an anonymous visitor sees neither the page nor a way to decide, and cannot post
        status, _, _ = _decide(server, declaration, {"rule": rule, "decision": "cleared",
                                                     "reason": "looks fine"})
        assert status == 403
        assert server.login()[0] == 302
        page = server.get(f"/kb/declarations/{declaration}")[1]
        assert "No decision yet." in page and 'action="/-/excon/decide"' in page
        # no reason: refused, nothing recorded, the analyst is told why
        status, _, _ = _decide(server, declaration, {"rule": rule,
                                                           "decision": "confirmed"})
        assert status == 302
        assert "give the reason" in _text(server.get(f"/kb/declarations/{declaration}")[1])
        # a release needs the licence it is released under
        _decide(server, declaration, {"rule": rule, "decision": "released", "reason": "ok"})
        assert "name the licence" in _text(server.get(f"/kb/declarations/{declaration}")[1])
        # a finding the build does not make cannot be decided
        _decide(server, declaration, {"rule": "no-such-rule", "decision": "cleared",
                                      "reason": "x"})
        assert "makes no finding" in _text(server.get(f"/kb/declarations/{declaration}")[1])
        # a forged post without the form's token is refused by the CSRF check
        forged = urllib.parse.urlencode({"declaration_id": declaration, "rule": rule,
                                         "decision": "cleared", "reason": "forged"})
        assert server.request("/-/excon/decide", forged.encode())[0] == 403
        status, headers, _ = _decide(server, declaration, {
            "rule": rule, "decision": "cleared", "reason": "Goods were returned unshipped"})
        assert status == 302 and headers["location"].endswith(f"#finding-{rule}")
        text = _text(server.get(f"/kb/declarations/{declaration}")[1])
        assert "cleared (false positive) by analyst" in text
        assert "Goods were returned unshipped" in text
        assert "carried forward" not in text and "Review" not in text

        # the same build again: the decision stays with its finding
        build(db, [RULEBOOKS], *inputs)
        _sighup(server)
        text = _text(server.get(f"/kb/declarations/{declaration}")[1])
        assert "Goods were returned unshipped" in text and "carried forward" not in text

        # rulebooks of another version that make the same finding: carried forward
        changed = tmp_path / "rulebooks"
        shutil.copytree(RULEBOOKS, changed)
        other = changed / "us-ear-3c001" / "rulebook.excon"  # another rulebook's title
        other.write_text(other.read_text(encoding="utf-8").replace(
            '3C001 hetero-epitaxial materials"', '3C001 hetero-epitaxial materials, reviewed"'),
            encoding="utf-8")
        build(db, [changed], *inputs)
        _sighup(server)
        text = _text(server.get(f"/kb/declarations/{declaration}")[1])
        assert "Goods were returned unshipped" in text
        assert "carried forward: this build makes the same finding" in text
        assert "Review" not in text
        decisions = json.loads(server.get("/decisions/decisions.json?_shape=array")[1])
        assert [(d["declaration_id"], d["rule"], d["decision"], d["actor"]) for d in decisions] \
            == [(declaration, rule, "cleared", "analyst")]
        assert json.loads(server.get("/decisions/to_review.json?_shape=array")[1]) == []
    finally:
        server.stop()

    # the log is append-only, even for someone with the file
    conn = sqlite3.connect(tmp_path / "kb.decisions.db")
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        conn.execute("UPDATE decision_log SET decision = 'confirmed'")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM decision_log")
    conn.close()
    out = subprocess.run([sys.executable, "-m", "kb.cli", "decisions", "--db", str(db),
                          "--format", "json"], capture_output=True, text=True, check=True)
    [exported] = json.loads(out.stdout)
    assert exported["reason"] == "Goods were returned unshipped"
    assert exported["explanation"] == explanation


def test_a_decision_whose_explanation_changed_is_flagged_for_review(demo_kb: Path,
                                                                    tmp_path: Path) -> None:
    from kb.publish.auth import hash_password
    from kb.publish.serve import datasette_app, snapshot
    from tests.test_serve import get

    declaration, rule, explanation = _finding(demo_kb)
    decisions = tmp_path / "decisions.db"
    with connect(decisions) as conn:
        record(conn, validated({"declaration_id": declaration, "rule": rule,
                                "decision": "confirmed", "reason": "seen the invoice"}),
               {"declaration_id": declaration, "rule": rule, "rulebook_version": "old",
                "outcome": "prohibited", "explanation": "the facts as they were"}, "maria")
    with snapshot(demo_kb) as served:
        ds = datasette_app(served, {"analyst": hash_password("a long passphrase")},
                           decisions=decisions)
        text = _text(get(ds, f"/kb/declarations/{declaration}", {"id": "analyst"}).text)
        assert "confirmed by maria" in text
        assert "Review: the explanation has changed since the decision." in text
        assert "the facts as they were" in text
        review = get(ds, "/decisions/to_review.json?_shape=array", {"id": "analyst"}).json()
        assert [(r["declaration_id"], r["why"], r["explanation_now"]) for r in review] == [
            (declaration, "explanation changed", explanation)]
        # a decision links to the knowledge base's declaration and rule pages
        page = get(ds, "/decisions/to_review", {"id": "analyst"}).text
        assert f'href="/kb/declarations/{declaration}"' in page
        assert f'href="/kb/rules/{rule}"' in page
        assert get(ds, "/decisions/decision_log.json").status_code == 403  # analysts only
        # the findings nobody decided on come 100 a page, in order, none twice
        [(total,)] = query(demo_kb, "SELECT COUNT(*) FROM finding_details")
        pages = [get(ds, f"/decisions/undecided.json?_shape=array&outcome=&page={p}",
                     {"id": "analyst"}).json() for p in ("", 2, 3)]
        assert [len(p) for p in pages] == [min(100, max(0, total - 1 - k * 100))
                                           for k in range(3)]
        keys = [(r["declaration_id"], r["rule"]) for p in pages for r in p]
        assert len(keys) == len(set(keys)) and (declaration, rule) not in keys
        # drafts of refused forms are nobody's page
        assert get(ds, "/decisions/decision_drafts.json",
                   {"id": "analyst"}).status_code == 403


def test_a_decision_needs_a_choice_a_reason_and_for_a_release_a_licence() -> None:
    with pytest.raises(DecisionError, match="choose a decision"):
        validated({"decision": "maybe", "reason": "x"})
    with pytest.raises(DecisionError, match="give the reason"):
        validated({"decision": "cleared", "reason": "   "})
    with pytest.raises(DecisionError, match="name the licence"):
        validated({"decision": "released", "reason": "x"})
    released = validated({"decision": "released", "reason": "x", "licence_no": " L-1 "})
    assert released.licence_no == "L-1"
    assert validated({"decision": "cleared", "reason": "x", "licence_no": "L-1"}
                     ).licence_no is None
    finding = {"rule": "r", "rulebook_version": "v2", "explanation": "e"}
    rows = [{"id": 1, "rule": "r", "decision": "confirmed", "rulebook_version": "v1",
             "explanation": "e"},
            {"id": 2, "rule": "r", "decision": "escalated", "rulebook_version": "v1",
             "explanation": "f"}]
    standing = current(rows, finding)
    assert standing is not None
    assert (standing["decision"], standing["carried"], standing["review"]) == (
        "escalated", True, True)
    assert current(rows, {**finding, "rule": "other"}) is None


def test_a_build_records_the_findings_new_since_the_last_one(demo_kb: Path,
                                                             tmp_path: Path) -> None:
    """After a list change, the re-screening queue: what appeared, disappeared or changed."""
    db, inputs = _copy(demo_kb, tmp_path)
    build(db, [RULEBOOKS], *inputs)
    assert query(db, "SELECT COUNT(*) FROM finding_changes") == [(0,)]  # nothing changed
    # a rulebook without the listings of MOFCOM-2025-1 (28 US entities): their findings go
    changed = tmp_path / "rulebooks"
    shutil.copytree(RULEBOOKS, changed)
    parties = changed / "cn-strategic-minerals" / "parties.excon"
    line = "  listed on control-list per MOFCOM-2025-1 from 2025-01-02\n"
    text = parties.read_text(encoding="utf-8")
    assert line in text
    parties.write_text(text.replace(line, ""), encoding="utf-8")
    before = {(d, r) for d, r in query(db, "SELECT declaration_id, rule FROM finding_details")}
    build(db, [changed], *inputs, force=True)
    after = {(d, r) for d, r in query(db, "SELECT declaration_id, rule FROM finding_details")}
    changes = query(db, "SELECT change, declaration_id, rule FROM finding_changes")
    assert {(d, r) for c, d, r in changes if c == "disappeared"} == before - after
    assert {(d, r) for c, d, r in changes if c == "appeared"} == after - before
    assert before - after


def test_a_refused_decision_keeps_what_was_typed_and_a_release_needs_a_real_licence(
        demo_kb: Path, tmp_path: Path) -> None:
    """A release under a licence the knowledge base does not have, or of a prohibition, is
    refused; the form comes back filled in with the analyst's reason and why it was refused,
    and a decision recorded afterwards clears it."""
    db, _ = _copy(demo_kb, tmp_path)
    [(declaration, rule)] = query(db, "SELECT declaration_id, rule FROM finding_details "
                                      "WHERE outcome = 'unlicensed' ORDER BY 1, 2 LIMIT 1")
    banned, banned_rule, _ = _finding(db)
    [(licence,)] = query(db, "SELECT licence_no FROM licences ORDER BY 1 LIMIT 1")
    reason = "Licence shown at the border; 已核对"
    server = Server(db)
    try:
        assert server.login()[0] == 302
        status, _, _ = _decide(server, declaration, {
            "rule": rule, "decision": "released", "licence_no": "NO-SUCH-LICENCE",
            "reason": reason})
        assert status == 302
        page = server.get(f"/kb/declarations/{declaration}")[1]
        assert "there is no licence 'NO-SUCH-LICENCE' in this knowledge base" in _text(page)
        assert f">{html.escape(reason)}</textarea>" in page  # the reason is kept
        assert 'value="NO-SUCH-LICENCE"' in page and 'value="released" selected' in page
        # a prohibition is not released under any licence
        _decide(server, banned, {"rule": banned_rule, "decision": "released",
                                 "licence_no": licence, "reason": "has a licence"})
        assert "a prohibition is not lifted by a licence" in _text(
            server.get(f"/kb/declarations/{banned}")[1])
        assert json.loads(server.get("/decisions/decision_log.json?_shape=array")[1]) == []
        # with a licence the knowledge base has, the release is recorded and the draft is gone
        status, _, _ = _decide(server, declaration, {
            "rule": rule, "decision": "released", "licence_no": licence, "reason": reason})
        assert status == 302
        page = server.get(f"/kb/declarations/{declaration}")[1]
        assert f"released under a licence ({licence}) by analyst" in _text(page)
        assert "Not recorded" not in _text(page)
        assert f">{html.escape(reason)}</textarea>" not in page
    finally:
        server.stop()
