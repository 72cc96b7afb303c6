"""What one token costs the provider's own code, per grant, in process: for comparing versions.

    .venv/bin/python benchmarks/bench_token_inprocess.py [--grants ...] [--tokens 300]
    .venv/bin/python benchmarks/bench_token_inprocess.py --instructions      # needs valgrind
    .venv/bin/python benchmarks/bench_token_inprocess.py --profile authorization_code

The provider's WSGI app is called directly, the way a server calls it, with a request environ
built beforehand (no server, no sockets, no load generator), on an SQLite file, with the same
client, key and grants as ``bench_token_endpoint.py`` (whose codes and refresh tokens it mints the
same way). It prints the CPU time per token; with ``--instructions``, the instructions per token
counted by callgrind, which do not change with the load on the machine — the figure to compare
two versions of the token endpoint by on a busy machine. The side-by-side comparison with
node-oidc-provider is ``bench_token_endpoint.py``'s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import bench_token_endpoint as peer_bench  # noqa: E402  (the same client, config and minting)

GRANTS = peer_bench.GRANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grants", nargs="+", choices=GRANTS, default=list(GRANTS))
    parser.add_argument("--tokens", type=int, default=300, help="tokens measured per grant")
    parser.add_argument("--instructions", action="store_true", help="count instructions")
    parser.add_argument("--profile", choices=GRANTS, help="cProfile one grant instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instructions and not args.child:
        import instructions

        argv = ["--instructions", "--child", "--tokens", str(args.tokens), "--grants", *args.grants]
        totals, _ = instructions.run(__file__, argv)
        print(f"instructions per token, in process (the WSGI call), {args.tokens} tokens per grant")
        for grant, total in zip(args.grants, totals, strict=True):
            print(f"  {grant:20s} {total / args.tokens:12,.0f}")
        return

    with tempfile.TemporaryDirectory() as tmp:
        app = _app(Path(tmp))
        if args.profile:
            _profile(app, args.profile, args.tokens)
            return
        if not args.child:
            print(f"CPU per token, in process (the WSGI call), {args.tokens} tokens per grant")
        for grant in args.grants:
            calls = _requests(app, grant, args.tokens + 50)
            for call in calls[:50]:  # warm-up: caches, compiled statements
                call()
            measured = calls[50:]
            if args.child:
                import instructions

                with instructions.region():
                    for call in measured:
                        call()
                continue
            t0 = time.process_time()
            for call in measured:
                call()
            per_token = (time.process_time() - t0) / len(measured)
            print(f"  {grant:20s} {per_token * 1000:8.3f} ms")


def _app(folder: Path) -> Any:
    from provider import create_app
    from stepup.config import load_config

    config = folder / "stepup.toml"
    config.write_text(peer_bench.CONFIG.format(port=9999))
    url = f"sqlite:///{folder}/stepup.db"
    app = create_app(load_config(config), database_url=url)
    app.config["BENCH_DATABASE_URL"] = url
    return app


def _requests(app: Any, grant: str, n: int) -> list[Callable[[], None]]:
    """``n`` token requests for ``grant``, each a call of the app with its own environ."""
    from werkzeug.test import EnvironBuilder

    if grant == "client_credentials":
        bodies: Iterable[str] = [f"grant_type=client_credentials&scope={peer_bench.SCOPE}"] * n
    else:
        bodies = peer_bench.mint_stepup(app.config["BENCH_DATABASE_URL"], grant, n)
    calls = []
    for body in bodies:
        environ = EnvironBuilder(
            path="/token",
            method="POST",
            data=body.encode(),
            content_type="application/x-www-form-urlencoded",
            headers=[("Authorization", peer_bench.BASIC)],
        ).get_environ()
        calls.append(_caller(app, environ))
    return calls


def _caller(app: Any, environ: dict[str, Any]) -> Callable[[], None]:
    def call() -> None:
        statuses: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return lambda data: None

        body = b"".join(app(environ, start_response))
        if not statuses[0].startswith("200"):
            raise SystemExit(f"the token endpoint answered {statuses[0]}: {body[:300]!r}")

    return call


def _profile(app: Any, grant: str, n: int) -> None:
    import cProfile
    import pstats

    calls = _requests(app, grant, n + 50)
    for call in calls[:50]:
        call()
    profile = cProfile.Profile()
    profile.enable()
    for call in calls[50:]:
        call()
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
