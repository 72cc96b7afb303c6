"""Sandbox conveniences, registered only when ``[provider] sandbox = true``.

- ``GET /sandbox``: the users, their seeded passwords, their factors and their current TOTP codes
  (``Accept: application/json``: the same without the passwords, which the page's script reads to
  keep the codes current), and the sandbox switches that relax a check
  (``sandbox_allow_totp_reuse``, ``sandbox_loopback_clients``).
- ``POST /sandbox/personas`` (provider/views/personas.py): the page's buttons that sign this
  browser in as a user at a level, without the login pages.
- ``POST /sandbox/token``: mint an access token with a chosen ``acr`` and ``auth_time`` (JSON body
  ``{"username": "alice", "acr": "urn:stepup:loa:2", "auth_time": 1700000000, "scope": "..."}``),
  to test an API's step-up rules without the login pages. Tokens are real, signed and recorded,
  so the API, introspection and revocation treat them like any other. ``acr`` defaults to the
  weakest level; ``"id_token": true`` returns the ID token too.
- ``POST /sandbox/faults``: arm a fault for a user's next logins (``{"user": "alice", "fault":
  "cancel", "count": 1}``; ``cancel``, ``refuse``, ``unmet``) or take the provider down
  (``{"fault": "down", "seconds": 30}``); ``GET`` lists them, ``DELETE`` clears them. What each
  does: provider/sandbox_faults.py.
- ``GET /sandbox/timeline``: the last step-up exchanges in order (``.mmd``: as a Mermaid
  sequence diagram; ``DELETE`` forgets them). See provider/sandbox_timeline.py.
- ``GET /sandbox/clock``: the sandbox's time (``{"now": epoch, "offset": seconds}``).
  ``POST /sandbox/clock`` with ``{"advance": seconds}`` or ``{"set": epoch}`` moves it: the
  provider's clock, and the demo API's too when they share a process (``stepup sandbox``, the
  pytest plugin), so ``max_age`` can be shown and tested without waiting.

Never enable it on a provider real users depend on: it hands out tokens to anyone who asks.
"""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from ..acr import FACTOR_ORDER
from ..app import SCRIPTED_PAGE_CSP, Provider, current_provider
from ..authn_policy import amr_for
from ..clients import ClientAdapter
from ..clock import Clock
from ..factors import totp
from ..login import enrolled_factors
from ..models import Client, User
from ..sandbox_faults import FaultBoard, InvalidFault, UserFault, parse
from ..sandbox_timeline import (
    Timeline,
    authorization_request,
    mermaid,
    redirect_back,
    token_response,
)
from ..tokens import AuthContext
from .personas import persona_options, signed_in

bp = Blueprint("sandbox", __name__)


@bp.record_once
def _exempt_from_csrf(state: BlueprintSetupState) -> None:
    # The minting endpoint is called by scripts and tests with a JSON body, not by the provider's
    # own forms: there is no page to carry a CSRF token. (The sandbox hands out tokens to anyone
    # anyway; see the module docstring.)
    state.app.extensions["csrf"].exempt(mint)
    # Same for the clock. A cross-site form cannot send ``application/json`` (get_json answers
    # None for any other type), so a page elsewhere cannot move it either.
    state.app.extensions["csrf"].exempt(move_clock)
    state.app.extensions["csrf"].exempt(arm_fault)
    state.app.extensions["csrf"].exempt(clear_faults)
    # Negative paths on demand (provider/sandbox_faults.py): the board exists only here, so no
    # fault can be armed or take effect outside sandbox mode.
    state.app.extensions[FAULTS] = FaultBoard()
    state.app.before_request(_outage)
    # The step-up timeline (provider/sandbox_timeline.py), likewise only here.
    recorded = state.app.extensions[TIMELINE] = Timeline()
    state.app.after_request(_record)
    op: Provider = state.app.extensions["stepup_provider"]
    op.token_endpoint.observers.append(
        lambda grant_type, body: recorded.add(*token_response(op.clock.now(), grant_type, body))
    )
    state.app.extensions["csrf"].exempt(clear_timeline)


