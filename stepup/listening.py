"""Open the servers' listening sockets before anything is printed.

A server command binds its ports first, so a port that is taken (or a host that does not resolve)
is reported in one line that names the option to change — ``--port``, or ``--provider-port`` /
``--api-port`` for ``stepup sandbox`` — instead of after the banner, or as werkzeug's two-line
message followed by an exit the command does not control. The bound socket is then handed to the
server (``fd=``), so the port cannot be taken between the check and the start.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

__all__ = ["ListenError", "Listener", "listen"]


class ListenError(OSError):
    """A server could not listen where it was asked to; the message says what to change."""


@dataclass(frozen=True)
class Listener:
    """One bound, listening socket and the option that chose its port."""

    sock: socket.socket
    host: str
    option: str

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


def listen(host: str, port: int, option: str, *, backlog: int = 128) -> Listener:
    """Bind and listen on ``host:port`` (``port`` 0: one the system picks).

    ``option`` is the command-line option that sets this port, named in the error.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As every server does: a restart may bind while old connections are in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except socket.gaierror:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}: no such host; choose another with --host"
        ) from None
    except OSError as exc:
        sock.close()
        raise ListenError(_reason(host, port, option, exc)) from None
    return Listener(sock, host, option)


def _reason(host: str, port: int, option: str, exc: OSError) -> str:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is already in use on {host}; choose another with {option} PORT"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port}; choose a port above 1023 with {option} PORT"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host} is not an address of this machine (--host)"
    return f"cannot listen on {where}: {exc.strerror or exc}; choose another with {option} PORT"
