"""Outgoing pace for one Telegram bot: Telegram allows about 30 messages a second per bot,
about one a second to one private chat (short bursts tolerated) and 20 a minute to a group.
Going faster earns 429s and, repeated, a longer ban; so ``send`` waits for its turn here
instead of failing, and the outbox never sees a 429 in normal operation.

Each limit is an aiolimiter leaky bucket: ``(max_rate, time_period)`` lets ``max_rate``
messages through at once, then one every ``time_period / max_rate`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiolimiter import AsyncLimiter

Rate = tuple[float, float]

#: keep at most this many idle per-chat buckets before pruning the drained ones
_PRUNE_AT = 4096


@dataclass(frozen=True, slots=True)
class TelegramRates:
    """Limits as (max_rate, time_period) pairs; scale them for benchmarks and tests."""

    overall: Rate = (30.0, 1.0)
    private_chat: Rate = (3.0, 3.0)  # 1/s, bursts of 3
    group_chat: Rate = (20.0, 60.0)  # 20/min

    def scaled(self, factor: float) -> TelegramRates:
        """The same bursts, ``factor`` times faster."""
        return TelegramRates(
            overall=(self.overall[0], self.overall[1] / factor),
            private_chat=(self.private_chat[0], self.private_chat[1] / factor),
            group_chat=(self.group_chat[0], self.group_chat[1] / factor),
        )


class Pacer:
    """One bot's limiters: overall plus one per chat (private and group differ)."""

    def __init__(self, rates: TelegramRates) -> None:
        self.rates = rates
        self._overall = AsyncLimiter(*rates.overall)
        self._chats: dict[str, AsyncLimiter] = {}

    async def wait(self, chat_id: str) -> None:
        """Return when one more message to ``chat_id`` keeps the bot within its limits.

        The chat's own limit is waited for first so that a slow group does not hold a slot
        of the overall budget while other chats could use it."""
        await self._chat(chat_id).acquire()
        await self._overall.acquire()

    def _chat(self, chat_id: str) -> AsyncLimiter:
        limiter = self._chats.get(chat_id)
        if limiter is None:
            if len(self._chats) >= _PRUNE_AT:
                self._prune()
            rate = self.rates.group_chat if is_group(chat_id) else self.rates.private_chat
            limiter = self._chats[chat_id] = AsyncLimiter(*rate)
        return limiter

    def _prune(self) -> None:
        """Forget chats whose bucket has fully drained: a new bucket behaves the same."""
        for key in [k for k, lim in self._chats.items() if lim.has_capacity(lim.max_rate)]:
            del self._chats[key]


def is_group(chat_id: str) -> bool:
    """Telegram gives groups and channels negative ids (or an @username); users positive."""
    return chat_id.startswith(("-", "@"))
