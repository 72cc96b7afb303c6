"""The endpoints programs call: token (RFC 6749 §3.2), introspection (RFC 7662), revocation
(RFC 7009) and userinfo (OIDC Core §5.3). The token endpoint's protocol work is
:mod:`provider.token_endpoint`'s; Authlib does introspection's and revocation's.

Userinfo is a protected resource: it takes bearer tokens (RFC 6750) and DPoP-bound ones (RFC 9449
§7: ``Authorization: DPoP <token>`` with a ``DPoP`` proof, checked by :mod:`provider.dpop`). A
DPoP-bound token sent as a bearer token is refused: §7.2 "a DPoP-bound access token ... MUST NOT
be accepted as a bearer token" would otherwise be a way round the proof.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from ..app import current_provider
from ..bearer import bearer_error, dpop_error, presented_token, sender_check
from ..issuance import user_claims
from ..models import User
from ..token_endpoint import TokenRequest

bp = Blueprint("endpoints", __name__)


@bp.post("/token")
def token() -> BaseResponse:
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    status, body, headers = current_provider().token_endpoint.respond(
        TokenRequest.read(
            req.form.items(multi=True),
            req.headers.get("Authorization"),
            req.headers.getlist("DPoP"),
        )
    )
    return Response(json.dumps(body), status=status, headers=headers)


@bp.post("/introspect")
def introspect() -> BaseResponse:
    response: Response = current_provider().server.create_endpoint_response("introspection")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/revoke")
def revoke() -> BaseResponse:
    response: Response = current_provider().server.create_endpoint_response("revocation")
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> BaseResponse:
    op = current_provider()
    presented = presented_token()
    if isinstance(presented, BaseResponse):
        return presented
    if presented is None:
        # RFC 6750 §3.1: a request without authentication gets a challenge without an error code;
        # RFC 9449 §7.1: one per scheme the resource accepts.
        response = Response(status=401)
        algs = " ".join(op.dpop.algorithms)
        response.headers["WWW-Authenticate"] = f'Bearer realm="userinfo", DPoP algs="{algs}"'
        return response
    scheme, token = presented
    claims = op.signer.verify_access_token(token, now=op.clock.now())
    if claims is None or not op.issuance.grant_is_active(claims):
        if scheme == "dpop":
            return dpop_error("invalid_token", "The access token is invalid or expired")
        return bearer_error(401, "invalid_token", "The access token is invalid or expired")
    refused = sender_check(scheme, token, claims)
    if refused is not None:
        return refused
    scope = str(claims.get("scope", ""))
    if "openid" not in scope.split():
        return bearer_error(
            403, "insufficient_scope", "userinfo needs the openid scope", scope="openid"
        )
    with op.db.session() as s:
        user = s.scalar(select(User).where(User.subject == claims["sub"]))
    if user is None:
        return bearer_error(401, "invalid_token", "The user no longer exists")
    body = {"sub": user.subject, **user_claims(user, scope)}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
