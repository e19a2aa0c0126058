"""`POST /-/excon/decide`: an analyst records a decision on a finding (kb.publish.decisions).

Only a logged-in analyst may, from the form on a declaration's page: Datasette's asgi-csrf
checks the form's token against its cookie (and a POST without the cookie is refused here, as
the login form refuses one), the decision is checked (a decision, a reason, a licence for a
release), the finding must be one the served build makes, and the decision is appended to
the log with the analyst's name and the time. The answer is a redirect back to the finding.

A release names a licence of the served knowledge base, and a prohibition (a ban no licence
lifts) cannot be released. A refused form is kept for its analyst (`decision_drafts`) and
shown again, filled in, with why it was refused: nothing typed is lost.
"""

from __future__ import annotations

from typing import Any

from datasette.utils import tilde_encode
from datasette.utils.asgi import Response

from kb.publish.datasette.guard import CSRF_COOKIE
from kb.publish.decisions import DecisionError, record, save_draft, validated
from kb.publish.metadata import DECISIONS_DB


async def decide(request: Any, datasette: Any) -> Response:
    if request.method != "POST":
        return Response.text("Record a decision from the form on a declaration's page.",
                             status=405, headers={"Allow": "POST"})
    if not request.actor:
        return Response.text("Log in as an analyst to record a decision.", status=403)
    if CSRF_COOKIE not in request.cookies:
        return Response.text("The form had expired: reload the page and try again.",
                             status=403)
    if getattr(datasette, "excon_decisions", None) is None:
        return Response.text("This server keeps no decisions.", status=404)
    form = await request.post_vars()
    name, _ = datasette.excon_kb
    declaration = str(form.get("declaration_id") or "")
    back = datasette.urls.row(name, "declarations", tilde_encode(declaration))
    try:
        decision = validated(form)
        found = await datasette.get_database(name).execute(
            "SELECT declaration_id, rule, outcome, explanation, rulebook_version "
            "FROM finding_details WHERE declaration_id = ? AND rule = ? LIMIT 1",
            [decision.declaration_id, decision.rule])
        if not found.rows:
            raise DecisionError(f"the current build makes no finding of rule "
                                f"{decision.rule!r} on declaration {declaration!r}")
        if decision.decision == "released":
            if found.rows[0]["outcome"] == "prohibited":
                raise DecisionError("a prohibition is not lifted by a licence: record it as "
                                    "confirmed, cleared or escalated")
            known = await datasette.get_database(name).execute(
                "SELECT 1 FROM licences WHERE licence_no = ?", [decision.licence_no])
            if not known.rows:
                raise DecisionError(f"there is no licence {decision.licence_no!r} in this "
                                    "knowledge base")
    except DecisionError as e:
        if not declaration:
            return Response.text(f"Not recorded: {e}.", status=400)
        datasette.add_message(request, f"Not recorded: {e}.", datasette.ERROR)
        problem = str(e)

        def keep(conn: Any) -> None:
            with conn:
                save_draft(conn, str(request.actor.get("id")), form, problem)

        await datasette.get_database(DECISIONS_DB).execute_write_fn(keep, block=True)
        return Response.redirect(f"{back}#finding-{tilde_encode(str(form.get('rule') or ''))}")
    finding = dict(found.rows[0])
    actor = str(request.actor.get("id"))

    def append(conn: Any) -> int:
        with conn:  # committed before the answer
            return record(conn, decision, finding, actor)

    await datasette.get_database(DECISIONS_DB).execute_write_fn(append, block=True)
    datasette.add_message(request, f"Decision recorded on {decision.rule}: "
                                   f"{decision.decision}.", datasette.INFO)
    return Response.redirect(f"{back}#finding-{tilde_encode(decision.rule)}")
