"""OpenID Connect RP-Initiated Logout 1.0.

§2: the RP sends the user to the ``end_session_endpoint`` with ``id_token_hint``, ``client_id``,
``post_logout_redirect_uri`` and ``state``. §3: the ``post_logout_redirect_uri`` MUST have been
registered for the client, compared exactly. §2: the OP SHOULD ask the user whether to log out —
a logout link anyone can embed must not end a session by itself — so this shows a confirmation
form (with its CSRF token) and logs out on its POST.

The form also has a Cancel: the session is kept, and the browser still goes back to the registered
``post_logout_redirect_uri`` when there is one (the RP asked for its user back, and has ended its
own session anyway; node-oidc-provider does the same). Without one, the page that follows offers
a way back: to the client's registered post-logout page when the client is known, and in the
sandbox to the playground.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from .. import store
from ..app import Provider, current_provider
from .errors import error_page
from .interaction import SESSION_COOKIE

bp = Blueprint("logout", __name__)


@bp.route("/logout", methods=["GET", "POST"])
def end_session() -> BaseResponse:
    op = current_provider()
    values = request.args if request.method == "GET" else request.form
    client_id = values.get("client_id")
    hint = values.get("id_token_hint")
    uri = values.get("post_logout_redirect_uri")
    if hint:
        claims = op.signer.verify(hint, typ="JWT")
        if claims is None:
            return error_page(400, "Invalid logout request", "The id_token_hint is not valid.")
        if client_id and client_id != claims.get("aud"):
            return error_page(
                400, "Invalid logout request", "client_id does not match the id_token_hint."
            )
        client_id = str(claims.get("aud"))
    if uri:
        client = op.issuance.query_client(client_id or "")
        if client is None:
            return error_page(
                400,
                "Invalid logout request",
                "A post_logout_redirect_uri needs client_id or id_token_hint.",
            )
        if uri not in client.row.post_logout_redirect_uris:
            return error_page(
                400,
                "Invalid logout request",
                "The post_logout_redirect_uri is not registered for this client.",
            )
    session["logout"] = {"uri": uri, "state": values.get("state"), "client_id": client_id}
    client = op.issuance.query_client(client_id) if client_id else None
    html = render_template("logout.html", client_name=client.row.name if client else None)
    return Response(html, mimetype="text/html")


@bp.post("/logout/confirm")
def confirm() -> BaseResponse:
    op = current_provider()
    pending = session.pop("logout", None) or {}
    signing_out = request.form.get("action") != "cancel"
    if signing_out:
        with op.db.session() as s:
            store.end_session(s, request.cookies.get(SESSION_COOKIE))
    uri = pending.get("uri")
    response: BaseResponse
    if uri:
        state = pending.get("state")
        target = uri + (("&" if "?" in uri else "?") + urlencode({"state": state}) if state else "")
        response = redirect(target, 303)
    else:
        html = render_template(
            "logged_out.html",
            signed_out=signing_out,
            back=_ways_back(op, pending.get("client_id")),
        )
        response = Response(html, mimetype="text/html")
    if signing_out:
        response.delete_cookie(SESSION_COOKIE)
    return response


def _ways_back(op: Provider, client_id: str | None) -> list[tuple[str, str]]:
    """Links for the page after the logout form: the client's own post-logout page (registered,
    so safe to link to) and, in the sandbox, the playground."""
    links: list[tuple[str, str]] = []
    client = op.issuance.query_client(client_id) if client_id else None
    if client is not None and client.row.post_logout_redirect_uris:
        name = client.row.name or client.client_id
        links.append((f"Back to {name}", client.row.post_logout_redirect_uris[0]))
    if op.config.provider.sandbox:
        links.append(("Sandbox playground: sign in again", url_for("playground.start")))
        links.append(("Sandbox users and their codes", url_for("sandbox.users")))
    return links
