"""Sandbox conveniences, registered only when ``[provider] sandbox = true``.

- ``GET /sandbox``: the users, their seeded passwords, their factors and their current TOTP codes
  (``Accept: application/json``: the same without the passwords, which the page's script reads to
  keep the codes current).
- ``POST /sandbox/token``: mint an access token with a chosen ``acr`` and ``auth_time`` (JSON body
  ``{"username": "alice", "acr": "urn:stepup:loa:2", "auth_time": 1700000000, "scope": "..."}``),
  to test an API's step-up rules without the login pages. Tokens are real, signed and recorded,
  so the API, introspection and revocation treat them like any other.

Never enable it on a provider real users depend on: it hands out tokens to anyone who asks.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from ..app import SCRIPTED_PAGE_CSP, current_provider
from ..authn_policy import amr_for
from ..clients import ClientAdapter
from ..factors import totp
from ..models import Client, User
from ..tokens import AuthContext

bp = Blueprint("sandbox", __name__)


@bp.record_once
def _exempt_from_csrf(state: BlueprintSetupState) -> None:
    # The minting endpoint is called by scripts and tests with a JSON body, not by the provider's
    # own forms: there is no page to carry a CSRF token. (The sandbox hands out tokens to anyone
    # anyway; see the module docstring.)
    state.app.extensions["csrf"].exempt(mint)


SANDBOX_CLIENT = "sandbox-minter"


@bp.get("/sandbox")
def users() -> BaseResponse:
    op = current_provider()
    now = op.clock.now()
    with op.db.session() as s:
        rows = list(s.scalars(select(User).order_by(User.username)))
    listing: list[dict[str, Any]] = [
        {
            "username": u.username,
            "factors": ["pwd", "otp"] if u.totp_secret else ["pwd"],
            "code": totp.code_at(u.totp_secret, now) if u.totp_secret else None,
            "seconds_left": totp.PERIOD - now % totp.PERIOD if u.totp_secret else None,
        }
        for u in rows
    ]
    # HTML for browsers (and */*), JSON for scripts that ask for it.
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return jsonify(users=listing)
    passwords = {u.username: u.password for u in op.config.users}
    shown = [{**u, "password": passwords.get(u["username"])} for u in listing]
    refresh = min((u["seconds_left"] for u in listing if u["seconds_left"]), default=totp.PERIOD)
    html = render_template("sandbox.html", users=shown, levels=op.policy.levels, refresh=refresh)
    response = Response(html, mimetype="text/html")
    # The one page with a script: it keeps the codes current (static/sandbox.js).
    response.headers["Content-Security-Policy"] = SCRIPTED_PAGE_CSP
    return response


def _error(description: str) -> BaseResponse:
    response = jsonify(error="invalid_request", error_description=description)
    response.status_code = 400
    return response


@bp.post("/sandbox/token")
def mint() -> BaseResponse:
    op = current_provider()
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("send a JSON object")
    username, acr = body.get("username"), body.get("acr")
    if not isinstance(username, str) or not isinstance(acr, str):
        return _error("username and acr are required strings")
    level = op.policy.resolve(acr)
    if level is None:
        return _error(f"unknown acr {acr!r}; known: {', '.join(op.policy.values_supported)}")
    now = op.clock.now()
    auth_time = body.get("auth_time", now)
    if isinstance(auth_time, bool) or not isinstance(auth_time, int) or auth_time > now:
        return _error("auth_time must be an integer epoch time, not in the future")
    scope = body.get("scope", "openid")
    if not isinstance(scope, str):
        return _error("scope must be a string")
    amr = body.get("amr") or list(level.factors)
    if not isinstance(amr, list) or not all(isinstance(a, str) for a in amr):
        return _error("amr must be a list of strings")
    with op.db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    if user is None:
        return _error(f"no user {username!r}")
    client = ClientAdapter(
        Client(
            client_id=SANDBOX_CLIENT,
            redirect_uris=[],
            post_logout_redirect_uris=[],
            grant_types=[],
            scope=scope,
        )
    )
    amr_claim = amr_for(amr)
    token = op.issuance.issue(
        client=client,
        user=user,
        scope=scope,
        context=AuthContext(acr, amr_claim, auth_time),
        nonce=None,
        family=None,
        code_id=None,
    )
    token.pop("id_token", None)
    response = jsonify(token)
    response.headers["Cache-Control"] = "no-store"
    return response
