"""``stepup gateway`` and ``stepup sideband`` (DESIGN.md contract 10), served by granian.

    stepup gateway  --config FILE --upstream URL [--host H] [--port P]
    stepup sideband --config FILE [--host H] [--port P]

Both read ``[api]`` from the config (issuer, audience, levels, rules) and print the URL they serve
once they listen. The apps are :mod:`resource_api.gateway`'s (ASGI); this module only parses options
and runs them on the production server the other commands use (:mod:`stepup.serve`: granian,
``--workers`` processes sharing the socket). Why granian: docs/gateway.md, "Why these libraries".
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import Any, TextIO

from .listening import listen

__all__ = ["add_commands"]

DEFAULT_GATEWAY_PORT = 9002
DEFAULT_SIDEBAND_PORT = 9003


def _bind(host: str, port: int) -> socket.socket:
    # A taken port is one line naming --port, before anything is printed (stepup/listening.py).
    sock = listen(host, port, "--port", backlog=2048).sock
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _serve(label: str, app: Any, sock: socket.socket, workers: int | None, out: TextIO) -> int:
    """The production server of ``stepup api`` (:mod:`stepup.serve`, granian), for ASGI."""
    from .serve import default_workers, serve

    out.flush()  # what was printed must not be printed again by each forked worker

    url = _url(sock)  # before serve() closes the socket (the workers bind the address)

    def started() -> None:
        out.write(f"{label} listening on {url}\nPress Ctrl+C to stop.\n")
        out.flush()

    try:
        serve(app, sock, workers=workers or default_workers(), on_started=started, asgi=True)
    finally:
        sock.close()
    return 0


def _enforcer(args: argparse.Namespace) -> Any:
    from resource_api.gateway import build_enforcer

    from .config import load_config

    config = load_config(args.config)
    if args.log_decisions:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log = logging.getLogger("resource_api.decisions")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    return config, build_enforcer(config, public_paths=args.public)


def cmd_gateway(args: argparse.Namespace, out: TextIO) -> int:
    from resource_api.gateway import GatewayApp

    config, enforcer = _enforcer(args)
    sock = _bind(args.host, args.port)
    app = GatewayApp(
        enforcer, args.upstream, timeout=args.timeout, public_url=args.public_url,
        max_body=args.max_body,
    )  # fmt: skip
    out.write(
        f"Gateway to {app.upstream}, trusting issuer {config.api_issuer}, "
        f"audience {config.api.audience}\n"
    )
    return _serve("Gateway", app, sock, args.workers, out)


def cmd_sideband(args: argparse.Namespace, out: TextIO) -> int:
    from resource_api.gateway import SidebandApp

    config, enforcer = _enforcer(args)
    sock = _bind(args.host, args.port)
    app = SidebandApp(
        enforcer, public_url=args.public_url, max_body=args.max_body,
        cache_seconds=args.cache_seconds,
    )  # fmt: skip
    out.write(
        f"Sideband decisions for issuer {config.api_issuer}, audience {config.api.audience}: "
        "/sideband/nginx, /sideband/envoy, /sideband/traefik, /sideband/request\n"
    )
    return _serve("Sideband", app, sock, args.workers, out)


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    split = urlsplit(value)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise argparse.ArgumentTypeError(f"must be an http(s) URL, not {value!r}")
    return value


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be a number of seconds > 0")
    return number


def _seconds(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of seconds, not {value!r}"
        ) from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be a whole number of seconds >= 0")
    return number


def add_commands(sub: Any, host: str, workers: Any) -> None:
    """Add ``gateway`` and ``sideband`` to the ``stepup`` subcommands; ``workers`` adds the
    ``--workers`` option the other servers have."""

    def common(p: argparse.ArgumentParser, port: int) -> None:
        workers(p)
        p.add_argument("--config", required=True, help="TOML config file ([api] and its rules)")
        p.add_argument("--host", default=host)
        p.add_argument("--port", type=int, default=port, help=f"default: {port}")
        p.add_argument(
            "--public-url",
            help="the API's origin as clients see it, for resource_metadata (RFC 9728); "
            "default: from X-Forwarded-Proto/-Host or Host",
        )
        p.add_argument(
            "--public", action="append", default=[], metavar="PATH",
            help="a path that needs no token (exact; repeatable), e.g. /health",
        )  # fmt: skip
        p.add_argument(
            "--max-body", type=int, default=1024 * 1024,
            help="most body bytes read for a rule that reads the body (default: 1 MiB)",
        )  # fmt: skip
        p.add_argument(
            "--log-decisions", action="store_true",
            help="write each decision record as a JSON line to stderr",
        )  # fmt: skip

    p = sub.add_parser("gateway", help="reverse proxy enforcing step-up in front of any HTTP API")
    common(p, DEFAULT_GATEWAY_PORT)
    p.add_argument(
        "--upstream",
        required=True,
        type=_http_url,
        help="the API's base URL, e.g. http://127.0.0.1:8080",
    )
    p.add_argument(
        "--timeout", type=_positive, default=30.0,
        help="seconds to wait for the upstream's answer before a 504 (default: 30)",
    )  # fmt: skip
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser("sideband", help="decision service for nginx, Envoy, Traefik and JSON")
    common(p, DEFAULT_SIDEBAND_PORT)
    p.add_argument(
        "--cache-seconds", type=_seconds, default=0, metavar="N",
        help="let nginx cache an allow for up to N seconds (X-Accel-Expires; never past the "
        "token's exp or the max_age it met; default 0: nothing cached); see docs/gateway.md",
    )  # fmt: skip
    p.set_defaults(func=cmd_sideband)
