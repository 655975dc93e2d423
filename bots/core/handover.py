"""Handing one update to the app, shared by the adapters that receive raw updates
themselves (MAX, OK): log it by ids only, count failures per update key, and skip an
update that keeps failing so that one poisoned update cannot block the rest forever."""

from __future__ import annotations

import logging
from collections import Counter

from bots.core.model import Event
from bots.core.platform import EventHandler, NotStored

log = logging.getLogger(__name__)

#: attempts at an update whose handling keeps failing before it is skipped (an ERROR line)
MAX_ATTEMPTS = 10


class HandOver:
    """``await hand_over(handler, event)``: True when the update is done with (handled, or
    skipped after MAX_ATTEMPTS), False when it must come again."""

    def __init__(self, account: str, max_attempts: int = MAX_ATTEMPTS) -> None:
        #: how the account is named in log lines ("max bot 5100", "ok group school-17")
        self.account = account
        self.max_attempts = max_attempts
        self._attempts: Counter[str] = Counter()

    async def __call__(self, handler: EventHandler, event: Event) -> bool:
        key = event.update_key
        try:
            log.info(
                "%s: %s from %s in %s",
                self.account,
                key.split(":", 1)[0],
                event.user.id,
                event.chat.chat_id,
            )
            await handler(event)
        except NotStored:  # never skipped: it comes again, however often this happens
            log.warning("%s: update %s not stored", self.account, key)
            return False
        except Exception:
            self._attempts[key] += 1
            if self._attempts[key] >= self.max_attempts:
                log.exception(
                    "%s: update %s failed %d times; skipping it",
                    self.account,
                    key,
                    self.max_attempts,
                )
                del self._attempts[key]
                return True
            log.exception("%s: update %s failed; it will come again", self.account, key)
            return False
        self._attempts.pop(key, None)
        return True
