"""Throughput of one endpoint, bare and behind step-up enforcement, under gunicorn, in one run.

    .venv/bin/python benchmarks/bench_enforcement.py [--seconds 3] [--rounds 3] [--clients 2]
    .venv/bin/python benchmarks/bench_enforcement.py --instructions 300    # load-independent
    .venv/bin/python benchmarks/bench_enforcement.py --profile 5000        # where the time goes

The same Flask app serves ``GET /bare`` (no token), ``GET /protected`` (Bearer token validated:
RS256 signature, RFC 9068 claims, an ``acr``/``max_age`` requirement) and ``GET /policy`` (the same,
with ten policy rules on the route, each with a CEL condition over the request, the token and the
time — and an eleventh, on ``POST``, that reads the body and must not be evaluated). All three
return the same small JSON body. Load comes from ``--clients`` processes opening a fresh connection
per request (gunicorn's sync worker closes it anyway). Each round measures the endpoints back to
back (in rotating order), so that load from elsewhere on the machine hits them alike; the figures
are the medians of the per-round ratios protected / bare and policy / bare (target: >= 0.90 each).
No provider is needed: the JWKS is handed to the validator through a file.

``--instructions N`` counts instead the instructions each endpoint executes in process (WSGI calls,
no server, no sockets), N calls per endpoint and round, under Valgrind's callgrind
(``benchmarks/instructions.py``): a figure the load of other jobs on the machine cannot disturb.
``--profile N`` shows where they go: N in-process calls of ``--path`` (default ``/policy``) under
cProfile, the functions by their own time.
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

#: Ten rules on GET /policy (three apply to the benchmark's token, none denies or challenges it),
#: as [[api.rules]] would give them, and one on POST /policy that reads the body.
POLICY_RULES: list[dict[str, Any]] = [
    {"when": "authentication_age > 86400", "deny": "log in again"},
    {"when": "request.headers[?'x-risk'].orValue('') == 'high'", "max_age": 60},
    {"when": "!('otp' in amr)", "acr_values": [LOA2]},
    {"when": "client_id == 'blocked-client'", "deny": "this client is blocked"},
    {"when": "sub.startsWith('svc-')", "deny": "services may not call this"},
    {"when": "'admin' in scope", "max_age": 300},
    {"when": "request.query[?'rows'].orValue('') == 'all'", "max_age": 600},
    {"when": "authentication_policy == 'urn:stepup:loa:2'", "max_age": 3600},
    {"when": "token.iss == 'https://op.bench'", "acr_values": [LOA2]},
    {"when": "request.method == 'GET'", "acr_values": [LOA2], "max_age": 3600},
]


def app_factory() -> Any:
    """What gunicorn serves: ``benchmarks.bench_enforcement:app_factory()``."""
    from flask import Flask, jsonify

    from resource_api import JwtAccessTokenValidator, StepUp
    from resource_api.policy import RuleConfig

    jwks = json.loads(Path(os.environ["BENCH_JWKS_FILE"]).read_text())
    app = Flask("bench")
    validator = JwtAccessTokenValidator(
        ISSUER, AUDIENCE, jwks_uri=f"{ISSUER}/jwks", fetch=lambda url: jwks
    )
    rules = [
        RuleConfig(f"rule {i}", ("GET",), "/policy", r["when"], tuple(r.get("acr_values", ())),
                   r.get("max_age"), deny=r.get("deny"))
        for i, r in enumerate(POLICY_RULES)
    ] + [RuleConfig("large", ("POST",), "/policy", "double(request.body.amount) > 1000.0",
                    max_age=300)]  # fmt: skip
    step_up = StepUp(app, validator=validator, acr_order=["urn:stepup:loa:1", LOA2], rules=rules)

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

    @app.route("/policy", methods=["GET", "POST"])
    def policy() -> Any:
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


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes ``pids`` have used (Linux /proc; 0 elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _workers(master: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def measure(
    port: int, path: str, token: str, seconds: float, clients: int, workers: list[int] | None = None
) -> tuple[float, float]:
    """Requests per second, and the server's CPU microseconds per request (0 if unknown)."""
    cpu = _cpu_seconds(workers or [])
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
    used = _cpu_seconds(workers or []) - cpu
    return done / seconds, used / done * 1e6 if done else 0.0


PATHS = (("/bare", "bare"), ("/protected", "protected"), ("/policy", "10 rules"))


def _key_and_token() -> tuple[Any, str]:
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

    return key, token


def _wsgi_caller(app: Any, path: str, token: str) -> Any:
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1", "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_CONNECTION": "close",
    }  # fmt: skip
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def call() -> None:
        import io

        body = app({**environ, "wsgi.input": io.BytesIO()}, start_response)
        b"".join(body)
        getattr(body, "close", lambda: None)()
        if not statuses.pop().startswith("200"):
            raise SystemExit(f"{path}: not 200; the benchmark is not measuring")

    return call


