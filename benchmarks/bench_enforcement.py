"""Throughput of one endpoint, bare and behind step-up enforcement, under gunicorn, in one run.

    .venv/bin/python benchmarks/bench_enforcement.py [--seconds 3] [--rounds 3] [--clients 2]

The same Flask app serves ``GET /bare`` (no token) and ``GET /protected`` (Bearer token validated:
RS256 signature, RFC 9068 claims, an ``acr``/``max_age`` requirement). Both return the same small
JSON body. Load comes from ``--clients`` processes opening a fresh connection per request
(gunicorn's sync worker closes it anyway). Each round measures both endpoints back to back (in
alternating order), so that load from elsewhere on the machine hits both alike; the figure is the
median of the per-round ratios protected / bare (target: >= 0.90). No provider is needed: the JWKS
is handed to the validator through a file.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ISSUER = "https://op.bench"
AUDIENCE = "https://bank.example/api"
LOA2 = "urn:stepup:loa:2"


def app_factory() -> Any:
    """What gunicorn serves: ``benchmarks.bench_enforcement:app_factory()``."""
    from flask import Flask, jsonify

    from resource_api import JwtAccessTokenValidator, StepUp

    jwks = json.loads(Path(os.environ["BENCH_JWKS_FILE"]).read_text())
    app = Flask("bench")
    validator = JwtAccessTokenValidator(
        ISSUER, AUDIENCE, jwks_uri=f"{ISSUER}/jwks", fetch=lambda url: jwks
    )
    step_up = StepUp(app, validator=validator, acr_order=["urn:stepup:loa:1", LOA2])

    def payload() -> Any:
        return jsonify(accounts=[{"id": "acc_1", "balance": "2500.00"}])

    @app.get("/bare")
    @step_up.public
    def bare() -> Any:
        return payload()

    @app.get("/protected")
    @step_up.require(acr_values=[LOA2], max_age=3600)
    def protected() -> Any:
        return payload()

    return app


def _client(port: int, path: str, token: str, seconds: float, out: Any) -> None:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    done, errors = 0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(request)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        if b" 200 " in chunks[0][:16]:
            done += 1
        else:
            errors += 1
    out.put((done, errors))


def measure(port: int, path: str, token: str, seconds: float, clients: int) -> float:
    queue: Any = mp.Queue()
    procs = [mp.Process(target=_client, args=(port, path, token, seconds, queue))
             for _ in range(clients)]  # fmt: skip
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    if errors:
        raise SystemExit(f"{path}: {errors} non-200 answers; the benchmark is not measuring")
    return done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds (each measures both)")
    parser.add_argument("--clients", type=int, default=2, help="load-generating processes")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn sync workers")
    args = parser.parse_args()

    from joserfc import jws
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "bench"}, auto_kid=False)
    now = int(time.time())
    token = jws.serialize_compact(
        {"alg": "RS256", "typ": "at+jwt", "kid": "bench"},
        json.dumps({
            "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "client_id": "bench", "iat": now,
            "exp": now + 3600, "jti": "j1", "scope": "openid", "acr": LOA2,
            "amr": ["pwd", "otp"], "auth_time": now,
        }),
        key,
    )  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        jwks_file = Path(tmp) / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False, alg="RS256")]}))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "BENCH_JWKS_FILE": str(jwks_file), "PYTHONPATH": str(root)}
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = subprocess.Popen(
            [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "sync", "--log-level", "warning",
             "benchmarks.bench_enforcement:app_factory()"],
            cwd=root, env=env,
        )  # fmt: skip
        try:
            for _ in range(100):
                if server.poll() is not None:
                    raise SystemExit("gunicorn did not start")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            measure(port, "/protected", token, 0.5, args.clients)  # warm-up (JWKS load, imports)
            measure(port, "/bare", token, 0.5, args.clients)
            bare, protected, ratios = [], [], []
            for i in range(args.rounds):
                order = ["/bare", "/protected"] if i % 2 == 0 else ["/protected", "/bare"]
                rps = {path: measure(port, path, token, args.seconds, args.clients)
                       for path in order}  # fmt: skip
                bare.append(rps["/bare"])
                protected.append(rps["/protected"])
                ratios.append(rps["/protected"] / rps["/bare"])
        finally:
            server.terminate()
            server.wait(timeout=10)

    b, p = statistics.median(bare), statistics.median(protected)
    python = sys.version.split()[0]
    print(f"gunicorn sync x{args.workers}, {args.clients} client processes, "
          f"{args.rounds} x {args.seconds:g} s rounds, Python {python}")  # fmt: skip
    print(f"bare       {b:8.0f} req/s   rounds: {', '.join(f'{x:.0f}' for x in bare)}")
    print(f"protected  {p:8.0f} req/s   rounds: {', '.join(f'{x:.0f}' for x in protected)}")
    print(f"ratio protected/bare: {statistics.median(ratios):.3f}  (median of per-round ratios; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}; target >= 0.90)")  # fmt: skip


if __name__ == "__main__":
    main()
