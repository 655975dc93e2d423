"""The one retry policy: exponential backoff with a cap, a platform's retry_after honoured.
The outbox never gives up on a transient error (a reply or a card waits out any outage);
a broadcast row gives up after ``max_attempts``. The outbox sender (runtime/sender.py) and the broadcast engine
(handlers/announcements/broadcast.py) both retry with it, so it lives in the kernel."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0
    factor: float = 2.0
    #: the longest pause between two attempts: how soon a message goes after an outage
    cap: float = 300.0
    #: broadcasts only (handlers/announcements/broadcast.py); the outbox retries forever
    max_attempts: int = 12

    def delay(self, attempts: int, retry_after: float | None) -> float:
        backoff = min(self.cap, self.base * self.factor ** min(max(0, attempts), 64))
        return max(backoff if retry_after is None else 0.0, retry_after or 0.0)
