"""The one decision every carrier shares (pure: no socket, no server)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from client_sdk import parse_www_authenticate
from client_sdk.dpop import DPoPKey
from resource_api import JwtAccessTokenValidator
from resource_api.gateway import Enforcer, Outcome, RequestInfo, build_enforcer
from resource_api.gateway.enforcer import Validated, path_problem
from resource_api.settings import RouteConfig, RuleConfig

from ..resource_api.support import DROP, LOA1, LOA2, Clock, FakeIssuer, rsa_key, sandbox_config

METADATA = "https://api.example/.well-known/oauth-protected-resource"


def check(enforcer: Enforcer, method: str, target: str, token: str | None = None,
          **headers: str) -> Outcome:  # fmt: skip
    sent = list(headers.items())
    if token is not None:
        sent.append(("Authorization", f"Bearer {token}"))
    return enforcer.check(RequestInfo.build(method, target, sent), resource_metadata=METADATA)


def params(outcome: object) -> dict[str, str]:
    values = [v for k, v in outcome.headers if k == "WWW-Authenticate"]  # type: ignore[attr-defined]
    assert len(values) == 1, values
    [challenge] = parse_www_authenticate(values[0])
    assert challenge.scheme == "bearer"
    return dict(challenge.params)


def test_no_token_is_a_bare_challenge_with_resource_metadata(enforcer: Enforcer) -> None:
    outcome = check(enforcer, "GET", "/accounts")
    assert (outcome.allowed, outcome.status) == (False, 401)
    assert params(outcome) == {"resource_metadata": METADATA}
    assert ("Cache-Control", "no-store") in outcome.headers


def test_weak_token_on_a_transfer_is_the_rfc9470_challenge(
    enforcer: Enforcer, issuer: FakeIssuer
) -> None:
    outcome = check(enforcer, "POST", "/transfers", issuer.mint(acr=LOA1))
    assert outcome.status == 401
    p = params(outcome)
    assert p["error"] == "insufficient_user_authentication"
    assert p["acr_values"] == LOA2
    assert p["max_age"] == "3600"
    assert p["resource_metadata"] == METADATA
    body = json.loads(outcome.body)
    assert body["error"] == "insufficient_user_authentication"
    assert (body["acr_values"], body["max_age"]) == (LOA2, 3600)
    assert outcome.record["decision"] == "refuse"
    assert outcome.record["rules"] == [{"route": "POST /transfers", "acr_values": [LOA2],
                                        "max_age": 3600}]  # fmt: skip


def test_strong_token_is_allowed_with_identity(enforcer: Enforcer, issuer: FakeIssuer) -> None:
    outcome = check(enforcer, "POST", "/transfers/", issuer.mint(), **{"X-Stepup-Acr": "forged"})
    assert (outcome.allowed, outcome.status) == (True, 200)
    assert dict(outcome.identity)["X-Stepup-Acr"] == LOA2
    assert dict(outcome.identity)["X-Stepup-Subject"] == "alice"


def test_a_stale_login_is_challenged_with_max_age(
    enforcer: Enforcer, issuer: FakeIssuer, clock: Clock
) -> None:
    token = issuer.mint(auth_time=int(clock()) - 3601)
    assert params(check(enforcer, "PUT", "/profile/email", token))["max_age"] == "120"


def test_token_without_acr_is_challenged_never_passed(
    enforcer: Enforcer, issuer: FakeIssuer
) -> None:
    assert check(enforcer, "POST", "/transfers", issuer.mint(acr=DROP)).status == 401
    assert check(enforcer, "GET", "/accounts", issuer.mint(acr=DROP)).allowed


@pytest.mark.parametrize(
    ("authorization", "status", "error"),
    [
        ("Bearer not-a-jwt", 401, "invalid_token"),
        ("Bearer a b", 400, "invalid_request"),
        ("Bearer x, Basic y", 400, "invalid_request"),
    ],
)
def test_bad_credentials(enforcer: Enforcer, authorization: str, status: int, error: str) -> None:
    request = RequestInfo.build("GET", "/accounts", [("Authorization", authorization)])
    outcome = enforcer.check(request)
    assert outcome.status == status
    assert params(outcome)["error"] == error
    assert json.loads(outcome.body)["error"] == error


def test_two_authorization_headers_or_a_query_token_are_invalid_request(
    enforcer: Enforcer, issuer: FakeIssuer
) -> None:
    token = issuer.mint()
    twice = [("Authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")]
    assert enforcer.check(RequestInfo.build("GET", "/accounts", twice)).status == 400
    assert check(enforcer, "GET", f"/accounts?access_token={token}").status == 400


def test_keys_unavailable_is_503_with_retry_after(enforcer: Enforcer, issuer: FakeIssuer) -> None:
    issuer.down = True
    outcome = check(enforcer, "GET", "/accounts", issuer.mint())
    assert outcome.status == 503
    assert ("Retry-After", "30") in outcome.headers
    assert json.loads(outcome.body)["error"] == "temporarily_unavailable"


def test_public_paths_and_cors_preflights_need_no_token(enforcer: Enforcer) -> None:
    assert check(enforcer, "GET", "/health").allowed
    assert check(enforcer, "OPTIONS", "/transfers", **{"Access-Control-Request-Method": "POST",
                                                      "Origin": "https://app"}).allowed  # fmt: skip
    assert not check(enforcer, "OPTIONS", "/transfers").allowed


@pytest.mark.parametrize(
    "target",
    ["/accounts/../transfers", "/./transfers", "//transfers", "/transfers/.", "/a%2Ftransfers",
     "/a%2ftransfers", "/%2e%2e/transfers", "/a\\b", "transfers"],
)  # fmt: skip
def test_paths_not_in_normal_form_are_refused_before_the_token(
    enforcer: Enforcer, issuer: FakeIssuer, target: str
) -> None:
    assert path_problem(target) is not None
    outcome = check(enforcer, "POST", target, issuer.mint(acr=LOA1))
    assert outcome.status == 400
    assert json.loads(outcome.body)["error"] == "invalid_request"


@pytest.mark.parametrize("target", ["/transfers", "/a.b/c..d/.e", "/x%20y", "/"])
def test_normal_paths_pass(target: str) -> None:
    assert path_problem(target) is None


def test_percent_encoded_letters_match_the_rule(enforcer: Enforcer, issuer: FakeIssuer) -> None:
    # /transfer%73 is /transfers to every upstream: the rule must see it as such.
    assert check(enforcer, "POST", "/transfer%73", issuer.mint(acr=LOA1)).status == 401


def test_every_bearer_error_and_step_up_challenge_names_the_metadata(
    validator: JwtAccessTokenValidator, issuer: FakeIssuer, clock: Clock
) -> None:
    # DESIGN contract 12: 400 invalid_request, 401 invalid_token, 403 insufficient_scope and the
    # RFC 9470 401 all carry resource_metadata; a 403 access_denied has no challenge at all.
    config = sandbox_config()
    api = replace(
        config.api,
        routes=(*config.api.routes, RouteConfig("GET", "/reports", scope=("reports:read",))),
        rules=(RuleConfig("closed", methods=("DELETE",), deny="closed for now"),),
    )
    enforcer = build_enforcer(replace(config, api=api), validator=validator, clock=clock)
    token = issuer.mint()
    cases = {
        "invalid_request": check(enforcer, "GET", "/accounts?access_token=x", token),
        "invalid_token": check(enforcer, "GET", "/accounts", "not-a-jwt"),
        "insufficient_scope": check(enforcer, "GET", "/reports", token),
        "insufficient_user_authentication": check(
            enforcer, "POST", "/transfers", issuer.mint(acr=LOA1)
        ),
    }
    statuses = {name: outcome.status for name, outcome in cases.items()}  # type: ignore[attr-defined]
    assert statuses == {
        "invalid_request": 400,
        "invalid_token": 401,
        "insufficient_scope": 403,
        "insufficient_user_authentication": 401,
    }
    for name, outcome in cases.items():
        p = params(outcome)
        assert (p["error"], p["resource_metadata"]) == (name, METADATA)
    assert params(cases["insufficient_scope"])["scope"] == "reports:read"
    denied = check(enforcer, "DELETE", "/accounts", token)
    assert denied.status == 403  # type: ignore[attr-defined]
    assert [k for k, _ in denied.headers if k == "WWW-Authenticate"] == []  # type: ignore[attr-defined]
    # The document the enforcer publishes lists the scope and the fixed requirements.
    document = enforcer.metadata_document("https://api.example")
    assert document["scopes_supported"] == ["reports:read"]
    assert document["stepup_route_requirements"][-1] == {
        "methods": ["GET"], "path": "/reports", "scope": ["reports:read"],
    }  # fmt: skip


# --- remembered allows ---------------------------------------------------------------------------


def remembered(enforcer: Enforcer, method: str, target: str, token: str) -> Outcome | None:
    """The remembered allow, or ``None``."""
    found = enforcer.remembered(method, target, [f"Bearer {token}"])
    return found if isinstance(found, Outcome) else None


def test_an_allow_for_a_dpop_bound_token_is_never_remembered(
    enforcer: Enforcer, issuer: FakeIssuer, clock: Clock
) -> None:
    # RFC 9449 §7: every request with a DPoP-bound token needs its own proof. Were the allow
    # remembered, the same token sent as Bearer (stolen, without the key) would pass.
    key = DPoPKey.generate()
    token = issuer.mint(cnf={"jkt": key.jkt})
    url = "https://api.example/accounts"
    sent = [("Authorization", f"DPoP {token}"),
            ("DPoP", key.proof("GET", url, now=clock(), access_token=token))]  # fmt: skip
    allowed = enforcer.check(RequestInfo.build("GET", "/accounts", sent), url=url)
    assert allowed.allowed
    assert not isinstance(enforcer.remembered("GET", "/accounts", [f"Bearer {token}"]), Outcome)
    as_bearer = check(enforcer, "GET", "/accounts", token)
    assert as_bearer.status == 401
    [value] = [v for k, v in as_bearer.headers if k == "WWW-Authenticate"]
    [challenge] = parse_www_authenticate(value)
    assert challenge.scheme == "dpop"  # RFC 9449 §7.1: challenges about a bound token
    assert challenge.params["error"] == "invalid_token"


def test_an_allow_is_remembered_for_that_token_method_and_target_only(
    enforcer: Enforcer, issuer: FakeIssuer
) -> None:
    token, other = issuer.mint(), issuer.mint()
    assert remembered(enforcer, "GET", "/accounts", token) is None  # nothing decided yet
    validated = enforcer.remembered("GET", "/accounts", [f"Bearer {token}"])
    assert isinstance(validated, Validated)
    assert validated.token == token
    assert validated.claims["sub"] == "alice"
    allowed = check(enforcer, "GET", "/accounts?page=2", token)
    assert allowed.allowed
    assert remembered(enforcer, "GET", "/accounts?page=2", token) is allowed
    assert remembered(enforcer, "get", "/accounts?page=2", token) is allowed
    # another token, method, path or query: decided afresh
    assert remembered(enforcer, "GET", "/accounts?page=2", other) is None
    assert remembered(enforcer, "HEAD", "/accounts?page=2", token) is None
    assert remembered(enforcer, "GET", "/accounts", token) is None
    assert remembered(enforcer, "GET", "/accounts?page=3", token) is None
    assert remembered(enforcer, "GET", "/Accounts?page=2", token) is None
    # another scheme, two Authorization headers, a token in the query, an OPTIONS: nothing
    # remembered, nothing validated (check() gives the error)
    assert enforcer.remembered("GET", "/accounts?page=2", [f"Basic {token}"]) is None
    assert enforcer.remembered("GET", "/accounts?page=2", [f"Bearer {token}"] * 2) is None
    assert enforcer.remembered("GET", f"/a?access_token={token}", [f"Bearer {token}"]) is None
    assert enforcer.remembered("OPTIONS", "/accounts?page=2", [f"Bearer {token}"]) is None
    assert enforcer.remembered("GET", "/accounts?page=2", ["Bearer not-a-jwt"]) is None


def test_a_remembered_allow_never_outlives_exp_nor_the_max_age_it_met(
    enforcer: Enforcer, issuer: FakeIssuer, clock: Clock
) -> None:
    now = int(clock())
    # PUT /profile/email needs loa2 within 120 s: logged in 100 s ago, good for 20 s more
    fresh = issuer.mint(auth_time=now - 100, exp=now + 600)
    allowed = check(enforcer, "PUT", "/profile/email", fresh)
    assert allowed.stable_until == now + 20
    clock.advance(19.5)
    assert remembered(enforcer, "PUT", "/profile/email", fresh) is allowed
    clock.advance(0.5)
    assert remembered(enforcer, "PUT", "/profile/email", fresh) is None
    clock.advance(1)  # whole seconds: 121 s since the login is more than max_age 120
    assert params(check(enforcer, "PUT", "/profile/email", fresh))["max_age"] == "120"
    # GET /accounts has no max_age: good until exp, not a second more
    short = issuer.mint(exp=int(clock()) + 30)
    assert check(enforcer, "GET", "/accounts", short).stable_until == int(clock()) + 30
    clock.advance(29)
    assert remembered(enforcer, "GET", "/accounts", short) is not None
    clock.advance(1)
    assert remembered(enforcer, "GET", "/accounts", short) is None


def test_refusals_and_header_dependent_allows_are_never_remembered(
    validator: JwtAccessTokenValidator, issuer: FakeIssuer, clock: Clock
) -> None:
    rules = (RuleConfig("risky", when="request.headers[?'x-risk'].orValue('') == 'high'",
                        deny="too risky"),)  # fmt: skip
    enforcer = build_enforcer(sandbox_config(rules=rules), validator=validator, clock=clock)
    token, weak = issuer.mint(), issuer.mint(acr=LOA1)
    calm = check(enforcer, "GET", "/accounts", token, **{"X-Risk": "low"})
    assert calm.allowed
    assert calm.stable_until is None
    assert remembered(enforcer, "GET", "/accounts", token) is None
    assert check(enforcer, "GET", "/accounts", token, **{"X-Risk": "high"}).status == 403
    assert check(enforcer, "POST", "/transfers", weak).status == 401
    assert remembered(enforcer, "POST", "/transfers", weak) is None


def test_a_key_withdrawn_from_the_jwks_ends_the_remembered_allow(
    enforcer: Enforcer, issuer: FakeIssuer, clock: Clock
) -> None:
    token = issuer.mint(exp=int(clock()) + 3600)
    assert check(enforcer, "GET", "/accounts", token).allowed
    assert remembered(enforcer, "GET", "/accounts", token) is not None
    clock.advance(60)
    issuer.signing = rsa_key("k2")
    issuer.published = [issuer.signing]  # k1 withdrawn (compromised, say)
    assert check(enforcer, "GET", "/accounts", issuer.mint()).allowed
    assert remembered(enforcer, "GET", "/accounts", token) is None
    assert check(enforcer, "GET", "/accounts", token).status == 401


def test_check_uses_what_remembered_validated_for_that_token_only(
    enforcer: Enforcer, issuer: FakeIssuer
) -> None:
    token, other = issuer.mint(), issuer.mint(sub="bob")
    validated = enforcer.remembered("GET", "/accounts", [f"Bearer {token}"])
    assert isinstance(validated, Validated)
    request = RequestInfo.build("GET", "/accounts", [("Authorization", f"Bearer {other}")])
    outcome = enforcer.check(request, validated=validated)  # another token: validated afresh
    assert dict(outcome.identity)["X-Stepup-Subject"] == "bob"
    request = RequestInfo.build("GET", "/accounts", [("Authorization", f"Bearer {token}")])
    assert (
        dict(enforcer.check(request, validated=validated).identity)["X-Stepup-Subject"] == "alice"
    )
