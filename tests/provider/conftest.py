from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from provider import create_app
from stepup.config import StepupConfig

from .flow import Browser, Client

T0 = "2026-11-21 12:00:00"  # every frozen test starts here
T0_EPOCH = 1795262400


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0) as f:
        yield f


@pytest.fixture
def app(config: StepupConfig, database_url: str, frozen: FrozenDateTimeFactory) -> Flask:
    """The sandbox provider on SQLite and on PostgreSQL, at a frozen time."""
    return create_app(config, database_url=database_url)


@pytest.fixture
def sqlite_app(config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory) -> Flask:
    """The sandbox provider on SQLite only (for tests whose subject is not storage)."""
    return create_app(config, database_url=sqlite_url)


@pytest.fixture
def browser(app: Flask) -> Browser:
    return Browser(app)


@pytest.fixture
def cli(browser: Browser) -> Client:
    """The public ``bank-cli`` client."""
    return Client(browser)
