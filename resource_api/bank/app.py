"""``create_app``: the demo bank API, guarded by :class:`resource_api.StepUp`.

What ``stepup api`` and ``stepup sandbox`` serve. It trusts ``config.api_issuer`` for the audience
``config.api.audience``, takes route requirements from ``config.api.routes`` and policy rules from
``config.api.rules``, and orders ACR values
by ``config.api.acr_order`` or, when that is empty, by ``config.acr_levels`` (a level's value and
its aliases are equivalent; later levels are stronger).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from provider.schema import check, upgrade

from ..dpop import DPoPVerifier
from ..flask_ext import StepUp
from ..resource_metadata import WELL_KNOWN_PATH, origin_of
from ..settings import BankConfig
from ..step_up import AcrOrder
from ..validation import JwtAccessTokenValidator, TokenValidator, http_fetch, wall_clock
from .migrations import BANK
from .store import BankStore, make_engine
from .views import bp

__all__ = ["acr_order_from_config", "create_app"]


def acr_order_from_config(config: BankConfig) -> AcrOrder:
    """``[api].acr_order`` if set, else the provider's ``[[acr_levels]]`` with their aliases."""
    if config.api.acr_order:
        return AcrOrder.from_values(config.api.acr_order)
    return AcrOrder.from_levels((lv.value, *lv.aliases) for lv in config.acr_levels)


def create_app(
    config: BankConfig,
    *,
    database_url: str,
    token_validator: TokenValidator | None = None,
    clock: Callable[[], float] | None = None,
    migrate: bool = True,
    dpop: DPoPVerifier | None = None,
) -> Flask:
    """The demo bank API. Discovery and the JWKS are fetched on the first request, not here, so the
    provider may start after the API (the sandbox runs both in one process).

    The bank's tables are migrated to this build's newest revision first (several processes may
    start at once); with ``migrate=False`` they must already be there
    (:class:`provider.schema.SchemaError` otherwise). ``dpop``: the DPoP sender check (RFC 9449;
    by default every algorithm, a ``jti`` cache in the process, no nonces)."""
    now = clock or wall_clock
    app = Flask("resource_api.bank")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    validator = token_validator or JwtAccessTokenValidator(
        config.api_issuer, config.api.audience, fetch=http_fetch(timeout=5.0), clock=now
    )
    step_up = StepUp(
        app, validator=validator, acr_order=acr_order_from_config(config),
        routes=config.api.routes, rules=config.api.rules, clock=now, resource_metadata=True,
        dpop=dpop,
    )  # fmt: skip

    # RFC 9728 §3 (DESIGN contract 12): the bank's protected resource metadata, at its origin,
    # with the scopes and fixed route requirements of its config.
    @app.get(WELL_KNOWN_PATH)
    @step_up.public
    def _resource_metadata() -> Response:
        origin = origin_of(request.scheme, request.host)
        response = jsonify(step_up.resource_metadata_document(origin, [config.api_issuer]))
        response.headers["Cache-Control"] = "max-age=300"
        return response

    engine = make_engine(database_url)
    app.extensions["bank_schema"] = upgrade(engine, BANK) if migrate else check(engine, BANK)
    app.extensions["bank"] = BankStore(engine, now)
    app.register_blueprint(bp)
    step_up.check_routes(app)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        names = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
                 413: "request_too_large"}  # fmt: skip
        response = jsonify(error=names.get(code, "http_error"), error_description=exc.description)
        if code == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response, code

    return app
