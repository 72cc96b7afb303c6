"""Real parallel requests for the race tests: each on its own thread, released together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(sends: list[Callable[[], T]], *, timeout: float = 60) -> list[T]:
    """Run each of ``sends`` on its own thread, lined up at a barrier so that they start together;
    their results in order. An exception on a thread is raised here, in the test's thread."""
    barrier = threading.Barrier(len(sends), timeout=timeout)
    results: list[T | BaseException | None] = [None] * len(sends)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = sends[i]()
        except BaseException as exc:  # re-raised below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sends))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * timeout)
    done: list[T] = []
    for r in results:
        if isinstance(r, BaseException):
            raise r
        assert r is not None, "a thread did not finish"
        done.append(r)
    return done
