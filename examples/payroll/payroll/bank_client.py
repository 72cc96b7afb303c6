"""Pays salaries through a bank API with plain requests. When the bank asks for a stronger
login (RFC 9470), it says so with an exception the caller can act on."""

from __future__ import annotations

from typing import Any

import requests

from client_sdk import StepUpChallenge, parse_www_authenticate


class StepUpNeeded(Exception):
    def __init__(self, challenge: StepUpChallenge) -> None:
        super().__init__(
            f"the bank wants acr_values={challenge.acr_values}, max_age={challenge.max_age}"
        )
        self.challenge = challenge


class BankClient:
    def __init__(self, api_url: str, session: requests.Session) -> None:
        self.api_url = api_url
        self.http = session

    def accounts(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.api_url}/accounts", timeout=30)
        response.raise_for_status()
        return list(response.json()["accounts"])

    def pay(self, from_account: str, to_account: str, amount: str) -> dict[str, Any]:
        body = {"from_account": from_account, "to_account": to_account, "amount": amount}
        response = self.http.post(f"{self.api_url}/transfers", json=body, timeout=30)
        if response.status_code == 401:
            for c in parse_www_authenticate(response.headers.get("WWW-Authenticate", "")):
                challenge = StepUpChallenge.from_challenge(c)
                if challenge is not None:
                    raise StepUpNeeded(challenge)
        response.raise_for_status()
        return dict(response.json())
