"""The policy engine on its own (no Flask, no HTTP): matching, CEL conditions, combination, fail
closed, compile errors with positions, and attributes read only when named."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from resource_api.policy import (
    Denied,
    HttpRequest,
    PathPattern,
    Policy,
    PolicyError,
    Refused,
    Rule,
    RuleConfig,
    explain,
    strictest,
)
from resource_api.step_up import AcrOrder, Allow, Challenge, InsufficientScope, Requirement

LOA1, LOA2, LOA3 = "urn:stepup:loa:1", "urn:stepup:loa:2", "urn:stepup:loa:3"
ORDER = AcrOrder.from_levels([(LOA1,), (LOA2, "urn:alias:mfa"), (LOA3,)])
NOW = 1_700_000_000


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "alice", "client_id": "bank-cli", "scope": "openid transfers", "acr": LOA2,
        "amr": ["pwd", "otp", "mfa"], "auth_time": NOW - 100, "jti": "j1",
    }  # fmt: skip
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def policy(*rules: RuleConfig) -> Policy:
    return Policy.build(rules, ORDER)


def transfer(amount: Any = "10.00", **headers: str) -> HttpRequest:
    return HttpRequest("POST", "/transfers", headers=headers, body={"amount": amount})


def test_the_policy_engine_imports_no_flask() -> None:
    code = (
        "import sys, resource_api.policy; "
        "assert 'flask' not in sys.modules and 'werkzeug' not in sys.modules, 'flask imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- conditions over the attributes ---------------------------------------------------------------

LARGE = RuleConfig("large", ("POST",), "/transfers", "double(request.body.amount) > 1000.0",
                   max_age=300)  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "applies"),
    [("1000.00", False), ("1000.01", True), (1500, True), (1000, False), (999.99, False)],
)
def test_a_body_condition_adds_its_requirement(amount: Any, applies: bool) -> None:
    d = policy(LARGE).evaluate(transfer(amount), claims(auth_time=NOW - 301), NOW)
    assert [o.status for o in d.rules] == ["applied" if applies else "false"]
    assert d.requirement == (Requirement(max_age=300) if applies else Requirement())
    if applies:
        assert d.outcome == Challenge(
            (), 300, "this request needs a login within the last 300 seconds; "
            "the user's last login was 301 seconds ago",
        )  # fmt: skip
    else:
        assert d.outcome == Allow()


@pytest.mark.parametrize(
    ("when", "value", "holds"),
    [
        ("request.method == 'POST' && request.path == '/transfers'", None, True),
        ("request.query.limit == '10'", None, True),
        ("request.headers['x-risk'] == 'high'", None, True),
        ("request.headers[?'x-absent'].orValue('none') == 'none'", None, True),
        ("token.jti == 'j1' && token.client_id == 'bank-cli'", None, True),
        ("authentication_time == 1699999900", None, True),
        ("authentication_age == 100", None, True),
        ("authentication_policy == 'urn:stepup:loa:2'", None, True),
        ("'otp' in amr && !('hwk' in amr)", None, True),
        ("sub == 'alice' && client_id == 'bank-cli'", None, True),
        ("scope == ['openid', 'transfers']", None, True),
        ("authentication_age > 100", None, False),
    ],
)
def test_every_attribute_reads_as_documented(when: str, value: Any, holds: bool) -> None:
    rule = RuleConfig("r", when=when, acr_values=(LOA3,))
    request = HttpRequest("POST", "/transfers", {"limit": "10"}, {"X-Risk": "high"}, {"a": 1})
    d = policy(rule).evaluate(request, claims(), NOW)
    assert d.rules[0].status == ("applied" if holds else "false"), d.rules[0]


def test_authentication_age_is_whole_seconds_and_null_without_auth_time() -> None:
    rule = RuleConfig("r", when="authentication_age == 100 && authentication_time == 1699999899.5",
                      acr_values=(LOA3,))  # fmt: skip
    d = policy(rule).evaluate(HttpRequest("GET", "/"), claims(auth_time=NOW - 100.5), NOW)
    assert d.rules[0].status == "applied"
    rule = RuleConfig("r", when="authentication_age == null && authentication_policy == null",
                      acr_values=(LOA3,))  # fmt: skip
    d = policy(rule).evaluate(HttpRequest("GET", "/"), claims(auth_time=None, acr=None), NOW)
    assert d.rules[0].status == "applied"


@pytest.mark.parametrize("auth_time", [
    NOW - 100, NOW - 100.5, NOW + 0.25, float(NOW), True, float("nan"), float("inf"),
    -float("inf"), "1699999900", None, [1],
])  # fmt: skip
def test_authentication_age_is_computed_exactly_whatever_auth_time_holds(auth_time: Any) -> None:
    # The per-request getter inlines AuthContext.authentication_time: the same whole seconds, and
    # null for what is not a finite number.
    from resource_api.policy.attributes import GETTERS, _auth_age
    from resource_api.step_up import AuthContext

    context = AuthContext({"auth_time": auth_time}, NOW + 0.75)
    got = GETTERS["authentication_age"](HttpRequest("GET", "/"), context)
    expected = _auth_age(context)
    assert (got, type(got)) == (expected, type(expected))


def test_a_claim_beyond_64_bits_does_not_break_the_token_map() -> None:
    rule = RuleConfig("r", when="token.sub == 'alice' && token.big > 1.0", acr_values=(LOA3,))
    d = policy(rule).evaluate(HttpRequest("GET", "/"), claims(big=10**40), NOW)
    assert d.rules[0].status == "applied"


def test_json_numbers_are_doubles_so_huge_amounts_do_not_overflow() -> None:
    d = policy(LARGE).evaluate(transfer(10**40), claims(), NOW)
    assert d.rules[0].status == "applied"


# --- fail closed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "body", "error"),
    [
        ("double(request.body.amount) > 1000.0", {"amount": "abc"},
         "cannot convert string to double"),
        ("double(request.body.amount) > 1000.0", {"other": 1},
         'Key not found in map : "amount"'),
        ("double(request.body.amount) > 1000.0", None,
         "Applying SELECT to non-message type"),
        ("request.body.flag", {"flag": "yes"}, "the condition gave a string, not true or false"),
        ("request.body.flag", {"flag": 1}, "the condition gave a double, not true or false"),
    ],
)  # fmt: skip
def test_a_condition_that_errors_or_is_not_a_bool_fails_closed(
    when: str, body: Any, error: str
) -> None:
    route = RuleConfig("route", ("POST",), "/transfers", acr_values=(LOA1,))
    rule = RuleConfig("fragile", when=when, max_age=300)
    d = policy(route, rule).evaluate(HttpRequest("POST", "/transfers", body=body), claims(), NOW)
    assert [(o.rule.name, o.status, o.error) for o in d.rules] == [
        ("route", "applied", None), ("fragile", "failed", error),
    ]  # fmt: skip
    assert d.outcome == Refused(
        "fragile",
        f"rule 'fragile' could not be evaluated: {error}",
        f"the API's policy could not be evaluated for this request (rule 'fragile': {error}), "
        "so it is refused",
    )
    assert (d.outcome.status_code, d.outcome.error) == (403, "access_denied")
    assert not d.allowed


def test_one_failure_among_conditions_evaluated_together_is_found() -> None:
    rules = [RuleConfig(f"r{i}", when=w, max_age=600 - i)
             for i, w in enumerate(["sub == 'alice'", "request.headers['x'] == '1'",
                                    "sub == 'bob'", "amr.size() > 1"])]  # fmt: skip
    d = policy(*rules).evaluate(HttpRequest("GET", "/"), claims(), NOW)
    assert [(o.status, o.error) for o in d.rules] == [
        ("applied", None), ("failed", 'Key not found in map : "x"'), ("false", None),
        ("applied", None),
    ]  # fmt: skip
    assert isinstance(d.outcome, Refused)
    # The same policy, with the header sent: no failure, the two true rules combine.
    d = policy(*rules).evaluate(HttpRequest("GET", "/", headers={"X": "2"}), claims(), NOW)
    assert [o.status for o in d.rules] == ["applied", "false", "false", "applied"]
    assert d.requirement == Requirement(max_age=597)


def test_python_code_that_raises_fails_closed() -> None:
    def broken(request: Any) -> Requirement | None:
        raise KeyError("amount")

    rs = policy().for_route("POST", "/transfers", [Rule.computed("@require(when=broken)", broken)])
    d = rs.evaluate(transfer(), claims(), NOW)
    assert d.rules[0].status == "failed"
    assert d.rules[0].error == "its Python code raised KeyError: 'amount'"
    assert isinstance(d.outcome, Refused)


# --- combination ----------------------------------------------------------------------------------


def test_two_rules_combine_into_the_strictest_requirement() -> None:
    rules = (
        RuleConfig("route", ("POST",), "/transfers", acr_values=(LOA2,), max_age=3600),
        RuleConfig("risky", when="request.headers[?'x-risk'].orValue('') == 'high'",
                   acr_values=(LOA3,), max_age=600),
        RuleConfig("large", when="double(request.body.amount) > 1000.0", max_age=300),
        RuleConfig("scoped", path="/transfers", scope=("transfers",)),
    )  # fmt: skip
    d = policy(*rules).evaluate(transfer("5000", **{"X-Risk": "high"}), claims(), NOW)
    assert d.requirement == Requirement((LOA3,), 300, ("transfers",))
    assert isinstance(d.outcome, Challenge)
    assert (d.outcome.acr_values, d.outcome.max_age) == ((LOA3,), 300)
    ok = policy(*rules).evaluate(transfer("5000", **{"X-Risk": "high"}), claims(acr=LOA3), NOW)
    assert ok.outcome == Allow()
    d = policy(*rules).evaluate(transfer("5"), claims(), NOW)
    assert d.requirement == Requirement((LOA2,), 3600, ("transfers",))
    assert d.outcome == Allow()
    d = policy(*rules).evaluate(transfer("5"), claims(scope="openid"), NOW)
    assert isinstance(d.outcome, InsufficientScope)


@pytest.mark.parametrize(
    ("lists", "combined"),
    [
        ([(LOA2,), (LOA3,)], (LOA3,)),
        ([(LOA3,), (LOA2,)], (LOA3,)),
        ([(LOA1, LOA2), (LOA2,)], (LOA2,)),
        ([(LOA2,), ("urn:alias:mfa",)], (LOA2, "urn:alias:mfa")),
        ([("urn:custom",), ("urn:custom", LOA2)], ("urn:custom",)),
        ([("urn:custom",), (LOA2,)], None),
    ],
)
def test_strictest_keeps_only_values_that_satisfy_every_rule(
    lists: list[tuple[str, ...]], combined: tuple[str, ...] | None
) -> None:
    result = strictest([Requirement(values) for values in lists], ORDER)
    assert (result.acr_values if result else None) == combined


def test_levels_no_single_level_meets_fail_closed() -> None:
    rules = (RuleConfig("a", acr_values=("urn:custom",)), RuleConfig("b", acr_values=(LOA2,)))
    d = policy(*rules).evaluate(HttpRequest("GET", "/"), claims(), NOW)
    assert d.outcome == Refused(
        None,
        "no authentication level satisfies every rule that applies (acr urn:custom; "
        "acr urn:stepup:loa:2)",
        "the API's policy asks for authentication levels that no single level meets, so the "
        "request is refused",
    )


def test_deny_wins_over_every_requirement_and_over_a_failure() -> None:
    rules = (
        RuleConfig("route", acr_values=(LOA3,), max_age=10),
        RuleConfig("broken", when="request.headers['absent'] == 'x'", max_age=5),
        RuleConfig("blocked", when="client_id == 'bank-cli'", deny="this client may not transfer"),
    )
    d = policy(*rules).evaluate(transfer(), claims(), NOW)
    assert d.outcome == Denied("blocked", "this client may not transfer")
    assert (d.outcome.status_code, d.outcome.error) == (403, "access_denied")
    d = policy(*rules).evaluate(transfer(), claims(client_id="other"), NOW)
    assert isinstance(d.outcome, Refused)


# --- matching -------------------------------------------------------------------------------------


def test_methods_and_paths_match_and_head_follows_get() -> None:
    rules = (
        RuleConfig("history", ("GET",), "/accounts/<account_id>/transactions", acr_values=(LOA2,)),
        RuleConfig("one account", ("GET",), "/accounts/acc_9/transactions", acr_values=(LOA3,)),
        RuleConfig("numbers", path="/items/<int:n>", acr_values=(LOA3,)),
    )
    p = policy(*rules)

    def applied(method: str, path: str) -> list[str]:
        return [r.name for r in p.evaluate(HttpRequest(method, path), claims(), NOW).applied]

    assert applied("GET", "/accounts/acc_1/transactions") == ["history"]
    assert applied("HEAD", "/accounts/acc_9/transactions") == ["history", "one account"]
    assert applied("POST", "/accounts/acc_1/transactions") == []
    assert applied("GET", "/accounts/acc_1/transactions/x") == []
    assert applied("DELETE", "/items/42") == ["numbers"]
    assert applied("DELETE", "/items/forty-two") == []
    d = p.evaluate(HttpRequest("POST", "/accounts/acc_1/transactions"), claims(), NOW)
    assert [o.error for o in d.all_outcomes()] == [
        "method POST is not GET", "method POST is not GET",
        "path /accounts/acc_1/transactions does not match /items/<int:n>",
    ]  # fmt: skip


def test_a_route_knows_which_rules_always_match_and_which_to_check() -> None:
    rules = (
        RuleConfig("every", when="true", max_age=1000),
        RuleConfig("same route", ("GET",), "/accounts/<id>/transactions", max_age=900),
        RuleConfig("literal", ("GET",), "/accounts/acc_9/transactions", max_age=800),
        RuleConfig("elsewhere", ("GET",), "/profile", max_age=700),
        RuleConfig("post only", ("POST",), max_age=600),
    )
    rs = policy(*rules).for_route("GET", "/accounts/<account_id>/transactions")
    assert [(r.name, always) for r, always in rs.candidates] == [
        ("every", True), ("same route", True), ("literal", False),
    ]  # fmt: skip
    d = rs.evaluate(HttpRequest("GET", "/accounts/acc_9/transactions"), claims(), NOW)
    assert d.requirement == Requirement(max_age=800)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("transfers", "must start with '/'"),
        ("/items/<bogus:n>", "unknown converter 'bogus' (known: string, int, float, path, uuid)"),
        ("/items/<n", "a placeholder must read <name> or <converter:name>"),
    ],
)
def test_bad_paths_are_refused(path: str, error: str) -> None:
    with pytest.raises(PolicyError) as exc:
        Rule.compile(RuleConfig("r", path=path, max_age=1))
    assert str(exc.value) == f"rule 'r': path: {error}"


def test_path_templates_ignore_placeholder_names() -> None:
    assert PathPattern.parse("/a/<x>/b").template == PathPattern.template_of("/a/<string:y>/b")
    assert PathPattern.parse("/a/<int:x>").template != PathPattern.template_of("/a/<y>")


# --- compile errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (RuleConfig("r", when="request.body.amount >", max_age=1),
         "rule 'r': when: line 1, column 22: Syntax error: mismatched input '<EOF>' expecting "
         "{'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, "
         "STRING, BYTES, IDENTIFIER}"),
        (RuleConfig("r", when="request.bdy.amount > 1.0", max_age=1),
         "rule 'r': when: line 1, column 12: undeclared reference to 'request.bdy.amount'"),
        (RuleConfig("r", when="sub == 'alice' &&\n  authentication_agee > 5", max_age=1),
         "rule 'r': when: line 2, column 3: undeclared reference to 'authentication_agee'"),
        (RuleConfig("r", when="request.method + 1 == 2", max_age=1),
         "rule 'r': when: line 1, column 16: found no matching overload for '_+_' applied to "
         "'(string, int)'"),
        (RuleConfig("r", when="request.path", max_age=1),
         "rule 'r': when: a condition must be true or false, but this expression gives a string"),
        (RuleConfig("r", when="  ", max_age=1), "rule 'r': when: the condition is empty"),
        (RuleConfig("r"),
         "rule 'r': effect: give acr_values and/or max_age (a step-up), or deny = \"why\""),
        (RuleConfig("r", acr_values=(LOA2,), deny="no"),
         "rule 'r': deny: a rule either denies or requires a step-up, not both"),
        (RuleConfig("r", methods=("GE T",), max_age=1),
         "rule 'r': methods: 'GE T' is not an HTTP method"),
        (RuleConfig("r", acr_values=("has space",)),
         "rule 'r': effect: acr_values: 'has space' is not a valid value (no spaces, quotes or "
         "backslash)"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_an_error_naming_the_rule_and_the_position(
    config: RuleConfig, message: str
) -> None:
    with pytest.raises(PolicyError) as exc:
        Policy.build([config], ORDER)
    assert str(exc.value) == message


def test_rule_names_are_unique() -> None:
    with pytest.raises(PolicyError, match="two rules have this name"):
        policy(RuleConfig("r", max_age=1), RuleConfig("r", max_age=2))


# --- reads only what a matching rule names --------------------------------------------------------


class Watched:
    """A request description that records which parts were read."""

    def __init__(self, method: str = "POST", path: str = "/transfers") -> None:
        self.method, self.path, self.read = method, path, set[str]()

    @property
    def query(self) -> dict[str, str]:
        self.read.add("query")
        return {}

    @property
    def headers(self) -> dict[str, str]:
        self.read.add("headers")
        return {"x-risk": "low"}

    @property
    def body(self) -> Any:
        self.read.add("body")
        return {"amount": 5.0}


def test_the_body_is_read_only_when_a_matching_rule_names_it() -> None:
    rules = (
        RuleConfig("risky", when="request.headers['x-risk'] == 'high'", deny="no"),
        RuleConfig("large", ("POST",), "/transfers", when="request.body.amount > 1000.0",
                   max_age=300),
        RuleConfig("email", ("PUT",), "/profile/email", when="request.body.email != ''",
                   max_age=60),
    )  # fmt: skip
    p = policy(*rules)
    get = Watched("GET", "/accounts")
    assert p.evaluate(get, claims(), NOW).outcome == Allow()
    assert get.read == {"headers"}
    post = Watched()
    assert p.evaluate(post, claims(), NOW).outcome == Allow()
    assert post.read == {"headers", "body"}
    unconditional = Watched()
    policy(RuleConfig("route", ("POST",), "/transfers", max_age=5)).evaluate(
        unconditional, claims(), NOW
    )
    assert unconditional.read == set()


def test_no_rule_allows_any_valid_token() -> None:
    d = policy().evaluate(HttpRequest("GET", "/"), claims(acr=None, auth_time=None), NOW)
    assert (d.outcome, d.requirement, d.rules) == (Allow(), Requirement(), ())


# --- the explanation ------------------------------------------------------------------------------


def test_the_decision_explains_every_rule() -> None:
    rules = (
        RuleConfig("route POST /transfers", ("POST",), "/transfers", acr_values=(LOA2,),
                   max_age=3600),
        RuleConfig("large transfers", ("POST",), "/transfers",
                   when="double(request.body.amount)\n  > 1000.0", max_age=300),
        RuleConfig("risky", when="request.headers[?'x-risk'].orValue('') == 'high'", deny="no"),
        RuleConfig("profile", ("PUT",), "/profile/email", max_age=120),
    )  # fmt: skip
    d = policy(*rules).evaluate(transfer("1500.00"), claims(acr=LOA1, auth_time=NOW - 600), NOW)
    assert explain(d).splitlines() == [
        "Request    POST /transfers",
        "Token      sub alice, client bank-cli, scope openid transfers",
        "           acr urn:stepup:loa:1 (authentication_policy), amr pwd otp mfa",
        "           auth_time 1699999400, 600 seconds before now (authentication_age)",
        "",
        "Rules, in order:",
        "  applies         route POST /transfers",
        "                  requires acr urn:stepup:loa:2, max_age 3600",
        "  applies         large transfers",
        "                  when: double(request.body.amount) > 1000.0",
        "                  the condition is true; it requires max_age 300",
        "  not applicable  risky",
        "                  when: request.headers[?'x-risk'].orValue('') == 'high'",
        "                  the condition is false",
        "  not applicable  profile",
        "                  method POST is not PUT",
        "",
        "Requirement  acr urn:stepup:loa:2, max_age 300",
        "  no  acr urn:stepup:loa:1 does not meet urn:stepup:loa:2",
        "  no  last login 600 seconds ago: more than max_age 300",
        "",
        "Decision   challenge: 401 insufficient_user_authentication",
        '           WWW-Authenticate: Bearer error="insufficient_user_authentication", '
        'error_description="this request needs authentication at level urn:stepup:loa:2 or '
        "stronger; the token's level is urn:stepup:loa:1; this request needs a login within "
        "the last 300 seconds; the user's last login was 600 seconds ago\", "
        'acr_values="urn:stepup:loa:2", max_age=300',
    ]


def test_the_strongest_list_comes_first_even_against_the_weakest_level() -> None:
    # [loa1, x, z] accepts the weakest level (rank 0): still stronger than a list of values the
    # order does not know, so its preference (x before z) leads.
    unknown, weakest = Requirement(("urn:z", "urn:x")), Requirement((LOA1, "urn:x", "urn:z"))
    both = strictest([unknown, weakest], ORDER)
    assert both is not None
    assert both.acr_values == ("urn:x", "urn:z")


def test_a_trailing_slash_does_not_dodge_a_rule() -> None:
    rules = (
        RuleConfig("literal", ("POST",), "/transfers", max_age=300),
        RuleConfig("pattern", ("GET",), "/accounts/<id>/transactions", max_age=600),
    )
    p = policy(*rules)
    for method, path in [("POST", "/transfers/"), ("GET", "/accounts/a/transactions/")]:
        assert len(p.evaluate(HttpRequest(method, path), claims(), NOW).applied) == 1, path
    assert p.evaluate(HttpRequest("POST", "/transfers/x"), claims(), NOW).applied == ()
    assert p.evaluate(HttpRequest("POST", "/transfers//"), claims(), NOW).applied == ()


def test_needs_body_tells_a_carrier_whether_to_fetch_the_body() -> None:
    p = policy(LARGE, RuleConfig("risky", when="request.headers['x'] == '1'", deny="no"))
    assert p.needs_body("POST", "/transfers") is True
    assert p.needs_body("POST", "/transfers/") is True
    assert p.needs_body("GET", "/transfers") is False
    assert p.needs_body("POST", "/accounts") is False


def test_a_body_the_carrier_withheld_fails_closed_where_no_body_is_null() -> None:
    from resource_api.policy import UNAVAILABLE

    guarded = RuleConfig(
        "large",
        ("POST",),
        "/transfers",
        "type(request.body) == map && request.body.amount > 1000.0",
        max_age=300,
    )
    p = policy(guarded, RuleConfig("header", when="request.method == 'POST'", max_age=900))
    none = p.evaluate(HttpRequest("POST", "/transfers", body=None), claims(), NOW)
    assert [o.status for o in none.rules] == ["false", "applied"]
    withheld = p.evaluate(HttpRequest("POST", "/transfers", body=UNAVAILABLE), claims(), NOW)
    assert [(o.status, o.error) for o in withheld.rules] == [
        ("failed", "request.body is not available here (the request was passed on without it)"),
        ("applied", None),
    ]
    assert isinstance(withheld.outcome, Refused)


def test_remembered_results_follow_every_attribute_a_condition_reads() -> None:
    # Two conditional rules that always match: one CEL call per request, remembered per the
    # attribute values; changing any of them (a header, the age, the token) changes the result.
    rules = (
        RuleConfig("risky", when="request.headers[?'x-risk'].orValue('') == 'high'", max_age=60),
        RuleConfig("old", when="authentication_age > 100 && sub == 'alice'", acr_values=(LOA3,)),
    )
    rs = policy(*rules).for_route("GET", None)
    token = claims(auth_time=NOW - 100)

    def statuses(now: float, token: dict[str, Any], **headers: str) -> list[str]:
        return [o.status for o in rs.evaluate(HttpRequest("GET", "/", headers=headers), token,
                                              now).rules]  # fmt: skip

    for _ in range(2):
        assert statuses(NOW, token, **{"X-Risk": "high"}) == ["applied", "false"]
        assert statuses(NOW, token, **{"X-Risk": "low"}) == ["false", "false"]
        assert statuses(NOW + 1, token, **{"X-Risk": "low"}) == ["false", "applied"]
        assert statuses(NOW + 1, claims(sub="bob", auth_time=NOW - 100)) == ["false", "false"]
    assert rs._memo, "the fast path remembered nothing"


def test_remembered_results_never_cross_header_sets_whatever_their_order() -> None:
    # The memo key holds the headers in the order given: the same fields in another order is
    # another key (a second evaluation, same result); different values never share a result.
    rs = policy(
        RuleConfig("both", when="request.headers[?'a'].orValue('') == '1' && "
                   "request.headers[?'b'].orValue('') == '2'", deny="both"),
    ).for_route("GET", None)  # fmt: skip

    def outcome(headers: dict[str, str]) -> str:
        decision = rs.evaluate(HttpRequest("GET", "/", headers=headers), claims(), NOW)
        return "denied" if isinstance(decision.outcome, Denied) else "allowed"

    for _ in range(2):
        assert outcome({"a": "1", "b": "2"}) == "denied"
        assert outcome({"b": "2", "a": "1"}) == "denied"
        assert outcome({"a": "1", "b": "3"}) == "allowed"
        assert outcome({"b": "2", "a": "2"}) == "allowed"
        assert outcome({"a": "1"}) == "allowed"


@pytest.mark.parametrize(("when", "read"), [
    ("request.headers[?'x-risk'].orValue('') == 'high'", {"x-risk"}),
    ("request.headers['x-a'] == '1' || request.headers[?\"x-b\"].hasValue()", {"x-a", "x-b"}),
    ("sub == 'alice'", set()),
    # Any other reference may read any header: all of them are handed to CEL.
    ("size(request.headers) > 2", None),
    ("'x-a' in request.headers", None),
    ("request.headers.exists(k, k == 'x-a') || request.headers[?'x-b'].hasValue()", None),
    ("request.headers['X-A'] == '1'", None),  # not lower-case: never present, read it as written
    ("request.headers[?'content-type'].hasValue()", None),  # the CGI fields: the general rules
    ("request.headers[sub] == '1'", None),
    ("'request.headers[?\"x-a\"]' == sub", set()),  # in a string literal: no reference at all
    # The word left anywhere else: all of them (a comprehension variable could be named request).
    ("[{'headers': {}}].exists(request, size(request.headers) == 0) && "
     "request.headers[?'x-a'].hasValue()", None),
    ("request.headers[?'x-a'].orValue('') == 'headers'", None),
])  # fmt: skip
def test_a_condition_reading_headers_by_name_is_handed_only_those(
    when: str, read: set[str] | None
) -> None:
    rule = Rule.compile(RuleConfig("r", when=when, deny="r"))
    assert rule.condition is not None
    assert rule.condition.headers_read == (None if read is None else frozenset(read))
    # The decision is the same as with every header handed over.
    many = {"X-A": "1", "x-b": "2", "X-Risk": "high", "Content-Type": "text/plain", "x-c": "3"}
    for headers in (many, {}, {"x-a": "2"}):
        request = HttpRequest("GET", "/", headers=headers)
        fast = policy(RuleConfig("r", when=when, deny="r"),
                      RuleConfig("s", when="sub == 'bob'", max_age=60))  # fmt: skip
        one_by_one = policy(RuleConfig("r", when=when, deny="r"))
        got = fast.evaluate(request, claims(), NOW)
        assert fast.for_route("GET", None)._fast
        expected = one_by_one.evaluate(request, claims(), NOW)
        assert [o.status for o in got.rules][:1] == [o.status for o in expected.rules]
        assert type(got.outcome) is type(expected.outcome)


# --- stable_until: how long a decision may be reused ------------------------------------------


def test_a_decision_is_stable_until_the_tokens_exp_when_it_reads_token_and_target_only() -> None:
    p = policy(
        RuleConfig("cli", when="client_id == 'bank-cli' && request.query[?'x'].orValue('') == ''",
                   acr_values=(LOA2,)),
        RuleConfig("admins", when="'admin' in scope && sub == 'root'", deny="no"),
    )  # fmt: skip
    decision = p.evaluate(HttpRequest("GET", "/accounts"), claims(exp=NOW + 600), NOW)
    assert isinstance(decision.outcome, Allow)
    assert decision.stable_until() == NOW + 600


def test_a_max_age_bounds_an_allowed_decision_by_auth_time_plus_max_age() -> None:
    p = policy(RuleConfig("fresh", methods=("POST",), path="/transfers", max_age=300))
    token = claims(exp=NOW + 3600, auth_time=NOW - 100)
    decision = p.evaluate(HttpRequest("POST", "/transfers"), token, NOW)
    assert isinstance(decision.outcome, Allow)
    assert decision.stable_until() == NOW - 100 + 300
    # exp first when it comes first
    early = p.evaluate(HttpRequest("POST", "/transfers"), {**token, "exp": NOW + 50}, NOW)
    assert early.stable_until() == NOW + 50


@pytest.mark.parametrize(
    "when",
    [
        "request.headers[?'x-risk'].orValue('') == 'high'",  # another header: not in the key
        "type(request.body) == map",  # the body: not in the key
        "authentication_age > 60",  # changes with the clock, any second
    ],
)
def test_a_decision_reading_what_a_cache_key_lacks_promises_nothing(when: str) -> None:
    p = policy(RuleConfig("r", when=when, max_age=3600))
    decision = p.evaluate(HttpRequest("GET", "/accounts", body=None), claims(exp=NOW + 600), NOW)
    assert decision.stable_until() is None


def test_a_rule_whose_match_fails_does_not_count_but_python_code_or_a_failure_does() -> None:
    risky = "request.headers[?'x-risk'].orValue('') == 'high'"
    elsewhere = RuleConfig("headers elsewhere", path="/transfers", when=risky, deny="no")
    p = policy(elsewhere)
    decision = p.evaluate(HttpRequest("GET", "/accounts"), claims(exp=NOW + 600), NOW)
    assert [o.status for o in decision.rules] == ["not_matched"]
    assert decision.stable_until() == NOW + 600
    code = Policy.build([Rule.computed("code", lambda request: None)], ORDER)
    assert code.evaluate(HttpRequest("GET", "/"), claims(), NOW).stable_until() is None
    failing = policy(RuleConfig("bad", when="token.nope == 'x'", deny="no"))
    refused = failing.evaluate(HttpRequest("GET", "/"), claims(exp=NOW + 600), NOW)
    assert isinstance(refused.outcome, Refused)
    assert refused.stable_until() is None


@pytest.mark.parametrize("exp", [None, "soon", True, float("inf")])
def test_a_token_without_a_usable_exp_promises_nothing(exp: Any) -> None:
    decision = policy().evaluate(HttpRequest("GET", "/"), claims(exp=exp), NOW)
    assert decision.stable_until() is None


# --- remembered results -------------------------------------------------------------------------


def test_a_remembered_result_follows_the_clock_across_max_age_and_authentication_age() -> None:
    # One token, the same request, second after second: the rules' results and the step-up
    # answer are remembered, yet every answer is the one a fresh engine gives at that instant
    # (max_age 60 on whole seconds; a rule on authentication_age > 30 adds max_age 45).
    rules = (
        RuleConfig("fresh", ("GET",), "/a", "request.method == 'GET'", acr_values=(LOA2,),
                   max_age=60),
        RuleConfig("older", ("GET",), "/a", "authentication_age > 30", max_age=45),
        RuleConfig("risk", ("GET",), "/a", "request.headers[?'x-risk'].orValue('') == 'high'",
                   deny="risky"),
    )  # fmt: skip
    remembered = policy(*rules).for_route("GET", "/a")
    token = claims(auth_time=NOW)
    for tenth in range(0, 10 * 70, 3):
        now = NOW + tenth / 10
        for headers in ({}, {"x-risk": "high"}):
            request = HttpRequest("GET", "/a", headers=headers)
            fresh = policy(*rules).for_route("GET", "/a").evaluate(request, dict(token), now)
            got = remembered.evaluate(request, token, now)
            assert (got.outcome, got.requirement) == (fresh.outcome, fresh.requirement), now
            assert [(o.rule.name, o.status) for o in got.rules] == [
                (o.rule.name, o.status) for o in fresh.rules
            ]
            assert got.context.now == now
    assert remembered.evaluate(HttpRequest("GET", "/a"), token, NOW + 45).outcome == Allow()
    assert isinstance(remembered.evaluate(HttpRequest("GET", "/a"), token, NOW + 46).outcome,
                      Challenge)  # fmt: skip


def test_a_rule_set_without_conditions_remembers_per_token_and_follows_the_clock() -> None:
    route = RuleConfig("route", ("GET",), "/a", acr_values=(LOA2,), max_age=10)
    rules = policy(route).for_route("GET", "/a")
    strong, weak = claims(auth_time=NOW), claims(auth_time=NOW, acr=LOA1)
    for second in range(15):
        got = rules.evaluate(HttpRequest("GET", "/a"), strong, NOW + second)
        assert (got.outcome == Allow()) == (second <= 10), second
        weak_got = rules.evaluate(HttpRequest("GET", "/a"), weak, NOW + second)
        assert isinstance(weak_got.outcome, Challenge)
        assert ("seconds ago" in weak_got.outcome.description) == (second > 10)


def test_an_age_condition_that_starts_failing_fails_closed_though_the_rest_is_remembered() -> None:
    # The conditions that read authentication_age are evaluated again each second, the others
    # remembered: one that errors only past 30 seconds must then refuse the request.
    rules = (
        RuleConfig("method", ("GET",), "/a", "request.method == 'GET'", acr_values=(LOA2,)),
        RuleConfig("aged", ("GET",), "/a",
                   "authentication_age > 30 && request.headers['x-a'] == 'y'", deny="no"),
    )  # fmt: skip
    rules_set = policy(*rules).for_route("GET", "/a")
    token = claims(auth_time=NOW)
    bare, with_header = HttpRequest("GET", "/a"), HttpRequest("GET", "/a", headers={"x-a": "n"})
    for second in (0, 10, 30, 31, 40, 10):
        for request in (bare, with_header, bare):
            got = rules_set.evaluate(request, token, NOW + second)
            if second <= 30 or request is with_header:
                assert got.outcome == Allow(), (second, request)
            else:
                assert isinstance(got.outcome, Refused), second
                assert got.outcome.rule == "aged"
