"""Helpers for the CIBA tests: a backchannel client, and the user's device page."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from provider.factors import totp

from .flow import ALICE_SECRET, parse_page

PAYMENTS = ("bank-payments", "bank-payments-secret-for-the-local-sandbox")
GRANT = "urn:openid:params:grant-type:ciba"
PAYMENT = {"type": "payment", "amount": "1500.00", "currency": "EUR", "payee": "acc_bob"}


def backchannel(http: FlaskClient, **params: Any) -> TestResponse:
    data: dict[str, str] = {"scope": "openid", "login_hint": "alice"}
    for k, v in params.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = json.dumps(v) if k == "authorization_details" else str(v)
    return http.post("/backchannel", data=data, auth=PAYMENTS)


def start(http: FlaskClient, **params: Any) -> str:
    response = backchannel(http, **params)
    assert response.status_code == 200, response.json
    auth_req_id: str = response.json["auth_req_id"]  # type: ignore[index]
    return auth_req_id


def poll(http: FlaskClient, auth_req_id: str, auth: tuple[str, str] = PAYMENTS) -> TestResponse:
    return http.post("/token", data={"grant_type": GRANT, "auth_req_id": auth_req_id}, auth=auth)


def error_of(response: TestResponse) -> tuple[int, str]:
    return response.status_code, response.json["error"]  # type: ignore[index]


def device_page(http: FlaskClient, user: str = "alice") -> TestResponse:
    return http.get(f"/sandbox/device/{user}")


def device_form(app: Flask, http: FlaskClient, user: str = "alice") -> tuple[str, dict[str, str]]:
    """The first pending request's form: its action and its hidden fields (csrf_token)."""
    page = device_page(http, user)
    assert page.status_code == 200
    form = parse_page(page.get_data(as_text=True)).forms[0]
    return form.action, form.hidden()


def approve_on_device(
    app: Flask,
    http: FlaskClient,
    *,
    user: str = "alice",
    password: str = "wonderland",
    code: str | None = None,
    csrf: bool = True,
) -> TestResponse:
    action, data = device_form(app, http, user)
    if not csrf:
        data.pop("csrf_token")
    if code is None:
        code = totp.code_at(ALICE_SECRET, app.extensions["stepup_provider"].clock.now())
    data.update(action="approve", password=password, code=code)
    return http.post(action, data=data)


def deny_on_device(app: Flask, http: FlaskClient, user: str = "alice") -> TestResponse:
    action, data = device_form(app, http, user)
    data["action"] = "deny"
    return http.post(action, data=data)
