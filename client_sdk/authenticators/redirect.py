"""For web apps: hand the authorization URL to the app instead of blocking on a login.

A web app cannot hold an API call open while its user logs in. :class:`RedirectAuthenticator`
builds the authorization request (RFC 9470 §4: the challenge's ``acr_values`` and ``max_age``)
and raises :class:`~client_sdk.errors.StepUpRequired` with the URL and the pending request. The app
stores ``exc.pending.to_dict()`` in the user's server-side session, redirects the browser to
``exc.authorization_url``, and on its redirect URI calls
``auth.complete_authorization(request.url, PendingAuthorization.from_dict(saved))``; then it
repeats the original call, which now finds the stepped-up token in the cache.
"""

from __future__ import annotations

from typing import NoReturn

from client_sdk.authenticators.base import LoginRequest
from client_sdk.errors import ConfigurationError, StepUpRequired

__all__ = ["RedirectAuthenticator"]


class RedirectAuthenticator:
    """Raises :class:`StepUpRequired` carrying the authorization URL; never logs in itself."""

    def __init__(self, redirect_uri: str | None = None) -> None:
        self.redirect_uri = redirect_uri

    def authenticate(self, login: LoginRequest) -> NoReturn:
        redirect_uri = login.redirect_uri or self.redirect_uri
        if redirect_uri is None:
            raise ConfigurationError(
                "RedirectAuthenticator needs the web app's callback URL: pass redirect_uri= to it "
                "or to StepUpAuth"
            )
        url = login.authorization_url(redirect_uri)
        assert login.pending is not None
        raise StepUpRequired(url, login.pending, login.challenge)
