"""Helpers for the resource API tests: a fake issuer that mints real RS256 tokens, a movable
clock, and the parsed challenge of a response."""

from __future__ import annotations

import json
import secrets
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from client_sdk.challenges import parse_www_authenticate
from stepup.config import load_config

ISSUER = "https://op.example"
AUDIENCE = "https://bank.example/api"
LOA1 = "urn:stepup:loa:1"
LOA2 = "urn:stepup:loa:2"
T0 = 1_700_000_000.0

_KEYS: dict[str, RSAKey] = {}


def rsa_key(kid: str) -> RSAKey:
    """RSA keys are slow to generate; one per kid for the whole session."""
    if kid not in _KEYS:
        _KEYS[kid] = RSAKey.generate_key(2048, parameters={"kid": kid}, auto_kid=False)
    return _KEYS[kid]


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeIssuer:
    """Discovery + JWKS served by an injected fetch function, and a token minter."""

    def __init__(self, clock: Clock, issuer: str = ISSUER) -> None:
        self.clock = clock
        self.issuer = issuer
        self.signing = rsa_key("k1")
        self.published: list[Any] = [self.signing]
        self.down = False
        self.fetched: list[str] = []

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False, use="sig", alg="RS256")
                         if isinstance(k, RSAKey) else k for k in self.published]}  # fmt: skip

    def fetch(self, url: str) -> Any:
        self.fetched.append(url)
        if self.down:
            raise ConnectionError("provider is down")
        if url == f"{self.issuer}/.well-known/openid-configuration":
            return {
                "issuer": self.issuer,
                "jwks_uri": f"{self.issuer}/jwks",
                "introspection_endpoint": f"{self.issuer}/introspect",
            }
        if url == f"{self.issuer}/jwks":
            return self.jwks()
        raise ConnectionError(f"404 {url}")

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": AUDIENCE,
            "client_id": "bank-cli",
            "iat": now,
            "exp": now + 600,
            "jti": secrets.token_hex(8),
            "scope": "openid profile",
            "acr": LOA2,
            "amr": ["pwd", "otp", "mfa"],
            "auth_time": now - 10,
        }
        for name, value in overrides.items():
            if value is _DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def mint(
        self, *, header: dict[str, Any] | None = None, key: Any = None, **overrides: Any
    ) -> str:
        signing = key or self.signing
        hdr = {"alg": "RS256", "typ": "at+jwt", "kid": signing.kid}
        hdr.update(header or {})
        hdr = {k: v for k, v in hdr.items() if v is not _DROP}
        return jws.serialize_compact(
            hdr, json.dumps(self.claims(**overrides)), signing, algorithms=[hdr["alg"]]
        )


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: Pass as a claim or header value to leave it out.
_DROP: Any = _Drop()
DROP = _DROP


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid}, auto_kid=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge_params(response: Any) -> dict[str, str]:
    """The parameters of the one Bearer challenge in the response, parsed by the SDK's parser."""
    values = response.headers.getlist("WWW-Authenticate")
    assert len(values) == 1, values
    challenges = parse_www_authenticate(values)
    assert [c.scheme for c in challenges] == ["bearer"]
    return dict(challenges[0].params)


SANDBOX = load_config(__import__("stepup").__path__[0] + "/sandbox.toml")


def sandbox_config(**api: Any) -> Any:
    """The sandbox config with our issuer (and any ``[api]`` fields replaced)."""
    from dataclasses import replace

    return replace(SANDBOX, issuer=ISSUER, api=replace(SANDBOX.api, **api))
