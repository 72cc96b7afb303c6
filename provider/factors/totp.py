"""Time-based one-time passwords: RFC 6238 (TOTP) over RFC 4226 (HOTP). Pure: time is a parameter.

The parameters are the ones every authenticator app supports: HMAC-SHA1, 6 digits, 30-second steps
(RFC 6238 §4: "We RECOMMEND a default time-step size of 30 seconds"). Secrets are 160 bits
(RFC 4226 §4, R6: "The algorithm MUST use a strong shared secret. The length of the shared secret
MUST be at least 128 bits. This document RECOMMENDs a shared secret length of 160 bits."), written
in base32 without padding, as the Key URI format for authenticator apps expects.

:func:`verify` returns the time step a code matched so the caller can record it atomically and
refuse it a second time (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP
after the successful validation has been issued for the first OTP").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

from client_sdk.wire import ascii_digits

__all__ = [
    "DIGITS",
    "PERIOD",
    "code_at",
    "generate_secret",
    "hotp",
    "provisioning_uri",
    "step_at",
    "verify",
]

DIGITS = 6
PERIOD = 30
_SECRET_BYTES = 20  # 160 bits


def generate_secret() -> str:
    """A new random 160-bit secret in base32 (32 characters, no padding)."""
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii").rstrip("=")


def _normalise(secret: str) -> str:
    return secret.replace(" ", "").replace("-", "").upper().rstrip("=")


def _key(secret: str) -> bytes:
    """Decode a base32 secret (any case, spaces and padding optional); ``ValueError`` if invalid."""
    s = _normalise(secret)
    try:
        key = base64.b32decode(s + "=" * (-len(s) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("the TOTP secret is not valid base32") from None
    if not key:
        raise ValueError("the TOTP secret is empty")
    return key


def _hotp(key: bytes, counter: int, digits: int, algorithm: str) -> str:
    # RFC 4226 §5.3: HS = HMAC-SHA-1(K, C) over the 8-byte big-endian counter, then "dynamic
    # truncation": the low 4 bits of the last byte pick an offset; 31 bits from there, mod 10^Digit.
    mac = hmac.new(key, struct.pack(">Q", counter), algorithm).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def hotp(secret: str, counter: int, digits: int = DIGITS, *, algorithm: str = "sha1") -> str:
    """The RFC 4226 HOTP value of ``secret`` (base32) at ``counter``.

    ``algorithm`` (``sha1``, ``sha256``, ``sha512``) exists for the RFC 6238 test vectors; the
    provider uses SHA-1, the one authenticator apps implement.
    """
    if not 0 <= counter < 2**64:
        raise ValueError("the HOTP counter must fit in 8 bytes")
    if not 6 <= digits <= 10:
        raise ValueError("RFC 4226 codes have 6 to 10 digits")
    if algorithm not in {"sha1", "sha256", "sha512"}:
        raise ValueError(f"unsupported TOTP algorithm {algorithm!r}")
    return _hotp(_key(secret), counter, digits, algorithm)


def step_at(now: int, period: int = PERIOD) -> int:
    """RFC 6238 §4.2: T = (Current Unix time - T0) / X, with T0 = 0, rounded down."""
    return now // period


def code_at(secret: str, now: int) -> str:
    """The 6-digit code an authenticator app shows at ``now``."""
    return hotp(secret, step_at(now))


def verify(
    secret: str,
    code: str,
    now: int,
    *,
    last_used_step: int | None = None,
    drift: int = 1,
) -> int | None:
    """The time step ``code`` is valid for at ``now``, or ``None``.

    Accepts the current step and at most ``drift`` steps either side (RFC 6238 §5.2: "We RECOMMEND
    that at most one time step is allowed as the network delay"; ``drift`` is capped at 1).
    Refuses a step at or before ``last_used_step`` — a replay, or a code older than one already
    used. The code must be exactly six ASCII digits once surrounding whitespace is removed. Every
    candidate is compared in constant time. An invalid ``secret`` raises ``ValueError`` (a storage
    fault, not a wrong code).
    """
    key = _key(secret)
    candidate = code.strip()
    if len(candidate) != DIGITS or not ascii_digits(candidate):
        return None
    if drift < 0:
        raise ValueError("drift must be 0 or 1")
    drift = min(drift, 1)
    current = step_at(now)
    matched: int | None = None
    for step in range(current - drift, current + drift + 1):
        if step < 0 or (last_used_step is not None and step <= last_used_step):
            continue
        expected = _hotp(key, step, DIGITS, "sha1")
        if hmac.compare_digest(expected.encode(), candidate.encode()) and matched is None:
            matched = step
    return matched


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://`` Key URI an authenticator app scans (as a QR code) to enrol.

    Format: ``otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30``;
    the issuer and account are percent-encoded in the label, and the issuer is repeated as a
    parameter (apps prefer the parameter).
    """
    _key(secret)  # refuse a secret an app could not use
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    params = {
        "secret": _normalise(secret),
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": str(DIGITS),
        "period": str(PERIOD),
    }
    return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote)}"
