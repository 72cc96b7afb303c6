"""The sandbox playground: try logins and step-ups in a browser, no client of your own needed.

Sandbox mode only. ``/sandbox/try`` starts an authorization request for the built-in public
client ``sandbox-playground`` (PKCE S256, state, nonce) with the ``acr_values``, ``max_age`` and
``prompt`` you choose; ``/sandbox/callback`` checks the state, exchanges the code at ``/token``
exactly as any client would, and shows the tokens' ``acr``, ``amr`` and ``auth_time``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request, session
from werkzeug.wrappers import Response as BaseResponse

from ..app import current_provider
from ..settings import ClientConfig
from .errors import error_page

bp = Blueprint("playground", __name__)

CLIENT_ID = "sandbox-playground"


def playground_client(issuer: str) -> ClientConfig:
    return ClientConfig(
        client_id=CLIENT_ID,
        name="Sandbox playground",
        redirect_uris=(f"{issuer}/sandbox/callback",),
        scope="openid profile email",
        grant_types=("authorization_code",),
    )


@bp.get("/sandbox/try")
def start() -> BaseResponse:
    op = current_provider()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    session["playground"] = {"verifier": verifier, "state": state, "nonce": nonce}
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": f"{op.issuer}/sandbox/callback",
        "scope": "openid profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    for name in ("acr_values", "max_age", "prompt", "login_hint"):
        if request.args.get(name):
            params[name] = request.args[name]
    return redirect(f"/authorize?{urlencode(params)}", 303)


@bp.get("/sandbox/callback")
def callback() -> BaseResponse:
    op = current_provider()
    pending = session.pop("playground", None)
    if not pending or request.args.get("state") != pending["state"]:
        return error_page(400, "Unexpected callback", "Start again from /sandbox/try.")
    if "error" in request.args:
        return _render(
            error=request.args["error"], description=request.args.get("error_description", "")
        )
    # Exchange the code at the token endpoint, as a client would (through the whole stack).
    with current_app.test_client() as http:
        response = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": request.args.get("code", ""),
                "redirect_uri": f"{op.issuer}/sandbox/callback",
                "client_id": CLIENT_ID,
                "code_verifier": pending["verifier"],
            },
        )
    body: dict[str, Any] = response.get_json(silent=True) or {}
    if response.status_code != 200:
        return _render(
            error=body.get("error", "token_error"), description=body.get("error_description", "")
        )
    id_token = op.signer.verify(body["id_token"], typ="JWT") or {}
    access = op.signer.verify(body["access_token"], typ="at+jwt") or {}
    return _render(id_token=id_token, access_token=access, now=op.clock.now())


def _render(**context: Any) -> BaseResponse:
    context.setdefault("now", current_provider().clock.now())
    html = render_template("playground.html", when=_when, **context)
    return BaseResponse(html, mimetype="text/html")


def _when(epoch: int, now: int) -> str:
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")
    return f"{stamp} ({now - epoch} s ago)"
