"""provider.authn_policy: what the user must do now, for OIDC Core §3.1.2.1, §5.5.1.1 and §2.

Times are epoch seconds around NOW; the sandbox levels are used: loa1 = pwd, loa2 = pwd + otp with a
15-minute (900 s) elevation.
"""

from __future__ import annotations

from functools import partial

import pytest

from provider import authn_policy
from provider.acr import AcrPolicy
from provider.authn_policy import (
    CHECKS,
    REASONS,
    Authenticate,
    AuthnRequest,
    FactorRecord,
    Fail,
    Issue,
    SessionState,
    amr_for,
    decide,
)
from stepup.config import AcrLevelConfig

LOA1 = "urn:stepup:loa:1"
LOA2 = "urn:stepup:loa:2"
OKTA_1FA = "urn:okta:loa:1fa:any"
OKTA_2FA = "urn:okta:loa:2fa:any"
PAPE_MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
NOW = 1_700_000_000

POLICY = AcrPolicy(
    [
        AcrLevelConfig(LOA1, ("pwd",), aliases=(OKTA_1FA,), description="password"),
        AcrLevelConfig(
            LOA2,
            ("pwd", "otp"),
            aliases=(OKTA_2FA, PAPE_MFA),
            elevation_lifetime=900,
            description="password and one-time code",
        ),
    ]
)
L1, L2 = POLICY.levels


def session(
    pwd: int | None = None,
    otp: int | None = None,
    *,
    subject: str = "alice",
    enrolled: frozenset[str] = frozenset({"pwd", "otp"}),
) -> SessionState:
    records = []
    if pwd is not None:
        records.append(FactorRecord("pwd", pwd))
    if otp is not None:
        records.append(FactorRecord("otp", otp))
    return SessionState(subject, tuple(records), enrolled)


BOB_ENROLLED = frozenset({"pwd"})


def test_public_names_are_pinned() -> None:
    assert authn_policy.__all__ == [
        "CHECKS",
        "REASONS",
        "Authenticate",
        "AuthnRequest",
        "Check",
        "CheckContext",
        "Decision",
        "FactorRecord",
        "Fail",
        "Issue",
        "Need",
        "SessionState",
        "amr_for",
        "amr_of_factors",
        "decide",
    ]


def test_checks_run_in_this_order() -> None:
    assert [c.__name__ for c in CHECKS] == [
        "no_session",
        "id_token_hint_names_another_user",
        "login_hint_names_another_user",
        "prompt_login",
        "max_age_exceeded",
        "factors_missing_or_stale",
        "transaction_approval",
    ]


def test_reason_codes_are_a_fixed_set() -> None:
    expected = {
        "login_required",
        "login_hint",
        "id_token_hint",
        "prompt_login",
        "max_age",
        "step_up",
        "elevation_expired",
        "session_expired",
        "confirm_before_enrol",
        "approve_transaction",
    }
    assert expected == REASONS


# --- no session, plain login ---------------------------------------------------------------


def test_no_session_asks_for_the_weakest_levels_factors() -> None:
    assert decide(AuthnRequest(), None, POLICY, NOW) == Authenticate(
        ("pwd",), "login_required", L1, ()
    )


def test_no_session_with_loa2_requested_asks_for_password_then_otp() -> None:
    decision = decide(AuthnRequest(acr_values=(LOA2,)), None, POLICY, NOW)
    assert decision == Authenticate(("pwd", "otp"), "login_required", L2, ())


def test_a_password_session_issues_loa1_with_pwd_and_the_password_time() -> None:
    decision = decide(AuthnRequest(), session(pwd=NOW - 60), POLICY, NOW)
    assert decision == Issue(acr=LOA1, amr=("pwd",), auth_time=NOW - 60)


def test_without_a_request_the_stronger_level_held_is_reported() -> None:
    decision = decide(AuthnRequest(), session(pwd=NOW - 600, otp=NOW - 300), POLICY, NOW)
    assert decision == Issue(acr=LOA2, amr=("pwd", "otp", "mfa"), auth_time=NOW - 300)


def test_the_latest_record_of_a_factor_counts() -> None:
    s = SessionState(
        "alice", (FactorRecord("pwd", NOW - 500), FactorRecord("pwd", NOW - 50)), frozenset({"pwd"})
    )
    assert decide(AuthnRequest(), s, POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 50)


