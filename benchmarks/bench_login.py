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
from typing import Any
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
    parser.add_argument(
        "--profile", action="store_true", help="profile the logins' timed WSGI calls instead"
    )
    parser.add_argument("--sort", default="tottime", help="with --profile: pstats sort key")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the instructions of the login's own work (the argon2id verification left "
        "out) under callgrind: steady on a busy machine, for comparing two versions",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--top", type=int, default=25, help="with --profile: lines to print")
    args = parser.parse_args()
    if args.instructions and not args.child:
        import instructions

        totals, _ = instructions.run(__file__, ["--instructions", "--child", "--logins",
                                                str(args.logins)])  # fmt: skip
        per_login = totals[0] / args.logins
        print(f"instructions per login, the argon2id verification left out: {per_login:,.0f}")
        return

    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Response

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

        def request(http: Any, method: str, path: str, data: dict[str, str] | None) -> Any:
            """The environ of a browser's request, built and given its cookies untimed: what
            is timed is the provider's own work, the WSGI call, as a server would make it."""
            environ = EnvironBuilder(path=path, method=method, data=data).get_environ()
            http._add_cookies_to_wsgi(environ)
            return environ

        profile: Any = None  # with --profile: a cProfile.Profile enabled around the WSGI calls

        def served(http: Any, environ: Any) -> tuple[float, str]:
            """CPU seconds of one WSGI call and the ``Location`` it answered."""
            status_headers: list[Any] = []

            def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                status_headers.append(headers)
                return lambda data: None

            if profile is not None:
                profile.enable()
            t0 = time.process_time()
            body = app(environ, start_response)
            b"".join(body)
            elapsed = time.process_time() - t0
            if profile is not None:
                profile.disable()
            headers = dict(status_headers[0])
            if "Set-Cookie" in headers:  # keep the session, as the browser would
                response = Response(status=303, headers=status_headers[0])
                http._update_cookies_from_response(
                    "localhost", "/", response.headers.getlist("Set-Cookie")
                )
            return elapsed, headers.get("Location", "")

        def logins(n: int) -> float:
            pages = [password_page() for _ in range(n)]  # not timed: the login page itself
            total = 0.0
            for http, action, data in pages:
                elapsed, location = served(http, request(http, "POST", action, data))
                total += elapsed
                while location.startswith("/"):  # back to the interaction, then out
                    elapsed, location = served(http, request(http, "GET", location, None))
                    total += elapsed
                assert location.startswith(f"{REDIRECT}?code="), location
            return total / n

        def hashes(n: int) -> float:
            t0 = time.process_time()
            for _ in range(n):
                assert verify_password(stored, "wonderland")
            return (time.process_time() - t0) / n

        logins(2)  # warm-up
        hashes(2)
        if args.child:  # under callgrind: the login's own work, argon2id replaced by a no-op
            import instructions

            from provider.factors import password

            password.verify_password = lambda stored_hash, password: True
            logins(3)
            pages = [password_page() for _ in range(args.logins)]
            environs = [(http, request(http, "POST", action, data)) for http, action, data in pages]
            with instructions.region():
                for http, environ in environs:
                    served(http, environ)
            return
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()  # the timed WSGI calls only, not the login pages
            logins(args.logins)
            pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
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
