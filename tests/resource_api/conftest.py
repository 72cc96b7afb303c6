"""Fixtures for the resource API tests: the fake issuer, a movable clock, and the demo bank wired
to both (no socket unless a test asks for one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from resource_api import JwtAccessTokenValidator, create_app

from .support import AUDIENCE, ISSUER, Clock, FakeIssuer, sandbox_config


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> FakeIssuer:
    return FakeIssuer(clock)


@pytest.fixture
def validator(issuer: FakeIssuer, clock: Clock) -> JwtAccessTokenValidator:
    return JwtAccessTokenValidator(ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock)


@pytest.fixture
def bank(validator: JwtAccessTokenValidator, clock: Clock, tmp_path: Path) -> Flask:
    app = create_app(
        sandbox_config(), database_url=f"sqlite:///{tmp_path}/bank.db",
        token_validator=validator, clock=clock,
    )  # fmt: skip
    return app


@pytest.fixture
def client(bank: Flask) -> FlaskClient:
    return bank.test_client()
