"""Calling the factor API in tests: the sandbox's admin client (``back-office``) and its token."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from provider import factor_audit
from provider.app import Provider
from provider.factor_api import SCOPE, resource_for
from provider.factors import totp
from provider.models import User

from .flow import ALICE_SECRET

BACK_OFFICE = ("back-office", "back-office-secret-for-the-local-sandbox")


def op_of(app: Flask) -> Provider:
    provider: Provider = app.extensions["stepup_provider"]
    return provider


def resource(app: Flask) -> str:
    return resource_for(op_of(app).issuer)


def admin_token(
    app: Flask,
    client: tuple[str, str] = BACK_OFFICE,
    *,
    scope: str | None = SCOPE,
    resource_: str | None = "factor-api",
) -> str:
    """A client_credentials access token; ``resource_`` ``"factor-api"``: the API's."""
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    if resource_ is not None:
        data["resource"] = resource(app) if resource_ == "factor-api" else resource_
    response = app.test_client().post("/token", data=data, auth=client)
    assert response.status_code == 200, response.json
    token: str = response.json["access_token"]  # type: ignore[index]
    return token


def code_now(app: Flask, secret: str = ALICE_SECRET, *, back: int = 0) -> str:
    """The code an authenticator app shows now (``back`` steps ago)."""
    return totp.code_at(secret, op_of(app).clock.now() - back * totp.PERIOD)


class FactorApi:
    """The API as the back office calls it, with one token."""

    def __init__(self, app: Flask, token: str | None = None, http: FlaskClient | None = None):
        self.app = app
        self.token = token if token is not None else admin_token(app)
        self.http = http or app.test_client()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def factors(self, user: str) -> TestResponse:
        return self.http.get(f"/api/v1/users/{user}/factors", headers=self.headers)

    def challenge(self, user: str, factor: str = "otp") -> TestResponse:
        return self.http.post(
            f"/api/v1/users/{user}/factors/{factor}/challenge", headers=self.headers
        )

    def transaction(self, user: str = "alice") -> str:
        response = self.challenge(user)
        assert response.status_code == 201, response.json
        tid: str = response.json["transaction_id"]  # type: ignore[index]
        return tid

    def verify(
        self, user: str, passcode: Any, transaction_id: Any = None, factor: str = "otp"
    ) -> TestResponse:
        if transaction_id is None:
            transaction_id = self.transaction(user)
        body = {"transaction_id": transaction_id, "passcode": passcode}
        return self.http.post(
            f"/api/v1/users/{user}/factors/{factor}/verify", json=body, headers=self.headers
        )


def error_of(response: TestResponse) -> tuple[int, str]:
    return response.status_code, response.json["error"]  # type: ignore[index]


def audit(app: Flask) -> list[factor_audit.AuditEntry]:
    with op_of(app).db.session() as s:
        return factor_audit.entries(s)


def subject_of(app: Flask, username: str) -> str:
    with op_of(app).db.session() as s:
        subject = s.scalar(select(User.subject).where(User.username == username))
    assert subject is not None
    return subject
