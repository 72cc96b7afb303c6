"""OIDC Discovery 1.0 §3 metadata and the JWKS (RFC 7517). Both are readable from any origin
(``Access-Control-Allow-Origin: *``, set by :mod:`provider.cors`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response as BaseResponse

from ..app import SCOPES, current_provider
from ..authorization_details import TYPES_SUPPORTED
from ..ciba_request import GRANT_TYPE as CIBA_GRANT_TYPE

bp = Blueprint("discovery", __name__)


def metadata() -> dict[str, Any]:
    op = current_provider()
    iss = op.issuer
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks",
        "introspection_endpoint": f"{iss}/introspect",
        "revocation_endpoint": f"{iss}/revoke",
        "end_session_endpoint": f"{iss}/logout",
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            CIBA_GRANT_TYPE,
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        # No userinfo_signing_alg_values_supported: those are the algorithms of a userinfo
        # response encoded as a JWT, and userinfo answers plain JSON only.
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449 §5.1: the DPoP proof algorithms the token endpoint accepts.
        "dpop_signing_alg_values_supported": list(op.dpop.algorithms),
        "acr_values_supported": op.policy.values_supported,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "at_hash",
            "name",
            "preferred_username",
            "email",
            "email_verified",
        ],
        "authorization_response_iss_parameter_supported": True,
        # CIBA Core 1.0 §4 (poll mode only; no signed requests, no user_code).
        "backchannel_authentication_endpoint": f"{iss}/backchannel",
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": False,
        # RFC 9396 §10.
        "authorization_details_types_supported": list(TYPES_SUPPORTED),
    }


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> BaseResponse:
    response = jsonify(metadata())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server() -> BaseResponse:
    """RFC 8414 §3: the same metadata at the OAuth well-known location."""
    return openid_configuration()


@bp.get("/jwks")
def jwks() -> BaseResponse:
    response = jsonify(current_provider().keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
