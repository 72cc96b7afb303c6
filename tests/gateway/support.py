"""What the gateway and sideband tests share: an upstream API that is not Flask (Python's
``http.server``) and echoes what it received, and nginx run from a generated configuration."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the RFC 9728 document of a gateway or sideband over the sandbox config lists in its
# stepup_route_requirements extension: the two routes (its conditional rule is not listed).
SANDBOX_REQUIREMENTS = [
    {
        "methods": ["POST"],
        "path": "/transfers",
        "acr_values": ["urn:stepup:loa:2"],
        "max_age": 3600,
    },
    {
        "methods": ["PUT"],
        "path": "/profile/email",
        "acr_values": ["urn:stepup:loa:2"],
        "max_age": 120,
    },
]
GATEWAY_DOC = ROOT / "docs" / "gateway.md"


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Echo:
    """The upstream: every request is recorded and echoed back as JSON. ``hold`` blocks each
    answer until it is set (to make the upstream slow without sleeping)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None


def _handler(echo: Echo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    chunk = self.rfile.read(size)
                    self.rfile.readline()
                    if size == 0:
                        break
                    chunks.append(chunk)
                body = b"".join(chunks)
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            record = Received(self.command, self.path, list(self.headers.items()), body)
            echo.received.append(record)
            if echo.hold is not None:
                echo.hold.wait(10)
            out = json.dumps({
                "method": record.method, "target": record.target,
                "headers": record.headers, "body": body.decode("latin-1"),
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.send_header("X-Upstream", "echo")
            self.send_header("Connection", "keep-alive, X-Upstream-Private")
            self.send_header("X-Upstream-Private", "hop-by-hop")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def echo_upstream() -> Iterator[Echo]:
    echo = Echo()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(echo))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    echo.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield echo
    finally:
        if echo.hold is not None:
            echo.hold.set()
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- nginx ---------------------------------------------------------------------------------------

#: The placeholders of the published configuration (docs/gateway.md) that a deployment edits.
DOC_LISTEN = "127.0.0.1:8000"
DOC_SIDEBAND = "127.0.0.1:9003"
DOC_UPSTREAM = "127.0.0.1:8080"


def published_nginx_config() -> str:
    """The ``nginx`` block of docs/gateway.md that follows the ``<!-- nginx-config -->`` mark."""
    text = GATEWAY_DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- nginx-config -->\n```nginx\n(.*?)^```", text, re.S | re.M)
    assert match, "docs/gateway.md has no nginx block after <!-- nginx-config -->"
    return match.group(1)


def published_nginx_cache() -> tuple[str, str]:
    """The two blocks of docs/gateway.md's "Caching decisions in nginx": (http, location)."""
    text = GATEWAY_DOC.read_text(encoding="utf-8")
    blocks = []
    for mark in ("nginx-cache-http", "nginx-cache-location"):
        match = re.search(rf"<!-- {mark} -->\n```nginx\n(.*?)^```", text, re.S | re.M)
        assert match, f"docs/gateway.md has no nginx block after <!-- {mark} -->"
        blocks.append(match.group(1))
    return blocks[0], blocks[1]


def nginx_binary() -> str:
    """nginx, or a skip when it is absent outside CI (in CI, .ci/run installs it: a failure)."""
    sbin = Path("/usr/sbin/nginx")
    found = shutil.which("nginx") or (str(sbin) if sbin.exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed, and CI is set: .ci/run installs it")
        pytest.skip("nginx is not installed (apt-get install nginx); CI always runs these tests")
    return found


@contextmanager
def running_nginx(site: str, tmp: Path) -> Iterator[str]:
    """nginx in the foreground with ``site`` as its one server, every path under ``tmp``."""
    binary = nginx_binary()
    port = free_port()
    site = site.replace(DOC_LISTEN, f"127.0.0.1:{port}")
    (tmp / "site.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};" for kind in
        ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )  # fmt: skip
    (tmp / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n    access_log off;\n{temp_paths}\n    include {tmp / 'site.conf'};\n}}\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
                raise RuntimeError(f"nginx stopped: {output}\n{log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not listen") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


# --- servers -------------------------------------------------------------------------------------


@contextmanager
def serving_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` on a thread of this process, so a test can inject a fake issuer and clock;
    yield its base URL. uvicorn, because it runs in a thread on a socket we bind (port 0); the
    commands themselves run under granian (``stepup.serve``), tested through them in
    ``test_commands.py`` and ``test_nginx.py``. ``proxy_headers`` off, as granian has none."""
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        app, lifespan="on", access_log=False, log_level="warning", server_header=False,
        date_header=False, proxy_headers=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            thread.join(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


STEPUP = str(Path(sys.executable).with_name("stepup"))


@contextmanager
def running_command(*args: str) -> Iterator[tuple[str, str]]:
    """``stepup ARGS`` in a subprocess (the production server); yield (label, URL) from its
    listening line."""
    process = subprocess.Popen(
        [STEPUP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            found = re.match(r"(\w+) listening on (http://\S+)", line)
            if found:
                yield found.group(1), found.group(2)
                break
        else:
            pytest.fail("no listening line:\n" + "".join(seen))
    finally:
        process.terminate()
        process.wait(timeout=15)
        process.stdout.close()
