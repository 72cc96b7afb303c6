"""RFC 9470 step-up enforcement for Flask APIs, and the demo bank API.

Protect a Flask API in a few lines::

    from resource_api import JwtAccessTokenValidator, StepUp

    step_up = StepUp(app, validator=JwtAccessTokenValidator(issuer, audience),
                     acr_order=["urn:stepup:loa:1", "urn:stepup:loa:2"])

    @app.post("/transfers")
    @step_up.require(acr_values=["urn:stepup:loa:2"], max_age=300)
    def transfer(): ...

Modules: :mod:`.step_up` (the pure decision), :mod:`.challenges` (``WWW-Authenticate`` values),
:mod:`.validation` (RFC 9068 §4, JWKS cache), :mod:`.introspection` (RFC 7662),
:mod:`.flask_ext` (the Flask glue), :mod:`.bank` (the demo API, ``create_app``). The Flask names are
imported lazily, so the pure modules work without Flask being imported — every name is, so that
importing one module (``resource_api.errors``) does not import the others (joserfc, with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bank import create_app
    from .challenges import bearer_challenge
    from .errors import (
        BearerError,
        ConfigurationError,
        InvalidRequest,
        InvalidToken,
        KeySetUnavailable,
        ResourceApiError,
    )
    from .flask_ext import StepUp, current_auth, current_decision, public, require
    from .introspection import IntrospectionValidator
    from .step_up import (
        AcrOrder,
        Allow,
        AuthContext,
        Challenge,
        Decision,
        InsufficientScope,
        Requirement,
        combine,
        decide,
    )
    from .validation import (
        DEFAULT_ALGORITHMS,
        FetchError,
        JwksCache,
        JwtAccessTokenValidator,
        TokenValidator,
        http_fetch,
    )

__all__ = [
    "DEFAULT_ALGORITHMS",
    "AcrOrder",
    "Allow",
    "AuthContext",
    "BearerError",
    "Challenge",
    "ConfigurationError",
    "Decision",
    "FetchError",
    "InsufficientScope",
    "IntrospectionValidator",
    "InvalidRequest",
    "InvalidToken",
    "JwksCache",
    "JwtAccessTokenValidator",
    "KeySetUnavailable",
    "Requirement",
    "ResourceApiError",
    "StepUp",
    "TokenValidator",
    "bearer_challenge",
    "combine",
    "create_app",
    "current_auth",
    "current_decision",
    "decide",
    "http_fetch",
    "public",
    "require",
]

# Every name is imported on first use. The package is imported by whatever imports one of its
# modules (``resource_api.errors``, ``resource_api.settings``): eager imports here would make
# ``stepup provider`` load joserfc and the policy engine just to read the config (issue 11).
_LAZY = {
    "bearer_challenge": "challenges",
    **dict.fromkeys(
        (
            "BearerError",
            "ConfigurationError",
            "InvalidRequest",
            "InvalidToken",
            "KeySetUnavailable",
            "ResourceApiError",
        ),
        "errors",
    ),
    "IntrospectionValidator": "introspection",
    **dict.fromkeys(
        (
            "AcrOrder",
            "Allow",
            "AuthContext",
            "Challenge",
            "Decision",
            "InsufficientScope",
            "Requirement",
            "combine",
            "decide",
        ),
        "step_up",
    ),
    **dict.fromkeys(
        (
            "DEFAULT_ALGORITHMS",
            "FetchError",
            "JwksCache",
            "JwtAccessTokenValidator",
            "TokenValidator",
            "http_fetch",
        ),
        "validation",
    ),
    **dict.fromkeys(
        ("StepUp", "current_auth", "current_decision", "public", "require"), "flask_ext"
    ),
    "create_app": "bank",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resource_api' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"resource_api.{module}"), name)
    globals()[name] = value
    return value