# --- step-up ---------------------------------------------------------------------------------


def test_step_up_from_password_asks_only_for_the_otp() -> None:
    decision = decide(AuthnRequest(acr_values=(LOA2,)), session(pwd=NOW - 120), POLICY, NOW)
    assert decision == Authenticate(("otp",), "step_up", L2, ())


def test_the_design_flow_step_up_then_issue_loa2() -> None:
    request = AuthnRequest(acr_values=(LOA2,), max_age=300, interaction_started_at=NOW)
    assert decide(request, session(pwd=NOW - 120), POLICY, NOW) == Authenticate(
        ("otp",), "step_up", L2, ()
    )
    after = session(pwd=NOW - 120, otp=NOW + 7)
    assert decide(request, after, POLICY, NOW + 8) == Issue(LOA2, ("pwd", "otp", "mfa"), NOW + 7)


def test_a_stale_otp_is_asked_again_but_not_the_password() -> None:
    s = session(pwd=NOW - 3600, otp=NOW - 901)
    decision = decide(AuthnRequest(acr_values=(LOA2,)), s, POLICY, NOW)
    assert decision == Authenticate(("otp",), "elevation_expired", L2, ())


def test_an_otp_exactly_at_its_elevation_lifetime_still_counts() -> None:
    s = session(pwd=NOW - 3600, otp=NOW - 900)
    decision = decide(AuthnRequest(acr_values=(LOA2,)), s, POLICY, NOW)
    assert decision == Issue(LOA2, ("pwd", "otp", "mfa"), NOW - 900)


def test_after_the_elevation_lapses_the_session_falls_back_to_loa1() -> None:
    s = session(pwd=NOW - 3600, otp=NOW - 901)
    assert decide(AuthnRequest(), s, POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 3600)


def test_a_loa2_session_satisfies_a_loa1_request_and_reports_the_value_asked() -> None:
    s = session(pwd=NOW - 600, otp=NOW - 300)
    decision = decide(AuthnRequest(acr_values=(LOA1,)), s, POLICY, NOW)
    assert decision == Issue(LOA1, ("pwd", "otp", "mfa"), NOW - 300)


def test_a_session_with_no_fresh_level_is_expired() -> None:
    policy = AcrPolicy([AcrLevelConfig(LOA1, ("pwd",), elevation_lifetime=3600)])
    decision = decide(AuthnRequest(), session(pwd=NOW - 3601), policy, NOW)
    assert decision == Authenticate(("pwd",), "session_expired", policy.weakest, ())


# --- acr values: voluntary, aliases, preference --------------------------------------------------


def test_acr_is_the_alias_the_client_asked_for() -> None:
    s = session(pwd=NOW - 60, otp=NOW - 30)
    mfa = ("pwd", "otp", "mfa")
    assert decide(AuthnRequest(acr_values=(OKTA_2FA,)), s, POLICY, NOW) == Issue(
        OKTA_2FA, mfa, NOW - 30
    )
    assert decide(AuthnRequest(acr_values=(PAPE_MFA,)), s, POLICY, NOW) == Issue(
        PAPE_MFA, mfa, NOW - 30
    )


def test_an_alias_of_a_higher_level_triggers_the_step_up() -> None:
    decision = decide(AuthnRequest(acr_values=(PAPE_MFA,)), session(pwd=NOW - 60), POLICY, NOW)
    assert decision == Authenticate(("otp",), "step_up", L2, ())


def test_acr_is_the_first_requested_value_the_level_reached_satisfies() -> None:
    s = session(pwd=NOW - 60, otp=NOW - 30)
    decision = decide(AuthnRequest(acr_values=(OKTA_1FA, LOA2)), s, POLICY, NOW)
    assert decision == Issue(OKTA_1FA, ("pwd", "otp", "mfa"), NOW - 30)


def test_the_first_known_value_is_the_target() -> None:
    decision = decide(AuthnRequest(acr_values=(LOA2, LOA1)), session(pwd=NOW - 60), POLICY, NOW)
    assert decision == Authenticate(("otp",), "step_up", L2, ())


def test_unknown_voluntary_values_are_ignored() -> None:
    request = AuthnRequest(acr_values=("urn:example:gold", LOA2))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Authenticate(
        ("otp",), "step_up", L2, ()
    )