def _instructions_child(calls: int, rounds: int) -> None:
    """Under callgrind: each endpoint ``calls`` times per round, rounds in rotating order."""
    import instructions  # type: ignore[import-not-found]

    key, token = _key_and_token()
    with tempfile.TemporaryDirectory() as tmp:
        jwks_file = Path(tmp) / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False, alg="RS256")]}))
        os.environ["BENCH_JWKS_FILE"] = str(jwks_file)
        app = app_factory()
        callers = {path: _wsgi_caller(app, path, token) for path, _ in PATHS}
        for call in callers.values():  # warm-up: JWKS, the verified token, the route's rules
            for _ in range(20):
                call()
        for i in range(rounds):
            order = [p for p, _ in PATHS][i % 3 :] + [p for p, _ in PATHS][: i % 3]
            for path in order:
                print(path, flush=True)
                with instructions.region():
                    for _ in range(calls):
                        callers[path]()


def _profile(calls: int, path: str) -> None:
    """``calls`` in-process calls of ``path`` under cProfile (after a warm-up): the functions that
    cost most by their own time, then those of resource_api."""
    import cProfile
    import pstats

    key, token = _key_and_token()
    with tempfile.TemporaryDirectory() as tmp:
        jwks_file = Path(tmp) / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False, alg="RS256")]}))
        os.environ["BENCH_JWKS_FILE"] = str(jwks_file)
        call = _wsgi_caller(app_factory(), path, token)
        for _ in range(50):
            call()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            call()
        profiler.disable()
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(25)
    stats.print_stats("resource_api", 25)


def _instructions(calls: int, rounds: int) -> None:
    import instructions  # type: ignore[import-not-found]

    rounds = min(rounds, 3)
    argv = ["--child-instructions", str(calls), "--rounds", str(rounds)]
    totals, printed = instructions.run(__file__, argv)
    per: dict[str, list[float]] = {p: [] for p, _ in PATHS}
    # The child prints each region's endpoint before it; callgrind dumps them in that order.
    for path, total in zip(printed.split(), totals, strict=True):
        per[path].append(total / calls)
    python = sys.version.split()[0]
    print(f"instructions per request, in process (WSGI calls, no server), callgrind, "
          f"{rounds} x {calls} calls, Python {python}")  # fmt: skip
    bare = statistics.median(per["/bare"])
    for path, label in PATHS:
        mine = statistics.median(per[path])
        if path == "/bare":
            print(f"{label:<10} {mine:10,.0f}")
        else:
            print(f"{label:<10} {mine:10,.0f}  +{mine - bare:8,.0f}   ratio {label}/bare "
                  f"{bare / mine:.3f} (in process: no server's share in either)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds (each measures both)")
    parser.add_argument("--clients", type=int, default=2, help="load-generating processes")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn sync workers")
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="count instructions per request under callgrind instead (N calls "
                        "per endpoint and round, at most 3 rounds)")  # fmt: skip
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile N in-process calls of --path (cProfile) instead")  # fmt: skip
    parser.add_argument("--path", default="/policy", choices=[p for p, _ in PATHS],
                        help="the endpoint --profile calls")  # fmt: skip
    parser.add_argument("--child-instructions", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.profile:
        _profile(args.profile, args.path)
        return

    if args.child_instructions:
        _instructions_child(args.child_instructions, args.rounds)
        return
    if args.instructions:
        _instructions(args.instructions, args.rounds)
        return
    key, token = _key_and_token()

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
            paths = ["/bare", "/protected", "/policy"]
            for path in paths:  # warm-up (JWKS load, imports, the route's compiled rules)
                measure(port, path, token, 0.5, args.clients)
            workers = _workers(server.pid)
            rps: dict[str, list[float]] = {path: [] for path in paths}
            cpu: dict[str, list[float]] = {path: [] for path in paths}
            for i in range(args.rounds):
                for path in paths[i % 3 :] + paths[: i % 3]:
                    r, c = measure(port, path, token, args.seconds, args.clients, workers)
                    rps[path].append(r)
                    cpu[path].append(c)
        finally:
            server.terminate()
            server.wait(timeout=10)

    python = sys.version.split()[0]
    print(f"gunicorn sync x{args.workers}, {args.clients} client processes, "
          f"{args.rounds} x {args.seconds:g} s rounds, Python {python}")  # fmt: skip
    for path, label in (("/bare", "bare"), ("/protected", "protected"), ("/policy", "10 rules")):
        rounds = ", ".join(f"{x:.0f}" for x in rps[path])
        print(f"{label:<10} {statistics.median(rps[path]):8.0f} req/s   rounds: {rounds}")
    for path, label in (("/protected", "protected/bare"), ("/policy", "10 rules/bare")):
        ratios = [x / b for x, b in zip(rps[path], rps["/bare"], strict=True)]
        print(f"ratio {label:<15} {statistics.median(ratios):.3f}  (median of per-round ratios; "
              f"min {min(ratios):.3f}, max {max(ratios):.3f}; target >= 0.90)")  # fmt: skip
    if all(cpu["/bare"]):
        # The worker's own CPU per request: what a shared, busy machine disturbs least.
        bare_cpu = statistics.median(cpu["/bare"])
        for path, label in (("/protected", "protected"), ("/policy", "10 rules")):
            extra = statistics.median(cpu[path]) - bare_cpu
            print(f"server CPU per request: bare {bare_cpu:.0f} us, {label} +{extra:.0f} us")


if __name__ == "__main__":
    main()
