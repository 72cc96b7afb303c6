"""Policy rules ([[api.rules]], DESIGN contract 9) through HTTP: the demo bank with the sandbox
config plus rules on headers, the authentication's age and the client; deny; combination; a
condition that errors (fails closed); decorators on the same engine; current_decision().

Time is the injected clock (``Clock``): no sleeping."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from resource_api import (
    JwtAccessTokenValidator,
    Requirement,
    StepUp,
    create_app,
    current_auth,
    current_decision,
)
from resource_api.errors import ConfigurationError
from resource_api.policy import RuleConfig, explain

from .support import (
    LOA1,
    LOA2,
    SANDBOX,
    Clock,
    FakeIssuer,
    bearer,
    challenge_params,
    sandbox_config,
)

RISKY = RuleConfig(
    "risky requests need a login in the last minute",
    when="request.headers[?'x-risk'].orValue('') == 'high'",
    acr_values=(LOA2,),
    max_age=60,
)
STALE_PASSWORD = RuleConfig(
    "an old password-only login cannot read history",
    methods=("GET",),
    path="/accounts/<account_id>/transactions",
    when="authentication_age > 600 && !('otp' in amr)",
    acr_values=(LOA2,),
)
READ_ONLY_JOB = RuleConfig(
    "the reports job only reads",
    when="client_id == 'reports-job' && request.method != 'GET'",
    deny="the reports job may only read",
)


@pytest.fixture
def app(validator: JwtAccessTokenValidator, clock: Clock, tmp_path: Path) -> Flask:
    rules = (*SANDBOX.api.rules, RISKY, STALE_PASSWORD, READ_ONLY_JOB)
    return create_app(
        sandbox_config(rules=rules), database_url=f"sqlite:///{tmp_path}/bank.db",
        token_validator=validator, clock=clock,
    )  # fmt: skip


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


def accounts(api: FlaskClient, token: str) -> list[str]:
    response = api.get("/accounts", headers=bearer(token))
    assert response.status_code == 200
    return [a["id"] for a in response.json["accounts"]]


def payment(api: FlaskClient, issuer: FakeIssuer, amount: str, **claims: Any) -> str:
    """A token approved (RFC 9396) for a transfer of ``amount`` to the second account."""
    _, dst = accounts(api, issuer.mint())
    entry = {"type": "payment", "amount": amount, "currency": "EUR", "payee": dst}
    return issuer.mint(authorization_details=[entry], **claims)


def transfer(api: FlaskClient, token: str, amount: Any, **headers: str) -> Any:
    src, dst = accounts(api, token)
    return api.post("/transfers", headers={**bearer(token), **headers},
                    json={"from_account": src, "to_account": dst, "amount": amount})  # fmt: skip


def challenge(response: Any) -> tuple[int, str, str]:
    params = challenge_params(response)
    assert params["error"] == "insufficient_user_authentication"
    return response.status_code, params["acr_values"], params["max_age"]


# --- the body: the sandbox's large-transfer rule --------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "approved"),
    [("1000.01", "1000.01"), (1000.01, "1000.01"), (1500, "1500.00"), ("2500", "2500")],
)
def test_a_large_amount_needs_a_recent_approval_of_that_transfer(
    api: FlaskClient, issuer: FakeIssuer, amount: Any, approved: str
) -> None:
    now = int(issuer.clock())
    stale = payment(api, issuer, approved, auth_time=now - 301)
    assert challenge(transfer(api, stale, amount)) == (401, LOA2, "300")
    unapproved = issuer.mint(auth_time=now - 300)
    response = transfer(api, unapproved, amount)
    assert challenge(response) == (401, LOA2, "300")
    assert response.json["authorization_details"] == [{
        "amount": f"{float(approved):.2f}", "currency": "EUR",
        "payee": accounts(api, unapproved)[1], "type": "payment",
    }]  # fmt: skip
    fresh = payment(api, issuer, approved, auth_time=now - 300)
    assert transfer(api, fresh, amount).status_code == 201


@pytest.mark.parametrize("amount", ["1000.00", 1000, "5", 999.99])
def test_a_small_amount_needs_only_the_route(
    api: FlaskClient, issuer: FakeIssuer, amount: Any
) -> None:
    stale = issuer.mint(auth_time=int(issuer.clock()) - 3600)
    assert transfer(api, stale, amount).status_code == 201
    older = issuer.mint(auth_time=int(issuer.clock()) - 3601)
    assert challenge(transfer(api, older, amount)) == (401, LOA2, "3600")


def test_an_amount_the_condition_cannot_read_fails_closed(
    api: FlaskClient, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = issuer.mint()
    with caplog.at_level(logging.WARNING, logger="resource_api.policy"):
        response = transfer(api, token, "12,50")
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers
    assert response.json == {
        "error": "access_denied",
        "error_description": "the API's policy could not be evaluated for this request (rule "
        "'transfers above 1,000.00 need the approval of that transfer': cannot convert string "
        "to double), so it is refused",
    }
    assert [r.getMessage() for r in caplog.records] == [
        "policy refused POST /transfers: rule 'transfers above 1,000.00 need the approval of that "
        "transfer' could not be evaluated: cannot convert string to double"
    ]
    assert transfer(api, token, "12.50").status_code == 201


# --- a header -------------------------------------------------------------------------------------


def test_a_header_dependent_rule(api: FlaskClient, issuer: FakeIssuer) -> None:
    token = issuer.mint(auth_time=int(issuer.clock()) - 61)
    assert challenge(transfer(api, token, "5", **{"X-Risk": "high"})) == (401, LOA2, "60")
    assert transfer(api, token, "5", **{"X-Risk": "low"}).status_code == 201
    assert transfer(api, token, "5").status_code == 201
    recent = issuer.mint(auth_time=int(issuer.clock()) - 60)
    assert transfer(api, recent, "5", **{"X-Risk": "high"}).status_code == 201
    # Reads too: the rule has no method or path.
    response = api.get("/accounts", headers={**bearer(token), "X-Risk": "high"})
    assert challenge(response) == (401, LOA2, "60")


# --- authentication_age ---------------------------------------------------------------------------


def test_an_authentication_age_rule_follows_the_clock(
    api: FlaskClient, issuer: FakeIssuer, clock: Clock
) -> None:
    token = issuer.mint(acr=LOA1, amr=["pwd"], auth_time=int(clock()) - 590,
                        exp=int(clock()) + 3600)  # fmt: skip
    account = accounts(api, token)[0]
    url = f"/accounts/{account}/transactions"
    assert api.get(url, headers=bearer(token)).status_code == 200
    clock.advance(10)  # 600 s: not yet more than 600
    assert api.get(url, headers=bearer(token)).status_code == 200
    clock.advance(1)
    response = api.get(url, headers=bearer(token))
    assert response.status_code == 401
    params = challenge_params(response)
    assert (params["acr_values"], "max_age" in params) == (LOA2, False)
    with_otp = issuer.mint(acr=LOA2, amr=["pwd", "otp"], auth_time=int(clock()) - 3000)
    assert api.get(url, headers=bearer(with_otp)).status_code == 200


# --- deny -----------------------------------------------------------------------------------------


def test_a_deny_rule_refuses_whatever_the_token(api: FlaskClient, issuer: FakeIssuer) -> None:
    job = issuer.mint(client_id="reports-job", sub="reports-job")
    assert api.get("/accounts", headers=bearer(job)).status_code == 200
    response = transfer(api, job, "5")
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {"error": "access_denied",
                             "error_description": "the reports job may only read"}  # fmt: skip
    # A deny wins over a step-up the same request would also need.
    stale = issuer.mint(client_id="reports-job", acr=LOA1, auth_time=int(issuer.clock()) - 9999)
    assert transfer(api, stale, "2000").status_code == 403


# --- combining ------------------------------------------------------------------------------------


def test_rules_that_apply_together_ask_for_the_strictest(
    api: FlaskClient, issuer: FakeIssuer
) -> None:
    weak = issuer.mint(acr=LOA1, amr=["pwd"], auth_time=int(issuer.clock()) - 100)
    # route: loa:2 within 3600 s; large amount: within 300 s; risky header: loa:2 within 60 s.
    response = transfer(api, weak, "2000", **{"X-Risk": "high"})
    assert challenge(response) == (401, LOA2, "60")
    assert response.json["max_age"] == 60
    strong = issuer.mint(acr=LOA2, auth_time=int(issuer.clock()) - 100)
    assert challenge(transfer(api, strong, "2000", **{"X-Risk": "high"})) == (401, LOA2, "60")
    approved = payment(api, issuer, "1200", acr=LOA2, auth_time=int(issuer.clock()) - 100)
    assert transfer(api, approved, "1200").status_code == 201  # 100 s < 300 s
    just_now = payment(api, issuer, "1200", acr=LOA2, auth_time=int(issuer.clock()) - 60)
    assert transfer(api, just_now, "1200", **{"X-Risk": "high"}).status_code == 201


# --- current_decision() and decorators on the same engine -----------------------------------------


def make_app(validator: JwtAccessTokenValidator, clock: Clock) -> Flask:
    app = Flask("policy-test")
    step_up = StepUp(app, validator=validator, acr_order=[LOA1, LOA2], clock=clock, rules=[
        RuleConfig("exports are sensitive", ("GET",), "/export", acr_values=(LOA2,)),
        RISKY,
    ])  # fmt: skip

    def many_rows(req: Any) -> Requirement | None:
        if req.args.get("rows") == "boom":
            raise ValueError("bad rows")
        return Requirement(max_age=30) if req.args.get("rows") == "all" else None

    @app.get("/export")
    @step_up.require(max_age=3600, when=many_rows)
    def export() -> Any:
        decision = current_decision()
        return jsonify(applied=[r.name for r in decision.applied],
                       explained=explain(decision).splitlines()[6:9])  # fmt: skip

    return app


def test_handlers_read_the_decision_and_decorators_are_rules(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer
) -> None:
    c = make_app(validator, clock).test_client()
    token = issuer.mint(auth_time=int(clock()) - 20)
    response = c.get("/export", headers=bearer(token))
    assert response.status_code == 200
    assert response.json == {
        "applied": ["exports are sensitive", "@require on export",
                    "@require(when=many_rows) on export"],
        "explained": ["  applies         exports are sensitive",
                      "                  requires acr urn:stepup:loa:2",
                      "  not applicable  risky requests need a login in the last minute"],
    }  # fmt: skip
    old = issuer.mint(auth_time=int(clock()) - 31)
    assert challenge(c.get("/export?rows=all", headers=bearer(old))) == (401, LOA2, "30")
    response = c.get("/export?rows=boom", headers=bearer(token))
    assert response.status_code == 403
    assert response.json == {
        "error": "access_denied",
        "error_description": "the API's policy could not be evaluated for this request (rule "
        "'@require(when=many_rows) on export': its Python code raised ValueError: bad rows), so "
        "it is refused",
    }


def test_the_decision_is_logged_at_debug_level(
    api: FlaskClient, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = issuer.mint(auth_time=int(issuer.clock()) - 400)
    accounts(api, token)
    with caplog.at_level(logging.DEBUG, logger="resource_api.policy"):
        response = transfer(api, token, "2000")
    assert response.status_code == 401
    logged = caplog.records[-1].getMessage().splitlines()
    assert logged[0] == "policy decision"
    assert logged[1] == "Request    POST /transfers"
    assert "Authorization" not in caplog.text
    assert token not in caplog.text
    payee = accounts(api, token)[1]
    assert logged[-7:-1] == [
        "Requirement  acr urn:stepup:loa:2, max_age 300, authorization_details "
        f'[{{"amount":"2000.00","currency":"EUR","payee":"{payee}","type":"payment"}}]',
        "  ok  acr urn:stepup:loa:2 meets urn:stepup:loa:2",
        "  no  last login 400 seconds ago: more than max_age 300",
        "  no  authorization_details: the token's approval (if any) does not cover this "
        "transaction",
        "",
        "Decision   challenge: 401 insufficient_user_authentication",
    ]


def test_conditions_see_the_flask_requests_headers_and_query(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer
) -> None:
    app = Flask("headers-test")
    StepUp(app, validator=validator, acr_order=[LOA1, LOA2], clock=clock, rules=[RuleConfig(
        "seen", when="request.headers['content-type'] == 'application/json' && "
        "request.headers['x-trace-id'] == 'abc' && request.query.rows == 'all' && "
        "!('authorization' in request.headers && request.headers.authorization == '')",
        deny="seen",
    )])  # fmt: skip

    @app.post("/things")
    def things() -> Any:
        return jsonify(ok=True)

    c = app.test_client()
    headers = {**bearer(issuer.mint()), "X-Trace-Id": "abc"}
    response = c.post("/things?rows=all&rows=none", headers=headers, json={})
    assert (response.status_code, response.json["error_description"]) == (403, "seen")
    assert c.post("/things?rows=none", headers=headers, json={}).status_code == 200
    # No Content-Type at all: reading the missing key fails, and the request is refused.
    response = c.post("/things?rows=all", headers=headers, data="x")
    assert response.json == {
        "error": "access_denied",
        "error_description": "the API's policy could not be evaluated for this request (rule "
        "'seen': Key not found in map : \"content-type\"), so it is refused",
    }


def test_flask_request_headers_past_the_learned_names() -> None:
    # Header names are learned per environ key up to a bound; past it (a client inventing names)
    # every header is still read, and nothing of one request shows in the next.
    from resource_api import flask_rules

    app = Flask("headers-learned")
    for i in range(flask_rules._KNOWN_SIZE + 50):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", f"HTTP_X_INVENTED_{i}": str(i),
                   "HTTP_X_EMPTY": "", "CONTENT_TYPE": "", "CONTENT_LENGTH": "3",
                   "wsgi.url_scheme": "http", "SERVER_NAME": "x", "SERVER_PORT": "80"}  # fmt: skip
        with app.request_context(environ):
            from flask import request as flask_request

            headers = flask_rules.FlaskRequest(flask_request).headers
        assert headers == {f"x-invented-{i}": str(i), "x-empty": "", "content-length": "3"}
    learned = len(flask_rules._HEADER_NAMES) + len(flask_rules._NOT_HEADERS)
    assert learned <= flask_rules._KNOWN_SIZE


def test_flask_request_headers_by_name_are_the_headers_restricted_to_them() -> None:
    # What a condition reading headers by literal name is handed: exactly those entries of the
    # full header map, empty values included, absent ones None.
    from resource_api import flask_rules

    app = Flask("headers-named")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_RISK": "high",
               "HTTP_X_EMPTY": "", "HTTP_X_TRACE_ID": "abc", "CONTENT_LENGTH": "3",
               "wsgi.url_scheme": "http", "SERVER_NAME": "x", "SERVER_PORT": "80"}  # fmt: skip
    names = ("x-risk", "x-empty", "x-trace-id", "x-absent", "risk")
    with app.request_context(environ):
        from flask import request as flask_request

        facts = flask_rules.FlaskRequest(flask_request)
        everything = facts.headers
        named = facts.headers_among(names)
        assert named == tuple(everything.get(n) for n in names)
        assert named == ("high", "", "abc", None, None)
        assert facts.headers_among(("x-risk",)) == ("high",)


def test_a_remembered_decision_still_gives_handlers_this_request_s_context_and_record(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer
) -> None:
    # The same token and request again and again (a remembered result): the context and the
    # record a view reads are made when it asks, for this request and this instant, and are the
    # same objects for the whole request; outside a protected view both still refuse.
    app = Flask("remembered")
    step_up = StepUp(app, validator=validator, acr_order=[LOA1, LOA2], clock=clock, rules=[
        RuleConfig("get", ("GET",), "/r", "request.method == 'GET'", acr_values=(LOA2,),
                   max_age=60),
        RuleConfig("old", ("GET",), "/r", "authentication_age > 30", max_age=45),
        RISKY,
    ])  # fmt: skip

    @app.get("/r")
    def read() -> Any:
        auth, decision = current_auth(), current_decision()
        assert current_auth() is auth
        assert current_decision() is decision
        assert decision.context is auth
        required = decision.requirement
        return jsonify(now=auth.now, age=auth.authentication_age,
                       applied=[r.name for r in decision.applied],
                       requirement=[required.acr_values, required.max_age])  # fmt: skip

    @app.get("/open")
    @step_up.public
    def open_view() -> Any:
        for read_it in (current_auth, current_decision):
            with pytest.raises(ConfigurationError):
                read_it()
        return jsonify(ok=True)

    c = app.test_client()
    token = issuer.mint(auth_time=int(clock()))
    seen = []
    for _ in range(8):
        for _ in range(2):
            response = c.get("/r", headers=bearer(token))
            assert response.status_code == 200
            seen.append(response.json)
        clock.advance(6.5)
    assert [(s["age"], s["applied"], s["requirement"]) for s in seen[::2]] == [
        (0.0, ["get"], [[LOA2], 60]),
        (6.5, ["get"], [[LOA2], 60]),
        (13.0, ["get"], [[LOA2], 60]),
        (19.5, ["get"], [[LOA2], 60]),
        (26.0, ["get"], [[LOA2], 60]),
        (32.5, ["get", "old"], [[LOA2], 45]),
        (39.0, ["get", "old"], [[LOA2], 45]),
        (45.5, ["get", "old"], [[LOA2], 45]),
    ]
    assert all(s["now"] == clock() - 6.5 * (8 - i // 2) for i, s in enumerate(seen))
    clock.advance(0.5)  # 52.5 s since the login, 52 whole seconds: past the 45 s rule's max_age
    assert challenge(c.get("/r", headers=bearer(token))) == (401, LOA2, "45")
    assert c.get("/open").json == {"ok": True}
