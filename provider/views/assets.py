"""``/favicon.ico``: browsers ask for it on every origin they visit, also for pages that name no
icon (a JSON endpoint opened in a tab); without it each visit logs a 404 in the console.
The pages themselves name ``/static/favicon.svg``."""

from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory
from werkzeug.wrappers import Response as BaseResponse

bp = Blueprint("assets", __name__)


@bp.get("/favicon.ico")
def favicon() -> BaseResponse:
    assert current_app.static_folder is not None
    return send_from_directory(
        current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400
    )
