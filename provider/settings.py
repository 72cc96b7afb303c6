"""The provider's settings: plain frozen values, and the shape of the whole it takes.

The provider does not read files. Whoever builds it (the ``stepup`` command reads a TOML file;
a test or an embedding application builds the values in code) hands :func:`provider.create_app`
an object with the attributes of :class:`ProviderConfig` holding these values. So the provider
depends on no configuration format and no command package — the habit Flask extensions and
Authlib keep: a library takes its own settings object; only the application reads config files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .factor_api import admin_client_problem
from .resource_indicators import check_resource_uri

__all__ = [
    "SANDBOX_ONLY",
    "AcrLevelConfig",
    "ClientConfig",
    "ProviderConfig",
    "ProviderSettings",
    "SettingsError",
    "UserConfig",
]


class SettingsError(ValueError):
    """The settings given to the provider are invalid; the message names the setting."""


# ProviderSettings switches that relax a check for convenience, in sandbox mode only. A config
# file that sets one without ``sandbox = true`` is refused (stepup.config). In code, the replay
# switch is refused outright (nobody turns a security check off by accident), while the loopback
# switch, on in the built-in sandbox config, is inert once ``sandbox`` is False, so a non-sandbox
# setting derived from the sandbox's with ``replace(settings, sandbox=False)`` stays valid.
SANDBOX_ONLY = ("sandbox_allow_totp_reuse", "sandbox_loopback_clients")


@dataclass(frozen=True)
class AcrLevelConfig:
    """One authentication level, ``[[acr_levels]]``; levels are listed weakest first.

    ``elevation_lifetime`` (seconds) bounds how long a session keeps this level once reached; after
    that the session falls back to the level its remaining fresh factors give. ``None``: no bound.
    """

    value: str
    factors: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    elevation_lifetime: int | None = None
    description: str = ""


@dataclass(frozen=True)
class UserConfig:
    """A seeded user, ``[[users]]``. ``totp_secret`` absent: the user has no OTP factor yet."""

    username: str
    password: str
    totp_secret: str | None = None
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ClientConfig:
    """A registered client, ``[[clients]]``. A ``client_secret`` makes it confidential.

    ``require_pkce = False`` lets a confidential client send authorization requests without a
    PKCE challenge, relying on ``nonce`` as RFC 9700 §2.1.1 allows ("Confidential OpenID Connect
    clients MAY use the nonce parameter and the respective Claims in the ID Token instead"); a
    challenge that is sent is still verified. A public client can never turn PKCE off.
    """

    client_id: str
    redirect_uris: tuple[str, ...] = ()
    client_secret: str | None = None
    name: str | None = None
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    scope: str = "openid profile email offline_access"
    post_logout_redirect_uris: tuple[str, ...] = ()
    require_pkce: bool = True
    # RFC 9449 §5.2 (the client metadata of that name): "If true, the authorization server MUST
    # reject token requests from this client that do not contain the DPoP header." Every client
    # may use DPoP; this makes it the only way in.
    dpop_bound_access_tokens: bool = False

    def __post_init__(self) -> None:
        # RFC 9700 §2.1.1: "Public clients MUST use PKCE".
        if not self.require_pkce and not self.is_confidential:
            raise SettingsError(
                f"client {self.client_id!r}: require_pkce = false needs a client_secret; a "
                "public client must always use PKCE (RFC 9700 §2.1.1)"
            )
        problem = admin_client_problem(
            scope=self.scope, grant_types=self.grant_types, confidential=self.is_confidential
        )
        if problem is not None:
            raise SettingsError(f"client {self.client_id!r}: {problem} (docs/transactional.md)")

    @property
    def is_confidential(self) -> bool:
        return self.client_secret is not None


@dataclass(frozen=True)
class ProviderSettings:
    """Optional ``[provider]`` table: lifetimes in seconds and sandbox switches."""

    access_token_lifetime: int = 600
    id_token_lifetime: int = 600
    refresh_token_lifetime: int = 30 * 24 * 3600
    authorization_code_lifetime: int = 60
    session_lifetime: int = 12 * 3600
    # In-flow TOTP enrolment for users who have no OTP factor yet.
    allow_totp_enrolment: bool = True
    # RFC 9449 §8: the token endpoint asks every DPoP proof for a nonce it gave out (answering a
    # proof without one use_dpop_nonce), so a proof cannot be made ahead of time.
    dpop_require_nonce: bool = True
    # In-flow passkey registration for users who have no passkey yet.
    allow_passkey_enrolment: bool = True
    # Sandbox conveniences (user list with current codes, token minting). Off outside the sandbox.
    sandbox: bool = False
    # Sandbox only: accept a TOTP code again within its 30-second step (RFC 6238 §5.2 replay
    # check off), for test suites that step the same user up many times. Off unless asked for.
    sandbox_allow_totp_reuse: bool = False
    # Sandbox only: any client_id with a loopback redirect_uri (127.0.0.1, [::1], localhost; any
    # port and path) is served as a public PKCE client without a [[clients]] entry.
    sandbox_loopback_clients: bool = False
    # RFC 8707 resource indicators this provider issues tokens for, besides the [api] audience
    # (always known, and the audience when a request names no resource). Absolute URIs.
    resources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sandbox_allow_totp_reuse and not self.sandbox:
            raise SettingsError(
                "provider.sandbox_allow_totp_reuse is a sandbox setting: it needs "
                "[provider] sandbox = true"
            )
        for value in self.resources:
            problem = check_resource_uri(value)
            if problem is not None:
                raise SettingsError(f"provider.resources: {value!r}: {problem} (RFC 8707 §2)")

    @property
    def totp_reuse(self) -> bool:
        """Whether a used TOTP step is accepted again (sandbox mode only)."""
        return self.sandbox and self.sandbox_allow_totp_reuse

    @property
    def loopback_clients(self) -> bool:
        """Whether any client with a loopback redirect URI is served (sandbox mode only)."""
        return self.sandbox and self.sandbox_loopback_clients


class ProviderConfig(Protocol):
    """What :func:`provider.create_app` reads. ``stepup.config.StepupConfig`` is one."""

    @property
    def issuer(self) -> str: ...

    @property
    def acr_levels(self) -> Sequence[AcrLevelConfig]: ...

    @property
    def users(self) -> Sequence[UserConfig]: ...

    @property
    def clients(self) -> Sequence[ClientConfig]: ...

    @property
    def provider(self) -> ProviderSettings: ...

    @property
    def access_token_audience(self) -> str:
        """The ``aud`` of the RFC 9068 access tokens: the API they are for."""
        ...
