"""Tokens and the per-requirement token cache.

The cache is keyed by :class:`~client_sdk.protocol.Requirement`: the everyday token lives under
``Requirement()``, a stepped-up one under the requirement it was obtained for, so a step-up never
throws the everyday token away and a stepped-up token is reused while it still meets its
requirement (``acr`` one of ``acr_values``, ``auth_time`` within ``max_age``, not expired).

:meth:`TokenCache.obtain` is single-flight per requirement: concurrent callers that need a new
token for the same requirement wait for one fetch (one step-up, one refresh) and share its result.

Except a token approved for a transaction (``Requirement.single_use``: the requirement names
RFC 9396 ``authorization_details``). An approval pays one transaction and the API spends it (the
demo bank at the first transfer it pays), so the cache hands such a token out once: the
:meth:`~TokenCache.obtain` that returns it takes it out of the cache, and :meth:`~TokenCache.find`
never returns it. The same payment made again asks the user again; two concurrent callers never
share one approval (the second waits for the first's, then fetches its own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from client_sdk.protocol import Requirement
from client_sdk.wire import numeric_date

__all__ = ["EXPIRY_MARGIN", "TokenCache", "TokenSet"]

EXPIRY_MARGIN = 30
"""Seconds before ``expires_at`` from which a token is no longer sent (it may expire in flight)."""


@dataclass(frozen=True)
class TokenSet:
    """An access token with what the client knows about the authentication behind it.

    ``claims`` are the validated ID token claims (``sub``, ``acr``, ``amr``, ``auth_time``, …); the
    access token itself is opaque to the client.
    """

    access_token: str
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, hash=False)
    requirement: Requirement = field(default_factory=Requirement)

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def acr(self) -> str | None:
        acr = self.claims.get("acr")
        return acr if isinstance(acr, str) else None

    @property
    def auth_time(self) -> float | None:
        return numeric_date(self.claims.get("auth_time"))

    @property
    def is_dpop(self) -> bool:
        """Whether the token is DPoP-bound (RFC 9449 §5: ``token_type`` ``DPoP``)."""
        return self.token_type.lower() == "dpop"

    def authorization(self) -> str:
        """The ``Authorization`` header value: ``Bearer <token>`` (RFC 6750 §2.1), or
        ``DPoP <token>`` for a DPoP-bound one (RFC 9449 §7.1), sent with a proof."""
        return f"{'DPoP' if self.is_dpop else 'Bearer'} {self.access_token}"

    def is_expired(self, now: float, margin: float = EXPIRY_MARGIN) -> bool:
        return self.expires_at is not None and now >= self.expires_at - margin

    def satisfies(self, requirement: Requirement, now: float) -> bool:
        """Whether this token still meets ``requirement`` at ``now`` (without any leeway): level,
        age, the scope values it must carry (``scope`` is what was granted), claims request."""
        if self.is_expired(now):
            return False
        if requirement.acr_values and self.acr not in requirement.acr_values:
            return False
        if requirement.max_age is not None:
            auth_time = self.auth_time
            if auth_time is None or now - auth_time > requirement.max_age:
                return False
        if requirement.scope and not set(requirement.scope) <= set((self.scope or "").split()):
            return False
        # What a claims challenge asked for cannot be read off the token: only a token obtained
        # with that very claims request meets it.
        if requirement.claims is not None and self.requirement.claims != requirement.claims:
            return False
        # Likewise an approval of a transaction (RFC 9396): only a token approved for it.
        return (
            requirement.authorization_details is None
            or self.requirement.authorization_details == requirement.authorization_details
        )


def _reusable(key: Requirement, tokens: TokenSet) -> bool:
    """Whether :meth:`TokenCache.find` may return ``tokens``, cached under ``key``."""
    return not (key.single_use or tokens.requirement.single_use)


class TokenCache:
    """Thread-safe map from requirement to token, with single-flight fetching per requirement."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[Requirement, TokenSet] = {}
        self._flights: dict[Requirement, threading.Lock] = {}

    def get(self, requirement: Requirement) -> TokenSet | None:
        with self._lock:
            return self._tokens.get(requirement)

    def put(self, requirement: Requirement, tokens: TokenSet) -> None:
        with self._lock:
            self._tokens[requirement] = tokens

    def discard(self, requirement: Requirement, tokens: TokenSet | None = None) -> None:
        """Forget the token for ``requirement`` (only if it is still ``tokens``, when given)."""
        with self._lock:
            current = self._tokens.get(requirement)
            if current is not None and (
                tokens is None or current.access_token == tokens.access_token
            ):
                del self._tokens[requirement]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def items(self) -> list[tuple[Requirement, TokenSet]]:
        with self._lock:
            return list(self._tokens.items())

    def find(self, requirement: Requirement, now: float) -> TokenSet | None:
        """A cached token that meets ``requirement`` now: its own entry, else any stronger one;
        never a single-use one (only :meth:`obtain` hands those out, once)."""
        with self._lock:
            own = self._tokens.get(requirement)
            if own is not None and _reusable(requirement, own) and own.satisfies(requirement, now):
                return own
            for key, tokens in self._tokens.items():
                if _reusable(key, tokens) and tokens.satisfies(requirement, now):
                    return tokens
        return None

    def _take(self, requirement: Requirement) -> TokenSet | None:
        with self._lock:
            return self._tokens.pop(requirement, None)

    @contextmanager
    def _flight(self, requirement: Requirement) -> Iterator[None]:
        with self._lock:
            flight = self._flights.setdefault(requirement, threading.Lock())
        with flight:
            yield

    def obtain(
        self,
        requirement: Requirement,
        *,
        reuse: Callable[[TokenSet], bool],
        fetch: Callable[[], TokenSet | None],
    ) -> TokenSet | None:
        """Return the cached token for ``requirement`` if ``reuse`` accepts it, else fetch one.

        Only one caller per requirement fetches at a time; the others wait, then find the new
        token in the cache and (``reuse`` accepting it) return it without fetching again.

        For a ``single_use`` requirement the token returned is the caller's alone: a cached one
        (put there by :meth:`put`, e.g. a web app's callback) leaves the cache as it is returned,
        one ``reuse`` refuses is dropped, and a fetched one is not kept.
        """
        once = requirement.single_use
        with self._flight(requirement):
            current = self._take(requirement) if once else self.get(requirement)
            if current is not None and reuse(current):
                return current
            fresh = fetch()
            if fresh is not None and not once:
                self.put(requirement, fresh)
            return fresh
