"""What an authenticator is: the part that takes the user through the provider's login.

The SDK hands an authenticator a :class:`LoginRequest`. The authenticator picks the redirect URI it
can receive on (a loopback port, a web app's callback, a registered URI it never follows), asks
the request for the authorization URL, gets the user through the provider's pages, and returns the
URL the provider redirected to (``redirect_uri?code=…&state=…&iss=…``). It does not check that
URL: :func:`client_sdk.protocol.parse_callback` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from client_sdk.challenges import StepUpChallenge
from client_sdk.hooks import Event
from client_sdk.protocol import PendingAuthorization, Requirement

__all__ = ["Authenticator", "LoginRequest"]


class LoginRequest:
    """One authorization the SDK needs. Built by the SDK, read by an authenticator."""

    def __init__(
        self,
        *,
        issuer: str,
        requirement: Requirement,
        redirect_uri: str | None,
        build: Callable[[str], tuple[str, PendingAuthorization]],
        emit: Callable[[Event], None],
        challenge: StepUpChallenge | None = None,
    ) -> None:
        self.issuer = issuer
        self.requirement = requirement
        #: The redirect URI the app configured (``StepUpAuth(redirect_uri=…)``), or ``None``.
        self.redirect_uri = redirect_uri
        #: The RFC 9470 challenge that caused this login; ``None`` for the first login.
        self.challenge = challenge
        self.emit = emit
        self._build = build
        self._pending: PendingAuthorization | None = None

    def authorization_url(self, redirect_uri: str) -> str:
        """Create the authorization request for ``redirect_uri`` and return its URL.

        Each call makes a fresh ``state``, ``nonce`` and PKCE verifier; the last one made is the one
        the callback is checked against.
        """
        url, self._pending = self._build(redirect_uri)
        return url

    @property
    def pending(self) -> PendingAuthorization | None:
        return self._pending


class Authenticator(Protocol):
    """Takes the user through the provider's login; returns the redirect URI it was sent to."""

    def authenticate(self, login: LoginRequest) -> str: ...
