"""`excon lsp` with a real LSP client over stdio (pygls): initialize, diagnostics as the text
changes, hover, definition, references, completion and formatting."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from tests.conftest import RULEBOOKS


def _position(text: str, needle: str, offset: int = 0) -> t.Position:
    at = text.index(needle) + offset
    line = text.count("\n", 0, at)
    return t.Position(line, at - (text.rfind("\n", 0, at) + 1))


async def _session(folder: Path) -> dict[str, Any]:
    rules = folder / "rules.excon"
    uri = from_fs_path(str(rules)) or ""
    text = rules.read_text(encoding="utf-8")
    client = LanguageClient("excon-test", "1")
    published: dict[str, list[t.Diagnostic]] = {}
    arrived = asyncio.Event()

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: t.PublishDiagnosticsParams) -> None:
        published[params.uri] = params.diagnostics
        arrived.set()

    async def wait_for_diagnostics() -> list[t.Diagnostic]:
        await asyncio.wait_for(arrived.wait(), 60)
        arrived.clear()
        return published[uri]

    out: dict[str, Any] = {}
    await client.start_io(sys.executable, "-m", "kb.cli", "lsp")
    try:
        init = await client.initialize_async(t.InitializeParams(
            capabilities=t.ClientCapabilities(), root_uri=from_fs_path(str(folder))))
        out["capabilities"] = init.capabilities
        client.initialized(t.InitializedParams())
        # an error: a rule cites an instrument by a misspelt name
        broken = text.replace("per MOFCOM-2024-46 clause 2", "per MOFCOM-2024-64 clause 2", 1)
        client.text_document_did_open(t.DidOpenTextDocumentParams(
            text_document=t.TextDocumentItem(uri=uri, language_id="excon", version=1,
                                             text=broken)))
        out["opened"] = await wait_for_diagnostics()
        # fixed as the analyst types: the error goes
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)]))
        out["fixed"] = await wait_for_diagnostics()
        doc = t.TextDocumentIdentifier(uri=uri)
        at_instrument = _position(text, "per MOFCOM-2024-46 clause 2", 6)
        out["hover"] = await client.text_document_hover_async(t.HoverParams(
            text_document=doc, position=at_instrument))
        out["hover_item"] = await client.text_document_hover_async(t.HoverParams(
            text_document=doc, position=_position(text, "item in us-ban-minerals", 10)))
        out["definition"] = await client.text_document_definition_async(
            t.DefinitionParams(text_document=doc, position=at_instrument))
        out["references"] = await client.text_document_references_async(t.ReferenceParams(
            text_document=doc, position=_position(text, "rule ga-ge-licence", 6),
            context=t.ReferenceContext(include_declaration=False)))
        # completion: provision labels after `per INSTRUMENT `, instruments after `per `
        line = _position(text, "per MOFCOM-2024-46 clause 2").line
        out["complete_provision"] = await client.text_document_completion_async(
            t.CompletionParams(text_document=doc,
                               position=t.Position(line, len("  per MOFCOM-2024-46 "))))
        out["complete_instrument"] = await client.text_document_completion_async(
            t.CompletionParams(text_document=doc, position=t.Position(line, len("  per "))))
        # on a blank indented line inside a rule: a rule's attributes, not an instrument's
        inside = text.replace("  then prohibited\n", "  then prohibited\n  \n", 1)
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[t.TextDocumentContentChangeWholeDocument(text=inside)]))
        await wait_for_diagnostics()
        blank = _position(inside, "  then prohibited\n  \n").line + 1
        out["complete_in_rule"] = await client.text_document_completion_async(
            t.CompletionParams(text_document=doc, position=t.Position(blank, 2)))
        # a hover on a file that was never opened and does not exist: no answer, no error
        nowhere = from_fs_path(str(folder / "missing" / "gone.excon")) or ""
        out["hover_nowhere"] = await client.text_document_hover_async(t.HoverParams(
            text_document=t.TextDocumentIdentifier(uri=nowhere), position=t.Position(0, 0)))
        messy = text.replace("  then prohibited\n", "  then   prohibited  \n", 1)
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=4),
            content_changes=[t.TextDocumentContentChangeWholeDocument(text=messy)]))
        await wait_for_diagnostics()
        out["formatting"] = await client.text_document_formatting_async(
            t.DocumentFormattingParams(
                text_document=doc, options=t.FormattingOptions(tab_size=2,
                                                               insert_spaces=True)))
        out["text"] = text
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        try:
            await asyncio.wait_for(client.stop(), 10)
        except TimeoutError:  # the server did not exit: a failed step above says why
            client._server.kill()
    return out


def test_a_language_server_session(tmp_path: Path) -> None:
    folder = tmp_path / "cn"
    shutil.copytree(RULEBOOKS / "cn-strategic-minerals", folder)
    out = asyncio.run(_session(folder))
    caps = out["capabilities"]
    assert caps.hover_provider and caps.definition_provider and caps.references_provider
    assert caps.document_formatting_provider and caps.completion_provider
    [error] = [d for d in out["opened"] if d.severity == t.DiagnosticSeverity.Error]
    assert error.code == "E202" and "MOFCOM-2024-64" in error.message
    assert "did you mean 'MOFCOM-2024-46'?" in error.message
    assert not out["fixed"]
    hover = out["hover"].contents.value
    assert "MOFCOM-2024-46" in hover and "in force 2024-12-03" in hover
    assert "clause 2" in hover  # its provisions
    item_hover = out["hover_item"].contents.value
    assert "us-ban-minerals" in item_hover
    definition = out["definition"]
    assert definition.uri.endswith("instruments.excon")
    instruments = (folder / "instruments.excon").read_text(encoding="utf-8").split("\n")
    assert instruments[definition.range.start.line].startswith("instrument MOFCOM-2024-46")
    references = out["references"]
    assert references and all(r.uri.endswith(".excon") for r in references)
    assert any(r.uri.endswith("rules.excon") for r in references)
    labels = [i.label for i in out["complete_provision"].items]
    assert {"clause 1", "clause 2", "clause 3"} <= set(labels)
    assert "MOFCOM-2025-72" in [i.label for i in out["complete_instrument"].items]
    in_rule = {i.label for i in out["complete_in_rule"].items}
    assert {"when", "then", "per", "overrides", "if missing"} <= in_rule
    assert not {"title", "issuer", "alias"} & in_rule
    assert out["hover_nowhere"] is None
    [edit] = out["formatting"]
    assert edit.new_text == out["text"]  # the canonical layout is the file as committed


def test_hover_on_an_item_names_the_acts_that_control_it() -> None:
    from dsl.lsp import analyse, hover_text
    from kb.store.schema import declaration_schema

    a = analyse((RULEBOOKS / "cn-strategic-minerals").resolve(), {}, declaration_schema())
    text = hover_text(a, "gallium-metal") or ""
    assert "customs codes 8112929010" in text.replace(".", "")
    assert "controlled 2023-08-01 – 2024-11-30 by MOFCOM-2023-23" in text
    # still controlled: from a day, not "2024-12-01 – by"
    assert "controlled from 2024-12-01 by MOFCOM-2024-51" in text
    rule = hover_text(a, "ga-ge-licence") or ""
    assert "per MOFCOM-" in rule and "per per" not in rule


def test_the_textmate_grammar_is_made_from_the_language_grammar() -> None:
    import json

    from dsl.textmate import keywords, text
    from tests.conftest import ROOT

    shipped = (ROOT / "editors" / "excon.tmLanguage.json").read_text(encoding="utf-8")
    assert shipped == text(), "run: python -m dsl.textmate > editors/excon.tmLanguage.json"
    patterns = json.loads(shipped)["patterns"]
    highlighted = " ".join(p.get("match", "") for p in patterns)
    for word in ("instrument", "rule", "suspend", "alongside", "overrides", "when", "then",
                 "prohibited", "listed"):
        assert word in keywords() and word in highlighted, word
