"""Time, injected: every decision about time in the provider reads ``clock.now()``.

Tests freeze time with freezegun (``now`` calls :func:`time.time` at each call, so it follows a
frozen clock); the sandbox and ``stepup demo`` move time forward with :meth:`Clock.advance` (or
put it at a chosen time with :meth:`Clock.set`) to show ``max_age`` without waiting. In
``stepup sandbox`` the provider and the demo API share one clock object, so moving it moves both.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Clock"]


class Clock:
    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        # POST /sandbox/clock moves it from a request thread while others read it.
        self._lock = threading.Lock()

    def now(self) -> int:
        """Epoch seconds: the unit of ``iat``, ``exp`` and ``auth_time`` (RFC 7519 NumericDate)."""
        return int(time.time()) + self.offset

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: int) -> None:
        with self._lock:
            self.offset += seconds

    def set(self, epoch: int) -> None:
        """Make ``now()`` answer ``epoch`` at this instant (time keeps running from there)."""
        with self._lock:
            self.offset = epoch - int(time.time())

    def reset(self) -> None:
        """Back to the real time."""
        with self._lock:
            self.offset = 0
