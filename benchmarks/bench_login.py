"""What a password login costs, against the argon2id verification it must compute, in one run.

    .venv/bin/python benchmarks/bench_login.py [--rounds 9] [--logins 10]

The provider runs in process (its WSGI app, no server) on an SQLite file. Each login is the POST of
the password page of a fresh authorization request (``acr_values`` loa1, so that POST ends the
login), and the request its redirect leads to, which answers with the code: throttle check, user
lookup, argon2id verification, the new login session, the policy decision, the authorization
code. Its CPU time is compared with one ``verify_password`` of the same hash. Rounds alternate
the two measurements; the figure is the median of the per-round ratios login / argon2 (target:
<= 1.25). CPU time (not wall time) keeps other load on the machine out of the figure.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIRECT = "http://127.0.0.1:8765/callback"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FORM = re.compile(r'<form[^>]*action="([^"]+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--logins", type=int, default=10, help="logins (and hashes) per round")
    parser.add_argument("--profile", action="store_true", help="profile the logins instead")
    args = parser.parse_args()

    from provider import create_app
    from provider.factors.password import verify_password
    from provider.models import User
    from stepup.cli import sandbox_config

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(sandbox_config(), database_url=f"sqlite:///{tmp}/stepup.db")
        op = app.extensions["stepup_provider"]
        with op.db.session() as s:
            stored = s.query(User).filter_by(username="alice").one().password_hash

        def password_page() -> tuple[object, str, dict[str, str]]:
            http = app.test_client()
            verifier = "v" * 43
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            query = urlencode({
                "response_type": "code", "client_id": "bank-cli", "redirect_uri": REDIRECT,
                "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
                "code_challenge_method": "S256", "acr_values": "urn:stepup:loa:1",
            })  # fmt: skip
            response = http.get(f"/authorize?{query}", follow_redirects=True)
            html = response.get_data(as_text=True)
            csrf = CSRF.search(html)
            action = FORM.search(html)
            assert csrf is not None, html[:500]
            assert action is not None, html[:500]
            names = dict(re.findall(r'name="([^"]+)"[^>]*autocomplete="([^"]+)"', html))
            fields = {token: name for name, token in names.items()}
            data = {
                "csrf_token": csrf.group(1), "action": "continue",
                fields["username"]: "alice", fields["current-password"]: "wonderland",
            }  # fmt: skip
            return http, action.group(1), data

        def logins(n: int) -> float:
            pages = [password_page() for _ in range(n)]  # not timed: the login page itself
            t0 = time.process_time()
            for http, action, data in pages:
                response = http.post(action, data=data)  # type: ignore[attr-defined]
                while response.location.startswith("/"):  # back to the interaction, then out
                    response = http.get(response.location)  # type: ignore[attr-defined]
                assert response.location.startswith(f"{REDIRECT}?code="), response.location
            return (time.process_time() - t0) / n

        def hashes(n: int) -> float:
            t0 = time.process_time()
            for _ in range(n):
                assert verify_password(stored, "wonderland")
            return (time.process_time() - t0) / n

        logins(2)  # warm-up
        hashes(2)
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(logins, args.logins)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            return
        login_ms, hash_ms, ratios = [], [], []
        for i in range(args.rounds):
            if i % 2:
                h, lg = hashes(args.logins), logins(args.logins)
            else:
                lg, h = logins(args.logins), hashes(args.logins)
            login_ms.append(lg * 1000)
            hash_ms.append(h * 1000)
            ratios.append(lg / h)

    print(f"{args.rounds} rounds x {args.logins}; Python {sys.version.split()[0]}; CPU time")
    print(f"password login  {statistics.median(login_ms):7.1f} ms   rounds: "
          f"{', '.join(f'{x:.1f}' for x in login_ms)}")  # fmt: skip
    print(f"argon2id verify {statistics.median(hash_ms):7.1f} ms   rounds: "
          f"{', '.join(f'{x:.1f}' for x in hash_ms)}")  # fmt: skip
    print(f"ratio login/argon2: {statistics.median(ratios):.3f}  (median of per-round ratios; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}; target <= 1.25)")  # fmt: skip


if __name__ == "__main__":
    main()
