"""Personas on ``/sandbox``: one click signs a seeded user in at a chosen level (sandbox only).

``POST /sandbox/personas`` — a plain HTML form on ``/sandbox`` with its ``csrf_token``, like every
form of the provider (a state change is never a GET) — with ``username``, ``acr`` (a configured
level or an alias) and optionally ``then=try``. It replaces this browser's provider session with
one at that level (:mod:`provider.sandbox_personas`: every factor of the level verified now),
records a persona sign-in on the step-up timeline, and sends the browser back to ``/sandbox``
(``then=try``: on to the playground, asking for that level, which then issues without a page).

A user who lacks a factor of the level is refused with ``409`` and a page saying what is missing
and how to get it. Registered only in sandbox mode: elsewhere the path is a 404 like any other.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from .. import login, store
from ..app import Provider, current_provider
from ..authn_policy import amr_for
from ..models import User
from ..sandbox_personas import options, refusal, session_factors
from ..sandbox_timeline import Timeline, persona_sign_in
from .errors import error_page
from .interaction import SESSION_COOKIE, set_session_cookie

bp = Blueprint("personas", __name__)


def signed_in(op: Provider) -> dict[str, Any] | None:
    """Who this browser is signed in as at the provider, and at which level (for ``/sandbox``)."""
    with op.db.session() as s:
        row = store.load_session(s, request.cookies.get(SESSION_COOKIE), op.clock.now())
        user = s.get(User, row.user_id) if row else None
    if row is None or user is None:
        return None
    verified = {k: int(v) for k, v in row.factors.items()}
    level = op.policy.level_reached(verified, op.clock.now())
    return {
        "username": user.username,
        "acr": level.value if level else None,
        "factors": sorted(verified, key=lambda f: verified[f]),
    }


def persona_options(op: Provider, user: User) -> list[dict[str, Any]]:
    """The buttons for one user: each level, or why a persona cannot reach it."""
    with op.db.session() as s:
        enrolled = login.enrolled_factors(s, user)
    return [
        {
            "acr": o.level.value,
            "factors": o.factors_text,
            "refusal": None
            if o.available
            else refusal(user.username, o, enrolment=op.config.provider.allow_totp_enrolment),
        }
        for o in options(op.policy.levels, enrolled)
    ]


@bp.post("/sandbox/personas")
def sign_in() -> BaseResponse:
    op = current_provider()
    username = request.form.get("username", "")
    acr = request.form.get("acr", "")
    then = request.form.get("then", "")
    level = op.policy.resolve(acr)
    if level is None:
        known = ", ".join(op.policy.values_supported)
        return error_page(400, "Unknown level", f"The acr {acr!r} is not a level here ({known}).")
    if then not in ("", "try"):
        return error_page(400, "Unknown destination", "then is empty or try (the playground).")
    with op.db.session() as s:
        user = s.scalar(select(User).where(func.lower(User.username) == username.lower()))
        enrolled = login.enrolled_factors(s, user) if username and user else frozenset()
    if not username or user is None:
        return error_page(400, "Unknown user", f"There is no user {username!r} in this sandbox.")
    option = options([level], enrolled)[0]
    if not option.available:
        enrolment = op.config.provider.allow_totp_enrolment
        why = refusal(user.username, option, enrolment=enrolment)
        return error_page(409, "This persona cannot sign in", why)

    now = op.clock.now()
    with op.db.session() as s:
        current = store.load_session(s, request.cookies.get(SESSION_COOKIE), now)
        sid = store.start_session(
            s,
            current,
            user,
            session_factors(level, now),
            now,
            op.config.provider.session_lifetime,
        )
    timeline: Timeline = current_app.extensions["sandbox_timeline"]
    timeline.add(persona_sign_in(now, user.username, level.value, amr_for(level.factors), now))
    if then == "try":
        query = urlencode({"acr_values": level.value, "login_hint": user.username})
        target = f"{url_for('playground.start')}?{query}"
    else:
        target = f"{url_for('sandbox.users')}#personas"
    return set_session_cookie(op, redirect(target, 303), sid)
