"""The pure OIDC client steps: discovery, authorization request, callback, token calls."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from client_sdk.errors import (
    AuthorizationError,
    InvalidCallback,
    ProviderError,
    UnmetAuthenticationRequirements,
)
from client_sdk.protocol import (
    HttpResponse,
    PendingAuthorization,
    Requirement,
    authorization_params,
    authorization_url,
    code_challenge_s256,
    code_token_request,
    new_authorization,
    new_code_verifier,
    parse_callback,
    parse_provider_metadata,
    parse_token_response,
    refresh_token_request,
)

from .sdk_fakes import CLIENT_ID, ISSUER, REDIRECT_URI, discovery_document

METADATA = parse_provider_metadata(discovery_document(), ISSUER)
LOA2 = Requirement(("urn:stepup:loa:2",), 300)


def pending(**overrides: Any) -> PendingAuthorization:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "s-1",
        "nonce": "n-1",
        "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "requirement": LOA2,
    }
    values.update(overrides)
    return PendingAuthorization(**values)


# --- discovery ------------------------------------------------------------------------------------


def test_discovery_reads_endpoints_and_iss_support() -> None:
    assert METADATA.authorization_endpoint == "https://op.example/authorize"
    assert METADATA.token_endpoint == "https://op.example/token"
    assert METADATA.jwks_uri == "https://op.example/jwks"
    assert METADATA.iss_parameter_supported is True
    assert METADATA.id_token_signing_algs == ("RS256",)


def test_discovery_refuses_another_issuer() -> None:
    with pytest.raises(ProviderError, match=r"expected .https://op\.example."):
        parse_provider_metadata(discovery_document("https://evil.example"), ISSUER)


def test_discovery_refuses_a_provider_without_s256() -> None:
    document = discovery_document() | {"code_challenge_methods_supported": ["plain"]}
    with pytest.raises(ProviderError, match="S256"):
        parse_provider_metadata(document, ISSUER)


def test_discovery_needs_the_token_endpoint() -> None:
    document = discovery_document()
    del document["token_endpoint"]
    with pytest.raises(ProviderError, match="no token_endpoint"):
        parse_provider_metadata(document, ISSUER)


# --- RFC 7636 -------------------------------------------------------------------------------------


def test_rfc7636_appendix_b_s256_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_code_verifier_is_43_unreserved_characters_and_fresh() -> None:
    a, b = new_code_verifier(), new_code_verifier()
    assert len(a) == 43
    assert set(a) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert a != b


# --- the authorization request --------------------------------------------------------------------


def test_step_up_request_carries_challenge_values_pkce_state_nonce() -> None:
    params = authorization_params(pending())
    assert params == {
        "response_type": "code",
        "client_id": "bank-cli",
        "redirect_uri": "http://127.0.0.1:8765/callback",
        "scope": "openid",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "acr_values": "urn:stepup:loa:2",
        "max_age": "300",
    }


def test_essential_acr_prompt_and_login_hint() -> None:
    params = authorization_params(
        pending(
            requirement=Requirement(("urn:a", "urn:b")),
            essential_acr=True,
            prompt="login",
            login_hint="alice",
        )
    )
    assert json.loads(params["claims"]) == {
        "id_token": {"acr": {"essential": True, "values": ["urn:a", "urn:b"]}}
    }
    assert params["acr_values"] == "urn:a urn:b"
    assert "max_age" not in params
    assert params["prompt"] == "login"
    assert params["login_hint"] == "alice"


TRANSFER = '[{"amount":"1500.00","currency":"EUR","payee":"acc_bob","type":"payment"}]'


def test_a_transaction_bound_requirement_sends_its_authorization_details() -> None:
    """RFC 9396 §2: the challenge's entries, as the JSON text the requirement holds, in the
    authorization request (the redirect path of docs/transactional.md)."""
    requirement = Requirement(("urn:stepup:loa:2",), 300, authorization_details=TRANSFER)
    params = authorization_params(pending(requirement=requirement))
    assert params["authorization_details"] == TRANSFER
    assert (params["acr_values"], params["max_age"]) == ("urn:stepup:loa:2", "300")
    query = parse_qs(urlsplit(authorization_url(METADATA, pending(requirement=requirement))).query)
    assert query["authorization_details"] == [TRANSFER]
    assert "authorization_details" not in authorization_params(pending())


def test_first_login_has_no_acr_values_or_max_age() -> None:
    params = authorization_params(pending(requirement=Requirement()))
    assert "acr_values" not in params
    assert "max_age" not in params
    assert "claims" not in params


def test_new_authorization_makes_fresh_secrets() -> None:
    values = iter(["state-x", "nonce-x"])
    p = new_authorization(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        scope="openid",
        requirement=Requirement(),
        now=5.0,
        essential_acr=True,  # dropped: nothing to make essential
        random=lambda: next(values),
    )
    assert (p.state, p.nonce, p.created_at, p.essential_acr) == ("state-x", "nonce-x", 5.0, False)
    assert len(p.code_verifier) == 43


def test_authorization_url_targets_the_endpoint() -> None:
    url = authorization_url(METADATA, pending())
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://op.example/authorize"
    assert parse_qs(parts.query)["acr_values"] == ["urn:stepup:loa:2"]


def test_pending_authorization_round_trips_through_a_dict() -> None:
    p = pending(previous_sub="alice-sub", created_at=12.5)
    data = p.to_dict()
    assert data["acr_values"] == ["urn:stepup:loa:2"]
    assert data["max_age"] == 300
    assert json.loads(json.dumps(data)) == data
    assert PendingAuthorization.from_dict(data) == p


def test_a_pending_transaction_approval_round_trips_through_a_dict() -> None:
    """A web app keeps the pending request in its session: the transaction must come back, or
    the token lands under another requirement and the retried transfer never finds it."""
    requirement = Requirement(("urn:stepup:loa:2",), 300, authorization_details=TRANSFER)
    p = pending(requirement=requirement)
    data = p.to_dict()
    assert data["authorization_details"] == TRANSFER
    assert PendingAuthorization.from_dict(json.loads(json.dumps(data))) == p
    older = {k: v for k, v in data.items() if k != "authorization_details"}
    assert PendingAuthorization.from_dict(older).requirement.authorization_details is None


# --- the callback ---------------------------------------------------------------------------------


def callback(query: str) -> str:
    return f"{REDIRECT_URI}?{query}"


def test_callback_returns_the_code() -> None:
    url = callback("code=abc&state=s-1&iss=https%3A%2F%2Fop.example")
    assert parse_callback(url, pending(), METADATA) == "abc"


def test_callback_with_another_state_is_refused() -> None:
    with pytest.raises(InvalidCallback, match="state does not match"):
        parse_callback(
            callback("code=abc&state=other&iss=https%3A%2F%2Fop.example"), pending(), METADATA
        )


def test_rfc9207_callback_from_another_issuer_is_refused() -> None:
    with pytest.raises(InvalidCallback, match=r"iss 'https://mixup\.example'"):
        parse_callback(
            callback("code=abc&state=s-1&iss=https%3A%2F%2Fmixup.example"), pending(), METADATA
        )


def test_rfc9207_missing_iss_is_refused_when_the_provider_sends_it() -> None:
    with pytest.raises(InvalidCallback, match="no iss parameter"):
        parse_callback(callback("code=abc&state=s-1"), pending(), METADATA)


def test_missing_iss_is_accepted_from_a_provider_that_never_sends_it() -> None:
    metadata = parse_provider_metadata(
        discovery_document() | {"authorization_response_iss_parameter_supported": False}, ISSUER
    )
    assert parse_callback(callback("code=abc&state=s-1"), pending(), metadata) == "abc"


def test_unmet_authentication_requirements_is_a_typed_error() -> None:
    url = callback(
        "error=unmet_authentication_requirements&error_description=no+OTP&state=s-1"
        "&iss=https%3A%2F%2Fop.example"
    )
    with pytest.raises(UnmetAuthenticationRequirements) as caught:
        parse_callback(url, pending(), METADATA)
    assert caught.value.error == "unmet_authentication_requirements"
    assert caught.value.error_description == "no OTP"


def test_access_denied_is_an_authorization_error() -> None:
    url = callback("error=access_denied&state=s-1&iss=https%3A%2F%2Fop.example")
    with pytest.raises(AuthorizationError) as caught:
        parse_callback(url, pending(), METADATA)
    assert type(caught.value) is AuthorizationError
    assert caught.value.error == "access_denied"


def test_an_error_with_a_wrong_state_is_refused_as_csrf_first() -> None:
    url = callback("error=access_denied&state=forged&iss=https%3A%2F%2Fop.example")
    with pytest.raises(InvalidCallback):
        parse_callback(url, pending(), METADATA)


def test_callback_to_another_path_is_refused() -> None:
    with pytest.raises(InvalidCallback, match="not the redirect URI"):
        parse_callback("http://127.0.0.1:8765/other?code=a&state=s-1", pending(), METADATA)


def test_repeated_parameters_are_refused() -> None:
    with pytest.raises(InvalidCallback, match="repeats the 'code'"):
        parse_callback(
            callback("code=a&code=b&state=s-1&iss=https%3A%2F%2Fop.example"), pending(), METADATA
        )


def test_callback_without_code_is_refused() -> None:
    with pytest.raises(InvalidCallback, match="neither code nor error"):
        parse_callback(callback("state=s-1&iss=https%3A%2F%2Fop.example"), pending(), METADATA)


# --- the token endpoint ---------------------------------------------------------------------------


def form(body: bytes | None) -> dict[str, list[str]]:
    return parse_qs((body or b"").decode())


def test_code_exchange_for_a_public_client() -> None:
    request = code_token_request(METADATA, pending(), "abc")
    assert (request.method, request.url) == ("POST", "https://op.example/token")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request.headers
    assert form(request.body) == {
        "grant_type": ["authorization_code"],
        "code": ["abc"],
        "redirect_uri": ["http://127.0.0.1:8765/callback"],
        "code_verifier": ["dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"],
        "client_id": ["bank-cli"],
    }


def test_confidential_client_uses_basic_with_form_encoded_credentials() -> None:
    request = code_token_request(METADATA, pending(client_id="web app"), "abc", "s3cr:t")
    expected = base64.b64encode(b"web+app:s3cr%3At").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert "client_id" not in form(request.body)


def test_client_secret_post_when_basic_is_not_offered() -> None:
    metadata = parse_provider_metadata(
        discovery_document() | {"token_endpoint_auth_methods_supported": ["client_secret_post"]},
        ISSUER,
    )
    request = refresh_token_request(metadata, "web", "rt-1", "secret")
    assert form(request.body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["rt-1"],
        "client_id": ["web"],
        "client_secret": ["secret"],
    }


def json_response(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def test_token_response_is_parsed() -> None:
    body = {
        "access_token": "at",
        "token_type": "bearer",
        "expires_in": 600,
        "refresh_token": "rt",
        "id_token": "idt",
        "scope": "openid offline_access",
    }
    parsed = parse_token_response(json_response(200, body))
    assert (parsed.access_token, parsed.token_type, parsed.expires_in) == ("at", "Bearer", 600)
    assert (parsed.refresh_token, parsed.id_token, parsed.scope) == (
        "rt",
        "idt",
        "openid offline_access",
    )


def test_token_error_is_a_provider_error_with_the_code() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_token_response(
            json_response(400, {"error": "invalid_grant", "error_description": "used"})
        )
    assert (caught.value.status_code, caught.value.error, caught.value.error_description) == (
        400,
        "invalid_grant",
        "used",
    )
    assert str(caught.value) == "the token endpoint answered 400: invalid_grant (used)"


def test_unknown_token_type_is_refused() -> None:
    with pytest.raises(ProviderError, match="unsupported token_type 'mac'"):
        parse_token_response(json_response(200, {"access_token": "a", "token_type": "mac"}))


def test_non_json_token_response_is_refused() -> None:
    with pytest.raises(ProviderError, match="answered 502"):
        parse_token_response(HttpResponse(502, {}, b"<html>bad gateway"))
