"""CIBA poll mode as protocol steps: build the requests, read the answers. Pure: no I/O, no clock.

OpenID Connect Client-Initiated Backchannel Authentication Flow - Core 1.0:

- §7.1 the authentication request, at ``backchannel_authentication_endpoint``, with client
  authentication "as described in Section 9 of OpenID Connect Core" (the token endpoint's):
  ``scope`` (with ``openid``), exactly one hint (``login_hint`` or ``id_token_hint`` here),
  ``binding_message``, ``acr_values``, ``requested_expiry``; RFC 9396 §3 adds
  ``authorization_details`` to it.
- §7.3 the acknowledgement: ``auth_req_id`` (REQUIRED), ``expires_in`` (REQUIRED), ``interval``
  (OPTIONAL: "If no value is provided, clients MUST use 5 as the default value").
- §10.1 the token request: ``grant_type=urn:openid:params:grant-type:ciba`` and ``auth_req_id``.
- §11 the poll's errors: ``authorization_pending``, ``slow_down``, ``expired_token``,
  ``access_denied`` (:func:`read_poll` sorts an answer into one of them).
- §13 the authentication request's errors (``unknown_user_id``, ``invalid_binding_message``...).

:class:`client_sdk.authenticators.CibaAuthenticator` runs these steps with a clock and a sleep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from client_sdk.errors import BackchannelError, ConfigurationError, ProviderError
from client_sdk.protocol import (
    HttpRequest,
    HttpResponse,
    ProviderMetadata,
    TokenResponse,
    _client_auth,
    json_body,
    oauth_error,
    parse_token_response,
    refusal,
)

__all__ = [
    "CIBA_GRANT_TYPE",
    "DEFAULT_INTERVAL",
    "SLOW_DOWN_STEP",
    "BackchannelStarted",
    "Poll",
    "backchannel_request",
    "ciba_token_request",
    "parse_backchannel_response",
    "read_poll",
]

CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
#: §7.3: "If no value is provided, clients MUST use 5 as the default value."
DEFAULT_INTERVAL = 5
#: RFC 8628 §3.5, which CIBA §11 points to for slow_down: "the interval MUST be increased by 5
#: seconds for this and all subsequent requests".
SLOW_DOWN_STEP = 5


@dataclass(frozen=True)
class BackchannelStarted:
    """§7.3: the provider accepted the request; poll with ``auth_req_id`` every ``interval``
    seconds for at most ``expires_in`` seconds."""

    auth_req_id: str
    expires_in: int
    interval: int


def backchannel_request(
    metadata: ProviderMetadata,
    client_id: str,
    client_secret: str | None,
    *,
    scope: str,
    login_hint: str | None = None,
    id_token_hint: str | None = None,
    binding_message: str | None = None,
    acr_values: Sequence[str] = (),
    authorization_details: str | None = None,
    requested_expiry: int | None = None,
    resource: str | None = None,
) -> HttpRequest:
    """§7.1. ``authorization_details``: the RFC 9396 JSON array, as text."""
    endpoint = metadata.backchannel_authentication_endpoint
    if endpoint is None:
        raise ConfigurationError(
            f"{metadata.issuer} lists no backchannel_authentication_endpoint: it does not do CIBA"
        )
    if (login_hint is None) == (id_token_hint is None):
        # §7.1: "the Client MUST provide one (and only one) of the hints".
        raise ConfigurationError("give exactly one of login_hint and id_token_hint")
    if client_secret is None:
        # §7.1: "The Client MUST authenticate to the Backchannel Authentication Endpoint".
        raise ConfigurationError("CIBA needs a confidential client: pass client_secret")
    form = {"scope": scope if "openid" in scope.split() else f"openid {scope}"}
    if login_hint is not None:
        form["login_hint"] = login_hint
    if id_token_hint is not None:
        form["id_token_hint"] = id_token_hint
    if binding_message is not None:
        form["binding_message"] = binding_message
    if acr_values:
        form["acr_values"] = " ".join(acr_values)
    if authorization_details is not None:
        form["authorization_details"] = authorization_details
    if requested_expiry is not None:
        form["requested_expiry"] = str(requested_expiry)
    if resource is not None:
        form["resource"] = resource  # RFC 8707 §2
    headers = _client_auth(metadata, client_id, client_secret, form)
    return HttpRequest("POST", endpoint, headers, urlencode(form).encode())


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def parse_backchannel_response(response: HttpResponse) -> BackchannelStarted:
    """§7.3 (success) and §13 (errors: :class:`BackchannelError` with the provider's code)."""
    body = json_body(response)
    if response.status != 200:
        error, description = oauth_error(body)
        raise BackchannelError(
            refusal("the backchannel authentication endpoint", response.status, error, description),
            error=error,
            status_code=response.status,
        )
    auth_req_id = body.get("auth_req_id") if isinstance(body, dict) else None
    expires_in = _positive_int(body.get("expires_in")) if isinstance(body, dict) else None
    if not isinstance(auth_req_id, str) or not auth_req_id or expires_in is None:
        raise ProviderError(
            "the backchannel authentication response lacks auth_req_id or expires_in",
            status_code=200,
        )
    interval = _positive_int(body.get("interval")) if "interval" in body else None
    return BackchannelStarted(auth_req_id, expires_in, interval or DEFAULT_INTERVAL)


def ciba_token_request(
    metadata: ProviderMetadata, client_id: str, client_secret: str | None, auth_req_id: str
) -> HttpRequest:
    """§10.1: the token request for ``auth_req_id``, with the same client authentication."""
    form = {"grant_type": CIBA_GRANT_TYPE, "auth_req_id": auth_req_id}
    headers = _client_auth(metadata, client_id, client_secret, form)
    return HttpRequest("POST", metadata.token_endpoint, headers, urlencode(form).encode())


@dataclass(frozen=True)
class Poll:
    """What one poll's answer means. ``outcome`` ``tokens``: :attr:`tokens` holds them;
    ``pending``, ``slow_down``: poll again (5 s later for ``slow_down``); ``denied``, ``expired``,
    ``error``: stop (:attr:`error` holds the provider's code and description)."""

    outcome: Literal["tokens", "pending", "slow_down", "denied", "expired", "error"]
    tokens: TokenResponse | None = None
    error: ProviderError | None = None


_OUTCOMES: dict[str, Literal["pending", "slow_down", "denied", "expired"]] = {
    "authorization_pending": "pending",
    "slow_down": "slow_down",
    "access_denied": "denied",
    "expired_token": "expired",
}


def read_poll(response: HttpResponse) -> Poll:
    """§11: a poll's answer, sorted."""
    try:
        return Poll("tokens", tokens=parse_token_response(response))
    except ProviderError as exc:
        outcome = _OUTCOMES.get(exc.error or "") if response.status == 400 else None
        return Poll(outcome or "error", error=exc)
