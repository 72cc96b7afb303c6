"""OIDC Core §3.1.2.1 and §5.5.1.1 parameters, parsed without a web request."""

from __future__ import annotations

import pytest

from provider.authorization_request import BadRequest, parse_authn_request


def test_all_parameters_are_read() -> None:
    request = parse_authn_request(
        {
            "acr_values": "urn:a urn:b",
            "max_age": "300",
            "prompt": "login consent",
            "login_hint": "alice",
            "claims": '{"id_token": {"acr": {"essential": true, "values": ["urn:b"]}}}',
        },
        started_at=42,
    )
    assert request.acr_values == ("urn:a", "urn:b")
    assert request.max_age == 300
    assert request.prompt == frozenset({"login", "consent"})
    assert request.login_hint == "alice"
    assert request.essential_acr == ("urn:b",)
    assert request.interaction_started_at == 42


@pytest.mark.parametrize(
    ("claims", "essential"),
    [
        ('{"id_token": {"acr": {"essential": true, "value": "urn:x"}}}', ("urn:x",)),
        ('{"id_token": {"acr": {"essential": false, "values": ["urn:x"]}}}', None),
        ('{"id_token": {"acr": null}}', None),
        ('{"userinfo": {"acr": {"essential": true, "value": "urn:x"}}}', None),
        ("{}", None),
    ],
)
def test_only_an_essential_id_token_acr_counts(
    claims: str, essential: tuple[str, ...] | None
) -> None:
    assert parse_authn_request({"claims": claims}, started_at=0).essential_acr == essential


@pytest.mark.parametrize(
    "params",
    [
        {"max_age": "-5"},
        {"max_age": "5.0"},
        {"max_age": "99999999999"},
        {"claims": "{"},
        {"claims": "[]"},
        {"claims": '{"id_token": []}'},
        {"claims": '{"id_token": {"acr": {"essential": true}}}'},
        {"claims": '{"id_token": {"acr": {"essential": true, "values": "urn:x"}}}'},
    ],
)
def test_malformed_values_are_invalid_request(params: dict[str, str]) -> None:
    with pytest.raises(BadRequest) as excinfo:
        parse_authn_request(params, started_at=0)
    assert excinfo.value.error == "invalid_request"
