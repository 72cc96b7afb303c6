"""The passkey pages: a sign-in or step-up with a passkey, and creating one inside a step-up.

Each page is a plain form (``csrf_token``, a hidden ``credential`` input, Continue and Cancel)
whose ``data-passkey`` and ``data-passkey-options`` attributes carry the WebAuthn ceremony and
its options (``PublicKeyCredentialRequestOptionsJSON`` / ``...CreationOptionsJSON``). The one
script the pages load, ``/static/passkey.js`` (same origin, never inline: ``script-src 'self'``),
calls ``navigator.credentials.get()`` or ``.create()``, puts ``PublicKeyCredential.toJSON()``
into ``credential`` and submits. Without WebAuthn (or without JavaScript) the page says so, and a
password sign-in is offered where the level allows one. Scripts such as the SDK's
:class:`~client_sdk.authenticators.HeadlessAuthenticator` read the same attributes.

Every page render gives the interaction a new challenge; the posts below hand the response to
:mod:`provider.passkey_login`, which consumes it once, and go back to the interaction.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from .. import passkey_login
from ..app import SCRIPTED_PAGE_CSP, Provider
from ..authn_policy import Authenticate
from ..clients import ClientAdapter
from ..factors import passkey
from ..factors.passkey import PasskeyRefused, RelyingParty
from ..models import Interaction, User
from .interaction import see_other_after_post

bp = Blueprint("passkeys", __name__)
bp.after_request(see_other_after_post)  # their forms are the interaction's, and so are redirects

# Reasons for which the page is for whoever signs in, not for the session's user.
_ANYONE = frozenset({"login_required", "login_hint", "id_token_hint"})


def relying_party(op: Provider) -> RelyingParty:
    """RP ID = the issuer's host, origin = the issuer's origin (``docs/provider.md``)."""
    return RelyingParty.for_issuer(op.issuer)


def _user_verification(factors: tuple[str, ...]) -> str:
    return "required" if "uv" in factors else "preferred"


def _scripted(html: str, status: int) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = SCRIPTED_PAGE_CSP
    return response


def _for_anyone(decision: Authenticate, user: User | None) -> bool:
    return user is None or decision.reason in _ANYONE


def assertion_page(
    op: Provider,
    interaction: Interaction,
    decision: Authenticate,
    user: User | None,
    common: dict[str, Any],
    status: int,
) -> Response:
    """Use a passkey: the user's own (a step-up), or any discoverable one (a sign-in)."""
    anyone = _for_anyone(decision, user)
    with op.db.session() as s:
        allow = None
        if not anyone:
            assert user is not None
            hardware_only = "hwk" in decision.factors
            rows = passkey_login.credentials_of(s, user.id, hardware_only=hardware_only)
            allow = passkey_login.exclude_ids(rows)
        challenge = passkey_login.issue_challenge(s, interaction.id, "get")
    options = passkey.request_options(
        relying_party(op),
        challenge=challenge,
        allow=allow,
        user_verification=_user_verification(decision.factors),
    )
    html = render_template(
        "passkey.html",
        ceremony="get",
        options=json.dumps(options),
        action=url_for("passkeys.assertion", interaction_id=interaction.id),
        user=None if anyone else user,
        # A GET form to the same page with with=password: the password sign-in, for a user
        # without a passkey here yet (who then creates one) or a browser without WebAuthn.
        password_url=url_for("interaction.page", interaction_id=interaction.id)
        if anyone and "pwd" not in decision.target.factors
        else None,
        **common,
    )
    return _scripted(html, status)


def registration_page(
    op: Provider,
    interaction: Interaction,
    decision: Authenticate,
    user: User,
    common: dict[str, Any],
    status: int,
) -> Response:
    """Create a passkey (the user has proved the factors they have: ``authn_policy``)."""
    with op.db.session() as s:
        existing = passkey_login.credentials_of(s, user.id)
        challenge = passkey_login.issue_challenge(s, interaction.id, "create")
    options = passkey.creation_options(
        relying_party(op),
        user_handle=user.subject.encode(),
        username=user.username,
        display_name=user.name or user.username,
        challenge=challenge,
        exclude=passkey_login.exclude_ids(existing),
        user_verification=_user_verification(decision.target.factors),
    )
    html = render_template(
        "passkey.html",
        ceremony="create",
        options=json.dumps(options),
        action=url_for("passkeys.registration", interaction_id=interaction.id),
        user=user,
        password_url=None,
        **common,
    )
    return _scripted(html, status)


def _refused(
    op: Provider, interaction: Interaction, client: ClientAdapter, refusal: PasskeyRefused
) -> BaseResponse:
    """The page again, with the refusal in its alert (``data-error`` = the code)."""
    from .interaction import _decide, _proceed, _render_step

    decision, _, user = _decide(op, interaction)
    if not isinstance(decision, Authenticate):
        return _proceed(op, interaction, client)
    return _render_step(
        op,
        interaction,
        client,
        decision,
        user,
        error=refusal.message,
        error_code=refusal.code,
        status=400 if refusal.code in ("missing", "malformed") else 401,
    )


def _again(interaction: Interaction) -> BaseResponse:
    return redirect(url_for("interaction.page", interaction_id=interaction.id), 303)


@bp.post("/interaction/<interaction_id>/passkey")
def assertion(interaction_id: str) -> BaseResponse:
    """WebAuthn §7.2 for the page's ``get()``; then the interaction's next step."""
    from .interaction import _decide, _factor_verified, _form_step

    step = _form_step(interaction_id)
    if isinstance(step, BaseResponse):
        return step
    op, interaction, client = step
    decision, _, user = _decide(op, interaction)
    if (
        not isinstance(decision, Authenticate)
        or decision.enrol
        or not {"passkey", "uv", "hwk"} & set(decision.factors)
    ):
        return _again(interaction)  # nothing to verify a passkey for: the page says what is
    try:
        with op.db.session() as s:
            verified = passkey_login.authenticate(
                s,
                relying_party(op),
                user=None if _for_anyone(decision, user) else user,
                interaction_id=interaction.id,
                form_value=request.form.get("credential", ""),
                require_uv="uv" in decision.factors,
                # A sign-in with any passkey is a sign-in: who it is decides what level is
                # reachable next (a passkey without hardware attestation reaches phr, not phrh).
                hardware_only="hwk" in decision.factors and not _for_anyone(decision, user),
                now=op.clock.now(),
            )
    except PasskeyRefused as refusal:
        return _refused(op, interaction, client, refusal)
    return _factor_verified(op, interaction, verified.user, verified.factors)


@bp.post("/interaction/<interaction_id>/passkey/register")
def registration(interaction_id: str) -> BaseResponse:
    """WebAuthn §7.1 for the page's ``create()``: store the passkey; creating it proves it."""
    from .interaction import _decide, _factor_verified, _form_step

    step = _form_step(interaction_id)
    if isinstance(step, BaseResponse):
        return step
    op, interaction, client = step
    decision, row, user = _decide(op, interaction)
    if (
        not isinstance(decision, Authenticate)
        or "passkey" not in decision.enrol
        or row is None
        or user is None
    ):
        return _again(interaction)
    try:
        with op.db.session() as s:
            verified = passkey_login.register(
                s,
                relying_party(op),
                user=user,
                interaction_id=interaction.id,
                form_value=request.form.get("credential", ""),
                require_uv="uv" in decision.target.factors,
                now=op.clock.now(),
            )
    except PasskeyRefused as refusal:
        return _refused(op, interaction, client, refusal)
    return _factor_verified(op, interaction, user, verified.factors)
