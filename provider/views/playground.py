"""The sandbox playground: try logins and step-ups in a browser, no client of your own needed.

Sandbox mode only. ``GET /sandbox/try`` shows a form for the step-up parameters (``acr_values``,
``max_age``, ``prompt``, ``login_hint``, an essential ``acr``; see :mod:`provider.playground_form`),
filled in from its query string, so a link can carry an example. Posting it (with its CSRF token,
like every form here) starts an authorization request for the built-in public client
``sandbox-playground`` (PKCE S256, state, nonce). ``/sandbox/callback`` checks the state, exchanges
the code at ``/token`` exactly as any client would, checks the ID token's nonce, and shows both
tokens decoded (header and claims) with their times readable, above the same form, filled in
with the last request, ready for the next step-up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request, session
from werkzeug.wrappers import Response as BaseResponse

from ..app import current_provider
from ..playground_form import EXAMPLES, PROMPTS, TryForm, readable_times
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
    """The form, filled in from the query string (the examples are such links)."""
    form = TryForm.read(request.args)
    return _render(form=form, errors=form.errors())


@bp.post("/sandbox/try")
def begin() -> BaseResponse:
    op = current_provider()
    form = TryForm.read(request.form)
    errors = form.errors()
    if errors:
        return _render(form=form, errors=errors, status=400)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    session["playground"] = {
        "verifier": verifier,
        "state": state,
        "nonce": nonce,
        "form": form.to_session(),
    }
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": f"{op.issuer}/sandbox/callback",
        "scope": "openid profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **form.parameters(),
    }
    return redirect(f"/authorize?{urlencode(params)}", 303)


@bp.get("/sandbox/callback")
def callback() -> BaseResponse:
    op = current_provider()
    pending = session.pop("playground", None)
    if not pending or request.args.get("state") != pending["state"]:
        return error_page(
            400,
            "Unexpected callback",
            "This sign-in was not started here. Start again from the playground, /sandbox/try.",
        )
    form = TryForm.from_session(pending.get("form"))
    if "error" in request.args:
        return _render(
            form=form,
            error=request.args["error"],
            description=request.args.get("error_description", ""),
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
            form=form,
            error=body.get("error", "token_error"),
            description=body.get("error_description", ""),
        )
    id_claims = op.signer.verify(body["id_token"], typ="JWT")
    access_claims = op.signer.verify(body["access_token"], typ="at+jwt")
    if id_claims is None or access_claims is None or id_claims.get("nonce") != pending["nonce"]:
        return _render(form=form, error="invalid_token", description="the tokens did not verify")
    now = op.clock.now()
    return _render(
        form=form,
        id_token=id_claims,
        tokens=[
            _decoded("ID token", body["id_token"], id_claims, now),
            _decoded("Access token", body["access_token"], access_claims, now),
        ],
    )


def _decoded(title: str, token: str, claims: dict[str, Any], now: int) -> dict[str, Any]:
    """A verified token, for display: its JOSE header and claims as indented JSON, its times."""
    segment = token.split(".", 1)[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return {
        "title": title,
        "header": json.dumps(header, indent=2, ensure_ascii=False),
        "claims": json.dumps(claims, indent=2, ensure_ascii=False),
        "times": readable_times(claims, now),
        "slug": title.split()[0].lower(),
    }


def _render(
    *, form: TryForm, errors: dict[str, str] | None = None, status: int = 200, **context: Any
) -> BaseResponse:
    op = current_provider()
    html = render_template(
        "playground.html",
        form=form,
        errors=errors or {},
        prompts=PROMPTS,
        levels=op.policy.levels,
        acr_values_supported=op.policy.values_supported,
        usernames=[u.username for u in op.config.users],
        examples=[(label, why, f"?{example.query()}") for label, why, example in EXAMPLES],
        readable_times=readable_times,
        now=op.clock.now(),
        **context,
    )
    return BaseResponse(html, status=status, mimetype="text/html")
