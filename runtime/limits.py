"""What a process serving many bots needs from the operating system, checked at start.

Open files: every polling bot holds a long poll (a socket) and, under a backlog, sockets for
its sends; SQLite holds its file, -wal and -shm. With a thousand polling bots the usual soft
limit of 1024 runs out: "Too many open files", then SQLite cannot open its file and nothing
is sent for anyone. So ``run`` estimates what the configured accounts need, raises the soft
limit up to the hard limit when that is short, and otherwise says in the log, in Russian for
the administrator, which number to set (LimitNOFILE in the systemd unit, ``ulimits: nofile``
in docker-compose) or to move the bots to webhooks, which need no socket per bot.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass

from bots.platforms import PLATFORMS
from handlers.config import LoadedConfig

log = logging.getLogger(__name__)

#: sockets a polling account may hold: its long poll, a send, one more under a backlog
PER_POLLING_ACCOUNT = 3
#: the shared HTTP pools' spare connections, the database files, the server, logs, watchers
BASE = 256


@dataclass(frozen=True, slots=True)
class OpenFiles:
    polling: int
    webhook: int
    need: int
    soft: int
    hard: int
    #: the soft limit after the check (raised, or as it was)
    now: int

    @property
    def enough(self) -> bool:
        return self.now >= self.need


def accounts_by_mode(loaded: LoadedConfig) -> tuple[int, int]:
    """(polling, webhook) accounts; institutions sharing a token count once."""
    polling: set[tuple[str, str]] = set()
    webhook: set[tuple[str, str]] = set()
    for kind in PLATFORMS:
        for spec in loaded.accounts(kind):
            key = (kind, spec.account.token.get_secret_value())
            # VK has no mode: its long poll is the only way it receives
            mode = getattr(spec.account, "mode", "polling")
            (polling if mode == "polling" else webhook).add(key)
    return len(polling), len(webhook)


def needed(polling: int, webhook: int) -> int:
    """Open files the accounts need: sockets per polling account, one incoming connection
    per webhook account, and a fixed base."""
    return BASE + PER_POLLING_ACCOUNT * polling + webhook


def ensure_open_files(
    loaded: LoadedConfig,
    *,
    get: Callable[[int], tuple[int, int]] = resource.getrlimit,
    set_: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> OpenFiles:
    """Compare RLIMIT_NOFILE with what the config needs; raise the soft limit when short
    and the hard limit allows; log what to change when it does not."""
    polling, webhook = accounts_by_mode(loaded)
    need = needed(polling, webhook)
    soft, hard = get(resource.RLIMIT_NOFILE)
    now = soft
    if _below(soft, need):
        # up to the hard limit, which only root may raise (no limit: twice the need)
        target = 2 * need if hard == resource.RLIM_INFINITY else hard
        if target > soft:
            try:
                set_(resource.RLIMIT_NOFILE, (target, hard))
                now = target
            except (OSError, ValueError) as exc:
                log.warning("could not raise the open-file limit to %d: %s", target, exc)
    result = OpenFiles(polling, webhook, need, soft, hard, now)
    if now != soft:
        log.warning(
            "open-file limit raised from %d to %d (%d polling and %d webhook accounts need ~%d)",
            soft,
            now,
            polling,
            webhook,
            need,
        )
    if not result.enough:
        log.error(
            "Мало открытых файлов: разрешено %d (жёсткий предел %s), а %d ботам с опросом "
            "(polling) и %d с вебхуками нужно около %d. Поднимите предел до %d: в "
            "systemd-юните LimitNOFILE=%d, в docker-compose ulimits: nofile: %d (или "
            "`ulimit -n %d` перед запуском). Либо переведите ботов на вебхуки (mode: webhook "
            "и server.public_url): им не нужно по соединению на бота. Иначе при нагрузке "
            "будет «Too many open files», и база данных перестанет открываться.",
            now,
            "без предела" if hard == resource.RLIM_INFINITY else hard,
            polling,
            webhook,
            need,
            _advice(need),
            _advice(need),
            _advice(need),
            _advice(need),
        )
    return result


def _below(soft: int, need: int) -> bool:
    return soft != resource.RLIM_INFINITY and soft < need


def _advice(need: int) -> int:
    """A round number with room to grow: the need doubled, to the next thousand."""
    return -(-2 * need // 1000) * 1000
