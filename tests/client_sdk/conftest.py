"""Fixtures for the SDK's unit layer (helpers live in ``sdk_fakes``)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import KeySet, RSAKey

from .sdk_fakes import Clock, FakeProvider


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})


@pytest.fixture(scope="session")
def jwks(signing_key: RSAKey) -> dict[str, Any]:
    return KeySet([signing_key]).as_dict(private=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(signing_key: RSAKey, clock: Clock) -> FakeProvider:
    return FakeProvider(key=signing_key, clock=clock)
