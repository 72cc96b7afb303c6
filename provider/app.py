"""``create_app(config)``: the OpenID provider as a Flask application.

One :class:`Provider` holds what every request shares — database, keys, policy, Authlib server,
clock — loaded once at start and kept in ``app.extensions["stepup_provider"]``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from flask import Flask, Response, current_app
from flask_wtf.csrf import CSRFProtect

from . import store
from .acr import AcrPolicy
from .clock import Clock
from .cors import register_cors
from .db import Database, default_database_url
from .dpop import ProviderDPoP
from .issuance import Issuance
from .keys import KeyStore, ensure_signing_key
from .migrations import PROVIDER
from .oauth import Server, build_server
from .sandbox_clients import is_loopback_uri
from .schema import Upgrade, check, upgrade
from .settings import ProviderConfig
from .token_endpoint import TokenEndpoint
from .token_route import TokenRoute
from .tokens import TokenSigner

__all__ = ["Provider", "create_app", "current_provider"]

#: The largest request body accepted (413 beyond it).
MAX_CONTENT_LENGTH = 64 * 1024

SCOPES = ["openid", "profile", "email", "offline_access", "accounts:read"]

# No script runs on the login pages. (A form may post to the client's redirect URI: form-action.)
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' http: "
    "https:; frame-ancestors 'none'; base-uri 'none'"
)
# The pages with a script — the passkey pages (the WebAuthn call), the sandbox's users (codes that
# refresh) and its timeline (new steps appear): same-origin files only, never inline, and fetch()
# only to this origin.
SCRIPTED_PAGE_CSP = f"{PAGE_CSP}; script-src 'self'; connect-src 'self'"


@dataclass
class Provider:
    config: ProviderConfig
    db: Database
    clock: Clock
    policy: AcrPolicy
    keys: KeyStore
    signer: TokenSigner
    issuance: Issuance
    server: Server
    token_endpoint: TokenEndpoint
    throttling: store.Throttling
    dpop: ProviderDPoP
    #: What start-up did to the schema (``None`` when told not to migrate).
    schema: Upgrade | None = None

    @property
    def issuer(self) -> str:
        return self.config.issuer

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")


def current_provider() -> Provider:
    provider: Provider = current_app.extensions["stepup_provider"]
    return provider


def create_app(
    config: ProviderConfig,
    *,
    database_url: str | None = None,
    database: Database | None = None,
    clock: Clock | None = None,
    migrate: bool = True,
) -> Flask:
    """Build the provider.

    ``database`` lets the sandbox share one engine between the provider and the demo API;
    otherwise ``database_url`` (default: :func:`provider.db.default_database_url`) is opened. The
    schema is migrated to this build's newest revision (:mod:`provider.schema`; with
    ``migrate=False`` it must already be there, else :class:`provider.schema.SchemaError`), the
    config's users and clients are seeded, and the signing keys are loaded (the first one is
    generated on first start). Several processes may do all this at once on one database.
    """
    clients = tuple(config.clients)
    if config.provider.sandbox:
        from .views.playground import playground_client

        clients = (*clients, playground_client(config.issuer))
    db = database or Database(database_url or default_database_url())
    clock = clock or Clock()
    schema = upgrade(db.engine, PROVIDER) if migrate else None
    if not migrate:
        check(db.engine, PROVIDER)
    settings = config.provider
    longest = max(settings.access_token_lifetime, settings.id_token_lifetime)
    with db.session() as s:
        # The users' argon2 work runs on other threads while the app is built; seeded below.
        passwords = store.start_seed(s, config.users)
        store.seed_clients(s, clients)  # before Issuance, which reads them
        secret_key = store.shared_secret(s, "flask_secret_key")
    # RFC 9449 §8: every process makes and accepts the same DPoP nonces (provider.dpop): their key
    # is derived from the secret all processes share, not stored a second time.
    nonce_secret = hmac.new(secret_key.encode(), b"stepup dpop nonces", hashlib.sha256).digest()

    generated = ensure_signing_key(db, clock.now())
    keys = KeyStore(db, clock, max_token_lifetime=longest, loaded=generated)
    policy = AcrPolicy(config.acr_levels)
    signer = TokenSigner(keys, issuer=config.issuer, audience=config.access_token_audience)
    issuance = Issuance(db, signer, settings, clock)
    dpop = ProviderDPoP(
        db,
        clock,
        issuer=config.issuer,
        nonce_secret=nonce_secret,
        require_nonce=settings.dpop_require_nonce,
    )
    server = build_server(issuance, config.issuer, SCOPES)
    token_endpoint = TokenEndpoint(issuance, dpop, SCOPES)
    provider = Provider(
        config,
        db,
        clock,
        policy,
        keys,
        signer,
        issuance,
        server,
        token_endpoint,
        store.Throttling(),
        dpop,
        schema,
    )

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="stepup_browser",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=provider.secure_cookies,
        # The CSRF token is bound to the browser's session; its lifetime is the session's.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
    )
    app.config["STEPUP_SANDBOX"] = settings.sandbox
    app.extensions["stepup_provider"] = provider
    csrf = CSRFProtect(app)

    from .views import (
        assets,
        ciba,
        discovery,
        endpoints,
        factors,
        interaction,
        logout,
        passkeys,
    )

    app.register_blueprint(assets.bp)
    app.register_blueprint(discovery.bp)
    app.register_blueprint(interaction.bp)
    app.register_blueprint(passkeys.bp)
    app.register_blueprint(endpoints.bp)
    app.register_blueprint(logout.bp)
    app.register_blueprint(ciba.bp)
    app.register_blueprint(factors.bp)
    # Endpoints that clients (not the provider's own pages) post to authenticate in other ways:
    # client credentials, bearer tokens, or the authorization request itself.
    csrf.exempt(endpoints.bp)
    csrf.exempt(factors.bp)
    csrf.exempt(interaction.authorize)
    csrf.exempt(logout.end_session)

    if settings.sandbox:
        from .views import personas, playground, sandbox

        app.register_blueprint(sandbox.bp)
        app.register_blueprint(playground.bp)
        app.register_blueprint(personas.bp)

    register_cors(
        app,
        [uri for c in clients for uri in c.redirect_uris],
        also=is_loopback_uri if settings.loopback_clients else None,
    )
    app.after_request(_security_headers)
    from .views.errors import register_error_handlers

    register_error_handlers(app)
    route = TokenRoute(
        app.wsgi_app, token_endpoint, headers=SECURITY_HEADERS, max_length=MAX_CONTENT_LENGTH
    )
    if settings.sandbox:
        from .views.sandbox import down

        route.defer = lambda: down(app)  # the fault's 503 is a Flask hook's
    app.wsgi_app = route  # type: ignore[method-assign]
    with db.session() as s:
        store.seed_users(s, config.users, passwords)
    return app


#: On every response unless a view set its own. Clickjacking: the login pages must never be framed
#: (OWASP; RFC 6749 §10.13).
SECURITY_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", PAGE_CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response
