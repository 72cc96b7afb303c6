"""OpenID Connect CIBA Core 1.0, poll mode: the backchannel request (§7), the device's approval,
and the token endpoint's answers (§10, §11), at a frozen time, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.datastructures import MultiDict

from provider.factors import totp

from .ciba_support import (
    GRANT,
    PAYMENT,
    PAYMENTS,
    approve_on_device,
    backchannel,
    deny_on_device,
    device_page,
    error_of,
    poll,
    start,
)
from .conftest import T0_EPOCH
from .flow import ALICE_SECRET, LOA2, claims, parse_page

WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")


# --- §7 the authentication request ------------------------------------------------------------


def test_the_backchannel_answer_is_auth_req_id_expires_in_and_interval(app: Flask) -> None:
    response = backchannel(app.test_client(), binding_message="W4SCT", acr_values=LOA2)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert set(body) == {"auth_req_id", "expires_in", "interval"}
    # §7.3: at least 128 bits of entropy; ours is 256 bits, base64url.
    assert len(body["auth_req_id"]) == 43
    assert (body["expires_in"], body["interval"]) == (300, 5)


def test_requested_expiry_is_honoured_up_to_the_maximum(sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    assert backchannel(http, requested_expiry="60").json["expires_in"] == 60  # type: ignore[index]
    assert backchannel(http, requested_expiry="99999").json["expires_in"] == 1800  # type: ignore[index]
    for bad in ("0", "-5", "1.5", "sixty", "٣"):
        assert error_of(backchannel(http, requested_expiry=bad)) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"scope": "profile"}, 400, "invalid_request"),  # §7.1: openid is required
        ({"login_hint": None}, 400, "invalid_request"),  # no hint
        ({"id_token_hint": "x"}, 400, "invalid_request"),  # two hints
        ({"login_hint": None, "login_hint_token": "x"}, 400, "invalid_request"),  # unsupported
        ({"login_hint": None, "id_token_hint": "not.a.token"}, 400, "invalid_request"),
        ({"login_hint": "nobody"}, 400, "unknown_user_id"),
        ({"binding_message": "x" * 101}, 400, "invalid_binding_message"),
        ({"binding_message": "line\nbreak"}, 400, "invalid_binding_message"),
        ({"binding_message": "\u202eevil"}, 400, "invalid_binding_message"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, 400, "invalid_request"),
        ({"authorization_details": [{"type": "wire"}]}, 400, "invalid_authorization_details"),
        (
            {"authorization_details": [{**PAYMENT, "amount": "1,500"}]},
            400,
            "invalid_authorization_details",
        ),
        (
            {"authorization_details": [{**PAYMENT, "extra": 1}]},
            400,
            "invalid_authorization_details",
        ),
        ({"authorization_details": {"type": "payment"}}, 400, "invalid_authorization_details"),
    ],
)
def test_bad_requests_get_the_section_13_error(
    sqlite_app: Flask, params: dict[str, Any], status: int, error: str
) -> None:
    response = backchannel(sqlite_app.test_client(), **params)
    assert error_of(response) == (status, error)
    assert response.headers["Cache-Control"] == "no-store"


def test_authorization_details_not_json_is_invalid(sqlite_app: Flask) -> None:
    response = sqlite_app.test_client().post(
        "/backchannel",
        data={"scope": "openid", "login_hint": "alice", "authorization_details": "[{"},
        auth=PAYMENTS,
    )
    assert error_of(response) == (400, "invalid_authorization_details")


def test_only_authenticated_clients_registered_for_ciba_may_ask(sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    data = {"scope": "openid", "login_hint": "alice"}
    # §7.1: the client MUST authenticate; a public client cannot.
    unauthenticated = http.post("/backchannel", data={**data, "client_id": "bank-cli"})
    assert error_of(unauthenticated) == (401, "invalid_client")
    wrong = http.post("/backchannel", data=data, auth=("bank-payments", "wrong"))
    assert error_of(wrong) == (401, "invalid_client")
    # A confidential client without the CIBA grant type.
    assert error_of(http.post("/backchannel", data=data, auth=WEB)) == (400, "unauthorized_client")
    repeated = http.post(
        "/backchannel", data=MultiDict([*data.items(), ("scope", "openid")]), auth=PAYMENTS
    )
    assert error_of(repeated) == (400, "invalid_request")


def test_an_id_token_hint_names_the_user(sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    minted = http.post("/sandbox/token", json={"username": "alice", "id_token": True})
    id_token = minted.json["id_token"]  # type: ignore[index]
    response = backchannel(http, login_hint=None, id_token_hint=id_token)
    assert response.status_code == 200
    assert b"Requests for alice" in device_page(http).data
    assert b"Bank Payments asks" in device_page(http).data


# --- §10, §11 polling ------------------------------------------------------------------------


def test_approved_on_the_device_the_poll_gets_tokens_with_the_approval(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = app.test_client()
    auth_req_id = start(
        http, binding_message="W4SCT", acr_values=LOA2, authorization_details=[PAYMENT]
    )
    assert error_of(poll(http, auth_req_id)) == (400, "authorization_pending")

    page = device_page(http).get_data(as_text=True)
    assert "W4SCT" in page
    assert "Pay 1500.00 EUR to acc_bob" in page
    frozen.tick(7)
    approved = approve_on_device(app, http)
    assert approved.status_code == 200
    assert "Approved." in approved.get_data(as_text=True)
    assert "W4SCT" not in approved.get_data(as_text=True)  # no longer pending

    frozen.tick(5)
    response = poll(http, auth_req_id)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    # RFC 9396 §7: the token response says what was granted.
    assert body["authorization_details"] == [PAYMENT]
    assert "refresh_token" not in body
    access, id_token = claims(app, body["access_token"]), claims(app, body["id_token"])
    for c in (access, id_token):
        assert (c["acr"], c["amr"], c["auth_time"]) == (LOA2, ["pwd", "otp", "mfa"], T0_EPOCH + 7)
    assert access["authorization_details"] == [PAYMENT]  # RFC 9396 §9.1
    assert access["client_id"] == "bank-payments"
    assert id_token["aud"] == "bank-payments"
    assert "authorization_details" not in id_token
    # RFC 9396 §9.2: introspection says it too.
    introspected = http.post("/introspect", data={"token": body["access_token"]}, auth=WEB)
    assert introspected.json["authorization_details"] == [PAYMENT]  # type: ignore[index]

    # The auth_req_id is spent.
    frozen.tick(5)
    assert error_of(poll(http, auth_req_id)) == (400, "invalid_grant")


def test_denied_on_the_device_the_poll_gets_access_denied(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = app.test_client()
    auth_req_id = start(http, binding_message="NO-THANKS")
    denied = deny_on_device(app, http)
    assert denied.status_code == 200
    assert "Denied." in denied.get_data(as_text=True)
    assert error_of(poll(http, auth_req_id)) == (400, "access_denied")
    frozen.tick(5)
    assert error_of(poll(http, auth_req_id)) == (400, "access_denied")
    # A decision is final.
    frozen.tick(5)
    assert error_of(poll(http, auth_req_id)) == (400, "access_denied")


def test_an_expired_request_is_expired_token_and_can_no_longer_be_approved(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = app.test_client()
    auth_req_id = start(http, requested_expiry="60")
    action_page = device_page(http)
    form = parse_page(action_page.get_data(as_text=True)).forms[0]
    frozen.tick(59)
    assert error_of(poll(http, auth_req_id)) == (400, "authorization_pending")
    frozen.tick(1)
    assert error_of(poll(http, auth_req_id)) == (400, "expired_token")
    # The page no longer lists it, and its form, posted now, approves nothing.
    assert "Nothing is waiting" in device_page(http).get_data(as_text=True)
    code = totp.code_at(ALICE_SECRET, T0_EPOCH + 60)
    late = http.post(
        form.action,
        data={**form.hidden(), "action": "approve", "password": "wonderland", "code": code},
    )
    assert late.status_code == 409
    assert 'data-error="expired"' in late.get_data(as_text=True)
    assert error_of(poll(http, auth_req_id)) == (400, "expired_token")


def test_polling_faster_than_the_interval_is_slow_down_and_the_interval_grows(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = app.test_client()
    auth_req_id = start(http)
    assert error_of(poll(http, auth_req_id)) == (400, "authorization_pending")
    frozen.tick(4)
    assert error_of(poll(http, auth_req_id)) == (400, "slow_down")  # 4 s < 5 s
    frozen.tick(5)
    # §11: "the interval MUST be increased by at least 5 seconds for all subsequent requests".
    assert error_of(poll(http, auth_req_id)) == (400, "slow_down")  # 5 s < 10 s
    frozen.tick(15)
    assert error_of(poll(http, auth_req_id)) == (400, "authorization_pending")  # 15 s >= 15 s
    frozen.tick(14)
    assert error_of(poll(http, auth_req_id)) == (400, "slow_down")  # 14 s < 15 s: now 20 s
    frozen.tick(20)
    assert error_of(poll(http, auth_req_id)) == (400, "authorization_pending")


def test_another_clients_or_an_unknown_auth_req_id_is_invalid_grant(
    sqlite_app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = sqlite_app.test_client()
    auth_req_id = start(http)
    assert error_of(poll(http, "no-such-id")) == (400, "invalid_grant")
    # bank-web is not registered for the grant: unauthorized_client, before any lookup.
    assert error_of(poll(http, auth_req_id, auth=WEB)) == (400, "unauthorized_client")
    missing = http.post("/token", data={"grant_type": GRANT}, auth=PAYMENTS)
    assert error_of(missing) == (400, "invalid_request")
    # The other client's attempt did not count as a poll of this request.
    assert error_of(poll(http, auth_req_id)) == (400, "authorization_pending")


# --- the device ---------------------------------------------------------------------------------


def test_the_device_form_needs_its_csrf_token(sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    auth_req_id = start(http)
    response = approve_on_device(sqlite_app, http, csrf=False)
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert error_of(poll(http, auth_req_id)) == (400, "authorization_pending")


def test_the_device_asks_every_factor_of_the_level_and_a_code_works_once(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = app.test_client()
    first = start(http, acr_values=LOA2)
    wrong = approve_on_device(app, http, password="not-it")
    assert wrong.status_code == 401
    assert 'data-error="wrong"' in wrong.get_data(as_text=True)
    assert error_of(poll(http, first)) == (400, "authorization_pending")
    assert approve_on_device(app, http).status_code == 200

    # RFC 6238 §5.2: the same code cannot approve a second request.
    second = start(http, acr_values=LOA2)
    replay = approve_on_device(app, http)
    assert replay.status_code == 401
    assert 'data-error="replayed"' in replay.get_data(as_text=True)
    frozen.tick(5)
    assert error_of(poll(http, second)) == (400, "authorization_pending")


def test_the_device_page_headers_forbid_framing(sqlite_app: Flask) -> None:
    response = device_page(sqlite_app.test_client())
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_the_sandbox_approve_endpoint_decides_the_oldest_request(
    sqlite_app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    http = sqlite_app.test_client()
    nothing = http.post("/sandbox/device/alice/approve", json={})
    assert (nothing.status_code, nothing.json["error"]) == (409, "no_pending_request")  # type: ignore[index]
    first, second = start(http, binding_message="ONE"), start(http, binding_message="TWO")
    answer = http.post("/sandbox/device/alice/approve", json={})
    assert answer.status_code == 200
    assert (answer.json["outcome"], answer.json["binding_message"]) == ("approved", "ONE")  # type: ignore[index]
    denied = http.post("/sandbox/device/alice/deny")
    assert (denied.json["outcome"], denied.json["binding_message"]) == ("denied", "TWO")  # type: ignore[index]
    assert poll(http, first).status_code == 200
    assert error_of(poll(http, second)) == (400, "access_denied")
    unknown = http.post("/sandbox/device/nobody/approve", json={})
    assert (unknown.status_code, unknown.json["error"]) == (400, "invalid_request")  # type: ignore[index]
