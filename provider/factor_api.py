"""The factor API's rules: who may call it, what it says about a user's factors, and the
challenge transactions it opens. Pure: no Flask, no storage, no clock.

The factor API (:mod:`provider.views.factors`) is for server-side applications that do not speak
OpenID Connect: they hold a user's identity themselves and ask the provider to check a second
factor — list the user's factors, open a challenge, verify the passcode the user typed.

- **Who may call it.** A confidential client registered for ``client_credentials`` only, with the
  scope :data:`SCOPE` in its ``[[clients]]`` entry (:func:`admin_client_problem`), presenting an
  access token of its own (``sub`` is its ``client_id``: no user's token, whatever its scope)
  whose ``aud`` names the API (:func:`resource_for`; RFC 8707 §2: the token request names it as
  ``resource``) and whose scope holds :data:`SCOPE` (RFC 6750 §3.1 ``insufficient_scope``
  otherwise).
- **What a factor is.** The names :func:`provider.login.enrolled_factors` knows, shown as
  :func:`describe_factors` lists them. Only the one-time code (``otp``) can be challenged and
  verified here: a password is not a second factor, and a passkey's assertion is bound to the
  provider's own origin (WebAuthn's RP ID), so an application on another site cannot relay one.
- **Transactions.** A challenge opens a transaction: an id, an expiry, and a MAC that binds them
  to the client, the user and the factor (:class:`Transactions`). Nothing is stored: the MAC's key
  is derived from the secret every provider process shares. A transaction is a handle, not a
  second replay guard: what makes a code single-use is the TOTP step, consumed by one atomic
  statement for the login pages and this API alike (:func:`provider.store.consume_totp_step`).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from client_sdk.wire import ascii_digits

from .factors import totp

__all__ = [
    "ERRORS",
    "PATH",
    "SCOPE",
    "TRANSACTION_LIFETIME",
    "Reason",
    "Transaction",
    "TransactionRefused",
    "Transactions",
    "admin_client_problem",
    "describe_factors",
    "resource_for",
]

#: The scope a client_credentials token needs to call the factor API.
SCOPE = "stepup:factors"
#: Where the API lives under the issuer; also its resource identifier (RFC 8707) there.
PATH = "/api/v1"
#: Seconds a challenge's transaction stays open.
TRANSACTION_LIFETIME = 300
#: The one factor this API verifies.
VERIFIABLE = frozenset({"otp"})


def resource_for(issuer: str) -> str:
    """The factor API's resource identifier (RFC 8707 §2): the ``resource`` a token request
    names, and the ``aud`` the API accepts."""
    return issuer.rstrip("/") + PATH


def admin_client_problem(
    *, scope: str, grant_types: Iterable[str], confidential: bool
) -> str | None:
    """Why a client may not be registered with :data:`SCOPE`, or ``None`` if it may.

    Only a confidential client that uses nothing but ``client_credentials``: its tokens are its
    own, never a user's, so the scope cannot travel into a user's token (a code or CIBA grant
    would carry it to whoever signs in through that client).
    """
    if SCOPE not in scope.split():
        return None
    if not confidential:
        return f"the {SCOPE} scope needs a client_secret (a confidential client)"
    if set(grant_types) != {"client_credentials"}:
        return f'the {SCOPE} scope needs grant_types = ["client_credentials"] and nothing else'
    return None


class Reason(enum.Enum):
    """Why a verification ended as it did: the audit's ``reason`` and the error's code."""

    VERIFIED = "verified"
    WRONG = "wrong"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    THROTTLED = "throttled"
    UNKNOWN_USER = "unknown_user"
    UNKNOWN_FACTOR = "unknown_factor"
    NOT_ENROLLED = "not_enrolled"
    UNSUPPORTED_FACTOR = "unsupported_factor"
    INVALID_TRANSACTION = "invalid_transaction"
    EXPIRED_TRANSACTION = "expired_transaction"


#: How each refusal is answered: HTTP status, error code, description. Errors of the caller's own
#: credentials are RFC 6750's (provider.views.factors), not these.
ERRORS: dict[Reason, tuple[int, str, str]] = {
    Reason.UNKNOWN_USER: (404, "user_not_found", "No user has this sub or username."),
    Reason.UNKNOWN_FACTOR: (
        404,
        "factor_not_found",
        "No such factor: the factors are pwd, otp, passkey.",
    ),
    Reason.NOT_ENROLLED: (404, "factor_not_enrolled", "The user has not enrolled this factor."),
    Reason.UNSUPPORTED_FACTOR: (
        400,
        "unsupported_factor",
        "The factor API challenges and verifies one-time codes (otp) only: a password is not a "
        "second factor, and a passkey answers only the provider's own pages (redirect step-up or "
        "CIBA).",
    ),
    Reason.INVALID_TRANSACTION: (400, "invalid_transaction", ""),  # the description says which
    Reason.EXPIRED_TRANSACTION: (400, "expired_transaction", ""),
    Reason.WRONG: (422, "invalid_passcode", "The passcode is not right."),
    Reason.EXPIRED: (
        422,
        "expired_passcode",
        "The passcode has expired: ask for the one shown now.",
    ),
    Reason.REPLAYED: (
        422,
        "replayed_passcode",
        "The passcode was already used: ask the user for the next one.",
    ),
    Reason.THROTTLED: (429, "too_many_attempts", "Too many failed attempts for this user's codes."),
}


# --- what the API says about a user's factors ----------------------------------------------------

#: Factor ids the API knows, in the order it lists them. ``uv`` and ``hwk`` are how a passkey was
#: used (RFC 8176), not factors of their own: they show on the passkey's entry.
KNOWN = ("pwd", "otp", "passkey")


def describe_factors(enrolled: frozenset[str]) -> list[dict[str, Any]]:
    """The JSON entries for the factors in ``enrolled``
    (:func:`provider.login.enrolled_factors`), in the order of :data:`KNOWN`."""
    entries: list[dict[str, Any]] = []
    if "pwd" in enrolled:
        entries.append({"id": "pwd", "type": "password", "verify": False})
    if "otp" in enrolled:
        entries.append(
            {
                "id": "otp",
                "type": "totp",
                "verify": True,
                "digits": totp.DIGITS,
                "period": totp.PERIOD,
            }
        )
    if "passkey" in enrolled:
        entries.append(
            {"id": "passkey", "type": "webauthn", "verify": False, "hardware": "hwk" in enrolled}
        )
    return entries


# --- transactions --------------------------------------------------------------------------------

_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_MAC = re.compile(r"[A-Za-z0-9_-]{43}")
_LONGEST = 80  # 22 + 1 + at most 12 digits + 1 + 43


@dataclass(frozen=True)
class Transaction:
    """An open challenge: its ``id`` (what the audit records) and when it stops being valid."""

    id: str
    expires_at: int
    token: str


class TransactionRefused(Exception):
    """The ``transaction_id`` sent does not stand: :attr:`reason` is
    :attr:`Reason.INVALID_TRANSACTION` (malformed, forged, or another client's, user's or
    factor's) or :attr:`Reason.EXPIRED_TRANSACTION`."""

    def __init__(self, reason: Reason, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


class Transactions:
    """Opens and checks transactions: ``<id>.<expires_at>.<mac>``, where the MAC (HMAC-SHA-256)
    covers the id, the expiry, the client, the user's ``sub`` and the factor."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_shared_secret(cls, secret: str) -> Transactions:
        """The key derived from the secret every provider process shares (the cookie secret),
        for this use only."""
        return cls(
            hmac.new(secret.encode(), b"stepup factor transactions", hashlib.sha256).digest()
        )

    def _mac(self, tid: str, expires_at: int, bound: Sequence[str]) -> str:
        message = "\n".join([tid, str(expires_at), *bound]).encode("utf-8", "surrogatepass")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def open(self, *, client_id: str, subject: str, factor: str, now: int) -> Transaction:
        tid = secrets.token_urlsafe(16)
        expires_at = now + TRANSACTION_LIFETIME
        mac = self._mac(tid, expires_at, (client_id, subject, factor))
        return Transaction(tid, expires_at, f"{tid}.{expires_at}.{mac}")

    def check(
        self, token: str, *, client_id: str, subject: str, factor: str, now: int
    ) -> Transaction:
        """The transaction ``token`` stands for, if this client opened it for this user and
        factor and it has not expired; else :class:`TransactionRefused`."""
        parts = token.split(".") if len(token) <= _LONGEST else []
        if len(parts) != 3:
            raise TransactionRefused(Reason.INVALID_TRANSACTION, "transaction_id is malformed.")
        tid, expiry, mac = parts
        if not (_ID.fullmatch(tid) and ascii_digits(expiry) and _MAC.fullmatch(mac)):
            raise TransactionRefused(Reason.INVALID_TRANSACTION, "transaction_id is malformed.")
        expires_at = int(expiry)
        expected = self._mac(tid, expires_at, (client_id, subject, factor))
        if not hmac.compare_digest(expected, mac):
            raise TransactionRefused(
                Reason.INVALID_TRANSACTION,
                "transaction_id was not opened by this client for this user and factor.",
            )
        if expires_at <= now:
            raise TransactionRefused(
                Reason.EXPIRED_TRANSACTION, "The transaction has expired: open a new challenge."
            )
        return Transaction(tid, expires_at, token)
