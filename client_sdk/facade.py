"""What the ``requests`` and ``httpx`` adapters share: an :class:`OIDCClient` and its verbs."""

from __future__ import annotations

from client_sdk.dpop import DPoPKey
from client_sdk.hooks import Hook
from client_sdk.oidc import OIDCClient
from client_sdk.protocol import PendingAuthorization, Requirement
from client_sdk.tokens import TokenCache, TokenSet

__all__ = ["ClientFacade"]


class ClientFacade:
    """The part of :class:`~client_sdk.StepUpAuth` and :class:`~client_sdk.StepUpHTTPXAuth` that
    does not depend on the HTTP library: both drive one :class:`OIDCClient`."""

    client: OIDCClient

    @property
    def hooks(self) -> list[Hook]:
        return self.client.hooks

    @property
    def token_cache(self) -> TokenCache:
        return self.client.cache

    @property
    def dpop_key(self) -> DPoPKey | None:
        """The DPoP key every proof is signed with (``dpop=``), or ``None`` without DPoP. Its
        :meth:`~client_sdk.DPoPKey.private_jwk` is what to store to keep using the tokens."""
        return self.client.dpop_key

    def login(self, requirement: Requirement | None = None) -> TokenSet:
        """Log in now (e.g. a CLI ``login`` command) instead of on the first call."""
        return self.client.login(requirement or Requirement())

    def complete_authorization(self, callback_url: str, pending: PendingAuthorization) -> TokenSet:
        """Web apps: finish the authorization a :class:`StepUpRequired` started."""
        return self.client.complete_authorization(callback_url, pending)
