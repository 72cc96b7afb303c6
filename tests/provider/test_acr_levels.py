"""provider.acr: configured levels, aliases, ordering, and which factors an elevation bounds."""

from __future__ import annotations

import dataclasses

import pytest

from provider import acr
from provider.acr import AcrLevel, AcrPolicy
from provider.settings import AcrLevelConfig, SettingsError

LOA1 = "urn:stepup:loa:1"
LOA2 = "urn:stepup:loa:2"
PAPE_MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
OKTA_1FA = "urn:okta:loa:1fa:any"
OKTA_2FA = "urn:okta:loa:2fa:any"

SANDBOX = (
    AcrLevelConfig(LOA1, ("pwd",), aliases=(OKTA_1FA,), description="password"),
    AcrLevelConfig(
        LOA2,
        ("pwd", "otp"),
        aliases=(OKTA_2FA, PAPE_MFA),
        elevation_lifetime=900,
        description="password and one-time code",
    ),
)


@pytest.fixture
def policy() -> AcrPolicy:
    return AcrPolicy(SANDBOX)


def test_public_names_are_pinned() -> None:
    assert acr.__all__ == ["FACTOR_ORDER", "PASSKEY_QUALIFIERS", "AcrLevel", "AcrPolicy"]


def test_levels_are_ranked_weakest_first_with_their_config(policy: AcrPolicy) -> None:
    assert policy.levels == (
        AcrLevel(LOA1, ("pwd",), (OKTA_1FA,), None, "password", 0),
        AcrLevel(LOA2, ("pwd", "otp"), (OKTA_2FA, PAPE_MFA), 900, "password and one-time code", 1),
    )
    assert policy.weakest.value == LOA1


def test_level_is_immutable(policy: AcrPolicy) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.weakest.rank = 5  # type: ignore[misc]


def test_resolve_finds_canonical_values_and_aliases(policy: AcrPolicy) -> None:
    assert policy.resolve(LOA1) is policy.levels[0]
    assert policy.resolve(OKTA_1FA) is policy.levels[0]
    assert policy.resolve(LOA2) is policy.levels[1]
    assert policy.resolve(OKTA_2FA) is policy.levels[1]
    assert policy.resolve(PAPE_MFA) is policy.levels[1]


def test_resolve_answers_none_for_unknown_values(policy: AcrPolicy) -> None:
    assert policy.resolve("urn:stepup:loa:3") is None
    assert policy.resolve("") is None
    assert policy.resolve(LOA1.upper()) is None  # acr values are case-sensitive strings


def test_a_higher_level_satisfies_a_lower_one_and_its_aliases(policy: AcrPolicy) -> None:
    loa1, loa2 = policy.levels
    assert policy.satisfies(loa2, LOA1)
    assert policy.satisfies(loa2, OKTA_1FA)
    assert policy.satisfies(loa2, LOA2)
    assert policy.satisfies(loa2, PAPE_MFA)
    assert policy.satisfies(loa1, LOA1)
    assert policy.satisfies(loa1, OKTA_1FA)


def test_a_lower_level_does_not_satisfy_a_higher_one(policy: AcrPolicy) -> None:
    loa1, _ = policy.levels
    assert not policy.satisfies(loa1, LOA2)
    assert not policy.satisfies(loa1, OKTA_2FA)
    assert not policy.satisfies(loa1, PAPE_MFA)


def test_unknown_values_are_satisfied_by_nothing(policy: AcrPolicy) -> None:
    assert not policy.satisfies(policy.levels[1], "urn:example:gold")


def test_values_supported_lists_canonical_values_then_aliases(policy: AcrPolicy) -> None:
    assert policy.values_supported == [LOA1, LOA2, OKTA_1FA, OKTA_2FA, PAPE_MFA]


def test_level_for_gives_the_strongest_level_the_factors_allow(policy: AcrPolicy) -> None:
    assert policy.level_for({"pwd"}) is policy.levels[0]
    assert policy.level_for(["otp", "pwd"]) is policy.levels[1]
    assert policy.level_for({"otp"}) is None
    assert policy.level_for(set()) is None


def test_factors_are_put_in_prompt_order_whatever_the_config_order() -> None:
    policy = AcrPolicy([AcrLevelConfig(LOA2, ("otp", "pwd"))])
    assert policy.weakest.factors == ("pwd", "otp")


def test_no_levels_is_a_config_error() -> None:
    with pytest.raises(SettingsError, match="at least one level"):
        AcrPolicy([])


def test_a_value_used_twice_is_a_config_error() -> None:
    with pytest.raises(SettingsError, match="'urn:stepup:loa:1' appears twice"):
        AcrPolicy([AcrLevelConfig(LOA1, ("pwd",)), AcrLevelConfig(LOA2, ("pwd",), aliases=(LOA1,))])


def test_an_unknown_factor_is_a_config_error() -> None:
    with pytest.raises(SettingsError, match="unknown factor"):
        AcrPolicy([AcrLevelConfig(LOA1, ("pwd", "sms"))])


def test_an_elevation_lifetime_bounds_the_factors_the_level_adds(policy: AcrPolicy) -> None:
    loa1, loa2 = policy.levels
    assert policy.factor_lifetime(loa2, "otp") == 900
    # The password keeps the session at loa1 after the OTP elevation lapses.
    assert policy.factor_lifetime(loa2, "pwd") is None
    assert policy.factor_lifetime(loa1, "pwd") is None


def test_a_weaker_levels_lifetime_still_bounds_its_factors_higher_up() -> None:
    policy = AcrPolicy(
        [
            AcrLevelConfig(LOA1, ("pwd",), elevation_lifetime=3600),
            AcrLevelConfig(LOA2, ("pwd", "otp"), elevation_lifetime=900),
        ]
    )
    loa1, loa2 = policy.levels
    assert policy.factor_lifetime(loa1, "pwd") == 3600
    assert policy.factor_lifetime(loa2, "pwd") == 3600
    assert policy.factor_lifetime(loa2, "otp") == 900


def test_a_level_adding_no_factor_bounds_all_of_its_factors() -> None:
    policy = AcrPolicy(
        [
            AcrLevelConfig(LOA1, ("pwd", "otp")),
            AcrLevelConfig("urn:stepup:recent-mfa", ("pwd", "otp"), elevation_lifetime=300),
        ]
    )
    recent = policy.levels[1]
    assert policy.factor_lifetime(recent, "pwd") == 300
    assert policy.factor_lifetime(recent, "otp") == 300
    assert policy.factor_lifetime(policy.levels[0], "otp") is None


def test_a_factor_is_fresh_up_to_exactly_its_lifetime(policy: AcrPolicy) -> None:
    loa2 = policy.levels[1]
    assert policy.is_fresh(loa2, "otp", verified_at=1000, now=1900)
    assert not policy.is_fresh(loa2, "otp", verified_at=1000, now=1901)
    assert policy.is_fresh(loa2, "pwd", verified_at=0, now=10**9)


def test_level_reached_falls_back_when_the_elevation_lapses(policy: AcrPolicy) -> None:
    verified = {"pwd": 1000, "otp": 1000}
    assert policy.level_reached(verified, now=1900) is policy.levels[1]
    assert policy.level_reached(verified, now=1901) is policy.levels[0]
    assert policy.level_reached({"otp": 1000}, now=1000) is None
    assert policy.level_reached({}, now=1000) is None
