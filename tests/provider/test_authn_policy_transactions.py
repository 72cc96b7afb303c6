"""provider.authn_policy, RFC 9396 at the authorization endpoint: a request with
``authorization_details`` is the user's approval of a transaction, which is never granted from
the session alone — the level's last factor is verified in this interaction (the check
``transaction_approval``), after any factor the step-up needs.

Pure: the sandbox levels (loa1 = pwd, loa2 = pwd + otp, a passkey level), times around NOW.
"""

from __future__ import annotations

from functools import partial

from provider.acr import AcrPolicy
from provider.authn_policy import (
    Authenticate,
    AuthnRequest,
    FactorRecord,
    Fail,
    Issue,
    SessionState,
    decide,
)
from stepup.config import AcrLevelConfig

LOA1, LOA2, PASSKEY = "urn:stepup:loa:1", "urn:stepup:loa:2", "urn:stepup:loa:passkey"
NOW = 1_700_000_000
START = NOW - 10  # the interaction began 10 s ago
POLICY = AcrPolicy(
    [
        AcrLevelConfig(LOA1, ("pwd",), description="password"),
        AcrLevelConfig(LOA2, ("pwd", "otp"), elevation_lifetime=900, description="code"),
        AcrLevelConfig(PASSKEY, ("passkey",), description="passkey"),
    ]
)
L1, L2, _ = POLICY.levels
ALL = frozenset({"pwd", "otp", "passkey", "uv"})

txn = partial(AuthnRequest, interaction_started_at=START, transaction=True)


def session(**factors: int) -> SessionState:
    records = tuple(FactorRecord(name, at) for name, at in factors.items())
    return SessionState("alice", records, ALL)


def test_a_fresh_loa2_session_is_asked_for_its_code_again_to_approve() -> None:
    """Signed in at loa2 a minute ago: without the transaction it issues at once; with it, the
    one-time code again — and not the password."""
    fresh = session(pwd=NOW - 60, otp=NOW - 60)
    assert decide(txn(acr_values=(LOA2,), transaction=False), fresh, POLICY, NOW) == Issue(
        LOA2, ("pwd", "otp", "mfa"), NOW - 60
    )
    assert decide(txn(acr_values=(LOA2,)), fresh, POLICY, NOW) == Authenticate(
        ("otp",), "approve_transaction", L2
    )


def test_the_code_verified_in_this_interaction_approves_with_auth_time_of_the_approval() -> None:
    approved = session(pwd=NOW - 60, otp=NOW - 2)
    assert decide(txn(acr_values=(LOA2,)), approved, POLICY, NOW) == Issue(
        LOA2, ("pwd", "otp", "mfa"), NOW - 2
    )


def test_a_step_up_that_asks_for_the_code_in_this_interaction_needs_nothing_more() -> None:
    """A loa1 session: the step-up asks for the code (reason step_up); once given, the same code
    is the approval — one page, not two."""
    loa1 = session(pwd=NOW - 60)
    assert decide(txn(acr_values=(LOA2,)), loa1, POLICY, NOW) == Authenticate(
        ("otp",), "step_up", L2
    )
    after = session(pwd=NOW - 60, otp=NOW - 1)
    assert decide(txn(acr_values=(LOA2,)), after, POLICY, NOW) == Issue(
        LOA2, ("pwd", "otp", "mfa"), NOW - 1
    )


def test_no_session_signs_in_with_every_factor_and_that_is_the_approval() -> None:
    assert decide(txn(acr_values=(LOA2,)), None, POLICY, NOW) == Authenticate(
        ("pwd", "otp"), "login_required", L2
    )
    assert decide(txn(acr_values=(LOA2,)), session(pwd=NOW - 3, otp=NOW - 1), POLICY, NOW) == (
        Issue(LOA2, ("pwd", "otp", "mfa"), NOW - 1)
    )


def test_at_the_password_level_the_password_is_the_approval() -> None:
    assert decide(txn(), session(pwd=NOW - 60), POLICY, NOW) == Authenticate(
        ("pwd",), "approve_transaction", L1
    )
    assert decide(txn(), session(pwd=NOW - 1), POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 1)


def test_a_passkey_session_above_the_target_approves_with_its_passkey() -> None:
    """The level reached is above loa2: the approval is that level's factor (the passkey, its
    user verification a qualifier, not a factor to ask for), not a code the user may lack."""
    passkey = session(passkey=NOW - 60, uv=NOW - 60)
    assert decide(txn(acr_values=(LOA2,)), passkey, POLICY, NOW) == Authenticate(
        ("passkey",), "approve_transaction", L2
    )
    again = session(passkey=NOW - 1, uv=NOW - 1)
    decision = decide(txn(acr_values=(LOA2,)), again, POLICY, NOW)
    assert isinstance(decision, Issue)
    assert (decision.acr, decision.auth_time) == (LOA2, NOW - 1)


def test_prompt_none_never_approves_a_transaction() -> None:
    """OIDC Core §3.1.2.1: prompt=none shows no page — and an approval needs one."""
    fresh = session(pwd=NOW - 60, otp=NOW - 60)
    assert decide(txn(acr_values=(LOA2,), prompt=frozenset({"none"})), fresh, POLICY, NOW) == Fail(
        "login_required", "prompt=none, but approving authorization_details needs the user"
    )


def test_the_message_says_what_to_do() -> None:
    assert Authenticate(("otp",), "approve_transaction", L2).message == (
        "To approve this transaction, confirm it is you. Enter a one-time code."
    )
