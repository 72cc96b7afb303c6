"""provider.authn_policy with passkeys: the sandbox levels plus ``urn:stepup:loa:passkey``
(``phr``) and ``urn:stepup:loa:hardware-key`` (``phrh``); the documented rows of
docs/step-up-semantics.md, the ``uv``/``hwk`` qualifiers, confirm-before-enrol, reachability and
the RFC 8176 ``amr`` of a passkey. Pure: no app."""

from __future__ import annotations

from functools import partial

import pytest

from provider.acr import AcrPolicy
from provider.authn_policy import (
    Authenticate,
    AuthnRequest,
    FactorRecord,
    Fail,
    Issue,
    SessionState,
    amr_for,
    amr_of_factors,
    decide,
)
from provider.settings import SettingsError
from stepup.config import AcrLevelConfig

LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"
PASSKEY, HARDWARE = "urn:stepup:loa:passkey", "urn:stepup:loa:hardware-key"
PHR, PHRH = "phr", "phrh"
START = 1_700_000_000
BEFORE = START - 60

POLICY = AcrPolicy(
    [
        AcrLevelConfig(LOA1, ("pwd",), description="password"),
        AcrLevelConfig(LOA2, ("pwd", "otp"), elevation_lifetime=900, description="code"),
        AcrLevelConfig(PASSKEY, ("passkey",), aliases=(PHR,), description="passkey"),
        AcrLevelConfig(HARDWARE, ("passkey", "hwk"), aliases=(PHRH,), description="hardware"),
    ]
)
L1, L2, LP, LH = POLICY.levels
req = partial(AuthnRequest, interaction_started_at=START)

ALICE = frozenset({"pwd", "otp"})
BOB = frozenset({"pwd"})
WITH_PASSKEY = frozenset({"pwd", "passkey", "uv"})
WITH_HARDWARE = frozenset({"pwd", "passkey", "uv", "hwk"})


def session(enrolled: frozenset[str], subject: str = "alice", **factors: int) -> SessionState:
    return SessionState(subject, tuple(FactorRecord(k, v) for k, v in factors.items()), enrolled)


def test_a_level_of_passkeys_alone_needs_user_verification() -> None:
    assert LP.factors == ("passkey", "uv")
    assert LH.factors == ("passkey", "hwk", "uv")
    after_password = AcrPolicy([AcrLevelConfig("x", ("pwd", "passkey"))])
    assert after_password.levels[0].factors == ("pwd", "passkey")  # preferred, not required


def test_a_passkey_qualifier_without_a_passkey_is_refused() -> None:
    with pytest.raises(SettingsError, match="hwk qualifies a passkey: add passkey"):
        AcrPolicy([AcrLevelConfig("x", ("pwd", "hwk"))])


DOCUMENTED = [
    (
        "no session, phr",
        None,
        req(acr_values=(PHR,)),
        Authenticate(("passkey", "uv"), "login_required", LP),
    ),
    (
        "bob without a passkey",
        session(BOB, "bob", pwd=BEFORE),
        req(acr_values=(PHR,)),
        Authenticate(("passkey", "uv"), "step_up", LP, ("passkey",)),
    ),
    (
        "alice confirms her code first",
        session(ALICE, pwd=BEFORE),
        req(acr_values=(PHR,)),
        Authenticate(("otp",), "confirm_before_enrol", LP),
    ),
    (
        "alice with a fresh code enrols",
        session(ALICE, pwd=BEFORE, otp=START + 5),
        req(acr_values=(PHR,)),
        Authenticate(("passkey", "uv"), "step_up", LP, ("passkey",)),
    ),
    (
        "a passkey session, nothing requested",
        session(WITH_PASSKEY, passkey=BEFORE, uv=BEFORE),
        req(),
        Issue(PASSKEY, ("swk", "pin", "mfa"), BEFORE),
    ),
    (
        "a passkey session, no hwk, essential phrh",
        session(WITH_PASSKEY, passkey=BEFORE, uv=BEFORE),
        req(essential_acr=(PHRH,)),
        Fail(
            "unmet_authentication_requirements",
            "none of the user's passkeys shows a hardware key this provider trusts",
        ),
    ),
]


@pytest.mark.parametrize(
    ("s", "request_", "expected"),
    [row[1:] for row in DOCUMENTED],
    ids=[str(row[0]) for row in DOCUMENTED],
)
def test_documented_example(
    s: SessionState | None, request_: AuthnRequest, expected: object
) -> None:
    assert decide(request_, s, POLICY, START) == expected


def test_a_step_up_from_a_password_session_asks_only_for_the_passkey() -> None:
    s = session(WITH_PASSKEY, pwd=BEFORE)
    assert decide(req(acr_values=(PHR,)), s, POLICY, START) == Authenticate(
        ("passkey", "uv"), "step_up", LP
    )


def test_a_passkey_session_meets_a_request_for_the_password_level() -> None:
    """A higher level satisfies a lower one, though it has no password."""
    s = session(WITH_PASSKEY, passkey=BEFORE, uv=BEFORE)
    assert decide(req(acr_values=(LOA1,)), s, POLICY, START) == Issue(
        LOA1, ("swk", "pin", "mfa"), BEFORE
    )


