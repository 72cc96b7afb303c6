"""Helpers for the SDK's unit layer: an ID-token factory and an in-memory provider.

:class:`FakeProvider` is a transport (discovery, JWKS, token endpoint) plus an authenticator that
"logs the user in" at a level the test chooses — enough to drive :class:`OIDCClient` through
first logins, step-ups and refreshes without sockets.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from client_sdk.authenticators.base import LoginRequest
from client_sdk.protocol import HttpRequest, HttpResponse

ISSUER = "https://op.example"
CLIENT_ID = "bank-cli"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
NOW = 1_700_000_000


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def make_id_token(key: RSAKey, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice-sub",
        "aud": CLIENT_ID,
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "n-1",
        "auth_time": NOW - 10,
        "acr": "urn:stepup:loa:1",
        "amr": ["pwd"],
    }
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    header.update(overrides.pop("_header", {}))
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(header, claims, key)


def discovery_document(issuer: str = ISSUER) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "end_session_endpoint": f"{issuer}/logout",
        "authorization_response_iss_parameter_supported": True,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


@dataclass
class Login:
    """What the fake user reaches at the next authorization."""

    acr: str = "urn:stepup:loa:1"
    sub: str = "alice-sub"
    auth_time: int | None = None  # None: "now"
    error: str | None = None


@dataclass
class FakeProvider:
    key: RSAKey
    clock: Callable[[], float]
    logins: list[Login] = field(default_factory=list)
    default_login: Login = field(default_factory=Login)
    requests: list[HttpRequest] = field(default_factory=list)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    refresh_error: str | None = None
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- transport ---------------------------------------------------------------------------
    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        path = urlsplit(request.url).path
        if path == "/.well-known/openid-configuration":
            return _json(200, discovery_document())
        if path == "/jwks":
            return _json(200, KeySet([self.key]).as_dict(private=False))
        if path == "/token":
            form = {k: v[0] for k, v in parse_qs((request.body or b"").decode()).items()}
            return self._token(form)
        return _json(404, {"error": "not_found"})

    def _issue(self, grant: dict[str, Any], nonce: str | None) -> dict[str, Any]:
        n = next(self._seq)
        access = f"at-{n}"
        self.issued[access] = grant
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": grant["sub"],
            "aud": CLIENT_ID,
            "iat": int(self.clock()),
            "exp": int(self.clock()) + 300,
            "acr": grant["acr"],
            "auth_time": grant["auth_time"],
            "amr": ["pwd", "otp"] if grant["acr"].endswith("2") else ["pwd"],
            "at_hash": at_hash(access),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 3600,
            "id_token": jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key),
        }
        if "offline_access" in grant["scope"].split():
            refresh = f"rt-{n}"
            self._refresh[refresh] = grant
            body["refresh_token"] = refresh
        return body

    def _token(self, form: dict[str, str]) -> HttpResponse:
        if form.get("grant_type") == "authorization_code":
            grant = self._codes.pop(form.get("code", ""), None)
            if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
                return _json(400, {"error": "invalid_grant"})
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if challenge.rstrip(b"=").decode() != grant["code_challenge"]:
                return _json(400, {"error": "invalid_grant", "error_description": "PKCE"})
            return _json(200, self._issue(grant, grant["nonce"]))
        if form.get("grant_type") == "refresh_token":
            if self.refresh_error is not None:
                return _json(400, {"error": self.refresh_error})
            grant = self._refresh.pop(form.get("refresh_token", ""), None)
            if grant is None:
                return _json(400, {"error": "invalid_grant"})
            body = self._issue(grant, None)
            return _json(200, body)
        return _json(400, {"error": "unsupported_grant_type"})

    # --- authenticator -------------------------------------------------------------------------
    def authenticate(self, login: LoginRequest) -> str:
        redirect_uri = login.redirect_uri or REDIRECT_URI
        url = login.authorization_url(redirect_uri)
        params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        self.authorizations.append(params)
        outcome = self.logins.pop(0) if self.logins else self.default_login
        if outcome.error is not None:
            query = {"error": outcome.error, "state": params["state"], "iss": ISSUER}
            return f"{redirect_uri}?{urlencode(query)}"
        code = f"code-{next(self._seq)}"
        self._codes[code] = {
            "sub": outcome.sub,
            "acr": outcome.acr,
            "scope": params["scope"],
            "auth_time": int(self.clock()) if outcome.auth_time is None else outcome.auth_time,
            "nonce": params["nonce"],
            "redirect_uri": redirect_uri,
            "code_challenge": params["code_challenge"],
        }
        query = {"code": code, "state": params["state"], "iss": ISSUER}
        return f"{redirect_uri}?{urlencode(query)}"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeApi:
    """The demo bank's rules as a function: (method, path, authorization) -> (status, headers)."""

    provider: FakeProvider
    clock: Callable[[], float]
    max_age: int = 300
    revoked: set[str] = field(default_factory=set)
    seen: list[tuple[str, str, str | None, bytes]] = field(default_factory=list)

    def handle(
        self, method: str, path: str, authorization: str | None, body: bytes = b""
    ) -> tuple[int, dict[str, str]]:
        self.seen.append((method, path, authorization, body))
        token = (authorization or "").removeprefix("Bearer ")
        grant = self.provider.issued.get(token)
        if grant is None or token in self.revoked:
            return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if (method, path) == ("POST", "/transfers"):
            fresh = self.clock() - grant["auth_time"] <= self.max_age
            if grant["acr"] != "urn:stepup:loa:2" or not fresh:
                challenge = (
                    'Bearer error="insufficient_user_authentication", '
                    'error_description="A transfer needs a one-time code", '
                    f'acr_values="urn:stepup:loa:2", max_age={self.max_age}'
                )
                return 401, {"WWW-Authenticate": challenge}
            return 201, {}
        return 200, {}
