"""RFC 7662 introspection mode, and the package's public names (pinned)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

import resource_api
from resource_api import IntrospectionValidator, InvalidToken, KeySetUnavailable

from .support import AUDIENCE, ISSUER, Clock, FakeIssuer


class FakeIntrospection:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, str], tuple[str, str]]] = []

    def __call__(self, url: str, form: Mapping[str, str], auth: tuple[str, str]) -> Any:
        self.calls.append((url, dict(form), auth))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def make(issuer: FakeIssuer, clock: Clock, answer: Any) -> tuple[IntrospectionValidator, Any]:
    post = FakeIntrospection(answer)
    v = IntrospectionValidator(ISSUER, AUDIENCE, client_id="bank-api", client_secret="s",
                               fetch=issuer.fetch, post=post, clock=clock)  # fmt: skip
    return v, post


def test_active_token_claims_and_cache(issuer: FakeIssuer, clock: Clock) -> None:
    answer = {"active": True, **issuer.claims()}
    v, post = make(issuer, clock, answer)
    assert v.validate("opaque")["acr"] == "urn:stepup:loa:2"
    assert v.validate("opaque")["sub"] == "alice"
    assert post.calls == [(f"{ISSUER}/introspect",
                           {"token": "opaque", "token_type_hint": "access_token"},
                           ("bank-api", "s"))]  # fmt: skip
    clock.advance(61)  # cache_ttl
    v.validate("opaque")
    assert len(post.calls) == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [({"active": False}, "not active"), ({"active": "true"}, "not active"),
     ({"active": True, "aud": "other"}, "aud"), ({"active": True, "iss": "x"}, "issuer"),
     ({"active": True, "exp": 1}, "expired")],
)  # fmt: skip
def test_inactive_or_foreign_tokens(
    issuer: FakeIssuer, clock: Clock, answer: dict[str, Any], message: str
) -> None:
    v, _ = make(issuer, clock, answer)
    with pytest.raises(InvalidToken, match=message):
        v.validate("opaque")


def test_provider_down_is_unavailable(issuer: FakeIssuer, clock: Clock) -> None:
    v, _ = make(issuer, clock, ConnectionError("down"))
    with pytest.raises(KeySetUnavailable):
        v.validate("opaque")


def test_public_names_are_pinned() -> None:
    assert sorted(resource_api.__all__) == sorted([
        "DEFAULT_ALGORITHMS", "AcrOrder", "Allow", "AuthContext", "BearerError", "Challenge",
        "ConfigurationError", "Decision", "FetchError", "InsufficientScope",
        "IntrospectionValidator", "InvalidRequest", "InvalidToken", "JwksCache",
        "JwtAccessTokenValidator", "KeySetUnavailable", "Requirement", "ResourceApiError",
        "StepUp", "TokenValidator", "bearer_challenge", "combine", "create_app", "current_auth",
        "current_decision", "decide", "http_fetch", "public", "require",
    ])  # fmt: skip
    for name in resource_api.__all__:
        assert getattr(resource_api, name) is not None
    for name in ("InvalidToken", "InvalidRequest", "KeySetUnavailable", "ConfigurationError",
                 "FetchError"):  # fmt: skip
        assert issubclass(getattr(resource_api, name), resource_api.ResourceApiError)
