"""The plain requests client against the sandbox's demo bank API."""

import pytest
import requests
from payroll.bank_client import BankClient, StepUpNeeded


def test_a_weak_token_makes_the_client_ask_for_a_step_up(stepup_sandbox):
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + stepup_sandbox.mint_token("carla")
    bank = BankClient(stepup_sandbox.api_url, session)
    a, b = bank.accounts()[:2]
    with pytest.raises(StepUpNeeded) as raised:
        bank.pay(a["id"], b["id"], "10.00")
    assert raised.value.challenge.acr_values == ["urn:stepup:loa:2"]
    assert raised.value.challenge.max_age == 300


def test_with_the_sandbox_session_the_payment_steps_up_and_goes_through(stepup_sandbox):
    # stepup_sandbox.session() signs carla in through the real login pages and steps up.
    bank = BankClient(stepup_sandbox.api_url, stepup_sandbox.session("carla"))
    a, b = bank.accounts()[:2]
    paid = bank.pay(a["id"], b["id"], "10.00")
    assert paid["authorized_with"]["acr"] == "urn:stepup:loa:2"
