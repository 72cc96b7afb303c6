"""Throughput through ``stepup gateway`` and through nginx + ``stepup sideband``, in one run.

    .venv/bin/python benchmarks/bench_gateway.py [--rounds 5] [--seconds 3] [--connections 16]
    .venv/bin/python benchmarks/bench_gateway.py --instructions 300   # the sideband, load-free

Five targets answer the same ``GET /accounts`` (a small JSON body from the same upstream):

- ``upstream``  — the API alone: a minimal ASGI app under uvicorn (httptools, uvloop), one process;
- ``gateway``   — ``stepup gateway`` (one granian worker) in front of it (token verified, rules
  applied, identity headers added, request proxied with aiohttp);
- ``nginx``     — nginx proxying to it without ``auth_request`` (keep-alive to the upstream);
- ``sideband``  — the same nginx with the ``auth_request`` configuration of docs/gateway.md, asking
  ``stepup sideband`` (one granian worker);
- ``cached``    — the same, with docs/gateway.md's "Caching decisions in nginx" blocks (the sideband
  runs with ``--cache-seconds 60``; the cache lives in the run's temporary folder).

Every request carries the same valid RS256 token (so the verified-claims cache is hit after the
first one, as it is for a client that reuses its token). Load comes from ``wrk`` (one thread,
``--connections`` keep-alive connections). Each round measures the four targets back to back in a
rotating order, so that load from elsewhere on the machine hits them alike; the figures are the
medians of the per-round ratios gateway/upstream, sideband/nginx and cached/nginx (target for
the sideband: >= 0.70). Each measurement also reads the CPU time (user + system, from /proc) that
the processes on the path spent (wrk excluded): CPU per request, whose ratios do not depend on
what else the machine runs. The upstream also serves the discovery document and JWKS, so no
provider is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
AUDIENCE = "https://bank.example/api"
LOA2 = "urn:stepup:loa:2"


def upstream_app() -> Any:
    """The API: ``/accounts`` JSON, plus discovery and JWKS for the issuer it also plays."""
    issuer = os.environ["BENCH_ISSUER"]
    jwks = Path(os.environ["BENCH_JWKS_FILE"]).read_bytes()
    discovery = json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}).encode()
    accounts = json.dumps({"accounts": [{"id": "acc_1", "balance": "2500.00"}]}).encode()
    routes = {"/accounts": accounts, "/jwks": jwks, "/.well-known/openid-configuration": discovery}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = routes.get(scope["path"], b"{}")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def flask_upstream() -> Any:
    """The same API as a typical Python one: a Flask view under gunicorn (sync workers)."""
    from flask import Flask, Response

    issuer = os.environ["BENCH_ISSUER"]
    jwks = Path(os.environ["BENCH_JWKS_FILE"]).read_bytes()
    discovery = json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}).encode()
    flask = Flask("bench_upstream")

    @flask.get("/accounts")
    def accounts() -> Any:
        return {"accounts": [{"id": "acc_1", "balance": "2500.00"}]}

    @flask.get("/jwks")
    def keys() -> Response:
        return Response(jwks, mimetype="application/json")

    @flask.get("/.well-known/openid-configuration")
    def discover() -> Response:
        return Response(discovery, mimetype="application/json")

    return flask


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60  # a busy machine starts Python slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} did not start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen")


def nginx_site(path: Path, port: int, sideband: int | None, upstream: int) -> str:
    """docs/gateway.md's configuration, or plain proxying without auth_request."""
    if sideband is not None:
        text = (ROOT / "docs" / "gateway.md").read_text()
        match = re.search(r"<!-- nginx-config -->\n```nginx\n(.*?)^```", text, re.S | re.M)
        assert match is not None
        return (
            match.group(1)
            .replace("127.0.0.1:9003", f"127.0.0.1:{sideband}")
            .replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
            .replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        )
    return (
        f"upstream api {{ server 127.0.0.1:{upstream}; keepalive 32; }}\n"
        f"server {{ listen 127.0.0.1:{port};\n  location / {{ proxy_http_version 1.1;\n"
        '    proxy_set_header Connection ""; proxy_set_header Host $host;\n'
        "    proxy_pass http://api; } }\n"
    )


