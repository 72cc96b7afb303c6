"""Serving the WSGI apps of ``stepup provider`` and ``stepup api``: granian, several processes.

Why granian (docs/benchmarks.md, "Choosing the server", has the figures): it speaks HTTP/1.1 with
keep-alive from Rust and hands each request to the WSGI app, so the server's own share of a request
is a fraction of gunicorn's or waitress's, and it runs worker processes like gunicorn does.

How: the command builds its app once, in this process — keys parsed, config seeded, clients read —
and the workers are *forked* from it, so each starts serving at once with the app already built,
and they share its memory pages until they write to them. Every guarantee that must hold across
workers already lives in the database (single-use codes, refresh rotation, TOTP steps, lockout,
signing keys and their rotation, the cookie secret): nothing depends on being one process.

Shutdown: SIGTERM or SIGINT stops accepting, lets in-flight requests finish, then exits 0.

``stepup sandbox`` keeps the threaded development server (``stepup.cli``): it runs the provider
and the API in one process, sharing one clock and one engine (DESIGN.md contract 2).
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["default_workers", "serve"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Requests one worker runs at once. The provider's work is CPU (RS256 signatures) and short
# database statements: more threads only queue on the GIL (measured, authorization_code exchange:
# 1.55 CPU ms per token with 4, 1.33 with 2, 1.35 with 1), while a second one lets a slow request
# (an argon2 password check, which releases the GIL, ~20-50 ms) not hold up the worker.
THREADS_PER_WORKER = 2


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_APP: WSGIApp | None = None


def _load_app() -> WSGIApp:
    """Called in each forked worker: the app built before the fork."""
    assert _APP is not None
    return _APP


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up before the fork (``ctypes`` costs each process that imports it
    ~5 ms), or ``None`` where there is none."""
    import ctypes

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: nothing to do
        return None
    return prctl


def _die_with_parent(prctl: Callable[..., int] | None) -> None:
    """Linux: a worker whose parent is gone (killed before it could stop its workers) gets
    SIGTERM instead of serving on as an orphan."""
    if prctl is not None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_until_bound(address: str, port: int, timeout: float = 30.0) -> None:
    """Return once a worker has bound the port (a connection is accepted), so that what is
    announced as listening does not refuse connections in the instant before."""
    import time

    wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 (connect to)
    host = wildcard.get(address, address)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.005)


def serve(
    app: WSGIApp,
    sock: socket.socket,
    *,
    workers: int,
    after_fork: Callable[[], None] | None = None,
    on_started: Callable[[], None] | None = None,
    asgi: bool = False,
) -> None:
    """Serve ``app`` on the bound, listening ``sock`` with ``workers`` processes until SIGTERM
    or SIGINT, then finish the requests in flight and return.

    ``after_fork`` runs in each worker before it serves (e.g. to drop database connections
    inherited from the parent); ``on_started`` runs in this process once the workers are
    started. ``sock`` says where: the workers bind that address themselves (see below).
    ``asgi``: ``app`` is an ASGI app (``stepup gateway``, ``stepup sideband``), run on each
    worker's event loop, with the lifespan protocol.
    """
    import multiprocessing

    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import MPServer

    if multiprocessing.get_start_method() != "fork":
        raise OSError(errno.ENOTSUP, "the production server needs fork() (Linux)")

    global _APP
    _APP = app
    prctl = _prctl()
    # What every worker would import for itself otherwise, imported once here and shared: the
    # "idna" codec, which Werkzeug's URL map uses on each request's host (the first request of
    # each worker paid ~3-10 ms for it) and this process's wait for the port too.
    import encodings.idna  # noqa: F401

    def loader() -> WSGIApp:
        _die_with_parent(prctl)
        if after_fork is not None:
            after_fork()
        return _load_app()

    class Server(MPServer):
        def signal_handler_interrupt(self, signum: int, *args: Any) -> None:
            if os.getpid() != self.pid:
                # A worker, signalled before it replaced the handler it inherited at fork():
                # it serves nothing yet, so it stops the default way (else the parent would wait
                # for it forever).
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            super().signal_handler_interrupt(signum, *args)  # type: ignore[no-untyped-call]

        def _stop_workers(self) -> None:
            """Stop every worker, waiting for its requests in flight. A worker that was still
            starting may miss the signal (granian installs its handler, then starts serving):
            it is told again each second until it stops."""
            workers: list[Any] = list(self.wrks)  # granian's WorkerProcess (untyped)
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.join(1.0)
                while worker.is_alive():
                    worker.terminate()
                    worker.join(1.0)
            self.wrks.clear()

        def startup(self, spawn_target: Any, target_loader: Any) -> None:
            super().startup(spawn_target, target_loader)  # type: ignore[no-untyped-call]
            _wait_until_bound(address, port)
            if on_started is not None:
                on_started()

    address, port = sock.getsockname()[:2]
    # Each worker binds its own socket to this address with SO_REUSEPORT, and the kernel spreads
    # connections across them. (Workers accepting on one shared socket measured badly: one
    # worker took nearly every keep-alive connection.) The command's socket has done its job —
    # any error about the address was reported before anything was printed — and it is closed
    # now, so that it is not one of the sockets connections are spread over; a socket without
    # SO_REUSEPORT still cannot take the port while the workers hold it.
    sock.close()
    server = Server(
        "stepup",
        address=address,
        port=port,
        interface=Interfaces.ASGI if asgi else Interfaces.WSGI,
        workers=workers,
        # granian runs an ASGI app on its event loop: one blocking thread is all it allows.
        blocking_threads=1 if asgi else THREADS_PER_WORKER,
        log_level=LogLevels.warning,
        log_access=False,
    )
    # What was built before the fork (modules, the app) lives as long as the server: moved out of
    # the collector's reach, so that no worker's collection writes to those pages (they stay
    # shared, copy-on-write) or spends time walking them. The command may have turned the
    # collector off while it built the app (stepup.cli.main); on from here, in every process.
    gc.freeze()
    gc.enable()
    try:
        server.serve(target_loader=loader, wrap_loader=False)
    finally:
        gc.unfreeze()
