"""Several institutions on VK, OK and MAX in one app: every platform's accounts call their
API over one shared HTTP session, and stopping the app closes it.

Accounts with sessions of their own can never send over the same TCP connection, so a
connection that carried the calls of two institutions' accounts shows they share a pool.
An unclosed aiohttp session makes aiohttp complain ("Unclosed client session") once it is
collected, so collecting a stopped group shows it left none open.
"""

from __future__ import annotations

import gc
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.model import Event
from bots.core.payloads import MemoryPayloadStore
from bots.max import create_group as create_max_group
from bots.max.account import MaxAccount
from bots.max.platform import MaxPlatform
from bots.ok import create_group as create_ok_group
from bots.ok.config import OkAccount
from bots.ok.platform import OkPlatform
from handlers.config import load_config
from runtime.app import App
from tests.contract.harness_vk import MemoryState
from tests.emulators.max import MaxEmulator
from tests.emulators.ok import OkEmulator
from tests.emulators.vk import VkEmulator

INSTITUTIONS = 3
#: short MAX long polls and quick OK polling, so that stopping waits for nothing long
FAST: dict[str, Any] = {"max": {"poll_timeout": 5}, "ok": {"poll_interval": 0.2}}
CITIZEN = 501
QUESTION = "Как оплатить питание в столовой?"
ANSWER = "лицевой счёт"
FAQ = f"""\
entries:
  - id: meal-payment
    category: Питание
    questions: ["{QUESTION}"]
    answer: Питание оплачивается через {ANSWER} ученика.
"""


def vk_token(i: int) -> str:
    return f"vk1.a.school-{i}"


def ok_token(i: int) -> str:
    return f"tkn1school{i}"


def max_token(i: int) -> str:
    return f"max-school-token-{i}"


def staff_chat(i: int) -> int:
    return -7000000001 - i


def write_config(tmp_path: Path, vk: VkEmulator, ok: OkEmulator, mx: MaxEmulator) -> Path:
    (tmp_path / "faq.yaml").write_text(FAQ, encoding="utf-8")
    institutions = ""
    for i in range(INSTITUTIONS):
        institutions += f"""\
  school-{i}:
    name: Школа № {i}
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq.yaml
    vk: {{token: "{vk_token(i)}", group_id: {100 + i}, api_url: "{vk.api_url}", wait: 1}}
    ok: {{token: "{ok_token(i)}", api_url: "{ok.url}", mode: polling}}
    max: {{token: "{max_token(i)}", api_url: "{mx.url}"}}
    staff:
      chat: {{platform: max, id: {staff_chat(i)}}}
      members: [{{platform: max, id: {7001 + i}, name: Иванова А. П.}}]
"""
    path = tmp_path / "config.yaml"
    path.write_text(
        f"storage: {{path: data/bot.sqlite3}}\ntimezone: Europe/Moscow\ninstitutions:\n"
        f"{institutions}",
        encoding="utf-8",
    )
    return path


async def ask(vk: VkEmulator, ok: OkEmulator, mx: MaxEmulator, app: App, i: int) -> None:
    """A citizen asks institution ``i`` on every platform, one after another; each answer
    arrives (and the app has nothing left to send) before the next question."""
    await vk.user_says(100 + i, CITIZEN, QUESTION)
    await vk.wait_until(lambda: any(ANSWER in m.text for m in vk.messages(100 + i, CITIZEN)))
    await app.settle()

    chat = ok.dialog(ok_token(i), CITIZEN).chat_id
    ok.user_says(ok_token(i), chat, QUESTION)
    await ok.wait_until(lambda: any(ANSWER in m.text for m in ok.bot_messages(ok_token(i), chat)))
    await app.settle()

    dialog = mx.dialog(max_token(i), CITIZEN).chat_id
    mx.user_says(max_token(i), dialog, QUESTION)
    await mx.wait_until(
        lambda: any(ANSWER in m.text for m in mx.bot_messages(max_token(i), dialog))
    )
    await app.settle()


def shared(connections: dict[Any, set[str]]) -> list[set[str]]:
    """The accounts of every client connection that carried calls of more than one."""
    return [tokens for tokens in connections.values() if len(tokens) > 1]


async def test_accounts_of_a_platform_share_one_session_that_stop_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with VkEmulator() as vk, OkEmulator() as ok, MaxEmulator() as mx:
        for i in range(INSTITUTIONS):
            vk.add_community(100 + i, vk_token(i))
            ok.add_group(ok_token(i), 200 + i)
            mx.add_bot(max_token(i), 300 + i, username=f"school{i}_bot")
            mx.open_group(max_token(i), staff_chat(i), "Сотрудники")
        app = App(load_config(write_config(tmp_path, vk, ok, mx)), services_extra=FAST)
        await app.start()
        try:
            for i in range(INSTITUTIONS):
                await ask(vk, ok, mx, app, i)
            # the bots' own calls, one after another with nothing else in flight: each takes
            # the connection the previous one freed (a busy machine could otherwise keep
            # every MAX bot on the connections its long poll and its sends happened to get)
            for bot in app.groups["max"].platforms.values():
                assert isinstance(bot, MaxPlatform)
                await bot.client.get_me()
            for group in app.groups["ok"].platforms.values():
                assert isinstance(group, OkPlatform)
                await group.client.info()
            sessions = [app.groups["ok"].http, app.groups["max"].http]  # type: ignore[attr-defined]
        finally:
            await app.stop()

    for emulator in (vk, ok, mx):
        # every account called, and some connection carried the calls of several of them
        assert len(set().union(*emulator.connections.values())) == INSTITUTIONS
        assert shared(emulator.connections), type(emulator).__name__
    # one session for all of OK's groups and one for all of MAX's bots, closed by the stop
    assert [(s.opened, s.closed) for s in sessions] == [(1, True), (1, True)]


async def test_a_stopped_group_leaves_no_session_open(caplog: pytest.LogCaptureFixture) -> None:
    """OK and MAX groups of several accounts, started until every account polled and then
    stopped: once collected, nothing of theirs was left open."""
    services = Services(MemoryPayloadStore(), MemoryState(), SystemClock(), extra=FAST)
    received: list[Event] = []

    async def take(event: Event) -> None:
        received.append(event)

    async with OkEmulator() as ok, MaxEmulator() as mx:
        ok_specs, max_specs = [], []
        for i in range(INSTITUTIONS):
            ok.add_group(ok_token(i), 200 + i)
            mx.add_bot(max_token(i), 300 + i)
            ok_account = {"token": ok_token(i), "api_url": ok.url, "mode": "polling"}
            max_account = {"token": max_token(i), "api_url": mx.url}
            ok_specs.append(AccountSpec(f"school-{i}", OkAccount.model_validate(ok_account)))
            max_specs.append(AccountSpec(f"school-{i}", MaxAccount.model_validate(max_account)))
        groups: list[Any] = [
            await create_ok_group(ok_specs, services),
            await create_max_group(max_specs, services),
        ]
        for group in groups:
            await group.start(take)
        await ok.wait_until(lambda: all(g.polls for g in ok.groups.values()))
        await mx.wait_until(lambda: all(b.polls for b in mx.bots.values()))
        for group in groups:
            await group.stop()
        caplog.clear()
        with caplog.at_level(logging.ERROR), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del groups, group  # what is not in a cycle goes now, the rest with the collection
            gc.collect()
    unclosed = [str(w.message) for w in caught if "Unclosed" in str(w.message)]
    assert not unclosed and "Unclosed" not in caplog.text