SANDBOX_CLIENT = "sandbox-minter"
FAULTS = "sandbox_faults"
TIMELINE = "sandbox_timeline"
TIMELINE_REFRESH = 5  # seconds: how often the timeline page reloads itself without JavaScript


def faults() -> FaultBoard:
    board: FaultBoard = current_app.extensions[FAULTS]
    return board


def down(app: Flask) -> bool:
    """Whether a ``down`` fault lasts now."""
    board: FaultBoard = app.extensions[FAULTS]
    op: Provider = app.extensions["stepup_provider"]
    return board.outage(op.clock.now()) is not None


def _outage() -> BaseResponse | None:
    """Every request but the sandbox's own, while a ``down`` fault lasts: 503 + Retry-After."""
    if request.path == "/sandbox" or request.path.startswith("/sandbox/"):
        return None
    left = faults().outage(current_provider().clock.now())
    if left is None:
        return None
    response = jsonify(
        error="temporarily_unavailable",
        error_description="The provider is down (sandbox fault); try again later.",
    )
    response.status_code = 503
    response.headers["Retry-After"] = str(left)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def home() -> BaseResponse:
    """A sandbox opened at its bare address shows its users page rather than a 404: that is where
    a newcomer following the printed issuer URL wants to be. (Outside sandbox mode ``/`` stays a
    404: a provider's root serves nothing.)"""
    return redirect(url_for("sandbox.users"), code=302)


@bp.get("/sandbox")
def users() -> BaseResponse:
    op = current_provider()
    now = op.clock.now()
    with op.db.session() as s:
        rows = list(s.scalars(select(User).order_by(User.username)))
        enrolled = {u.id: enrolled_factors(s, u) for u in rows}
    listing: list[dict[str, Any]] = [
        {
            "username": u.username,
            "factors": sorted(enrolled[u.id], key=_factor_order),
            "code": totp.code_at(u.totp_secret, now) if u.totp_secret else None,
            "seconds_left": totp.PERIOD - now % totp.PERIOD if u.totp_secret else None,
        }
        for u in rows
    ]
    # The sandbox switches that relax a check: shown, so nobody forgets one is on.
    settings = {
        "sandbox_allow_totp_reuse": op.config.provider.sandbox_allow_totp_reuse,
        "sandbox_loopback_clients": op.config.provider.sandbox_loopback_clients,
    }
    # HTML for browsers (and */*), JSON for scripts that ask for it.
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return jsonify(users=listing, settings=settings)
    passwords = {u.username: u.password for u in op.config.users}
    shown = [
        {**u, "password": passwords.get(u["username"]), "personas": persona_options(op, row)}
        for u, row in zip(listing, rows, strict=True)
    ]
    refresh = min((u["seconds_left"] for u in listing if u["seconds_left"]), default=totp.PERIOD)
    html = render_template(
        "sandbox.html",
        users=shown,
        levels=op.policy.levels,
        refresh=refresh,
        now_iso=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        now_text=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)),
        offset=op.clock.offset,
        faults=faults().listing(now),
        settings=settings,
        signed_in=signed_in(op),
    )
    response = Response(html, mimetype="text/html")
    # The one page with a script: it keeps the codes current (static/sandbox.js).
    response.headers["Content-Security-Policy"] = SCRIPTED_PAGE_CSP
    return response


def _factor_order(factor: str) -> tuple[int, str]:
    """The usual order (``pwd`` before ``otp``), factors the order does not know after."""
    known = FACTOR_ORDER.index(factor) if factor in FACTOR_ORDER else len(FACTOR_ORDER)
    return known, factor


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
    if acr is None:
        acr = op.policy.levels[0].value  # contract 8: acr is optional; the weakest level
    if not isinstance(username, str) or not isinstance(acr, str):
        return _error("username is a required string, and acr a string when given")
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
    want_id_token = body.get("id_token", False)
    if not isinstance(want_id_token, bool):
        return _error("id_token must be true or false")
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
    if not want_id_token:
        token.pop("id_token", None)
    response = jsonify(token)
    response.headers["Cache-Control"] = "no-store"
    return response