def test_only_unknown_voluntary_values_behave_as_no_request() -> None:
    request = AuthnRequest(acr_values=("urn:example:gold",))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 60)


# --- enrolment -----------------------------------------------------------------------------------


def test_a_user_without_otp_enrols_it_during_the_step_up() -> None:
    s = session(pwd=NOW - 60, subject="bob", enrolled=BOB_ENROLLED)
    decision = decide(AuthnRequest(acr_values=(LOA2,)), s, POLICY, NOW)
    assert decision == Authenticate(("otp",), "step_up", L2, ("otp",))


def test_voluntary_loa2_without_otp_and_enrolment_off_issues_loa1() -> None:
    s = session(pwd=NOW - 60, subject="bob", enrolled=BOB_ENROLLED)
    decision = decide(AuthnRequest(acr_values=(LOA2,)), s, POLICY, NOW, allow_enrolment=False)
    assert decision == Issue(LOA1, ("pwd",), NOW - 60)


def test_voluntary_fallback_reports_a_lower_requested_value_when_one_was_asked() -> None:
    s = session(pwd=NOW - 60, subject="bob", enrolled=BOB_ENROLLED)
    request = AuthnRequest(acr_values=(LOA2, OKTA_1FA))
    assert decide(request, s, POLICY, NOW, allow_enrolment=False) == Issue(
        OKTA_1FA, ("pwd",), NOW - 60
    )


def test_essential_loa2_without_otp_and_enrolment_off_is_unmet() -> None:
    s = session(pwd=NOW - 60, subject="bob", enrolled=BOB_ENROLLED)
    decision = decide(AuthnRequest(essential_acr=(LOA2,)), s, POLICY, NOW, allow_enrolment=False)
    assert decision == Fail(
        "unmet_authentication_requirements",
        "the user has no one-time code set up, and enrolment is turned off",
    )


def test_essential_values_fall_back_to_a_reachable_one_listed() -> None:
    s = session(pwd=NOW - 60, subject="bob", enrolled=BOB_ENROLLED)
    request = AuthnRequest(essential_acr=(LOA2, LOA1))
    assert decide(request, s, POLICY, NOW, allow_enrolment=False) == Issue(LOA1, ("pwd",), NOW - 60)


def test_an_unknown_user_is_asked_for_the_password_first_before_enrolment_is_known() -> None:
    decision = decide(AuthnRequest(essential_acr=(LOA2,)), None, POLICY, NOW, allow_enrolment=False)
    assert decision == Authenticate(("pwd", "otp"), "login_required", L2, ())


# --- essential acr (claims parameter) ------------------------------------------------------------


def test_essential_unknown_values_are_unmet() -> None:
    decision = decide(AuthnRequest(essential_acr=("urn:example:gold",)), None, POLICY, NOW)
    assert decision == Fail(
        "unmet_authentication_requirements",
        "none of the essential acr values is supported by this provider",
    )


def test_essential_acr_takes_precedence_over_acr_values() -> None:
    request = AuthnRequest(acr_values=(LOA1,), essential_acr=(LOA2,))
    decision = decide(request, session(pwd=NOW - 60), POLICY, NOW)
    assert decision == Authenticate(("otp",), "step_up", L2, ())


def test_essential_acr_without_values_constrains_nothing() -> None:
    request = AuthnRequest(acr_values=(LOA2,), essential_acr=())
    decision = decide(request, session(pwd=NOW - 60), POLICY, NOW)
    assert decision == Authenticate(("otp",), "step_up", L2, ())


# --- max_age -------------------------------------------------------------------------------------


def test_max_age_exceeded_re_authenticates_every_factor_of_the_level() -> None:
    s = session(pwd=NOW - 1000, otp=NOW - 500)
    decision = decide(AuthnRequest(acr_values=(LOA2,), max_age=300), s, POLICY, NOW)
    assert decision == Authenticate(("pwd", "otp"), "max_age", L2, ())


def test_max_age_exactly_reached_is_still_within() -> None:
    s = session(pwd=NOW - 1000, otp=NOW - 300)
    decision = decide(AuthnRequest(acr_values=(LOA2,), max_age=300), s, POLICY, NOW)
    assert decision == Issue(LOA2, ("pwd", "otp", "mfa"), NOW - 300)


