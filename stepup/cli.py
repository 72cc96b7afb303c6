"""The ``stepup`` command (DESIGN.md, contract 2).

    stepup provider   the OpenID provider
    stepup api        the demo bank API
    stepup sandbox    both, in one process, with the built-in sandbox users
    stepup demo       a narrated end-to-end step-up (exit 0 when every scene behaves)
    stepup totp USER  the user's current one-time code
    stepup rotate-keys  make a new signing key current (the old one stays published)
    stepup db upgrade   migrate the database to this build's schema (servers do it on start)
    stepup gateway    step-up in front of any HTTP API (reverse proxy; stepup/gateway_cli.py)
    stepup sideband   decisions for nginx, Envoy, Traefik and JSON callers (stepup/gateway_cli.py)
    stepup policy check  what the API's policy rules decide for a request, and why
    stepup clock      show or move a running sandbox's clock (stepup/sandbox_cli.py)
    stepup token      a signed access token with chosen claims, from a running sandbox
    stepup fault      make a running sandbox fail on purpose: cancel, refuse, unmet, down
    stepup approve USER / stepup deny USER   decide a user's pending CIBA request (their phone)

Every server takes ``--config FILE``, ``--host``, ``--port`` (sandbox: ``--provider-port``,
``--api-port``) and ``--database URL``, and prints the URLs it serves once it is listening. Where
the state lives (the database, by default in the per-user data directory) and the commands about
it are in :mod:`stepup.database`.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from client_sdk.wire import ascii_int

from .listening import Listener, ListenError, listen
from .policy_cli import add_policy_parser

# The libraries (Flask, SQLAlchemy, Authlib, ...) are imported by the commands that use them, after
# main() has turned the garbage collector off for a server's start (see main()).
if TYPE_CHECKING:
    from .config import StepupConfig

__all__ = ["main", "sandbox_config"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PROVIDER_PORT = 9000
DEFAULT_API_PORT = 9001
# The commands that start a server (see main()).
_SERVERS = frozenset({"provider", "api", "sandbox", "gateway", "sideband"})


def sandbox_config(issuer: str | None = None) -> StepupConfig:
    """The built-in sandbox configuration (``stepup/sandbox.toml``), optionally re-homed."""
    from .config import load_config

    path = resources.files("stepup").joinpath("sandbox.toml")
    with resources.as_file(path) as p:
        config = load_config(p)
    return replace(config, issuer=issuer) if issuer else config


def _load(args: argparse.Namespace, issuer: str) -> tuple[StepupConfig, bool]:
    """The config file, or the built-in sandbox config at ``issuer``; True when built in."""
    from .config import load_config

    config, builtin = (
        (load_config(args.config), False) if args.config else (sandbox_config(issuer), True)
    )
    return _with_options(config, args), builtin


def _with_options(config: StepupConfig, args: argparse.Namespace) -> StepupConfig:
    """The config with what command-line options change in it (``--allow-totp-reuse``)."""
    if not getattr(args, "allow_totp_reuse", False):
        return config
    from provider.settings import SettingsError

    try:
        settings = replace(config.provider, sandbox_allow_totp_reuse=True)
    except SettingsError as exc:  # not in sandbox mode: refused, as in the config file
        raise SettingsError(f"--allow-totp-reuse: {exc}") from None
    return replace(config, provider=settings)


def port_number(text: str) -> int:
    """``--port`` and friends: ASCII decimal digits, 0 (the OS picks) to 65535."""
    port = ascii_int(text, maximum=65535)
    if port is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def _port_of(issuer: str, fallback: int) -> int:
    return urlsplit(issuer).port or fallback


# --- printing ------------------------------------------------------------------------------------


def print_provider_links(config: StepupConfig, out: TextIO) -> None:
    out.write(f"Issuer: {config.issuer}\n")
    out.write(f"Discovery: {config.issuer}/.well-known/openid-configuration\n")
    if config.provider.sandbox:
        out.write(f"Try a login and a step-up in your browser: {config.issuer}/sandbox/try\n")
        out.write(f"Sandbox users and current codes: {config.issuer}/sandbox\n")
    if config.provider.sandbox_allow_totp_reuse:
        out.write(
            "Sandbox: one-time codes may be reused within their 30 s step (replay check off)\n"
        )
    if config.provider.sandbox_loopback_clients:
        out.write(
            "Sandbox: any client_id with a loopback redirect_uri is accepted (public, PKCE)\n"
        )
    if any("passkey" in level.factors for level in config.acr_levels):
        out.write(_passkey_note(config.issuer))


def _passkey_note(issuer: str) -> str:
    """Where passkeys work: a browser refuses an IP address as the WebAuthn RP ID."""
    import ipaddress

    from provider.factors.passkey import RelyingParty

    rp = RelyingParty.for_issuer(issuer)
    try:
        ipaddress.ip_address(rp.id)
    except ValueError:
        return f"Passkeys: RP ID {rp.id}, origin {rp.origin}\n"
    return (
        f"Passkeys: browsers refuse the IP address {rp.id} as a WebAuthn RP ID; for passkeys "
        "in a browser, start with --host localhost\n"
    )


def print_credentials(
    config: StepupConfig, out: TextIO, stored: Mapping[str, str | None] | None = None
) -> None:
    """The seeded users and clients. ``stored``: each user's TOTP secret in the database, which
    wins over the config (a user who enrolled in the browser has a secret only there)."""
    from provider.factors import totp

    out.write("\nSandbox users (built-in config; not for real accounts):\n")
    for u in config.users:
        secret = (stored or {}).get(u.username, u.totp_secret)
        if secret is None:
            factors = "password only (enrols TOTP on step-up)"
        elif u.totp_secret is None:
            factors = "password + TOTP (enrolled in the browser)"
        else:
            factors = "password + TOTP"
        out.write(f"  {u.username:<8} password: {u.password:<12} {factors}\n")
        if secret:
            uri = totp.provisioning_uri(secret, account=u.username, issuer="Stepup sandbox")
            out.write(f"           TOTP secret: {secret}\n           {uri}\n")
            out.write(f"           current code: stepup totp {u.username}\n")
    out.write("\nClients:\n")
    width = max((len(c.client_id) for c in config.clients), default=0)
    for c in config.clients:
        kind = "confidential" if c.client_secret else "public (PKCE)"
        secret = f" secret: {c.client_secret}" if c.client_secret else ""
        # A client without redirect URIs never uses the browser: say what it does instead.
        uses = (
            f"redirect: {', '.join(c.redirect_uris)}"
            if c.redirect_uris
            else f"grants: {', '.join(c.grant_types)}; scope: {c.scope}"
        )
        out.write(f"  {c.client_id:<{width}}  {kind};{secret} {uses}\n")
    out.write("\n")


def _serve(
    apps: list[tuple[str, Any, Listener]], out: TextIO, ready: threading.Event | None
) -> None:
    """Serve each (label, app, listener) on its own thread; print the URLs once listening."""
    from werkzeug.serving import make_server

    servers = []
    for label, app, listener in apps:
        server = make_server(
            listener.host, listener.port, app, threaded=True, fd=listener.sock.fileno()
        )
        listener.close()  # the server holds its own duplicate of the socket
        servers.append((label, server))
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for _, s in servers]
    gc.enable()  # off while the apps were built (main())
    for t in threads:
        t.start()
    for label, server in servers:
        out.write(f"{label} listening on http://{server.host}:{server.port}\n")
    out.write("Press Ctrl+C to stop.\n")
    out.flush()
    if ready is not None:
        ready.set()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        out.write("\nStopping.\n")
    finally:
        for _, s in servers:
            s.shutdown()


def _serve_workers(
    label: str, app: Any, listener: Listener, workers: int, engines: list[Any], out: TextIO
) -> None:
    """Serve ``app`` on ``listener`` with the production server (:mod:`stepup.serve`): worker
    processes forked from this one; print the URL once they are started.

    Database connections are not shared across fork(): the parent's are closed before it, and
    each worker's engine starts with an empty pool.
    """
    from .serve import serve

    for engine in engines:
        engine.dispose()
    out.flush()  # what was printed must not be printed again by each forked worker

    def after_fork() -> None:
        for engine in engines:
            engine.dispose(close=False)

    url = f"http://{listener.host}:{listener.port}"  # before serve() closes the socket

    def started() -> None:
        out.write(f"{label} listening on {url}\n")
        out.write("Press Ctrl+C to stop.\n")
        out.flush()

    serve(app, listener.sock, workers=workers, after_fork=after_fork, on_started=started)


# --- commands ------------------------------------------------------------------------------------


def _bind_provider(
    args: argparse.Namespace, port: int | None, option: str
) -> tuple[Listener, StepupConfig, bool]:
    """The provider's socket, bound before anything is printed, and its config: the file's, or
    the built-in one at the address really bound (``--port 0`` picks a free port). True when
    built in."""
    from .config import load_config

    config = _with_options(load_config(args.config), args) if args.config else None
    if port is None:
        port = _port_of(config.issuer, DEFAULT_PROVIDER_PORT) if config else DEFAULT_PROVIDER_PORT
    listener = listen(args.host, port, option)
    if config is None:
        built_in = sandbox_config(f"http://{args.host}:{listener.port}")
        return listener, _with_options(built_in, args), True
    return listener, config, False


def _provider_workers(args: argparse.Namespace, config: StepupConfig) -> int:
    """``--workers``, or its default: one per CPU, but one for a sandbox config, whose clock
    (``POST /sandbox/clock``) lives in the process that serves it."""
    from .config import ConfigError
    from .serve import default_workers

    if config.provider.sandbox:
        if args.workers not in (None, 1):
            raise ConfigError(
                "--workers must be 1 with a sandbox config: the sandbox clock lives in one "
                "process (use a config without `sandbox = true` for more workers)"
            )
        return 1
    return int(args.workers or default_workers())


def cmd_provider(args: argparse.Namespace, out: TextIO) -> int:
    from .config import ConfigError
    from .database import database_url, print_database, reachable_database

    listener, config, builtin = _bind_provider(args, args.port, "--port")
    try:
        workers = _provider_workers(args, config)
    except ConfigError:
        listener.close()
        raise
    db = reachable_database(database_url(args))
    schema, signing_key = _prepare_provider_database(db, migrate=args.migrate)
    from provider import create_app  # Flask, Authlib, the views: while the key is generated

    signing_key()
    app = create_app(config, database=db, migrate=args.migrate)
    print_provider_links(config, out)
    print_database(out, db.location, [schema])
    if builtin:
        print_credentials(config, out, _factors_in_database(app))
    engine = app.extensions["stepup_provider"].db.engine
    _serve_workers("Provider", app, listener, workers, [engine], out)
    return 0


def _prepare_provider_database(db: Any, *, migrate: bool) -> tuple[Any, Callable[[], object]]:
    """What ``create_app`` would do first, done before the provider's web stack is imported:
    the schema brought to (or checked at) the newest revision, and on a new database the first
    signing key started on a thread (:func:`provider.keys.start_signing_key`), so that its
    generation overlaps the imports. Returns what was done to the schema (for the banner) and
    the function that stores the key; ``create_app`` then finds both done."""
    from provider.clock import Clock
    from provider.keys import start_signing_key
    from provider.migrations import PROVIDER
    from provider.schema import check, upgrade

    schema = upgrade(db.engine, PROVIDER) if migrate else None
    if not migrate:
        check(db.engine, PROVIDER)
    return schema, start_signing_key(db, Clock().now())


def cmd_api(args: argparse.Namespace, out: TextIO) -> int:
    import resource_api

    from .database import checked_location, database_url, print_database

    config, _ = _load(args, f"http://{args.host}:{DEFAULT_PROVIDER_PORT}")
    listener = listen(args.host, _given(args.port, DEFAULT_API_PORT), "--port")
    url = database_url(args)
    location = checked_location(url)
    app = resource_api.create_app(config, database_url=url, migrate=args.migrate)
    out.write(
        f"Demo bank API trusting issuer {config.api_issuer}, audience {config.api.audience}\n"
    )
    print_database(out, location, [app.extensions["bank_schema"]])
    from .serve import default_workers

    workers = args.workers or default_workers()
    _serve_workers("API", app, listener, workers, [app.extensions["bank"].engine], out)
    return 0


def build_sandbox(
    config: StepupConfig, database_url: str, clock: Any = None, *, migrate: bool = True
) -> tuple[Any, Any]:
    """The provider and the demo API sharing one database and one clock."""
    import resource_api
    from provider import Clock, create_app

    clock = clock or Clock()
    provider_app = create_app(config, database_url=database_url, clock=clock, migrate=migrate)
    api_app = resource_api.create_app(
        config, database_url=database_url, clock=clock, migrate=migrate
    )
    timeline = provider_app.extensions.get("sandbox_timeline")
    if timeline is not None:  # sandbox mode: the API's side of the step-up timeline
        from provider.views.sandbox import record_api

        record_api(api_app, timeline, clock)
    return provider_app, api_app


def cmd_sandbox(args: argparse.Namespace, out: TextIO, ready: threading.Event | None = None) -> int:
    from .database import checked_location, database_url, print_database, reset_database

    provider_listener, config, builtin = _bind_provider(args, args.provider_port, "--provider-port")
    try:
        api_listener = listen(args.host, _given(args.api_port, DEFAULT_API_PORT), "--api-port")
    except ListenError:
        provider_listener.close()
        raise
    url = database_url(args)
    if args.reset:
        reset_database(url, out)
    location = checked_location(url)
    provider_app, api_app = build_sandbox(config, url, migrate=args.migrate)
    print_provider_links(config, out)
    out.write(f"Demo bank API: http://{args.host}:{api_listener.port}/accounts\n")
    schemas = [provider_app.extensions["stepup_provider"].schema, api_app.extensions["bank_schema"]]
    print_database(out, location, schemas)
    if builtin:
        print_credentials(config, out, _factors_in_database(provider_app))
    _serve(
        [("Provider", provider_app, provider_listener), ("API", api_app, api_listener)],
        out,
        ready,
    )
    return 0


def _given(port: int | None, default: int) -> int:
    return default if port is None else port


def _factors_in_database(provider_app: Any) -> dict[str, str | None]:
    """Each user's TOTP secret as the provider's database has it: a secret enrolled in the
    browser is only there, and the banner must not call such a user "password only"."""
    from sqlalchemy import select

    from provider.models import User

    with provider_app.extensions["stepup_provider"].db.session() as s:
        return {
            row.username: row.totp_secret
            for row in s.execute(select(User.username, User.totp_secret))
        }


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from .demo import run_demo

    return run_demo(step=args.step, color=args.color, out=out)


def cmd_totp(args: argparse.Namespace, out: TextIO) -> int:
    from .database import cmd_totp as run

    return run(args, out)


def cmd_rotate_keys(args: argparse.Namespace, out: TextIO) -> int:
    from .database import cmd_rotate_keys as run

    return run(args, out)


def cmd_db_upgrade(args: argparse.Namespace, out: TextIO) -> int:
    from .database import cmd_db_upgrade as run

    return run(args, out)


def _version() -> str:
    """The installed distribution's version (``pyproject.toml`` of the checkout it came from)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stepup-stack")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _positive_int(text: str) -> int:
    number = ascii_int(text, maximum=4096)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (1 or more)")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepup", description="Step-up authentication stack.")
    parser.add_argument("--version", action="version", version=f"stepup {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML config file (default: built-in sandbox config)")
        p.add_argument(
            "--database",
            help="SQLAlchemy URL (default: $STEPUP_DATABASE_URL, else stepup.db in "
            "$XDG_DATA_HOME/stepup or ~/.local/share/stepup)",
        )

    def migrating(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--no-migrate",
            dest="migrate",
            action="store_false",
            help="do not migrate the database on start; refuse to start unless `stepup db "
            "upgrade` has brought it to this build's schema",
        )

    def workers(p: argparse.ArgumentParser, sandbox_note: str = "") -> None:
        p.add_argument(
            "--workers",
            type=_positive_int,
            help=f"server processes (default: one per CPU{sandbox_note})",
        )

    def totp_reuse(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--allow-totp-reuse",
            action="store_true",
            help="sandbox mode only: accept a one-time code again within its 30 s step, for test "
            "suites that step the same user up many times (the replay check is off)",
        )

    p = sub.add_parser("provider", help="run the OpenID provider")
    common(p)
    migrating(p)
    totp_reuse(p)
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument(
        "--port", type=port_number, help=f"default: the issuer's port or {DEFAULT_PROVIDER_PORT}"
    )
    workers(p, "; 1 with a sandbox config")
    p.set_defaults(func=cmd_provider)

    p = sub.add_parser("api", help="run the demo bank API")
    common(p)
    migrating(p)
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=port_number, help=f"default: {DEFAULT_API_PORT}")
    workers(p)
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("sandbox", help="run the provider and the demo API in one process")
    common(p)
    migrating(p)
    p.add_argument(
        "--reset",
        action="store_true",
        help="start over: remove the database's users, sessions, tokens, keys and accounts "
        "first (and say what was removed), then seed it anew",
    )
    totp_reuse(p)
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--provider-port", type=port_number, help=f"default: {DEFAULT_PROVIDER_PORT}")
    p.add_argument("--api-port", type=port_number, help=f"default: {DEFAULT_API_PORT}")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("demo", help="narrated end-to-end step-up run")
    p.add_argument("--step", action="store_true", help="wait for Enter between scenes")
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour output (default: when writing to a terminal)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("totp", help="print a user's current TOTP code")
    common(p)
    p.add_argument("user")
    p.set_defaults(func=cmd_totp)

    p = sub.add_parser("rotate-keys", help="make a new signing key current")
    common(p)
    p.set_defaults(func=cmd_rotate_keys)

    add_db_parser(sub, common)

    from .gateway_cli import add_commands

    add_commands(sub, DEFAULT_HOST, workers)

    add_policy_parser(sub)

    from .sandbox_cli import add_sandbox_commands

    add_sandbox_commands(sub)
    return parser


