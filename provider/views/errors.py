"""Error pages for people and JSON errors for programs; nothing ever answers with a bare 500.

Pages a browser reaches (login, authorize with a bad client or redirect URI) get HTML; the
endpoints programs call get RFC 6749 §5.2-shaped JSON.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ..sandbox_clients import ErrorDetails

__all__ = ["error_page", "register_error_handlers"]

log = logging.getLogger(__name__)

JSON_PATHS = (
    "/token",
    "/introspect",
    "/revoke",
    "/userinfo",
    "/jwks",
    "/.well-known/",
    "/backchannel",
    "/api/",
)


def error_page(
    status: int, title: str, detail: str, *, sandbox_details: ErrorDetails | None = None
) -> BaseResponse:
    """``sandbox_details``: what was received and what is registered, in sandbox mode only
    (see :class:`provider.sandbox_clients.ErrorDetails`)."""
    html = render_template("error.html", title=title, detail=detail, sandbox=sandbox_details)
    return Response(html, status=status, mimetype="text/html")


def _wants_json() -> bool:
    return request.path.startswith(JSON_PATHS)


def refuse_nul_bytes() -> BaseResponse | None:
    """No parameter may hold a NUL byte: no protocol value does, and PostgreSQL text cannot
    store one, so such input would otherwise fail a query instead of matching nothing."""
    if not any("\x00" in v for v in request.values.values()):
        return None
    description = "A parameter contains a NUL byte."
    if _wants_json():
        response = jsonify(error="invalid_request", error_description=description)
        response.status_code = 400
        return response
    return error_page(400, "Invalid request", description)


def register_error_handlers(app: Flask) -> None:
    app.before_request(refuse_nul_bytes)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> BaseResponse:
        return error_page(
            400,
            "This form has expired",
            "The page was open too long or came from another site. Go back, reload the page "
            "and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> BaseResponse:
        status = exc.code or 500
        response: BaseResponse
        if _wants_json():
            error = "invalid_request" if status < 500 else "server_error"
            response = jsonify(error=error, error_description=exc.description)
            response.status_code = status
        else:
            response = error_page(status, exc.name, exc.description or "")
        # RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405
        # (Method Not Allowed) response"; Werkzeug puts it on the exception, not our body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> BaseResponse:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if _wants_json():
            response = jsonify(error="server_error", error_description="unexpected error")
            response.status_code = 500
            return response
        return error_page(500, "Something went wrong", "The provider could not finish this.")
