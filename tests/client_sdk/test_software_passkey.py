"""The SDK's software passkey and the HeadlessAuthenticator that carries it: CBOR as RFC 8949
encodes it, what a WebAuthn authenticator refuses, keeping it between runs, and — against the
sandbox over real HTTP — a step-up to ``phr`` that creates it, then a sign-in with it alone."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from client_sdk import (
    AuthenticatorError,
    FactorsRequested,
    HeadlessAuthenticator,
    SoftwarePasskey,
    StepUpAuth,
)
from client_sdk.authenticators.passkey import cbor
from client_sdk.errors import ConfigurationError
from client_sdk.hooks import Event
from client_sdk.protocol import Requirement
from stepup.inprocess import Sandbox, running_sandbox


@pytest.mark.parametrize(
    ("value", "encoded"),
    [  # RFC 8949 Appendix A
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (100, "1864"),
        (1000, "1903e8"),
        (1000000, "1a000f4240"),
        (1000000000000, "1b000000e8d4a51000"),
        (-1, "20"),
        (-100, "3863"),
        (-1000, "3903e7"),
        (b"", "40"),
        (b"\x01\x02\x03\x04", "4401020304"),
        ("", "60"),
        ("a", "6161"),
        ("\u00fc", "62c3bc"),
        ({}, "a0"),
        ({1: 2, 3: 4}, "a201020304"),
    ],
)
def test_cbor_encodes_as_rfc_8949_appendix_a(value: object, encoded: str) -> None:
    assert cbor(value).hex() == encoded


def test_cbor_refuses_what_it_does_not_need() -> None:
    for value in (True, 1.5, [1], None):
        with pytest.raises(TypeError):
            cbor(value)


def _options(challenge: str = "Y2hhbGxlbmdlLWNoYWxsZW5nZS0xMjM0NTY3OA") -> dict[str, Any]:
    return {
        "rp": {"id": "localhost", "name": "Stepup"},
        "user": {"id": "dXNlcg", "name": "bob", "displayName": "Bob"},
        "challenge": challenge,
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "excludeCredentials": [],
    }


def test_a_registration_carries_none_attestation_and_the_origin() -> None:
    key = SoftwarePasskey()
    made = key.create(_options(), "http://localhost:9000")
    client_data = json.loads(base64.urlsafe_b64decode(made["response"]["clientDataJSON"] + "=="))
    assert client_data == {
        "type": "webauthn.create",
        "challenge": "Y2hhbGxlbmdlLWNoYWxsZW5nZS0xMjM0NTY3OA",
        "origin": "http://localhost:9000",
        "crossOrigin": False,
    }
    assert (made["id"], made["rawId"], made["type"]) == (key.id, key.id, "public-key")
    assert (key.rp_id, key.user_handle) == ("localhost", b"user")


def test_an_authenticator_holding_an_excluded_credential_refuses_to_make_another() -> None:
    key = SoftwarePasskey()
    options = {**_options(), "excludeCredentials": [{"type": "public-key", "id": key.id}]}
    with pytest.raises(AuthenticatorError, match="registered already"):
        key.create(options, "http://localhost:9000")


def test_it_signs_only_for_its_own_site_and_when_listed() -> None:
    key = SoftwarePasskey()
    key.create(_options(), "http://localhost:9000")
    with pytest.raises(AuthenticatorError, match="belongs to localhost"):
        key.get({"challenge": "abc", "rpId": "evil.example"}, "https://evil.example")
    with pytest.raises(AuthenticatorError, match="does not list this passkey"):
        key.get({"challenge": "abc", "allowCredentials": []}, "http://localhost:9000")
    signed = key.get({"challenge": "abc", "rpId": "localhost"}, "http://localhost:9000")
    assert signed["response"]["userHandle"] == "dXNlcg"
    assert key.sign_count == 1


def test_it_keeps_its_key_and_counter_between_runs() -> None:
    key = SoftwarePasskey()
    key.create(_options(), "http://localhost:9000")
    key.get({"challenge": "abc"}, "http://localhost:9000")
    again = SoftwarePasskey.from_json(key.to_json())
    assert (again.id, again.rp_id, again.user_handle, again.sign_count) == (
        key.id,
        "localhost",
        b"user",
        1,
    )
    assert "PRIVATE KEY" not in repr(again)
    with pytest.raises(ConfigurationError, match="not a saved SoftwarePasskey"):
        SoftwarePasskey.from_json('{"credential_id": "AA"}')


# --- against the sandbox ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox(host="localhost") as running:
        yield running


def _client(sandbox: Sandbox, browser: HeadlessAuthenticator, events: list[Event]) -> Any:
    auth = StepUpAuth(
        sandbox.issuer,
        "bank-cli",
        authenticator=browser,
        redirect_uri="http://127.0.0.1:8765/callback",
        clock=sandbox.clock,
        hooks=[events.append],
    )
    return auth.client


def _asked(events: list[Event]) -> list[tuple[str, ...]]:
    return [e.factors for e in events if isinstance(e, FactorsRequested)]


def test_headless_steps_up_to_phr_by_creating_a_passkey_then_signs_in_with_it_alone(
    sandbox: Sandbox,
) -> None:
    key = SoftwarePasskey()
    events: list[Event] = []
    bob = HeadlessAuthenticator("bob", "builder", passkey=key, clock=sandbox.clock)
    client = _client(sandbox, bob, events)
    assert client.login(Requirement(("urn:stepup:loa:1",))).acr == "urn:stepup:loa:1"
    stepped = client.login(Requirement(("phr",)))
    assert (stepped.acr, stepped.claims["amr"]) == ("phr", ["swk", "pin", "mfa"])
    assert _asked(events) == [("pwd",), ("passkey",)]
    assert key.rp_id == "localhost"

    events.clear()
    device = HeadlessAuthenticator("bob", "", passkey=key, clock=sandbox.clock)
    alone = _client(sandbox, device, events).login(Requirement(("phr",)))
    assert (alone.acr, alone.sub) == ("phr", stepped.sub)
    assert _asked(events) == [("passkey",)]
    assert key.sign_count == 1


def test_headless_without_a_passkey_says_what_it_lacks(sandbox: Sandbox) -> None:
    """bob (whether or not he has created a passkey yet: either page needs one)."""
    events: list[Event] = []
    client = _client(sandbox, HeadlessAuthenticator("bob", "builder", clock=sandbox.clock), events)
    client.login(Requirement(("urn:stepup:loa:1",)))
    with pytest.raises(AuthenticatorError, match=r"asks for a passkey, but .* has none"):
        client.login(Requirement(("phr",)))
