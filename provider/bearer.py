"""Access tokens presented to the provider's own protected resources (userinfo, the factor API).

RFC 6750 §2 (how a bearer token is sent) and §3 (the ``WWW-Authenticate`` errors), RFC 9449 §7
(``Authorization: DPoP <token>`` with a proof). A DPoP-bound token sent as a bearer token is
refused: §7.2 "a DPoP-bound access token ... MUST NOT be accepted as a bearer token" would
otherwise be a way round the proof.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response as BaseResponse

from client_sdk.errors import InvalidDPoPProof

from .app import current_provider

__all__ = ["bearer_error", "dpop_error", "presented_token", "sender_check"]


def bearer_error(
    status: int, error: str, description: str, scheme: str = "Bearer", **params: str
) -> BaseResponse:
    """RFC 6750 §3 (and RFC 9449 §7.1 for the ``DPoP`` scheme): the error goes in the
    WWW-Authenticate challenge as well as the body."""
    attrs = [f'error="{error}"', f'error_description="{description}"']
    attrs += [f'{k}="{v}"' for k, v in params.items()]
    response = jsonify(error=error, error_description=description, **params)
    response.status_code = status
    response.headers["WWW-Authenticate"] = f"{scheme} " + ", ".join(attrs)
    return response


def dpop_error(error: str, description: str) -> BaseResponse:
    """RFC 9449 §7.1: a ``DPoP`` challenge names the algorithms it accepts (``algs``)."""
    algs = " ".join(current_provider().dpop.algorithms)
    return bearer_error(401, error, description, scheme="DPoP", algs=algs)


def presented_token() -> tuple[str, str] | BaseResponse | None:
    """RFC 6750 §2: header, or form body on POST; §3.1 more than one method is invalid_request.
    RFC 9449 §7.1: ``Authorization: DPoP <token>``. The scheme (``bearer`` or ``dpop``) and the
    token."""
    found: list[tuple[str, str]] = []
    header = request.headers.get("Authorization")
    scheme, _, value = (header or "").strip().partition(" ")
    # RFC 6750 §3.1: a request "attempted using an unsupported authentication method" lacks
    # authentication information; it gets the bare challenge, not an error (another scheme's
    # credentials are simply not a bearer token).
    if scheme.lower() in ("bearer", "dpop"):
        if not value.strip():
            return bearer_error(
                400, "invalid_request", "Authorization must be 'Bearer <token>' or 'DPoP <token>'"
            )
        found.append((scheme.lower(), value.strip()))
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        body_token = request.form.get("access_token")
        if body_token:
            found.append(("bearer", body_token))
    if "access_token" in request.args:
        found.append(("bearer", request.args["access_token"]))
    if len(found) > 1:
        return bearer_error(400, "invalid_request", "Send the access token one way only")
    return found[0] if found else None


def sender_check(
    scheme: str, token: str, claims: dict[str, Any], *, url: str | None = None
) -> BaseResponse | None:
    """RFC 9449 §7: a DPoP-bound token comes with the ``DPoP`` scheme and a proof signed by its
    key; a token without ``cnf`` is a bearer token and comes as one. ``url``: the proof's
    ``htu`` (default: userinfo's)."""
    cnf = claims.get("cnf")
    bound = isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str)
    if scheme == "bearer":
        if bound:
            return dpop_error(
                "invalid_token",
                "This access token is DPoP-bound: send it as 'DPoP <token>' with a DPoP proof",
            )
        return None
    if not bound:
        return dpop_error("invalid_token", "This access token is not DPoP-bound: send it as Bearer")
    op = current_provider()
    try:
        proof = op.dpop.resource_request(
            request.headers.getlist("DPoP"), request.method, token, url
        )
    except InvalidDPoPProof as exc:
        return dpop_error("invalid_dpop_proof", str(exc))
    if proof.jkt != cnf["jkt"]:  # type: ignore[index]
        return dpop_error(
            "invalid_dpop_proof", "The DPoP proof is signed with another key than the token's"
        )
    return None
