"""Time-based one-time passwords: RFC 6238 over RFC 4226 HOTP (HMAC-SHA-1, 30 s, 6 digits)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from client_sdk.errors import ConfigurationError

__all__ = ["PERIOD", "decode_secret", "totp"]

#: RFC 6238 §4.1: the time step X, in seconds (the default every authenticator app uses).
PERIOD = 30


def decode_secret(secret: str) -> bytes:
    """Decode a base32 secret as authenticator apps show it (spaces, lower case, no padding)."""
    cleaned = secret.replace(" ", "").upper()
    cleaned += "=" * (-len(cleaned) % 8)
    try:
        return base64.b32decode(cleaned)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError("totp_secret is not valid base32") from exc


def totp(key: bytes, now: float, *, step: int = PERIOD, digits: int = 6) -> str:
    """RFC 6238 §4.2: ``T = floor((now - T0) / X)`` with ``T0 = 0``, then HOTP(K, T)."""
    counter = int(now // step)
    # RFC 4226 §5.3: HMAC-SHA-1 of the 8-byte counter, dynamic truncation, modulo 10^digits.
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)
