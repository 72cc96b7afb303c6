"""The CIBA authentication request (CIBA Core 1.0 §7.1), validated (§7.2) into plain values.

A client posts it to the backchannel authentication endpoint to ask that a user approve — on
their own authentication device — a login or one transaction. What is checked here, from the form
parameters alone; the client's authentication and the user behind the hint are checked by the
endpoint (provider/views/ciba.py):

* §7.1 ``scope`` REQUIRED: "CIBA authentication requests MUST therefore contain the openid scope
  value" (``invalid_request`` otherwise); values not understood are ignored, as at /authorize.
* §7.1: "It is REQUIRED that the Client provides one (and only one) of the hints": ``login_hint``
  (a username here) or ``id_token_hint``; ``login_hint_token`` is not supported (§7.1 leaves its
  format to the deployment). Zero, two or an unsupported one: ``invalid_request``.
* §7.1 ``binding_message``: "a human-readable identifier or message intended to be displayed on
  both the consumption device and the authentication device"; §13 ``invalid_binding_message``
  when it is unacceptable: here, longer than :data:`MAX_BINDING_MESSAGE` characters or holding a
  control or format character.
* §7.1 ``acr_values``: the first value naming a configured level is the level the user must
  reach on the device; values not known are ignored (OIDC's voluntary ``acr_values``); none known:
  the weakest level.
* §7.1 ``requested_expiry``: "A positive integer allowing the client to request the expires_in
  value"; honoured up to :data:`MAX_EXPIRES_IN`, malformed: ``invalid_request``.
* RFC 9396 ``authorization_details``: parsed strictly by :mod:`provider.authorization_details`.
* ``request`` (a signed authentication request, §7.1.1) is not supported: ``invalid_request``,
  never ignored — its parameters would be lost. ``user_code`` is not supported (discovery says
  ``backchannel_user_code_parameter_supported: false``) and ``client_notification_token``
  (ping and push) is not used in poll mode: both are ignored.

Pure: no Flask, no storage, no clock.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from client_sdk.wire import ascii_int

from .acr import AcrLevel, AcrPolicy
from .authorization_details import InvalidAuthorizationDetails, parse_authorization_details

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "GRANT_TYPE",
    "MAX_BINDING_MESSAGE",
    "MAX_EXPIRES_IN",
    "BackchannelError",
    "BackchannelRequest",
    "parse_backchannel_request",
]

#: §10.1: the grant type of the token request that polls for the result.
GRANT_TYPE = "urn:openid:params:grant-type:ciba"
DEFAULT_EXPIRES_IN = 300
MAX_EXPIRES_IN = 1800
MAX_BINDING_MESSAGE = 100


class BackchannelError(Exception):
    """A §13 authentication error response: ``error``, a fixed ``description``, HTTP status."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code


@dataclass(frozen=True)
class BackchannelRequest:
    scope: str
    #: ``("login_hint", username)`` or ``("id_token_hint", token)``.
    hint: tuple[str, str]
    binding_message: str | None
    #: The requested value the level was found by (an alias stays the alias: the token's ``acr``
    #: is one of the values requested).
    acr: str
    level: AcrLevel
    authorization_details: list[dict[str, Any]] | None
    expires_in: int


def parse_backchannel_request(
    params: Mapping[str, str], policy: AcrPolicy, understood_scopes: Collection[str]
) -> BackchannelRequest:
    if "request" in params:
        raise BackchannelError(
            "invalid_request", "Signed authentication requests (request) are not supported."
        )
    requested = list(dict.fromkeys(params.get("scope", "").split()))
    if "openid" not in requested:
        raise BackchannelError("invalid_request", "scope must include openid (CIBA Core 7.1).")
    scope = " ".join(s for s in requested if s in understood_scopes)

    hints = [h for h in ("login_hint_token", "id_token_hint", "login_hint") if h in params]
    if len(hints) != 1:
        raise BackchannelError(
            "invalid_request", "Send exactly one of login_hint and id_token_hint."
        )
    if hints[0] == "login_hint_token":
        raise BackchannelError(
            "invalid_request",
            "login_hint_token is not supported; send login_hint or id_token_hint.",
        )

    message = params.get("binding_message")
    if message is not None and not _acceptable_binding_message(message):
        raise BackchannelError(
            "invalid_binding_message",
            f"binding_message must be at most {MAX_BINDING_MESSAGE} printable characters.",
        )

    acr, level = _level(params.get("acr_values", ""), policy)

    details = None
    if "authorization_details" in params:
        try:
            details = parse_authorization_details(params["authorization_details"])
        except InvalidAuthorizationDetails as exc:
            raise BackchannelError(exc.error, str(exc)) from None

    expires_in = DEFAULT_EXPIRES_IN
    if "requested_expiry" in params:
        asked = ascii_int(params["requested_expiry"], maximum=10**9)
        if asked is None or asked < 1:
            raise BackchannelError(
                "invalid_request", "requested_expiry must be a positive integer (seconds)."
            )
        expires_in = min(asked, MAX_EXPIRES_IN)

    return BackchannelRequest(
        scope=scope,
        hint=(hints[0], params[hints[0]]),
        binding_message=message,
        acr=acr,
        level=level,
        authorization_details=details,
        expires_in=expires_in,
    )


def _acceptable_binding_message(message: str) -> bool:
    if not 0 < len(message) <= MAX_BINDING_MESSAGE or message != message.strip():
        return False
    # No control, format, surrogate, private-use or unassigned character (category C*), and no
    # line or paragraph separator: one line of text a person can compare on two screens.
    return all(unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029" for c in message)


def _level(acr_values: str, policy: AcrPolicy) -> tuple[str, AcrLevel]:
    for value in acr_values.split():
        level = policy.resolve(value)
        if level is not None:
            return value, level
    return policy.weakest.value, policy.weakest
