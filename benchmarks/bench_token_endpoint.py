"""The token endpoint and start-up of ``stepup provider`` against node-oidc-provider, in one run.

    .venv/bin/python benchmarks/bench_token_endpoint.py [--rounds 5] [--seconds 5] [--grants ...]
    .venv/bin/python benchmarks/bench_token_endpoint.py --startup-only [--startup-rounds 9]

Both servers run on this machine with the same confidential client (``client_secret_basic``), an
RSA-2048 key, RS256, RFC 9068 JWT access tokens and refresh-token rotation. The peer is panva's
``oidc-provider`` 9.x from npm, installed into a scratch folder outside the repository (default
``/tmp/stepup-bench-peer``; ``--peer-dir``) and run by ``benchmarks/peer/oidc_provider_peer.mjs``
with an in-memory store. ``stepup provider`` runs as a user starts it: its own command, its default
SQLite database (``--database`` for another), its default number of workers (``--workers``).

Load: ``wrk`` (Debian package ``wrk``), 2 threads, 16 connections (``--connections``). Each round
measures both servers back to back, in alternating order, so that load from elsewhere on the
machine hits both alike. ``authorization_code`` and ``refresh_token`` requests each need a fresh
code or refresh token: they are minted before the round (stepup: rows written to its database;
the peer: through a control port that is idle while measured) and replayed by a Lua script, one
per request; a round that runs out, or gets any non-200 answer, is an error, not a figure.

Printed per grant: tokens/s, p50/p99 latency, server CPU milliseconds per token (all processes of
the server, from /proc), and the ratio stepup/peer (median of per-round ratios). Then start-up:
seconds from spawn until the discovery document answers, on a fresh database ("cold") and again
on the same one ("restart"), with the CPU seconds the server spent until then and the seconds
until a first token was issued after it; and the RSS of each server after the load.
``--startup-only`` runs the start-up rounds alone (no load, no wrk needed).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT / "benchmarks" / "peer" / "oidc_provider_peer.mjs"
CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret-0123456789"
AUDIENCE = "https://bank.example/api"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
SCOPE = "accounts:read"
USER_SCOPE = f"openid offline_access {SCOPE}"
LOA2 = "urn:stepup:loa:2"
GRANTS = ("client_credentials", "authorization_code", "refresh_token")
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

CONFIG = f"""
issuer = "http://127.0.0.1:{{port}}"
[provider]
access_token_lifetime = 300
id_token_lifetime = 300
[[acr_levels]]
value = "urn:stepup:loa:1"
factors = ["pwd"]
[[acr_levels]]
value = "{LOA2}"
factors = ["pwd", "otp"]
[[users]]
username = "alice"
password = "wonderland"
totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
[[clients]]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT_URI}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scope = "{USER_SCOPE}"
[api]
audience = "{AUDIENCE}"
"""

# One request per line of the file given after `--`: a single-use code or refresh token each.
WRK_LUA = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  local nthreads = tonumber(args[2])
  bodies = {}
  local i = 0
  for line in io.lines(args[1]) do
    if line ~= "" then
      if i % nthreads == id then bodies[#bodies + 1] = line end
      i = i + 1
    end
  end
  next_body = 0
  headers = {}
  headers["Authorization"] = args[3]
  headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  next_body = next_body + 1
  local body = bodies[next_body] or "grant_type=exhausted"
  return wrk.format("POST", "/token", headers, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline: float, proc: subprocess.Popen[bytes]) -> float:
    """Poll ``url`` until it answers 200; the time it did (perf_counter)."""
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering {url}")
        try:
            # A long timeout: a server may accept connections (its socket bound) before it
            # answers them; the answer, not the connection, is what is timed.
            with urllib.request.urlopen(url, timeout=30) as r:
                if r.status == 200:
                    return time.perf_counter()
        except OSError:
            time.sleep(0.005)
    raise SystemExit(f"{url} did not answer in time")


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def reaped_cpu_seconds(pid: int) -> float:
    """CPU seconds of the children ``pid`` has waited for (cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of the process and its children, in MiB."""
    rss = pss = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float


def parse_latency(text: str, pct: str) -> float:
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        raise SystemExit(f"no {pct}% latency in wrk output:\n{text}")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(
    wrk: str, url: str, script: Path, args: list[str], seconds: float, connections: int, pid: int
) -> Result:
    cpu0 = cpu_seconds(pid)
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url,
         "--", *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cpu = cpu_seconds(pid) - cpu0
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url}: not every answer was a 200; not measuring:\n{out}")
    if errors := re.search(r"Socket errors: (.*)", out):
        print(f"  ({url}: socket errors: {errors.group(1)})")
    duration = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    return Result(
        total / duration, parse_latency(out, "50"), parse_latency(out, "99"), 1000 * cpu / total
    )


# --- the two servers -----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    base: str
    mint: Callable[[str, int], list[str]]
    proc: subprocess.Popen[bytes] | None = None
    results: dict[str, list[Result]] = field(default_factory=dict)

    def run(self) -> float:
        """Start; seconds until discovery answers."""
        return self.start_up()[0]

    def start_up(self) -> tuple[float, float, float]:
        """Start; seconds until discovery answers, CPU seconds the server's processes spent
        until then, and seconds (from the start) until a first token was issued after it."""
        t0 = time.perf_counter()
        self.proc = self.start()
        ready = wait_http(f"{self.base}/.well-known/openid-configuration", t0 + 60, self.proc)
        cpu = cpu_seconds(self.proc.pid) + reaped_cpu_seconds(self.proc.pid)
        body = f"grant_type=client_credentials&scope={SCOPE}".encode()
        request = urllib.request.Request(f"{self.base}/token", body, {"Authorization": BASIC})
        with urllib.request.urlopen(request, timeout=30) as r:
            if r.status != 200:
                raise SystemExit(f"{self.name}: the first token request answered {r.status}")
        return ready - t0, cpu, time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def ensure_peer(peer_dir: Path) -> Path:
    if not (peer_dir / "node_modules" / "oidc-provider").exists():
        peer_dir.mkdir(parents=True, exist_ok=True)
        if not (peer_dir / "package.json").exists():
            (peer_dir / "package.json").write_text('{"private": true, "type": "module"}\n')
        print(f"installing oidc-provider@9 into {peer_dir} ...", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "oidc-provider@9"], cwd=peer_dir,
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    shutil.copy(PEER_SCRIPT, peer_dir / PEER_SCRIPT.name)
    return peer_dir / PEER_SCRIPT.name


def peer_server(peer_dir: Path, work: Path) -> Server:
    from joserfc.jwk import RSAKey

    script = ensure_peer(peer_dir)
    key = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"}, private=True)
    key.ensure_kid()
    jwks = work / "peer-jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    port, admin = free_port(), free_port()
    env = {
        **os.environ, "PEER_PORT": str(port), "PEER_ADMIN": str(admin),
        "PEER_ISSUER": f"http://127.0.0.1:{port}", "PEER_JWKS": str(jwks),
        "PEER_CLIENT_ID": CLIENT_ID, "PEER_CLIENT_SECRET": CLIENT_SECRET,
        "PEER_AUDIENCE": AUDIENCE, "NODE_ENV": "production",
    }  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["node", str(script)], cwd=peer_dir, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def mint(kind: str, n: int) -> list[str]:
        kind = "code" if kind == "authorization_code" else "refresh"
        req = urllib.request.Request(f"http://127.0.0.1:{admin}/mint?kind={kind}&n={n}", b"")
        with urllib.request.urlopen(req, timeout=120) as r:
            return [line for line in r.read().decode().splitlines() if line]

    return Server("node-oidc-provider", start, f"http://127.0.0.1:{port}", mint)


def stepup_server(work: Path, database: str | None, workers: int | None) -> Server:
    port = free_port()
    config = work / "stepup.toml"
    config.write_text(CONFIG.format(port=port))
    # Without --database, the default a user gets: an SQLite file in the per-user data directory,
    # $XDG_DATA_HOME/stepup — here the scratch folder, so that each "cold" start is one.
    url = database or f"sqlite:///{work / 'stepup' / 'stepup.db'}"
    cmd = [str(Path(sys.executable).with_name("stepup")), "provider", "--config", str(config),
           "--port", str(port)]  # fmt: skip
    if database:
        cmd += ["--database", database]
    if workers:
        cmd += ["--workers", str(workers)]

    # As a user runs it: with bytecode caching on (an environment that turns it off, as some
    # sandboxes do, would recompile the project's modules at every start).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_DATA_HOME"] = str(work)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def mint(kind: str, n: int) -> list[str]:
        return mint_stepup(url, kind, n)

    return Server("stepup", start, f"http://127.0.0.1:{port}", mint)


def mint_stepup(url: str, kind: str, n: int) -> list[str]:
    """Codes or refresh tokens for the bench client, written to the provider's database as its
    authorization endpoint and token endpoint would have written them."""
    from urllib.parse import urlencode

    from sqlalchemy import insert, select

    from provider import store
    from provider.db import Database
    from provider.models import AuthorizationCode, Grant, User

    db = Database(url)
    now = int(time.time())
    lines, rows = [], []
    with db.session() as s:
        user_id = s.scalar(select(User.id).where(User.username == "alice"))
        for _ in range(n):
            value = secrets.token_urlsafe(32)
            if kind == "authorization_code":
                verifier = secrets.token_urlsafe(32)
                challenge = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                    .rstrip(b"=")
                    .decode()
                )
                rows.append(
                    dict(  # noqa: C408
                        code_hash=store.digest(value), client_id=CLIENT_ID, user_id=user_id,
                        redirect_uri=REDIRECT_URI, scope=USER_SCOPE, nonce=None,
                        code_challenge=challenge, code_challenge_method="S256", acr=LOA2,
                        amr=["pwd", "otp", "mfa"], auth_time=now, session_id=None,
                        expires_at=now + 60,
                    )
                )  # fmt: skip
                lines.append(
                    urlencode(
                        {"grant_type": "authorization_code", "code": value,
                         "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
                    )
                )  # fmt: skip
            else:
                rows.append(
                    dict(  # noqa: C408
                        family=secrets.token_urlsafe(16), code_id=None, client_id=CLIENT_ID,
                        user_id=user_id, scope=USER_SCOPE, jti=secrets.token_urlsafe(16),
                        access_expires_at=now + 300, refresh_hash=store.digest(value),
                        refresh_expires_at=now + 86400, acr=LOA2, amr=["pwd", "otp", "mfa"],
                        auth_time=now, issued_at=now,
                    )
                )  # fmt: skip
                lines.append(urlencode({"grant_type": "refresh_token", "refresh_token": value}))
        model = AuthorizationCode if kind == "authorization_code" else Grant
        s.execute(insert(model), rows)
        s.commit()
    db.dispose()
    return lines


# --- rounds --------------------------------------------------------------------------------------


def token_rounds(
    servers: list[Server], grants: list[str], rounds: int, seconds: float, connections: int,
    wrk: str, work: Path,
) -> None:  # fmt: skip
    lua = work / "bodies.lua"
    lua.write_text(WRK_LUA)
    cc_body = f"grant_type=client_credentials&scope={SCOPE.replace(':', '%3A')}\n"
    warm = work / "warm.txt"
    warm.write_text(cc_body * 20000)
    estimate = {s.name: 3000.0 for s in servers}
    for server in servers:  # warm-up: imports, first key use, JIT
        assert server.proc is not None
        run_wrk(wrk, f"{server.base}/token", lua, [str(warm), "2", BASIC], 1, connections,
                server.proc.pid)  # fmt: skip
    for grant in grants:
        for i in range(rounds):
            order = servers if i % 2 == 0 else servers[::-1]
            for server in order:
                assert server.proc is not None
                if grant == "client_credentials":
                    bodies_file = work / "cc-many.txt"
                    n = int(estimate[server.name] * seconds * 2) + 1000
                    bodies_file.write_text(cc_body * n)
                else:
                    n = int(estimate[server.name] * seconds * 1.6) + 1000
                    bodies_file = work / f"{grant}.txt"
                    bodies_file.write_text("\n".join(server.mint(grant, n)) + "\n")
                result = run_wrk(
                    wrk, f"{server.base}/token", lua, [str(bodies_file), "2", BASIC], seconds,
                    connections, server.proc.pid,
                )  # fmt: skip
                estimate[server.name] = max(estimate[server.name], result.rps)
                server.results.setdefault(grant, []).append(result)
                print(f"  {grant:<19} round {i + 1} {server.name:<19} {result.rps:7.0f} tokens/s "
                      f"p99 {result.p99_ms:6.1f} ms  {result.cpu_ms:.2f} CPU ms/token",
                      flush=True)  # fmt: skip


def report(servers: list[Server], grants: list[str]) -> None:
    ours, peer = servers
    print()
    print(f"{'grant':<20}{'server':<20}{'tokens/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'CPU ms/token':>14}{'tokens/CPU-s':>14}")  # fmt: skip
    for grant in grants:
        for server in servers:
            rs = server.results[grant]
            rps = statistics.median(r.rps for r in rs)
            cpu = statistics.median(r.cpu_ms for r in rs)
            print(f"{grant:<20}{server.name:<20}{rps:9.0f}"
                  f"{statistics.median(r.p50_ms for r in rs):9.1f}"
                  f"{statistics.median(r.p99_ms for r in rs):9.1f}"
                  f"{cpu:14.2f}{1000 / cpu:14.0f}")  # fmt: skip
        ratios = [
            a.rps / b.rps for a, b in zip(ours.results[grant], peer.results[grant], strict=True)
        ]
        p99 = [
            a.p99_ms / b.p99_ms
            for a, b in zip(ours.results[grant], peer.results[grant], strict=True)
        ]
        eff = [
            b.cpu_ms / a.cpu_ms
            for a, b in zip(ours.results[grant], peer.results[grant], strict=True)
        ]
        print(f"  ratio stepup/peer: throughput {statistics.median(ratios):.2f} "
              f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}; target >= 1.0), "
              f"p99 {statistics.median(p99):.2f} (target <= 2), "
              f"tokens per CPU-second {statistics.median(eff):.2f}")  # fmt: skip


def startup_rounds(make: list[Callable[[], Server]], rounds: int, work: Path) -> None:
    """Interleaved: each round starts both servers cold, then again on their state (restart).
    Printed per phase: the median seconds until discovery answers (the target's figure), the
    CPU seconds the server's processes spent until then (steadier than wall time on a busy
    machine), and the seconds until a first client_credentials token was issued after it."""
    times: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    for i in range(rounds):
        for factory in make if i % 2 == 0 else make[::-1]:
            server = factory()
            for phase in ("cold", "restart"):
                try:
                    figures = server.start_up()
                finally:
                    server.stop()
                times.setdefault(server.name, {}).setdefault(phase, []).append(figures)
                print(f"  start-up round {i + 1} {phase:<8} {server.name:<19} ready "
                      f"{figures[0]:.3f} s  CPU {figures[1]:.2f} s  first token {figures[2]:.3f} s",
                      flush=True)  # fmt: skip
    print()
    for phase in ("cold", "restart"):
        names = list(times)
        for k, what in enumerate(("ready", "CPU until ready", "first token")):
            row = {n: statistics.median(f[k] for f in times[n][phase]) for n in names}
            ratio = row[names[0]] / row[names[1]]
            target = " (target <= 1.0)" if k == 0 else ""
            print(f"{phase:<8} {what:<16}" + "".join(f"  {n} {row[n]:.2f} s" for n in names)
                  + f"   ratio {ratio:.2f}{target}")  # fmt: skip
    print(f"(medians of {rounds} rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--grants", nargs="+", choices=GRANTS, default=list(GRANTS))
    parser.add_argument("--startup-rounds", type=int, default=5)
    parser.add_argument(
        "--startup-only", action="store_true", help="only the start-up rounds (no wrk, no load)"
    )
    parser.add_argument("--database", help="stepup's database URL (default: an SQLite file)")
    parser.add_argument("--workers", type=int, help="stepup provider --workers (default: its own)")
    parser.add_argument("--peer-dir", type=Path, default=Path("/tmp/stepup-bench-peer"))
    args = parser.parse_args()
    if args.startup_only:
        args.rounds = 0
    wrk = shutil.which("wrk")
    if wrk is None and args.rounds:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    node = subprocess.check_output(["node", "--version"], text=True).strip()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"Python {sys.version.split()[0]}; node {node}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="stepup-bench-") as tmp:
        work = Path(tmp)
        ours = stepup_server(work, args.database, args.workers)
        peer = peer_server(args.peer_dir, work)
        servers = [ours, peer]
        if not args.rounds:
            servers = []  # start-up only
        try:
            for s in servers:
                s.run()
            if servers:
                assert wrk is not None
                token_rounds(servers, args.grants, args.rounds, args.seconds, args.connections,
                             wrk, work)  # fmt: skip
            rss = {s.name: rss_mib(s.proc.pid) for s in servers if s.proc}
        finally:
            for s in servers:
                s.stop()
        if servers:
            report(servers, args.grants)
            print()
            for name, (r, p) in rss.items():
                print(f"memory after the load: {name:<19} RSS {r:6.1f} MiB  (PSS {p:6.1f} MiB)")
            print(
                f"  ratio stepup/peer RSS {rss['stepup'][0] / rss['node-oidc-provider'][0]:.2f}"
                " (target <= 1.0)"
            )

        if args.startup_rounds:
            n = 0

            def fresh_ours() -> Server:
                nonlocal n
                n += 1
                sub = work / f"start{n}"
                sub.mkdir()
                return stepup_server(sub, None, args.workers)

            startup_rounds([fresh_ours, lambda: peer_server(args.peer_dir, work)],
                           args.startup_rounds, work)  # fmt: skip
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
