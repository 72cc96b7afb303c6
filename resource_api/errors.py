"""Errors of the resource API package, rooted in :class:`ResourceApiError`.

The Bearer errors carry the ``error`` code, HTTP status and description that RFC 6750 §3.1 assigns
to them, so they are rendered in one place (:mod:`resource_api.flask_ext`):

- ``invalid_request`` — 400: "The request is missing a required parameter, includes an unsupported
  parameter or parameter value, repeats the same parameter, uses more than one method for including
  an access token, or is otherwise malformed."
- ``invalid_token`` — 401: "The access token provided is expired, revoked, malformed, or invalid
  for other reasons."
- ``insufficient_scope`` — 403: "The request requires higher privileges than provided by the access
  token."

RFC 9449 adds two, on the ``DPoP`` scheme (§7.1, §9): ``invalid_dpop_proof`` — 401, the proof is
missing or fails a check — and ``use_dpop_nonce`` — 401, with the nonce to use in ``DPoP-Nonce``.

The step-up error (RFC 9470 §3, ``insufficient_user_authentication``) is not an exception: it is a
decision (:class:`resource_api.step_up.Challenge`) that the pure module returns.
"""

from __future__ import annotations

__all__ = [
    "BearerError",
    "ConfigurationError",
    "DPoPNonceRequired",
    "DPoPProofRefused",
    "InvalidRequest",
    "InvalidToken",
    "KeySetUnavailable",
    "ResourceApiError",
]


class ResourceApiError(Exception):
    """Root of every error this package raises."""


class ConfigurationError(ResourceApiError, ValueError):
    """The enforcement was set up wrongly (an unsafe algorithm, a route matching nothing...)."""


class BearerError(ResourceApiError):
    """A request the resource server refuses with an RFC 6750 §3.1 error code."""

    error: str = ""
    status_code: int = 401
    #: The scheme the challenge must be on; ``None``: the scheme the request used (RFC 9449 §7.1
    #: puts every error about a DPoP request, or a DPoP-bound token, on the ``DPoP`` scheme).
    scheme: str | None = None

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def on_scheme(self, scheme: str) -> BearerError:
        """This error, challenged on ``scheme`` whatever scheme the request used."""
        self.scheme = scheme
        return self


class InvalidRequest(BearerError):
    """RFC 6750 §3.1 ``invalid_request``: the request is malformed."""

    error = "invalid_request"
    status_code = 400


class InvalidToken(BearerError):
    """RFC 6750 §3.1 ``invalid_token``: expired, revoked, malformed or otherwise invalid."""

    error = "invalid_token"
    status_code = 401


class KeySetUnavailable(ResourceApiError):
    """The provider's discovery document or JWKS could not be fetched and none is cached.

    The token may well be valid; the server cannot tell yet, so it answers ``503`` rather than
    calling the token invalid.
    """


class DPoPProofRefused(BearerError):
    """RFC 9449 §7.1 ``invalid_dpop_proof``: the DPoP proof is missing, invalid, replayed or
    signed by another key than the token's."""

    error = "invalid_dpop_proof"
    status_code = 401
    scheme = "DPoP"


class DPoPNonceRequired(BearerError):
    """RFC 9449 §9 ``use_dpop_nonce``: send the proof again with :attr:`nonce`, which the answer
    carries in ``DPoP-Nonce``."""

    error = "use_dpop_nonce"
    status_code = 401
    scheme = "DPoP"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce
