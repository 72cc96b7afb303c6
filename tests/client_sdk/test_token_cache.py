"""The per-requirement token cache: what a token satisfies, and single-flight fetching."""

from __future__ import annotations

import threading

from client_sdk.protocol import Requirement
from client_sdk.tokens import TokenCache, TokenSet

NOW = 1_700_000_000.0
LOA2 = Requirement(("urn:stepup:loa:2",), 300)


def token(name: str, acr: str = "urn:stepup:loa:2", auth_time: float = NOW - 10) -> TokenSet:
    return TokenSet(name, expires_at=NOW + 3600, claims={"acr": acr, "auth_time": auth_time})


def test_satisfies_checks_acr_max_age_and_expiry() -> None:
    assert token("a").satisfies(LOA2, NOW)
    assert not token("a", acr="urn:stepup:loa:1").satisfies(LOA2, NOW)
    assert token("a", auth_time=NOW - 300).satisfies(LOA2, NOW)
    assert not token("a", auth_time=NOW - 301).satisfies(LOA2, NOW)
    assert not token("a").satisfies(LOA2, NOW + 3600 - 30)  # within the expiry margin
    assert token("a").satisfies(Requirement(), NOW + 3600 - 31)
    assert not TokenSet("b").satisfies(Requirement(("x",)), NOW)
    assert not TokenSet("b", claims={"acr": "x"}).satisfies(Requirement(max_age=5), NOW)


def test_tokens_are_kept_per_requirement() -> None:
    cache = TokenCache()
    everyday, stepped = token("e", acr="urn:stepup:loa:1"), token("s")
    cache.put(Requirement(), everyday)
    cache.put(LOA2, stepped)
    assert cache.get(Requirement()) is everyday
    assert cache.get(LOA2) is stepped
    assert cache.find(LOA2, NOW) is stepped
    assert cache.find(Requirement(("urn:stepup:loa:1",)), NOW) is everyday
    assert cache.find(LOA2, NOW + 400) is None  # auth_time too old for max_age
    cache.discard(LOA2, token("other"))
    assert cache.get(LOA2) is stepped  # only the same token is discarded
    cache.discard(LOA2, stepped)
    assert cache.get(LOA2) is None
    assert cache.items() == [(Requirement(), everyday)]


def test_obtain_reuses_an_acceptable_token_without_fetching() -> None:
    cache = TokenCache()
    cache.put(LOA2, token("s"))
    fetched: list[str] = []
    got = cache.obtain(LOA2, reuse=lambda t: True, fetch=lambda: fetched.append("x") or None)
    assert got is not None
    assert got.access_token == "s"
    assert fetched == []


def test_obtain_does_not_cache_a_failed_fetch() -> None:
    cache = TokenCache()
    assert cache.obtain(LOA2, reuse=lambda t: True, fetch=lambda: None) is None
    assert cache.get(LOA2) is None


def test_concurrent_callers_share_one_fetch() -> None:
    cache = TokenCache()
    rejected = token("old", acr="urn:stepup:loa:1")
    callers = 8
    everyone_waiting = threading.Barrier(callers + 1)
    release = threading.Event()
    fetches: list[str] = []
    results: list[str] = []

    def fetch() -> TokenSet:
        fetches.append("step-up")
        release.wait(timeout=10)  # hold the flight until every caller is queued on it
        return token("new")

    def caller() -> None:
        everyone_waiting.wait(timeout=10)
        got = cache.obtain(
            LOA2,
            reuse=lambda t: t.access_token != rejected.access_token and t.satisfies(LOA2, NOW),
            fetch=fetch,
        )
        assert got is not None
        results.append(got.access_token)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    everyone_waiting.wait(timeout=10)
    release.set()
    for t in threads:
        t.join(timeout=10)
    assert fetches == ["step-up"]
    assert results == ["new"] * callers


# --- a transaction's approval: handed out once ---------------------------------------------------

PAYMENT = Requirement(
    ("urn:stepup:loa:2",), 300,
    authorization_details='[{"amount":"1500.00","currency":"EUR","payee":"acc_b","type":"payment"}]',
)  # fmt: skip