def test_max_age_is_measured_from_the_latest_authentication_of_the_level_issued() -> None:
    # auth_time is the OTP (NOW - 100); the hour-old password does not make it older.
    s = session(pwd=NOW - 3600, otp=NOW - 100)
    decision = decide(AuthnRequest(acr_values=(LOA1,), max_age=300), s, POLICY, NOW)
    assert decision == Issue(LOA1, ("pwd", "otp", "mfa"), NOW - 100)


def test_max_age_with_an_old_password_asks_for_both_factors_of_a_step_up() -> None:
    decision = decide(
        AuthnRequest(acr_values=(LOA2,), max_age=300), session(pwd=NOW - 3600), POLICY, NOW
    )
    assert decision == Authenticate(("pwd", "otp"), "max_age", L2, ())


def test_max_age_re_authentication_is_finished_with_every_factor() -> None:
    started = NOW - 10
    request = AuthnRequest(acr_values=(LOA2,), max_age=300, interaction_started_at=started)
    halfway = session(pwd=NOW - 5, otp=NOW - 500)
    assert decide(request, halfway, POLICY, NOW) == Authenticate(("otp",), "max_age", L2, ())
    done = session(pwd=NOW - 5, otp=NOW - 2)
    assert decide(request, done, POLICY, NOW) == Issue(LOA2, ("pwd", "otp", "mfa"), NOW - 2)


def test_max_age_zero_is_prompt_login_and_is_met_in_the_interaction() -> None:
    request = AuthnRequest(max_age=0, interaction_started_at=NOW)
    assert decide(request, session(pwd=NOW - 1), POLICY, NOW) == Authenticate(
        ("pwd",), "max_age", L1, ()
    )
    assert decide(request, session(pwd=NOW + 3), POLICY, NOW + 4) == Issue(LOA1, ("pwd",), NOW + 3)


def test_max_age_zero_is_not_met_by_a_login_just_before_the_interaction() -> None:
    request = AuthnRequest(max_age=0, interaction_started_at=NOW)
    decision = decide(request, session(pwd=NOW - 1), POLICY, NOW)
    assert isinstance(decision, Authenticate)


# --- prompt --------------------------------------------------------------------------------------


def test_prompt_login_re_authenticates_every_factor_of_the_target() -> None:
    request = AuthnRequest(
        acr_values=(LOA2,), prompt=frozenset({"login"}), interaction_started_at=NOW
    )
    s = session(pwd=NOW - 60, otp=NOW - 30)
    assert decide(request, s, POLICY, NOW) == Authenticate(("pwd", "otp"), "prompt_login", L2, ())


def test_prompt_login_asks_only_what_is_left_to_re_verify_in_this_interaction() -> None:
    request = AuthnRequest(
        acr_values=(LOA2,), prompt=frozenset({"login"}), interaction_started_at=NOW
    )
    s = session(pwd=NOW + 5, otp=NOW - 30)
    assert decide(request, s, POLICY, NOW + 6) == Authenticate(("otp",), "prompt_login", L2, ())


def test_prompt_login_is_met_by_the_re_authentication_and_auth_time_increases() -> None:
    request = AuthnRequest(prompt=frozenset({"login"}), interaction_started_at=NOW)
    before = session(pwd=NOW - 60)
    assert decide(AuthnRequest(), before, POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 60)
    after = session(pwd=NOW + 5)
    assert decide(request, after, POLICY, NOW + 5) == Issue(LOA1, ("pwd",), NOW + 5)


def test_prompt_login_without_an_interaction_start_always_asks() -> None:
    request = AuthnRequest(prompt=frozenset({"login"}))
    decision = decide(request, session(pwd=NOW), POLICY, NOW)
    assert decision == Authenticate(("pwd",), "prompt_login", L1, ())


def test_select_account_is_treated_like_login() -> None:
    request = AuthnRequest(prompt=frozenset({"select_account"}), interaction_started_at=NOW)
    decision = decide(request, session(pwd=NOW - 60), POLICY, NOW)
    assert decision == Authenticate(("pwd",), "prompt_login", L1, ())


