"""One aiohttp session for every account of a platform.

An ``aiohttp.ClientSession`` per account meant a connector, a connection pool and its own
TLS connections per institution: a thousand institutions on one platform opened a thousand
pools to the same API server, and every first call of every account paid its own TCP and
TLS handshake. A session only carries what every account shares (the pool, the SSL
context, a User-Agent); the token, the rate limiter and the long poll stay per account,
so an adapter group makes one :class:`SharedSession` and hands it to all its clients,
which send their credentials with each request.

The pool is sized like Telegram's (bots/telegram/session.py): a long poll holds a
connection for its whole wait, so the limit is the accounts that long-poll plus room for
sends; with aiohttp's default of 100 the 101st polling bot would wait for a free
connection instead of receiving.
"""

from __future__ import annotations

import aiohttp

#: connections the session may open besides the long polls it holds (sends, subscriptions)
SPARE_CONNECTIONS = 100


class SharedSession:
    """A client session opened on first use, shared by every account of a group and closed
    once by its owner (the group, or a lone client made for ``check --online``).

    Opening lazily keeps building a group free of I/O (a group that never starts, such as
    a worker's send-only group, opens nothing); reopening after :meth:`close` lets a
    stopped group start again."""

    def __init__(self, *, long_polls: int = 0, user_agent: str = "priemnaya") -> None:
        self.limit = long_polls + SPARE_CONNECTIONS
        self._headers = {"User-Agent": user_agent}
        self._session: aiohttp.ClientSession | None = None
        #: sessions opened so far (tests and benchmarks count them)
        self.opened = 0

    def get(self) -> aiohttp.ClientSession:
        """The open session (opened now if it is not)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self.limit),
            )
            self.opened += 1
        return self._session

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def close(self) -> None:
        """Close the open session. One that a late call opens while this one is closing
        (aiohttp reports a session closed as soon as its close begins) is closed too,
        instead of being dropped unclosed."""
        while self._session is not None:
            session, self._session = self._session, None
            await session.close()