def nginx_cached_site(port: int, sideband: int, upstream: int, cache: Path) -> str:
    """docs/gateway.md's configuration with its two decision-cache blocks where it says."""
    text = (ROOT / "docs" / "gateway.md").read_text()
    blocks = [
        re.search(rf"<!-- {mark} -->\n```nginx\n(.*?)^```", text, re.S | re.M)
        for mark in ("nginx-cache-http", "nginx-cache-location")
    ]
    assert blocks[0] is not None
    assert blocks[1] is not None
    http = blocks[0].group(1).replace("/dev/shm/stepup-decisions", str(cache))
    internal = "    location = /_stepup {\n        internal;\n"
    return http + nginx_site(cache, port, sideband, upstream).replace(
        internal, internal + blocks[1].group(1)
    )


def start_nginx(tmp: Path, sites: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    (tmp / "site.conf").write_text(sites)
    temp = "\n".join(
        f"  {k}_temp_path {tmp / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} error;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n  access_log off;\n{temp}\n  include {tmp / 'site.conf'};\n}}\n"
    )
    return subprocess.Popen([binary, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)])


def wrk(url: str, token: str, seconds: float, connections: int) -> tuple[float, int]:
    """(requests per second, requests) of one wrk run."""
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-H",
         f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise SystemExit(f"{url}: errors, the benchmark is not measuring:\n{result.stdout}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    count = re.search(r"(\d+) requests in", result.stdout)
    assert rate is not None, result.stdout
    assert count is not None, result.stdout
    return float(rate.group(1)), int(count.group(1))


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` and their children (workers) so far."""
    family = set(pids)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in pids:
                family.add(int(entry.name))
    total = 0
    for pid in family:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _sideband_instructions_child(calls: int) -> None:
    """Under callgrind: the sideband's ASGI app answering nginx subrequests in process, against
    an ASGI app that answers 200 and nothing else."""
    import instructions  # type: ignore[import-not-found]
    from joserfc import jws
    from joserfc.jwk import RSAKey

    from resource_api import JwtAccessTokenValidator
    from resource_api.gateway import SidebandApp, build_enforcer
    from stepup.config import load_config

    key = RSAKey.generate_key(2048, parameters={"kid": "bench"}, auto_kid=False)
    issuer = "http://127.0.0.1:9"
    now = int(time.time())
    claims = {"iss": issuer, "sub": "alice", "aud": AUDIENCE, "client_id": "bench", "iat": now,
              "exp": now + 3600, "jti": "j1", "scope": "openid", "acr": LOA2,
              "amr": ["pwd", "otp"], "auth_time": now}  # fmt: skip
    token = jws.serialize_compact(
        {"alg": "RS256", "typ": "at+jwt", "kid": "bench"}, json.dumps(claims), key
    )
    jwks = {"keys": [key.as_dict(private=False, alg="RS256")]}
    with tempfile.TemporaryDirectory() as tmp:
        config_text = (ROOT / "stepup" / "sandbox.toml").read_text()
        config_file = Path(tmp) / "stepup.toml"
        config_file.write_text(
            re.sub(r'^issuer = ".*"$', f'issuer = "{issuer}"', config_text, flags=re.M)
        )
        config = load_config(config_file)
    validator = JwtAccessTokenValidator(
        issuer, config.api.audience, jwks_uri=f"{issuer}/jwks", fetch=lambda url: jwks
    )
    sideband = SidebandApp(build_enforcer(config, validator=validator), cache_seconds=60)

    async def trivial(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    statuses: list[int] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    def call(app: Any, uri: str) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": "/sideband/nginx", "raw_path": b"/sideband/nginx",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 9003),
            "headers": [
                (b"host", b"stepup_sideband"), (b"x-original-method", b"GET"),
                (b"x-original-uri", uri.encode()), (b"x-forwarded-proto", b"http"),
                (b"x-forwarded-host", b"127.0.0.1:8000"),
                (b"authorization", f"Bearer {token}".encode()),
            ],
        }  # fmt: skip
        coroutine = app(scope, receive, send)
        with contextlib.suppress(StopIteration):
            coroutine.send(None)  # nothing in these apps waits: one step runs them to the end
        if statuses.pop() != 200:
            raise SystemExit("the sideband did not allow; the benchmark is not measuring")

    cases = {
        "trivial": lambda i: call(trivial, "/accounts"),
        "remembered": lambda i: call(sideband, "/accounts"),
        "decided": lambda i: call(sideband, f"/accounts?n={i}"),
    }
    for case in cases.values():
        for i in range(20):
            case(i)
    for name, case in cases.items():
        print(name, flush=True)
        with instructions.region():
            for i in range(calls):
                case(i)


def _sideband_instructions(calls: int) -> None:
    import instructions

    totals, printed = instructions.run(__file__, ["--child-instructions", str(calls)])
    per = {name: total / calls for name, total in zip(printed.split(), totals, strict=True)}
    print(f"instructions per nginx subrequest, in process (the sideband's ASGI app, no server), "
          f"callgrind, {calls} calls, Python {sys.version.split()[0]}")  # fmt: skip
    print(f"an ASGI app that only answers 200     {per['trivial']:10,.0f}")
    print(f"sideband, a remembered allow          {per['remembered']:10,.0f}")
    print(f"sideband, each request decided        {per['decided']:10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (each measures all five)")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections")
    parser.add_argument(
        "--upstream",
        choices=["asgi", "flask"],
        default="asgi",
        help="asgi: a raw ASGI app under uvicorn (the fastest Python can answer: the worst case "
        "for the ratios); flask: a Flask view under gunicorn, 2 sync workers (a typical API)",
    )
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="count the sideband's instructions per decision under callgrind "
                        "instead (N calls per case, in process)")  # fmt: skip
    parser.add_argument("--child-instructions", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_instructions:
        _sideband_instructions_child(args.child_instructions)
        return
    if args.instructions:
        _sideband_instructions(args.instructions)
        return

    from joserfc import jws
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "bench"}, auto_kid=False)
    ports = {
        name: free_port() for name in ("upstream", "gateway", "sideband", "nginx", "auth", "cached")
    }
    issuer = f"http://127.0.0.1:{ports['upstream']}"
    now = int(time.time())
    token = jws.serialize_compact(
        {"alg": "RS256", "typ": "at+jwt", "kid": "bench"},
        json.dumps(
            {
                "iss": issuer,
                "sub": "alice",
                "aud": AUDIENCE,
                "client_id": "bench",
                "iat": now,
                "exp": now + 3600,
                "jti": "j1",
                "scope": "openid",
                "acr": LOA2,
                "amr": ["pwd", "otp"],
                "auth_time": now,
            }
        ),
        key,
    )
    processes: list[subprocess.Popen[bytes]] = []
    cleanup: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "jwks.json").write_text(
            json.dumps({"keys": [key.as_dict(private=False, alg="RS256")]})
        )
        config = (ROOT / "stepup" / "sandbox.toml").read_text()
        config = re.sub(r'^issuer = ".*"$', f'issuer = "{issuer}"', config, flags=re.M)
        (tmp / "stepup.toml").write_text(config)
        env = {
            **os.environ,
            "BENCH_ISSUER": issuer,
            "BENCH_JWKS_FILE": str(tmp / "jwks.json"),
            "PYTHONPATH": str(ROOT),
        }
        python = sys.executable
        stepup = str(Path(python).with_name("stepup"))
        try:
            if args.upstream == "asgi":
                command = [
                    python,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "benchmarks.bench_gateway:upstream_app",
                    "--port",
                    str(ports["upstream"]),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ]
            else:
                command = [
                    str(Path(python).with_name("gunicorn")),
                    "--workers",
                    "2",
                    "--bind",
                    f"127.0.0.1:{ports['upstream']}",
                    "--log-level",
                    "warning",
                    "benchmarks.bench_gateway:flask_upstream()",
                ]
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env))
            wait_for(ports["upstream"], processes[-1], "the upstream")
            processes.append(
                subprocess.Popen(
                    [
                        stepup,
                        "gateway",
                        "--config",
                        str(tmp / "stepup.toml"),
                        "--upstream",
                        issuer,
                        "--port",
                        str(ports["gateway"]),
                        "--workers",
                        "1",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )
            wait_for(ports["gateway"], processes[-1], "stepup gateway")
            processes.append(
                subprocess.Popen(
                    [
                        stepup,
                        "sideband",
                        "--config",
                        str(tmp / "stepup.toml"),
                        "--port",
                        str(ports["sideband"]),
                        "--workers",
                        "1",
                        "--cache-seconds",
                        "60",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )
            wait_for(ports["sideband"], processes[-1], "stepup sideband")
            (tmp / "n").mkdir()
            # On a memory file system, as docs/gateway.md says (the cache files hold tokens).
            shm = Path("/dev/shm")
            cache = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp / "cache"
            cache.mkdir(exist_ok=True)
            cleanup.append(cache)
            sites = (
                nginx_site(tmp, ports["nginx"], None, ports["upstream"])
                + nginx_site(tmp, ports["auth"], ports["sideband"], ports["upstream"])
                .replace("upstream api {", "upstream api2 {")
                .replace("http://api;", "http://api2;")
                + nginx_cached_site(ports["cached"], ports["sideband"], ports["upstream"],
                                    cache)
                .replace("upstream api {", "upstream api3 {")
                .replace("http://api;", "http://api3;")
                .replace("upstream stepup_sideband {", "upstream stepup_sideband3 {")
                .replace("http://stepup_sideband", "http://stepup_sideband3")
            )  # fmt: skip
            processes.append(start_nginx(tmp / "n", sites))
            wait_for(ports["auth"], processes[-1], "nginx")

            targets = {
                "upstream": f"http://127.0.0.1:{ports['upstream']}/accounts",
                "gateway": f"http://127.0.0.1:{ports['gateway']}/accounts",
                "nginx": f"http://127.0.0.1:{ports['nginx']}/accounts",
                "sideband": f"http://127.0.0.1:{ports['auth']}/accounts",
                "cached": f"http://127.0.0.1:{ports['cached']}/accounts",
            }
            up, gw, sb, ngx = (p.pid for p in processes)
            involved = {"upstream": [up], "gateway": [gw, up], "nginx": [ngx, up],
                        "sideband": [ngx, sb, up], "cached": [ngx, sb, up]}  # fmt: skip
            for url in targets.values():  # warm-up: JWKS, imports, connections
                wrk(url, token, 1, args.connections)
            figures: dict[str, list[float]] = {name: [] for name in targets}
            costs: dict[str, list[float]] = {name: [] for name in targets}
            gateway_ratios, sideband_ratios, cached_ratios = [], [], []
            names = list(targets)
            for i in range(args.rounds):
                order = names[i % len(names) :] + names[: i % len(names)]
                rps = {}
                for n in order:
                    before = cpu_seconds(involved[n])
                    rps[n], count = wrk(targets[n], token, args.seconds, args.connections)
                    costs[n].append((cpu_seconds(involved[n]) - before) / count * 1e6)
                for n, value in rps.items():
                    figures[n].append(value)
                gateway_ratios.append(rps["gateway"] / rps["upstream"])
                sideband_ratios.append(rps["sideband"] / rps["nginx"])
                cached_ratios.append(rps["cached"] / rps["nginx"])
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                process.wait(timeout=10)
            for folder in cleanup:
                shutil.rmtree(folder, ignore_errors=True)

    print(
        f"upstream: {args.upstream}; wrk -t1 -c{args.connections}, {args.rounds} rounds x "
        f"{args.seconds:g} s, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for name, values in figures.items():
        print(
            f"{name:<9} {statistics.median(values):8.0f} req/s  "
            f"{statistics.median(costs[name]):6.0f} us CPU/request   rounds: "
            + ", ".join(f"{v:.0f}" for v in values)
        )
    print(
        f"ratio gateway/upstream:  {statistics.median(gateway_ratios):.3f}  (median of per-round "
        f"ratios; min {min(gateway_ratios):.3f}, max {max(gateway_ratios):.3f})"
    )
    print(
        f"ratio sideband/nginx:    {statistics.median(sideband_ratios):.3f}  (median of per-round "
        f"ratios; min {min(sideband_ratios):.3f}, max {max(sideband_ratios):.3f}; target >= 0.70)"
    )
    print(
        f"ratio cached/nginx:      {statistics.median(cached_ratios):.3f}  (median of per-round "
        f"ratios; min {min(cached_ratios):.3f}, max {max(cached_ratios):.3f}; target >= 0.70)"
    )
    # Throughput on a busy machine measures scheduling shares as much as cost (a process with more
    # threads gets more CPU); the CPU each path spends per request does not depend on them.
    cost = {name: statistics.median(values) for name, values in costs.items()}
    print(
        f"CPU-cost ratios (what the throughput ratios would be on dedicated CPUs): "
        f"gateway/upstream {cost['upstream'] / cost['gateway']:.3f}, "
        f"sideband/nginx {cost['nginx'] / cost['sideband']:.3f}, "
        f"cached/nginx {cost['nginx'] / cost['cached']:.3f}"
    )


if __name__ == "__main__":
    main()
