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

The step-up error (RFC 9470 §3, ``insufficient_user_authentication``) is not an exception: it is a
decision (:class:`resource_api.step_up.Challenge`) that the pure module returns.
"""

from __future__ import annotations

__all__ = [
    "BearerError",
    "ConfigurationError",
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

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


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
