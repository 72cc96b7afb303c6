"""The CIBA grant at the token endpoint (CIBA Core 1.0 §10, §11), poll mode.

``grant_type=urn:openid:params:grant-type:ciba&auth_req_id=…``, from the confidential client the
request was issued to (§10.1: "The Client MUST authenticate to the token endpoint using the
authentication method registered for its client_id"). The answer is the request's state machine's
(:mod:`provider.ciba_states`): ``authorization_pending``, ``slow_down``, ``expired_token``,
``access_denied`` (§11, each with HTTP 400), ``invalid_grant`` for an ``auth_req_id`` that is
unknown, another client's, or already exchanged — or, once the user approved, the tokens (§10.1.1):
an ID token and an access token with the ``acr``, ``amr`` and ``auth_time`` of the approval on
the device, and with RFC 9396 ``authorization_details`` when the request carried them (in the
access token, §9.1, and the token response, §7).

A token set for one transaction is not refreshable: with ``authorization_details``, no refresh
token is issued even when ``offline_access`` was asked for (a refresh would make one approval
good for more than one transaction's lifetime).

The token endpoint (:mod:`provider.token_endpoint`) authenticates the client and checks the
request; :func:`ciba_token` answers the poll.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error

from . import ciba_store
from .ciba_states import Answer, Event
from .clients import ClientAdapter
from .issuance import Issuance, user_of
from .tokens import AuthContext

__all__ = ["DESCRIPTIONS", "ciba_token"]

#: §11: what each poll answer means to the client (error_description).
DESCRIPTIONS = {
    Answer.AUTHORIZATION_PENDING: "The user has not yet approved or denied the request.",
    Answer.SLOW_DOWN: "Polling too fast: wait longer between polls (the interval grew by 5 s).",
    Answer.EXPIRED_TOKEN: "The auth_req_id has expired; send a new authentication request.",
    Answer.ACCESS_DENIED: "The user denied the request.",
    Answer.INVALID_GRANT: "The auth_req_id was used already.",
}


def ciba_token(issuance: Issuance, client: ClientAdapter, auth_req_id: str) -> dict[str, Any]:
    """The tokens for ``auth_req_id`` once the user approved it, polled by ``client`` (already
    authenticated and registered for the grant: :meth:`provider.token_endpoint.TokenEndpoint.ciba`);
    until then, the §11 error the request's state machine answers."""
    now = issuance.clock.now()

    def read(conn: Any) -> ciba_store.RequestRow | None:
        row = ciba_store.find_by_auth_req_id(conn, auth_req_id)
        # §11 / RFC 6749 §5.2: "issued to another client" is invalid_grant, like unknown.
        return row if row is not None and row.client_id == client.client_id else None

    result = ciba_store.run(issuance.db, read, Event.POLL, now)
    if result is None:
        raise InvalidGrantError("The auth_req_id is unknown or was issued to another client.")
    transition, row = result
    if transition.answer is not Answer.ISSUE:
        raise OAuth2Error(
            error=transition.answer.value,
            description=DESCRIPTIONS[transition.answer],
            status_code=400,
        )
    assert row.auth_time is not None
    user = user_of(row)
    scope = row.scope
    extra: dict[str, Any] | None = None
    if row.authorization_details is not None:
        extra = {"authorization_details": row.authorization_details}
        scope = " ".join(s for s in scope.split() if s != "offline_access")
    return issuance.issue(
        client=client,
        user=user,
        scope=scope,
        context=AuthContext(row.acr, row.amr, row.auth_time),
        nonce=None,
        family=None,
        code_id=None,
        extra_claims=extra,
        consume=ciba_store.consume(row, now),
    )
