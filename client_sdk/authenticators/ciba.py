"""CIBA (Client-Initiated Backchannel Authentication Core 1.0, poll mode) as an authenticator: the
user approves on their own device — no browser, no redirect.

:class:`CibaAuthenticator` sends the backchannel authentication request (the client's
authentication as at the token endpoint, the hint, ``binding_message``, the requirement's
``acr_values`` and the challenge's RFC 9396 ``authorization_details``), then polls the token
endpoint as CIBA §7.3 and §11 say:

- waits ``interval`` seconds (5 when the provider names none) before each poll;
- ``authorization_pending``: waits and polls again;
- ``slow_down``: "the interval MUST be increased by 5 seconds for this and all subsequent
  requests" (RFC 8628 §3.5, which CIBA §11 refers to);
- ``expired_token`` → :class:`BackchannelExpired`; ``access_denied`` → :class:`BackchannelDenied`;
  any other error → :class:`BackchannelError` with the provider's code;
- stops by itself once ``expires_in`` has passed on its clock (:class:`BackchannelExpired`), so a
  provider that keeps saying "pending" cannot keep it waiting for ever.

``sleep`` and ``clock`` are injected: tests and demos advance a fake clock (and the sandbox's)
instead of waiting. The steps themselves are :mod:`client_sdk.ciba` (pure).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from client_sdk.authenticators.base import LoginRequest
from client_sdk.challenges import StepUpChallenge
from client_sdk.ciba import (
    SLOW_DOWN_STEP,
    backchannel_request,
    ciba_token_request,
    parse_backchannel_response,
    read_poll,
)
from client_sdk.errors import (
    BackchannelDenied,
    BackchannelError,
    BackchannelExpired,
    ConfigurationError,
)
from client_sdk.protocol import (
    HttpRequest,
    HttpResponse,
    ProviderMetadata,
    Requirement,
    TokenResponse,
)

__all__ = ["BackchannelLogin", "CibaAuthenticator"]


@dataclass(frozen=True)
class BackchannelLogin:
    """One backchannel authentication the SDK needs; built by :class:`~client_sdk.OIDCClient`.

    ``send`` sends a request to the provider (``purpose`` names it in the hooks' events).
    """

    metadata: ProviderMetadata
    client_id: str
    client_secret: str | None
    scope: str
    requirement: Requirement
    challenge: StepUpChallenge | None
    send: Callable[[HttpRequest, str], HttpResponse]
    resource: str | None = None


class CibaAuthenticator:
    """Asks the user to approve on their own device (CIBA poll mode) instead of a browser login.

    ``login_hint`` (a username) or ``id_token_hint`` (an ID token the provider issued): exactly
    one. ``binding_message``: a short text shown on both screens, so that the user can tell the
    request on their phone is this one. ``requested_expiry``: seconds the request may wait for the
    user (the provider's default when ``None``). ``sleep``/``clock``: injectable (seconds).
    """

    def __init__(
        self,
        *,
        login_hint: str | None = None,
        id_token_hint: str | None = None,
        binding_message: str | None = None,
        requested_expiry: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (login_hint is None) == (id_token_hint is None):
            raise ConfigurationError(
                "CibaAuthenticator needs exactly one of login_hint and id_token_hint"
            )
        self.login_hint = login_hint
        self.id_token_hint = id_token_hint
        self.binding_message = binding_message
        self.requested_expiry = requested_expiry
        self._sleep = sleep
        self._clock = clock
        #: The interval of each wait of the last authentication, in order (for the curious).
        self.waits: list[float] = []

    def __repr__(self) -> str:
        who = f"login_hint={self.login_hint!r}" if self.login_hint else "id_token_hint=…"
        return f"CibaAuthenticator({who})"

    def authenticate(self, login: LoginRequest) -> str:
        """Not a browser login: the SDK calls :meth:`backchannel` for this authenticator."""
        raise ConfigurationError(
            "CibaAuthenticator does not drive a browser login; use it with OIDCClient/StepUpAuth, "
            "which call its backchannel()"
        )

    def backchannel(self, login: BackchannelLogin) -> TokenResponse:
        """Run one backchannel authentication to the end: the token response, or a
        :class:`BackchannelError`."""
        requirement = login.requirement
        scope = " ".join(dict.fromkeys([*login.scope.split(), *requirement.scope]))
        request = backchannel_request(
            login.metadata, login.client_id, login.client_secret, scope=scope,
            login_hint=self.login_hint, id_token_hint=self.id_token_hint,
            binding_message=self.binding_message, acr_values=requirement.acr_values,
            authorization_details=requirement.authorization_details,
            requested_expiry=self.requested_expiry, resource=login.resource,
        )  # fmt: skip
        started = parse_backchannel_response(login.send(request, "backchannel"))
        deadline = self._clock() + started.expires_in
        interval = float(started.interval)
        self.waits = []
        poll = ciba_token_request(
            login.metadata, login.client_id, login.client_secret, started.auth_req_id
        )
        while True:
            # §7.3 interval: "The minimum amount of time in seconds that the Client MUST wait
            # between polling requests to the token endpoint."
            self.waits.append(interval)
            self._sleep(interval)
            answer = read_poll(login.send(poll, "ciba_poll"))
            if answer.tokens is not None:
                return answer.tokens
            if answer.outcome == "slow_down":
                interval += SLOW_DOWN_STEP
            elif answer.outcome != "pending":
                raise _failure(answer.outcome, answer.error, started.auth_req_id)
            if self._clock() >= deadline:
                raise BackchannelExpired(
                    f"the user did not decide within {started.expires_in} seconds "
                    f"(auth_req_id {started.auth_req_id})",
                    error="expired_token",
                    auth_req_id=started.auth_req_id,
                )


def _failure(outcome: str, error: object, auth_req_id: str) -> BackchannelError:
    code = getattr(error, "error", None)
    status = getattr(error, "status_code", None)
    if outcome == "denied":
        return BackchannelDenied(
            "the user denied the request on their device", error=code, status_code=status,
            auth_req_id=auth_req_id,
        )  # fmt: skip
    if outcome == "expired":
        return BackchannelExpired(
            "the request expired before the user decided", error=code, status_code=status,
            auth_req_id=auth_req_id,
        )  # fmt: skip
    return BackchannelError(
        f"polling the token endpoint failed: {error}", error=code, status_code=status,
        auth_req_id=auth_req_id,
    )  # fmt: skip