# Far enough to move past any lifetime in a config, near enough to stay a valid NumericDate.
MAX_CLOCK_MOVE = 10 * 366 * 86400
LATEST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def _clock_state() -> BaseResponse:
    clock = current_provider().clock
    response = jsonify(now=clock.now(), offset=clock.offset)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sandbox/clock")
def clock() -> BaseResponse:
    return _clock_state()


def _epoch_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@bp.post("/sandbox/clock")
def move_clock() -> BaseResponse:
    clock = current_provider().clock
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict) or len(body.keys() & {"advance", "set"}) != 1:
        return _error('send a JSON object with "advance" (seconds) or "set" (epoch seconds)')
    if "advance" in body:
        seconds = body["advance"]
        if not _epoch_int(seconds) or abs(seconds) > MAX_CLOCK_MOVE:
            return _error(f"advance must be an integer number of seconds, at most {MAX_CLOCK_MOVE}")
        clock.advance(seconds)
    else:
        epoch = body["set"]
        if not _epoch_int(epoch) or not 0 <= epoch <= LATEST_EPOCH:
            return _error(f"set must be an integer epoch time from 0 to {LATEST_EPOCH}")
        clock.set(epoch)
    return _clock_state()


def _faults_state() -> BaseResponse:
    response = jsonify(faults().listing(current_provider().clock.now()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sandbox/faults")
def list_faults() -> BaseResponse:
    return _faults_state()


@bp.post("/sandbox/faults")
def arm_fault() -> BaseResponse:
    op = current_provider()
    try:
        armed = parse(request.get_json(silent=True))
    except InvalidFault as exc:
        return _error(str(exc))
    if isinstance(armed, UserFault):
        with op.db.session() as s:
            user = s.scalar(select(User).where(func.lower(User.username) == armed.user.lower()))
        if user is None:
            return _error(f"no user {armed.user!r}")
    faults().arm(armed, op.clock.now())
    return _faults_state()


@bp.delete("/sandbox/faults")
def clear_faults() -> BaseResponse:
    faults().clear()
    return _faults_state()


# --- the step-up timeline ---------------------------------------------------------------------


def timeline() -> Timeline:
    recorded: Timeline = current_app.extensions[TIMELINE]
    return recorded


def _record(response: BaseResponse) -> BaseResponse:
    """After each request: the exchanges a learner should see, into the timeline."""
    path = request.path
    if path != "/authorize" and not path.startswith("/interaction/"):
        return response  # token responses: the token endpoint's observer (_exempt_from_csrf)
    now = current_provider().clock.now()
    recorded = timeline()
    if path == "/authorize":
        values = request.args if request.method == "GET" else request.form
        recorded.add(authorization_request(now, values.to_dict()))
    if response.status_code in (302, 303) and response.location:
        recorded.add(redirect_back(now, response.location))
    return response


def record_api(api_app: Flask, recorded: Timeline, clock: Clock) -> None:
    """The demo API's side of the timeline, when it runs in the provider's process: each request,
    its status and the challenge it sent."""

    def _api(response: BaseResponse) -> BaseResponse:
        recorded.api(
            clock.now(),
            request.method,
            request.path,
            response.status_code,
            response.headers.get("WWW-Authenticate"),
        )
        return response

    api_app.after_request(_api)


@bp.get("/sandbox/timeline")
def show_timeline() -> BaseResponse:
    steps = timeline().steps()
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        response = jsonify(steps=[s.to_dict() for s in steps])
    else:
        rows = [
            {
                **s.to_dict(),
                "when": time.strftime("%H:%M:%S", time.gmtime(s.at)),
                "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.at)),
            }
            for s in steps
        ]
        html = render_template("sandbox_timeline.html", steps=rows, refresh=TIMELINE_REFRESH)
        response = Response(html, mimetype="text/html")
        # It refreshes itself with a same-origin script (static/timeline.js).
        response.headers["Content-Security-Policy"] = SCRIPTED_PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sandbox/timeline.mmd")
def timeline_mermaid() -> BaseResponse:
    response = Response(mermaid(timeline().steps()), mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/sandbox/timeline")
def clear_timeline() -> BaseResponse:
    timeline().clear()
    return show_timeline()
