"""The payroll API: anyone signed in reads payslips; paying out needs urn:stepup:loa:2 and a
login in the last 5 minutes (RFC 9470 challenge otherwise, answered by the Stepup library)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from resource_api import JwtAccessTokenValidator, StepUp, current_auth

LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"
AUDIENCE = "https://payroll.example/api"


def create_app(issuer: str, *, clock: Callable[[], float] | None = None) -> Flask:
    app = Flask(__name__)
    step_up = StepUp(
        app,
        validator=JwtAccessTokenValidator(issuer, AUDIENCE, clock=clock),
        acr_order=[LOA1, LOA2],
        clock=clock,
    )

    @app.get("/payslips")
    def payslips() -> dict[str, object]:
        return {"owner": current_auth().sub, "payslips": []}

    @app.post("/payouts")
    @step_up.require(acr_values=[LOA2], max_age=300)
    def payout() -> tuple[dict[str, object], int]:
        return {"paid": True, "acr": current_auth().authentication_policy}, 201

    return app
