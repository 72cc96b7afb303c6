"""The provider on a real socket, driven by a standard OIDC client library (Authlib's
``OAuth2Session``) and a ``requests`` session acting as the browser: the code flow with PKCE,
``acr_values`` and ``max_age``, then a step-up that asks only for the OTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from provider import create_app
from provider.factors import totp
from stepup.cli import sandbox_config
from tests.provider.flow import ALICE_SECRET, LOA1, LOA2, parse_page, query_of
from tests.servers import Slot, serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def issuer(database_url: str) -> Iterator[str]:
    slot = Slot()
    with serving(slot) as url:
        slot.app = create_app(sandbox_config(url), database_url=database_url)
        yield url


def _browse(
    browser: requests.Session, url: str, *, secret: str = ALICE_SECRET
) -> tuple[str, list[str]]:
    """Act as the user: follow the provider's pages until it redirects to the client."""
    pages: list[str] = []
    response = browser.get(url, allow_redirects=False)
    for _ in range(8):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith("http://127.0.0.1:8765/"):
                return location, pages
            response = browser.get(location, allow_redirects=False)
            continue
        assert response.status_code == 200, response.text[:300]
        form = parse_page(response.text).forms[0]
        data: dict[str, Any] = {**form.hidden(), "action": "continue"}
        if field := form.by_autocomplete("current-password"):
            pages.append("password")
            data[field["name"]] = "wonderland"
            data[form.by_autocomplete("username")["name"]] = "alice"  # type: ignore[index]
        elif field := form.by_autocomplete("one-time-code"):
            pages.append("otp")
            data[field["name"]] = totp.code_at(secret, int(time.time()))
        response = browser.post(
            urljoin(response.url, form.action), data=data, allow_redirects=False
        )
    raise AssertionError("no redirect to the client")


def _flow(
    issuer: str, browser: requests.Session, **auth_params: str
) -> tuple[dict[str, Any], list[str]]:
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    client = OAuth2Session(
        "bank-cli",
        redirect_uri="http://127.0.0.1:8765/callback",
        scope="openid profile",
        code_challenge_method="S256",
    )
    verifier = "v" * 20 + "erifier-of-at-least-43-characters-long"
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n-0S6_WzA2Mj", **auth_params
    )
    assert f"code_challenge={create_s256_code_challenge(verifier)}" in url
    callback, pages = _browse(browser, url)
    q = query_of(callback)
    assert q["state"] == state
    assert q["iss"] == issuer  # RFC 9207
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=5).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    assert id_token["iss"] == issuer
    assert id_token["aud"] == "bank-cli"
    assert id_token["nonce"] == "n-0S6_WzA2Mj"
    return id_token, pages


def test_standard_client_completes_the_code_flow_then_steps_up(issuer: str) -> None:
    browser = requests.Session()
    first, pages = _flow(issuer, browser, acr_values=LOA1, max_age="600")
    assert pages == ["password"]
    assert (first["acr"], first["amr"]) == (LOA1, ["pwd"])

    second, pages = _flow(issuer, browser, acr_values=LOA2, max_age="600")
    assert pages == ["otp"]  # the session had the password: only the OTP was asked
    assert (second["acr"], second["amr"]) == (LOA2, ["pwd", "otp", "mfa"])
    assert second["auth_time"] >= first["auth_time"]
    assert second["sub"] == first["sub"]


def test_discovery_over_http_names_this_issuer(issuer: str) -> None:
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    assert meta["issuer"] == issuer
    assert meta["jwks_uri"] == f"{issuer}/jwks"
    assert meta["code_challenge_methods_supported"] == ["S256"]