def add_db_parser(sub: Any, common: Any) -> None:
    db = sub.add_parser("db", help="the database: migrate it to this build's schema")
    actions = db.add_subparsers(dest="action", required=True)
    p = actions.add_parser(
        "upgrade",
        help="migrate the provider's and the demo bank's tables to this build's newest "
        "revisions, and say from which to which",
    )
    common(p)
    p.set_defaults(func=cmd_db_upgrade)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    from .sandbox_cli import negative_values

    args = build_parser().parse_args(negative_values(list(sys.argv[1:] if argv is None else argv)))
    collecting = gc.isenabled()
    if args.command in _SERVERS:
        # A server's start is mostly imports and building the app: objects that live as long as
        # the process. The collector would walk them again and again as they pile up (~15% of
        # the start's CPU, measured); it is turned back on when the server starts serving
        # (stepup.serve freezes what was built first, so forked workers share its pages).
        gc.disable()
    from provider.db import DatabaseUnavailable
    from provider.schema import SchemaError
    from provider.settings import SettingsError
    from resource_api.errors import ConfigurationError

    try:
        result: int = args.func(args, out or sys.stdout)
    except (SettingsError, ConfigurationError) as exc:
        # ConfigError (the file) is a SettingsError; the libraries' own checks land here too —
        # those found while the app was built (a route matching no view) name no file: add it.
        config = getattr(args, "config", None)
        source = f"{config}: " if config and not isinstance(exc, SettingsError) else ""
        sys.stderr.write(f"stepup: configuration error: {source}{exc}\n")
        return 2
    except (DatabaseUnavailable, SchemaError) as exc:
        sys.stderr.write(f"stepup: {exc}\n")
        return 1
    except ListenError as exc:
        sys.stderr.write(f"stepup {args.command}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        # Ctrl-C: the user asked to stop; end the "^C" line, no traceback, the shell's 128 + SIGINT.
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        # `stepup demo | head`: the reader went away; not an error worth a message.
        sys.stderr.close()
        return 0
    except OSError as exc:
        sys.stderr.write(f"stepup: {exc}\n")
        return 1
    finally:
        if collecting:
            gc.enable()
    return result


if __name__ == "__main__":
    raise SystemExit(main())