def test_a_passkey_used_without_user_verification_does_not_reach_phr() -> None:
    s = session(WITH_PASSKEY, pwd=BEFORE, passkey=BEFORE)
    assert decide(req(acr_values=(PHR,)), s, POLICY, START) == Authenticate(("uv",), "step_up", LP)


def test_phr_after_a_step_up_reports_the_passkey_only() -> None:
    s = session(WITH_PASSKEY, pwd=BEFORE, passkey=START + 3, uv=START + 3)
    assert decide(req(acr_values=(PHR,)), s, POLICY, START + 5) == Issue(
        PHR, ("swk", "pin", "mfa"), START + 3
    )


def test_a_hardware_passkey_reaches_phrh_and_says_hwk() -> None:
    s = session(WITH_HARDWARE, passkey=BEFORE, uv=BEFORE, hwk=BEFORE)
    assert decide(req(acr_values=(PHRH,)), s, POLICY, START) == Issue(
        PHRH, ("hwk", "pin", "mfa"), BEFORE
    )
    # At phr the key is still a hardware key: amr says what was used, whatever was asked.
    assert decide(req(acr_values=(PHR,)), s, POLICY, START) == Issue(
        PHR, ("hwk", "pin", "mfa"), BEFORE
    )


def test_a_qualifier_from_an_earlier_passkey_use_is_not_reported_for_this_one() -> None:
    """A level of password and passkey (user verification preferred): the passkey used now
    verified no user, an earlier one did; amr says what this one did."""
    policy = AcrPolicy([AcrLevelConfig("pwd+passkey", ("pwd", "passkey"))])
    s = session(WITH_PASSKEY, pwd=BEFORE, passkey=START + 3, uv=BEFORE)
    assert decide(req(), s, policy, START + 5) == Issue(
        "pwd+passkey", ("pwd", "swk", "user", "mfa"), START + 3
    )
    same_time = session(WITH_PASSKEY, pwd=BEFORE, passkey=START + 3, uv=START + 3)
    assert decide(req(), same_time, policy, START + 5) == Issue(
        "pwd+passkey", ("pwd", "swk", "pin", "mfa"), START + 3
    )


def test_phrh_voluntary_without_a_hardware_passkey_falls_back_to_phr() -> None:
    s = session(WITH_PASSKEY, pwd=BEFORE)
    assert decide(req(acr_values=(PHRH,)), s, POLICY, START) == Authenticate(
        ("passkey", "uv"), "step_up", LP
    )


def test_hwk_is_never_enrolled_on_demand() -> None:
    s = session(BOB, "bob", pwd=BEFORE)
    # bob could create a passkey, but nothing promises it will be a hardware one: phrh is out
    # of reach, and the strongest level below it that he can reach is the target.
    assert decide(req(acr_values=(PHRH,)), s, POLICY, START) == Authenticate(
        ("passkey", "uv"), "step_up", LP, ("passkey",)
    )


def test_passkey_enrolment_can_be_turned_off_alone() -> None:
    bob = session(BOB, "bob", pwd=BEFORE)
    only_otp = decide(req(essential_acr=(PHR,)), bob, POLICY, START, allow_enrolment=("otp",))
    assert only_otp == Fail(
        "unmet_authentication_requirements",
        "the user has no passkey set up, and enrolment is turned off",
    )
    assert decide(req(acr_values=(LOA2,)), bob, POLICY, START, allow_enrolment=("otp",)) == (
        Authenticate(("otp",), "step_up", L2, ("otp",))
    )


@pytest.mark.parametrize(
    ("factors", "methods"),
    [
        (("passkey",), ("swk", "user")),
        (("passkey", "uv"), ("swk", "pin")),
        (("passkey", "hwk"), ("hwk", "user")),
        (("passkey", "hwk", "uv"), ("hwk", "pin")),
        (("pwd", "passkey"), ("pwd", "swk", "user")),
        (("pwd", "otp"), ("pwd", "otp")),
    ],
)
def test_rfc_8176_methods_of_a_passkey(factors: tuple[str, ...], methods: tuple[str, ...]) -> None:
    assert amr_of_factors(factors) == methods


@pytest.mark.parametrize(
    ("methods", "amr"),
    [
        (("swk", "user"), ("swk", "user")),  # a presence test is no second factor
        (("swk", "pin"), ("swk", "pin", "mfa")),
        (("pwd", "swk", "user"), ("pwd", "swk", "user", "mfa")),
        (("pin", "hwk"), ("hwk", "pin", "mfa")),
    ],
)
def test_mfa_counts_factors_not_the_presence_test(
    methods: tuple[str, ...], amr: tuple[str, ...]
) -> None:
    assert amr_for(methods) == amr


def test_the_page_messages_for_passkeys() -> None:
    assert Authenticate(("passkey", "uv"), "login_required", LP).message == (
        "Sign in to continue. Use your passkey."
    )
    assert Authenticate(("passkey", "uv"), "step_up", LP, ("passkey",)).message == (
        "This action needs a stronger sign-in (passkey). Create a passkey for this account."
    )
    assert Authenticate(("pwd", "passkey"), "login_required", LP).message == (
        "Sign in to continue. Enter your password, then use your passkey."
    )
    assert Authenticate(("hwk",), "elevation_expired", LH).message == (
        "Your stronger sign-in has expired; confirm it again (hardware). Use a hardware "
        "security key."
    )
