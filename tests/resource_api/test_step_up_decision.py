"""The pure decision (resource_api.step_up): claims + requirement + now -> Allow | Challenge."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from resource_api.step_up import (
    AcrOrder,
    Allow,
    AuthContext,
    Challenge,
    InsufficientScope,
    Requirement,
    combine,
    decide,
    lasting,
)

LOA1, LOA2, LOA3 = "urn:stepup:loa:1", "urn:stepup:loa:2", "urn:stepup:loa:3"
MFA_ALIAS = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
ORDER = AcrOrder.from_levels([(LOA1, "urn:okta:loa:1fa:any"), (LOA2, MFA_ALIAS), (LOA3,)])
NOW = 1_700_000_000.0


def ctx(**claims: Any) -> AuthContext:
    base: dict[str, Any] = {"sub": "alice", "acr": LOA1, "auth_time": int(NOW) - 60, "scope": ""}
    base.update(claims)
    return AuthContext.from_claims({k: v for k, v in base.items() if v is not None}, NOW)


def test_the_pure_modules_import_no_flask() -> None:
    code = (
        "import sys, resource_api.step_up, resource_api.challenges, resource_api.validation; "
        "assert 'flask' not in sys.modules, 'flask imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_requirement_allows() -> None:
    assert decide(ctx(acr=None, auth_time=None), Requirement(), ORDER) == Allow()


@pytest.mark.parametrize(
    ("acr", "wanted", "allowed"),
    [
        (LOA2, (LOA2,), True),
        (LOA3, (LOA2,), True),  # a stronger level satisfies a weaker one
        (LOA1, (LOA2,), False),
        (MFA_ALIAS, (LOA2,), True),  # an alias is its level
        (LOA2, (MFA_ALIAS,), True),
        ("urn:okta:loa:1fa:any", (LOA2,), False),
        ("urn:unknown", (LOA1,), False),  # an unknown value meets nothing ...
        ("urn:unknown", ("urn:unknown",), True),  # ... except itself, asked for by name
        (LOA1, ("urn:unknown", LOA1), True),
    ],
)
def test_acr_ordering(acr: str, wanted: tuple[str, ...], allowed: bool) -> None:
    decision = decide(ctx(acr=acr), Requirement(acr_values=wanted), ORDER)
    assert isinstance(decision, Allow) is allowed


def test_too_weak_is_challenged_with_the_acr_values_in_order() -> None:
    decision = decide(ctx(acr=LOA1), Requirement(acr_values=(LOA2, LOA3), max_age=300), ORDER)
    assert isinstance(decision, Challenge)
    assert decision.error == "insufficient_user_authentication"
    assert decision.acr_values == (LOA2, LOA3)
    assert decision.max_age == 300
    assert "one of the levels urn:stepup:loa:2, urn:stepup:loa:3" in decision.description
    assert "urn:stepup:loa:1" in decision.description


@pytest.mark.parametrize(("age", "allowed"), [(0, True), (299, True), (300, True), (301, False)])
def test_max_age_boundary(age: int, allowed: bool) -> None:
    decision = decide(ctx(auth_time=int(NOW) - age), Requirement(max_age=300), ORDER)
    assert isinstance(decision, Allow) is allowed
    if not allowed:
        assert decision == Challenge((), 300, decision.description)  # type: ignore[union-attr]
        assert "301 seconds ago" in decision.description  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("elapsed", "allowed"), [(300.0, True), (300.5, True), (300.999, True), (301.0, False)]
)
def test_max_age_counts_whole_seconds_like_the_provider(elapsed: float, allowed: bool) -> None:
    # The provider re-authenticates only when whole seconds exceed max_age; an API counting
    # fractions would challenge, at 300.5 s, the token the provider just issued without a login.
    auth_time = 1_700_000_000
    context = AuthContext.from_claims(
        {"sub": "alice", "acr": LOA1, "auth_time": auth_time}, auth_time + elapsed
    )
    assert isinstance(decide(context, Requirement(max_age=300), ORDER), Allow) is allowed


def test_max_age_zero_needs_a_login_this_second() -> None:
    assert decide(ctx(auth_time=int(NOW)), Requirement(max_age=0), ORDER) == Allow()
    assert isinstance(decide(ctx(auth_time=int(NOW) - 1), Requirement(max_age=0), ORDER), Challenge)


@pytest.mark.parametrize("bad", [None, "1700000000", True, [1], float("nan"), {"t": 1}])
def test_missing_or_malformed_auth_time_is_challenged_never_passed(bad: Any) -> None:
    decision = decide(ctx(auth_time=bad), Requirement(max_age=3600), ORDER)
    assert isinstance(decision, Challenge)
    assert decision.max_age == 3600
    assert "no auth_time" in decision.description


@pytest.mark.parametrize("bad", [None, "", 2, ["urn:stepup:loa:2"], True])
def test_missing_or_malformed_acr_is_challenged_never_passed(bad: Any) -> None:
    decision = decide(ctx(acr=bad), Requirement(acr_values=(LOA1,)), ORDER)
    assert isinstance(decision, Challenge)
    assert decision.acr_values == (LOA1,)
    assert "no acr claim" in decision.description


def test_a_stale_strong_login_gets_both_acr_values_and_max_age() -> None:
    decision = decide(
        ctx(acr=LOA2, auth_time=int(NOW) - 4000), Requirement((LOA2,), max_age=3600), ORDER
    )
    assert isinstance(decision, Challenge)
    assert (decision.acr_values, decision.max_age) == ((LOA2,), 3600)
    assert "no acr" not in decision.description


def test_missing_scope_is_403_before_any_step_up() -> None:
    decision = decide(
        ctx(acr=LOA1, scope="openid"), Requirement((LOA2,), scope=("accounts:write",)), ORDER
    )
    assert decision == InsufficientScope(("accounts:write",), decision.description)  # type: ignore[union-attr]
    assert decision.status_code == 403  # type: ignore[union-attr]


def test_scope_as_a_list_is_read_too() -> None:
    assert decide(ctx(scope=["a", "b"]), Requirement(scope=("b",)), ORDER) == Allow()


def test_context_exposes_what_handlers_read() -> None:
    c = AuthContext.from_claims(
        {"sub": "alice", "acr": LOA2, "auth_time": int(NOW) - 42, "amr": ["pwd", "otp", 3],
         "scope": "openid  accounts:read", "client_id": "bank-cli"},
        NOW,
    )  # fmt: skip
    assert c.authentication_policy == LOA2
    assert c.authentication_time == NOW - 42
    assert c.authentication_age == 42
    assert c.amr == ("pwd", "otp")
    assert c.scope == frozenset({"openid", "accounts:read"})
    assert (c.sub, c.client_id) == ("alice", "bank-cli")


def test_combine_takes_the_stronger_acr_the_smaller_max_age_and_all_scopes() -> None:
    req = combine(
        [Requirement((LOA1,), 3600, ("a",)), None, Requirement((LOA2,), 300, ("b", "a"))], ORDER
    )
    assert req == Requirement((LOA2,), 300, ("a", "b"))
    assert combine([Requirement((LOA3,)), Requirement((LOA2,))], ORDER).acr_values == (LOA3,)
    assert combine([Requirement(max_age=60), Requirement()], ORDER) == Requirement(max_age=60)
    # the order cannot compare unknown values: the later (more specific) requirement wins
    assert combine([Requirement((LOA3,)), Requirement(("x",))], ORDER).acr_values == ("x",)


@pytest.mark.parametrize(
    "kwargs",
    [{"acr_values": ("has space",)}, {"acr_values": ('q"uote',)}, {"max_age": -1},
     {"max_age": True}, {"scope": ("a\\b",)}, {"acr_values": "urn:stepup:loa:2"}],
)  # fmt: skip
def test_requirements_refuse_values_that_cannot_be_sent(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Requirement(**kwargs)


def test_an_acr_value_in_two_levels_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="two levels"):
        AcrOrder.from_levels([("a", "b"), ("b",)])


@pytest.mark.parametrize("auth_time", [
    int(NOW) - 60, NOW - 60.5, NOW - 61.0, int(NOW) - 4000, True, float("nan"), float("inf"),
    "1699999940", [1], None,
])  # fmt: skip
@pytest.mark.parametrize("acr", [LOA2, LOA1, "", 2, None])
def test_decide_reads_acr_and_auth_time_as_the_context_does(auth_time: Any, acr: Any) -> None:
    # decide() reads the two claims without the properties (it runs on every request): the
    # outcome must be the one the context's own reading gives.
    context = ctx(auth_time=auth_time, acr=acr)
    got = decide(context, Requirement((LOA2,), 60), ORDER)
    policy, at = context.authentication_policy, context.authentication_time
    if policy is not None and ORDER.satisfies(policy, (LOA2,)) and at is not None and NOW - at < 61:
        assert got == Allow()
    else:
        assert isinstance(got, Challenge)
        assert ("no acr claim" in got.description) == (policy is None)
        assert ("no auth_time claim" in got.description) == (at is None)


def test_an_auth_context_and_credentials_stay_frozen_values() -> None:
    import dataclasses

    from resource_api.dpop import Credentials

    for made, again, field in (
        (AuthContext({"sub": "a"}, NOW), AuthContext({"sub": "a"}, NOW), "now"),
        (Credentials("bearer", "t"), Credentials("bearer", "t"), "token"),
    ):
        assert made == again
        assert dataclasses.replace(made, **{field: "x"}) != made
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, field, "x")
    assert repr(Credentials("dpop", "t")) == "Credentials(scheme='dpop', token='t')"
    assert hash(Credentials("dpop", "t")) == hash(Credentials("dpop", "t"))


@pytest.mark.parametrize("auth_time", [
    int(NOW) - 60, NOW - 60.5, NOW - 0.25, NOW + 3.5, True, float("nan"), "1699999940", None,
])  # fmt: skip
@pytest.mark.parametrize("acr", [LOA2, LOA1, None])
@pytest.mark.parametrize("max_age", [None, 0, 1, 60, 61, 300])
def test_a_decision_lasts_exactly_while_lasting_says(
    auth_time: Any, acr: Any, max_age: int | None
) -> None:
    # The policy engine reuses decide()'s answer for the same claims while
    # now - auth_time < limit: at every later instant (quarter seconds, across the max_age
    # boundary, and back in time) the reused answer must be what decide() gives afresh.
    first = ctx(auth_time=auth_time, acr=acr)
    requirement = Requirement((LOA2,), max_age)
    answer = decide(first, requirement, ORDER)
    start, limit = lasting(first, requirement)
    for quarter in range(-8, 4 * 70):
        now = NOW + quarter / 4
        if now - start < limit:
            assert decide(AuthContext(first.claims, now), requirement, ORDER) == answer, now