def approval(name: str) -> TokenSet:
    return TokenSet(
        name, expires_at=NOW + 3600, requirement=PAYMENT,
        claims={"acr": "urn:stepup:loa:2", "auth_time": NOW - 10},
    )  # fmt: skip


def test_only_a_requirement_naming_a_transaction_is_single_use() -> None:
    assert PAYMENT.single_use
    assert not LOA2.single_use
    assert not Requirement().single_use
    assert not Requirement(claims='{"id_token":{"acr":{"essential":true}}}').single_use


def test_an_approval_put_in_the_cache_is_handed_out_once() -> None:
    """The web app's way: the callback puts the approval in the cache, the retried request's
    step-up takes it; the next identical payment fetches (asks the user) again."""
    cache = TokenCache()
    cache.put(PAYMENT, approval("approved-on-the-callback"))
    fetched: list[str] = []

    def fetch() -> TokenSet:
        fetched.append("approval")
        return approval(f"approval-{len(fetched)}")

    first = cache.obtain(PAYMENT, reuse=lambda t: t.satisfies(PAYMENT, NOW), fetch=fetch)
    assert first is not None
    assert (first.access_token, fetched) == ("approved-on-the-callback", [])
    assert cache.get(PAYMENT) is None  # it left the cache as it was handed out
    second = cache.obtain(PAYMENT, reuse=lambda t: t.satisfies(PAYMENT, NOW), fetch=fetch)
    assert second is not None
    assert (second.access_token, fetched) == ("approval-1", ["approval"])
    assert cache.get(PAYMENT) is None  # a fetched approval is not kept either
    third = cache.obtain(PAYMENT, reuse=lambda t: t.satisfies(PAYMENT, NOW), fetch=fetch)
    assert third is not None
    assert (third.access_token, fetched) == ("approval-2", ["approval", "approval"])


def test_an_approval_the_caller_refuses_is_dropped() -> None:
    cache = TokenCache()
    cache.put(PAYMENT, approval("too-old"))
    got = cache.obtain(PAYMENT, reuse=lambda t: False, fetch=lambda: approval("new"))
    assert got is not None
    assert got.access_token == "new"
    assert cache.items() == []


def test_find_never_returns_an_approval() -> None:
    """An approval meets a plain level-2 requirement by its claims, but it is for its
    transaction's request only; nor does find hand it out for its own requirement (only obtain
    does, once)."""
    cache = TokenCache()
    cache.put(PAYMENT, approval("approved"))
    assert approval("approved").satisfies(LOA2, NOW)
    assert cache.find(LOA2, NOW) is None
    assert cache.find(PAYMENT, NOW) is None
    stepped = token("s")
    cache.put(LOA2, stepped)
    assert cache.find(LOA2, NOW) is stepped
    assert cache.get(PAYMENT) is not None  # still there for the obtain of its transaction
    cache.discard(LOA2)
    cache.put(Requirement(), approval("misfiled"))  # under another key, still an approval
    assert cache.find(LOA2, NOW) is None


def test_concurrent_callers_of_one_transaction_each_get_their_own_approval() -> None:
    """Two identical payments at once are two payments: the second waits for the first's
    approval (single flight), then asks for its own rather than sharing it."""
    cache = TokenCache()
    callers = 4
    everyone_waiting = threading.Barrier(callers + 1)
    lock = threading.Lock()
    fetches: list[str] = []
    results: list[str] = []

    def fetch() -> TokenSet:
        with lock:
            fetches.append("approval")
            return approval(f"approval-{len(fetches)}")

    def caller() -> None:
        everyone_waiting.wait(timeout=10)
        got = cache.obtain(PAYMENT, reuse=lambda t: t.satisfies(PAYMENT, NOW), fetch=fetch)
        assert got is not None
        with lock:
            results.append(got.access_token)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    everyone_waiting.wait(timeout=10)
    for t in threads:
        t.join(timeout=10)
    assert len(fetches) == callers
    assert sorted(results) == [f"approval-{i}" for i in range(1, callers + 1)]
    assert cache.items() == []
