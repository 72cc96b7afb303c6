"""Time, injected: every decision about time in the provider reads ``clock.now()``.

Tests freeze time with freezegun (``now`` calls :func:`time.time` at each call, so it follows a
frozen clock); the sandbox and ``stepup demo`` move time forward with :meth:`Clock.advance` to show
``max_age`` without waiting.
"""

from __future__ import annotations

import time

__all__ = ["Clock"]


class Clock:
    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def now(self) -> int:
        """Epoch seconds: the unit of ``iat``, ``exp`` and ``auth_time`` (RFC 7519 NumericDate)."""
        return int(time.time()) + self.offset

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: int) -> None:
        self.offset += seconds
