"""The payroll API's step-up rules, with tokens minted by the sandbox and its clock moved."""

import pytest
from payroll.app import LOA1, LOA2, create_app


@pytest.fixture
def api(stepup_sandbox):
    # The app trusts the sandbox's issuer and reads the sandbox's clock, so advance_clock
    # moves the app's "now" along with the provider's.
    return create_app(stepup_sandbox.issuer, clock=stepup_sandbox.clock).test_client()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_payslips_need_any_valid_token(api, stepup_sandbox):
    assert api.get("/payslips").status_code == 401
    token = stepup_sandbox.mint_token("carla", acr=LOA1)
    assert api.get("/payslips", headers=bearer(token)).status_code == 200


def test_a_payout_with_a_password_only_token_is_challenged(api, stepup_sandbox):
    response = api.post("/payouts", headers=bearer(stepup_sandbox.mint_token("carla", acr=LOA1)))
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert 'acr_values="urn:stepup:loa:2", max_age=300' in challenge


def test_a_payout_with_a_fresh_second_factor_is_paid(api, stepup_sandbox):
    token = stepup_sandbox.mint_token("carla", acr=LOA2)
    response = api.post("/payouts", headers=bearer(token))
    assert (response.status_code, response.json) == (201, {"paid": True, "acr": LOA2})


def test_a_login_older_than_five_minutes_is_challenged(api, stepup_sandbox):
    assert api.post("/payouts", headers=bearer(stepup_sandbox.mint_token(
        "carla", acr=LOA2, auth_time=-400))).status_code == 401  # fmt: skip


def test_the_clock_ages_a_login_past_max_age(api, stepup_sandbox):
    token = stepup_sandbox.mint_token("carla", acr=LOA2)
    assert api.post("/payouts", headers=bearer(token)).status_code == 201
    stepup_sandbox.advance_clock(301)
    assert api.post("/payouts", headers=bearer(token)).status_code == 401
