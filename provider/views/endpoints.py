"""The endpoints programs call: token (RFC 6749 §3.2), introspection (RFC 7662), revocation
(RFC 7009) and userinfo (OIDC Core §5.3). Authlib does the protocol work for the first three."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from ..app import current_provider
from ..issuance import user_claims
from ..models import User

bp = Blueprint("endpoints", __name__)


@bp.post("/token")
def token() -> BaseResponse:
    response: Response = current_provider().server.create_token_response()
    return response


@bp.post("/introspect")
def introspect() -> BaseResponse:
    response: Response = current_provider().server.create_endpoint_response("introspection")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/revoke")
def revoke() -> BaseResponse:
    response: Response = current_provider().server.create_endpoint_response("revocation")
    return response


def _bearer_error(status: int, error: str, description: str, **params: str) -> BaseResponse:
    """RFC 6750 §3: the error goes in the WWW-Authenticate challenge as well as the body."""
    attrs = [f'error="{error}"', f'error_description="{description}"']
    attrs += [f'{k}="{v}"' for k, v in params.items()]
    response = jsonify(error=error, error_description=description, **params)
    response.status_code = status
    response.headers["WWW-Authenticate"] = "Bearer " + ", ".join(attrs)
    return response


def _presented_token() -> str | BaseResponse | None:
    """RFC 6750 §2: header, or form body on POST; §3.1 more than one method is invalid_request."""
    found: list[str] = []
    header = request.headers.get("Authorization")
    scheme, _, value = (header or "").strip().partition(" ")
    # RFC 6750 §3.1: a request "attempted using an unsupported authentication method" lacks
    # authentication information; it gets the bare challenge, not an error (another scheme's
    # credentials are simply not a bearer token).
    if scheme.lower() == "bearer":
        if not value.strip():
            return _bearer_error(400, "invalid_request", "Authorization must be 'Bearer <token>'")
        found.append(value.strip())
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        body_token = request.form.get("access_token")
        if body_token:
            found.append(body_token)
    if "access_token" in request.args:
        found.append(request.args["access_token"])
    if len(found) > 1:
        return _bearer_error(400, "invalid_request", "Send the access token one way only")
    return found[0] if found else None


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> BaseResponse:
    op = current_provider()
    presented = _presented_token()
    if isinstance(presented, BaseResponse):
        return presented
    if presented is None:
        # RFC 6750 §3.1: a request without authentication gets a challenge without an error code.
        response = Response(status=401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="userinfo"'
        return response
    claims = op.signer.verify_access_token(presented, now=op.clock.now())
    if claims is None or not op.issuance.grant_is_active(claims):
        return _bearer_error(401, "invalid_token", "The access token is invalid or expired")
    scope = str(claims.get("scope", ""))
    if "openid" not in scope.split():
        return _bearer_error(
            403, "insufficient_scope", "userinfo needs the openid scope", scope="openid"
        )
    with op.db.session() as s:
        user = s.scalar(select(User).where(User.subject == claims["sub"]))
    if user is None:
        return _bearer_error(401, "invalid_token", "The user no longer exists")
    body = {"sub": user.subject, **user_claims(user, scope)}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