def test_prompt_consent_and_unknown_values_need_nothing() -> None:
    request = AuthnRequest(prompt=frozenset({"consent", "x-unknown"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 60)


def test_prompt_none_with_another_value_is_an_invalid_request() -> None:
    request = AuthnRequest(prompt=frozenset({"none", "login"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Fail(
        "invalid_request", "prompt=none cannot be combined with other prompt values"
    )


def test_prompt_none_without_a_session_is_login_required() -> None:
    decision = decide(AuthnRequest(prompt=frozenset({"none"})), None, POLICY, NOW)
    assert decision == Fail("login_required", "prompt=none, but no user is signed in")


def test_prompt_none_with_a_session_issues_silently() -> None:
    request = AuthnRequest(prompt=frozenset({"none"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 60)


def test_prompt_none_never_steps_up() -> None:
    request = AuthnRequest(acr_values=(LOA2,), prompt=frozenset({"none"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Fail(
        "login_required", "prompt=none, but a step-up to urn:stepup:loa:2 is needed"
    )


def test_prompt_none_issues_the_first_requested_value_already_met() -> None:
    request = AuthnRequest(acr_values=(LOA2, OKTA_1FA), prompt=frozenset({"none"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Issue(
        OKTA_1FA, ("pwd",), NOW - 60
    )


def test_prompt_none_with_max_age_exceeded_is_login_required() -> None:
    request = AuthnRequest(max_age=60, prompt=frozenset({"none"}))
    assert decide(request, session(pwd=NOW - 61), POLICY, NOW) == Fail(
        "login_required", "prompt=none, but the last authentication is older than max_age"
    )


def test_prompt_none_with_essential_unreachable_is_unmet_not_login_required() -> None:
    s = session(pwd=NOW - 60, subject="bob", enrolled=BOB_ENROLLED)
    request = AuthnRequest(essential_acr=(LOA2,), prompt=frozenset({"none"}))
    decision = decide(request, s, POLICY, NOW, allow_enrolment=False)
    assert isinstance(decision, Fail)
    assert decision.error == "unmet_authentication_requirements"


# --- login_hint ----------------------------------------------------------------------------------


def test_login_hint_for_the_signed_in_user_changes_nothing() -> None:
    request = AuthnRequest(login_hint="alice")
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 60)


def test_login_hint_for_another_user_asks_for_a_full_login_without_enrolment() -> None:
    request = AuthnRequest(acr_values=(LOA2,), login_hint="carol", interaction_started_at=NOW)
    s = session(pwd=NOW - 60, enrolled=BOB_ENROLLED)
    assert decide(request, s, POLICY, NOW) == Authenticate(("pwd", "otp"), "login_hint", L2, ())


def test_login_hint_yields_to_the_account_the_user_signed_in_with() -> None:
    request = AuthnRequest(login_hint="carol", interaction_started_at=NOW)
    s = session(pwd=NOW + 4, subject="dave")
    assert decide(request, s, POLICY, NOW + 5) == Issue(LOA1, ("pwd",), NOW + 4)


def test_prompt_none_with_login_hint_for_another_user_is_login_required() -> None:
    request = AuthnRequest(login_hint="carol", prompt=frozenset({"none"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Fail(
        "login_required",
        "prompt=none, but the login_hint names another user than the one signed in",
    )


# --- id_token_hint (the caller passes its verified sub) ------------------------------------------


def test_id_token_hint_for_the_signed_in_user_changes_nothing() -> None:
    request = AuthnRequest(id_token_hint_subject="alice", prompt=frozenset({"none"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Issue(LOA1, ("pwd",), NOW - 60)


def test_id_token_hint_for_another_user_asks_for_a_full_login_without_enrolment() -> None:
    request = AuthnRequest(
        acr_values=(LOA2,), id_token_hint_subject="carol", interaction_started_at=NOW
    )
    s = session(pwd=NOW - 60, enrolled=BOB_ENROLLED)
    assert decide(request, s, POLICY, NOW) == Authenticate(("pwd", "otp"), "id_token_hint", L2, ())


def test_id_token_hint_does_not_yield_to_another_account_signed_in_now() -> None:
    """Unlike login_hint: §3.1.2.1 "otherwise, it SHOULD return an error, such as
    login_required" — never a code for another user than the one the ID token names."""
    request = AuthnRequest(id_token_hint_subject="carol", interaction_started_at=NOW)
    s = session(pwd=NOW + 4, subject="dave")
    assert decide(request, s, POLICY, NOW + 5) == Fail(
        "login_required", "the user who signed in is not the one id_token_hint names"
    )


def test_id_token_hint_is_met_by_the_hinted_user_signing_in_now() -> None:
    request = AuthnRequest(id_token_hint_subject="carol", interaction_started_at=NOW)
    s = session(pwd=NOW + 4, subject="carol")
    assert decide(request, s, POLICY, NOW + 5) == Issue(LOA1, ("pwd",), NOW + 4)


def test_prompt_none_with_id_token_hint_for_another_user_is_login_required() -> None:
    request = AuthnRequest(id_token_hint_subject="carol", prompt=frozenset({"none"}))
    assert decide(request, session(pwd=NOW - 60), POLICY, NOW) == Fail(
        "login_required",
        "prompt=none, but the id_token_hint names another user than the one signed in",
    )


def test_id_token_hint_wins_over_a_login_hint_for_the_signed_in_user() -> None:
    request = AuthnRequest(
        login_hint="alice", id_token_hint_subject="carol", prompt=frozenset({"none"})
    )
    decision = decide(request, session(pwd=NOW - 60), POLICY, NOW)
    assert isinstance(decision, Fail)
    assert decision.error == "login_required"


# --- what the page says --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (
            Authenticate(("otp",), "step_up", L2, ()),
            "This action needs a stronger sign-in (password and one-time code). "
            "Enter a one-time code.",
        ),
        (
            Authenticate(("otp",), "step_up", L2, ("otp",)),
            "This action needs a stronger sign-in (password and one-time code). "
            "Enter a one-time code. First set up an authenticator app for one-time codes.",
        ),
        (
            Authenticate(("pwd", "otp"), "login_required", L2, ()),
            "Sign in to continue. Enter your password and a one-time code.",
        ),
        (
            Authenticate(("otp",), "elevation_expired", L2, ()),
            "Your stronger sign-in has expired; confirm it again (password and one-time code). "
            "Enter a one-time code.",
        ),
    ],
)
def test_the_message_says_why_and_what_to_enter(decision: Authenticate, message: str) -> None:
    assert decision.message == message


def test_every_reason_has_a_message() -> None:
    for reason in REASONS:
        assert Authenticate(("pwd",), reason, L1, ()).message.endswith("Enter your password.")


# --- the worked examples of docs/step-up-semantics.md, row by row ------------------------------

MIDNIGHT = 1_699_920_000  # 2023-11-14T00:00:00Z


def at(hms: str) -> int:
    h, m, s = (int(part) for part in hms.split(":"))
    return MIDNIGHT + h * 3600 + m * 60 + s


START = at("10:00:00")
MFA = ("pwd", "otp", "mfa")


req = partial(AuthnRequest, interaction_started_at=START)


DOCUMENTED = [
    ("no session", None, req(), START, Authenticate(("pwd",), "login_required", L1)),
    (
        "no session, loa2",
        None,
        req(acr_values=(LOA2,)),
        START,
        Authenticate(("pwd", "otp"), "login_required", L2),
    ),
    ("pwd", session(pwd=at("09:58:00")), req(), START, Issue(LOA1, ("pwd",), at("09:58:00"))),
    (
        "step-up within max_age asks the otp",
        session(pwd=at("09:58:00")),
        req(acr_values=(LOA2,), max_age=300),
        START,
        Authenticate(("otp",), "step_up", L2),
    ),
    (
        "step-up done",
        session(pwd=at("09:58:00"), otp=at("10:00:07")),
        req(acr_values=(LOA2,), max_age=300),
        at("10:00:08"),
        Issue(LOA2, MFA, at("10:00:07")),
    ),
    (
        "otp 901 s old",
        session(pwd=at("09:00:00"), otp=at("09:44:59")),
        req(acr_values=(LOA2,)),
        START,
        Authenticate(("otp",), "elevation_expired", L2),
    ),
    (
        "otp 900 s old",
        session(pwd=at("09:00:00"), otp=at("09:45:00")),
        req(acr_values=(LOA2,)),
        START,
        Issue(LOA2, MFA, at("09:45:00")),
    ),
    (
        "elevation lapsed, loa1 remains",
        session(pwd=at("09:00:00"), otp=at("09:44:59")),
        req(),
        START,
        Issue(LOA1, ("pwd",), at("09:00:00")),
    ),
    (
        "max_age exceeded",
        session(pwd=at("09:43:20"), otp=at("09:51:40")),
        req(acr_values=(LOA2,), max_age=300),
        START,
        Authenticate(("pwd", "otp"), "max_age", L2),
    ),
    (
        "max_age measured from the otp",
        session(pwd=at("09:00:00"), otp=at("09:58:20")),
        req(acr_values=(LOA1,), max_age=300),
        START,
        Issue(LOA1, MFA, at("09:58:20")),
    ),
    (
        "max_age=0",
        session(pwd=at("09:59:59")),
        req(max_age=0),
        START,
        Authenticate(("pwd",), "max_age", L1),
    ),
    (
        "max_age=0 met",
        session(pwd=at("10:00:03")),
        req(max_age=0),
        at("10:00:04"),
        Issue(LOA1, ("pwd",), at("10:00:03")),
    ),
    (
        "prompt=login",
        session(pwd=at("09:59:00"), otp=at("09:59:30")),
        req(acr_values=(LOA2,), prompt=frozenset({"login"})),
        START,
        Authenticate(("pwd", "otp"), "prompt_login", L2),
    ),
    (
        "prompt=login halfway",
        session(pwd=at("10:00:05"), otp=at("09:59:30")),
        req(acr_values=(LOA2,), prompt=frozenset({"login"})),
        at("10:00:06"),
        Authenticate(("otp",), "prompt_login", L2),
    ),
    (
        "prompt=none needs a step-up",
        session(pwd=at("09:59:00")),
        req(acr_values=(LOA2,), prompt=frozenset({"none"})),
        START,
        Fail("login_required", "prompt=none, but a step-up to urn:stepup:loa:2 is needed"),
    ),
    (
        "prompt=none takes a later preference",
        session(pwd=at("09:59:00")),
        req(acr_values=(LOA2, OKTA_1FA), prompt=frozenset({"none"})),
        START,
        Issue(OKTA_1FA, ("pwd",), at("09:59:00")),
    ),
    (
        "prompt=none login",
        None,
        req(prompt=frozenset({"none", "login"})),
        START,
        Fail("invalid_request", "prompt=none cannot be combined with other prompt values"),
    ),
    (
        "alias",
        session(pwd=at("09:59:00"), otp=at("09:59:30")),
        req(acr_values=(OKTA_2FA,)),
        START,
        Issue(OKTA_2FA, MFA, at("09:59:30")),
    ),
    (
        "bob enrols",
        session(pwd=at("09:59:00"), subject="bob", enrolled=BOB_ENROLLED),
        req(acr_values=(LOA2,)),
        START,
        Authenticate(("otp",), "step_up", L2, ("otp",)),
    ),
    (
        "login_hint",
        session(pwd=at("09:59:00")),
        req(login_hint="carol"),
        START,
        Authenticate(("pwd",), "login_hint", L1),
    ),
]


@pytest.mark.parametrize(
    ("s", "request_", "now", "expected"),
    [row[1:] for row in DOCUMENTED],
    ids=[str(row[0]) for row in DOCUMENTED],
)
def test_documented_example(
    s: SessionState | None, request_: AuthnRequest, now: int, expected: object
) -> None:
    assert decide(request_, s, POLICY, now) == expected


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (req(acr_values=(LOA2,)), Issue(LOA1, ("pwd",), at("09:59:00"))),
        (
            req(essential_acr=(LOA2,)),
            Fail(
                "unmet_authentication_requirements",
                "the user has no one-time code set up, and enrolment is turned off",
            ),
        ),
    ],
    ids=["voluntary falls back", "essential is unmet"],
)
def test_documented_example_with_enrolment_off(request_: AuthnRequest, expected: object) -> None:
    bob = session(pwd=at("09:59:00"), subject="bob", enrolled=BOB_ENROLLED)
    assert decide(request_, bob, POLICY, START, allow_enrolment=False) == expected


@pytest.mark.parametrize(
    ("factors", "amr"),
    [
        (("pwd",), ("pwd",)),
        (("otp", "pwd"), ("pwd", "otp", "mfa")),
        (("pwd", "otp", "mfa"), ("pwd", "otp", "mfa")),
        (("pwd", "pwd"), ("pwd",)),
        (("hwk", "pwd"), ("pwd", "hwk", "mfa")),
    ],
)
def test_amr_names_each_factor_once_and_mfa_when_several(
    factors: tuple[str, ...], amr: tuple[str, ...]
) -> None:
    assert amr_for(factors) == amr
