"""Admission: a bounded number of requests in the server (generating, waiting or being tokenised); beyond it, 429.

A request is admitted before its body is parsed, its chat template applied and its prompt tokenised (that work
runs in a small thread pool, off the event loop), so that expensive preparation is bounded too. It holds its
ticket until its generation has finished, however it ends (`Ticket.release` is idempotent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .protocol import APIError


class Ticket:
    """One admitted request; `prepared()` when it reaches the scheduler, `release()` when it is over."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._preparing = True
        self._released = False

    def prepared(self) -> None:
        with self._admission.lock:
            if self._preparing:
                self._preparing = False
                self._admission.preparing -= 1
        self._admission.on_change()

    def release(self) -> None:
        with self._admission.lock:
            if self._released:
                return
            self._released = True
            if self._preparing:
                self._preparing = False
                self._admission.preparing -= 1
            self._admission.admitted -= 1
        self._admission.on_change()


class Admission:
    """At most `capacity + queue` requests admitted at once; the next one is refused with 429 at once."""

    def __init__(
        self,
        capacity: int,
        queue: int,
        retry_after: int,
        on_reject: Callable[[], None] = lambda: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.limit = capacity + queue
        self.retry_after = retry_after
        self.on_reject = on_reject
        self.on_change = on_change
        self.lock = threading.Lock()
        self.admitted = 0
        self.preparing = 0

    def admit(self) -> Ticket:
        with self.lock:
            if self.admitted >= self.limit:
                full = True
            else:
                full = False
                self.admitted += 1
                self.preparing += 1
        if full:
            self.on_reject()
            raise APIError(
                429,
                f"The server is busy: {self.limit} requests are admitted already. Retry later.",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(self.retry_after)},
            )
        return Ticket(self)
