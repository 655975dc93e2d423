"""Announcements through the real adapters: aiogram against the Telegram emulator and
vk_api against the VK emulator, and a real ``priemnaya run`` process killed mid-broadcast."""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from handlers.announcements import feature_of
from handlers.config import load_config
from runtime.app import App
from storage import Storage
from storage.announcements import BroadcastRepo, SubscriptionRepo
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.vk import VkEmulator
from tests.processes import priemnaya_run, tail

ROOT = Path(__file__).resolve().parent.parent
GROUP = 4343
VK_TOKEN = "vk1.a.announce-token"
TG_TOKEN = "720002:announce-token-abcdef"
TEXT = "Родительское собрание в четверг в 18:00"


@pytest.fixture
async def vk() -> AsyncIterator[VkEmulator]:
    emu = await VkEmulator().start()
    emu.add_community(GROUP, VK_TOKEN)
    try:
        yield emu
    finally:
        await emu.close()


def write_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vk: VkEmulator,
    announcement: str,
    telegram: TelegramEmulator | None = None,
) -> Path:
    monkeypatch.setenv("VK_ANN", VK_TOKEN)
    monkeypatch.setenv("TG_ANN", TG_TOKEN)
    faq = tmp_path / "faq"
    faq.mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples/faq/school.yaml", faq / "school.yaml")
    tg = (
        f'    telegram: {{token: "${{TG_ANN}}", api_server: "{telegram.url}"}}\n'
        if telegram
        else ""
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    faq: faq/school.yaml
    vk: {{token: "${{VK_ANN}}", group_id: {GROUP}, api_url: "{vk.api_url}", wait: 1}}
{tg}    announcements:
{announcement}""",
        encoding="utf-8",
    )
    return path


async def test_subscribers_on_telegram_and_vk_receive_it_through_the_adapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vk: VkEmulator
) -> None:
    clock = ManualClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))  # 12:00 in Moscow
    announcement = f"""\
      - id: meeting
        at: 2026-09-01T13:00:00+03:00
        text: {TEXT}
"""
    async with TelegramEmulator() as telegram:
        config = write_config(tmp_path, monkeypatch, vk, announcement, telegram)
        app = App(load_config(config), clock=clock)
        await app.start()
        try:
            # a Telegram citizen and a VK citizen subscribe with the buttons
            telegram.user_says(TG_TOKEN, 801, "/subscribe")
            await telegram.wait_until(lambda: len(telegram.bot_messages(TG_TOKEN, 801)) >= 2)
            offer = telegram.bot_messages(TG_TOKEN, 801)[-1]
            telegram.press(TG_TOKEN, 801, offer.message_id, "Подписаться")
            await telegram.wait_until(
                lambda: "подписаны" in telegram.bot_messages(TG_TOKEN, 801)[-1].text
            )
            await vk.user_says(GROUP, 901, "/subscribe")
            await vk.wait_until(lambda: len(vk.messages(GROUP, 901)) >= 2)
            await vk.press(GROUP, 901, vk.messages(GROUP, 901)[-1].cmid, "Подписаться")
            await vk.wait_until(lambda: "подписаны" in vk.messages(GROUP, 901)[-1].text)
            # and one on each platform who only asked a question
            telegram.user_says(TG_TOKEN, 802, "Здравствуйте")
            await vk.user_says(GROUP, 902, "Здравствуйте")
            await telegram.wait_until(lambda: bool(telegram.bot_messages(TG_TOKEN, 802)))
            await vk.wait_until(lambda: bool(vk.messages(GROUP, 902)))
            await app.settle()

            clock.set(datetime(2026, 9, 1, 10, 0, 1, tzinfo=UTC))
            await feature_of(app).settle()
        finally:
            await app.stop()
    tg_got = telegram.bot_messages(TG_TOKEN, 801)[-1]
    vk_got = vk.messages(GROUP, 901)[-1]
    assert tg_got.text == TEXT and vk_got.text == TEXT
    assert any("Отписаться" in label for row in tg_got.labels for label in row)
    assert any("Отписаться" in label for row in vk_got.labels for label in row)
    assert not any(TEXT in m.text for m in telegram.bot_messages(TG_TOKEN, 802))
    assert not any(TEXT in m.text for m in vk.messages(GROUP, 902))


# -- a real process, killed mid-broadcast -------------------------------------------------
SUBSCRIBERS = 2000
PEERS = [str(500_000 + i) for i in range(SUBSCRIBERS)]


@pytest.mark.slow
async def test_sigkill_mid_broadcast_gives_every_subscriber_exactly_one_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vk: VkEmulator
) -> None:
    """The proven property (VK): after a SIGKILL while VK had taken a batch in but the bot
    had not recorded it, and a restart, each of 2,000 subscribers has exactly one copy: the
    resent batch carries the same random_id and VK drops it (dedup_hits proves the resend
    happened). On Telegram, which has no such key, the same crash can duplicate the sends
    in flight at the kill (at most the broadcaster's lanes, 32); see broadcast.py."""
    at = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
    announcement = f"""\
      - id: meeting
        at: {at.isoformat()}
        text: {TEXT}
        quiet_hours: null
        grace: 1h
"""
    config = write_config(tmp_path, monkeypatch, vk, announcement)
    storage = await Storage.open(tmp_path / "data" / "bot.sqlite3", lambda: datetime.now(UTC))
    await SubscriptionRepo(storage.db).add_many(
        [("school-17", "vk", peer, peer) for peer in PEERS], datetime.now(UTC)
    )
    await storage.close()

    def delivered() -> int:
        return sum(1 for peer in PEERS if vk.messages(GROUP, peer))

    log = tmp_path / "bot.log"
    async with priemnaya_run(config, log) as first:
        try:  # the occurrence missed 2 minutes ago (within grace) is sent at start
            await vk.wait_until(lambda: vk.count_calls("messages.send") >= 5, timeout=240)
        except TimeoutError:
            raise AssertionError(f"no broadcast; the bot's log:\n{tail(log)}") from None
        vk.hold_sends()  # the next batch reaches VK, and the bot hears nothing back
        await vk.wait_until(lambda: vk.held >= 1, timeout=120)
        first.kill()
        await first.wait()
    before = delivered()
    assert 0 < before < SUBSCRIBERS  # killed midway
    vk.release_sends()  # the batch VK had taken in is delivered all the same
    await vk.wait_until(lambda: delivered() > before, timeout=120)

    async with priemnaya_run(config, log) as second:
        try:
            await vk.wait_until(lambda: delivered() == SUBSCRIBERS, timeout=240)
        except TimeoutError:
            raise AssertionError(f"{delivered()} delivered; log:\n{tail(log)}") from None
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0

    copies = [sum(TEXT in m.text for m in vk.messages(GROUP, peer)) for peer in PEERS]
    assert copies == [1] * SUBSCRIBERS
    assert vk.communities[GROUP].dedup_hits >= 1, "the crash window was not exercised"
    storage = await Storage.open(tmp_path / "data" / "bot.sqlite3", lambda: datetime.now(UTC))
    try:
        repo = BroadcastRepo(storage.db)
        (broadcast,) = await repo.recent()
        counts = await repo.counts(broadcast.id)
        assert broadcast.status == "done" and counts.sent == SUBSCRIBERS, tail(log)
    finally:
        await storage.close()
