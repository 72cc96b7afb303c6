"""The ``error_description`` the provider sends to clients: fixed text, in the characters allowed.

RFC 6749 §4.1.2.1 and §5.2: "Values for the "error_description" parameter MUST NOT include
characters outside the set %x20-21 / %x23-5B / %x5D-7E." Descriptions are written in the code
that raises the error and are never built from the request: a value a client sent may hold any
character (a quote, a backslash, CR, LF, anything non-ASCII), and echoing it would also let a
crafted link put its own words on the client's error screen. A parameter *name* is named only when
it is a plain one (lower-case letters and ``_``).

:func:`describe` is the last step before a description leaves: one that is not error text (or is
suspiciously long) is replaced by the fixed text for its error code. Pure: no Flask.
"""

from __future__ import annotations

import re

from client_sdk.wire import is_error_text

__all__ = ["describe", "repeated_parameter"]

_PLAIN_NAME = re.compile(r"[a-z_]{1,40}")
_LONGEST = 300

#: A description for each error code the provider sends (RFC 6749 §4.1.2.1 and §5.2, RFC 7009,
#: OIDC Core §3.1.2.6, OpenID Connect Core Unmet Authentication Requirements, RFC 8707 §2,
#: RFC 9396 §5, RFC 9449).
FALLBACK = {
    "invalid_request": "The request is missing a parameter, repeats one, or has one that is not "
    "valid.",
    "invalid_client": "Client authentication failed.",
    "invalid_grant": "The authorization grant or refresh token is invalid, expired or revoked.",
    "unauthorized_client": "This client may not use this grant or response type.",
    "unsupported_grant_type": "grant_type must be authorization_code, refresh_token or "
    "client_credentials.",
    "unsupported_response_type": "response_type must be code.",
    "unsupported_token_type": "token_type_hint must be access_token or refresh_token.",
    "invalid_scope": "The requested scope is invalid, unknown or malformed.",
    "access_denied": "The user or the provider denied the request.",
    "server_error": "The provider could not finish this request.",
    "temporarily_unavailable": "The provider cannot handle this request now; try again later.",
    "login_required": "The user must sign in, and prompt=none does not allow it.",
    "interaction_required": "The user must interact, and prompt=none does not allow it.",
    "consent_required": "The user must consent, and prompt=none does not allow it.",
    "account_selection_required": "The user must select an account, and prompt=none does not "
    "allow it.",
    "unmet_authentication_requirements": "The provider could not authenticate the user as the "
    "request requires.",
    "invalid_target": "The requested resource is invalid, unknown or malformed.",
    # RFC 9396 §5.
    "invalid_authorization_details": "authorization_details is malformed or names a type, or a "
    "field, this provider does not support.",
    # RFC 9449 §5 and §8.
    "invalid_dpop_proof": "The DPoP proof is missing or not valid for this request.",
    "use_dpop_nonce": "Send the DPoP proof again with the nonce of the DPoP-Nonce header.",
}
DEFAULT = "The request could not be processed."


def describe(error: str, description: str | None) -> str:
    """``description`` if it is RFC 6749 error text of a sensible length; otherwise the fixed
    description of ``error``."""
    if description and len(description) <= _LONGEST and is_error_text(description):
        return description
    return FALLBACK.get(error, DEFAULT)


def repeated_parameter(name: str) -> str:
    """RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than
    once." The description, naming ``name`` only when it is a plain parameter name."""
    if _PLAIN_NAME.fullmatch(name):
        return f"Parameter repeated: {name}."
    return "A parameter is repeated."
