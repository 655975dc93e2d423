"""Announcements end to end on the local platform, with time moved by a ManualClock:
subscriptions, scheduled broadcasts, quiet hours, the misfire policy, unreachable citizens
and /announce from the staff chat."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from bots.core.model import ChatKind, ChatRef, Event, User
from handlers.announcements import feature_of
from handlers.config import load_config
from runtime.app import App
from runtime.reload import pid_path
from storage.announcements import BroadcastRepo, SubscriptionRepo

ROOT = Path(__file__).resolve().parent.parent
MSK = timedelta(hours=3)
STAFF_CHAT = "-1001234567890"
MEMBER = User("1111", "Анна")
#: 2026-09-01 is a Tuesday; the ManualClock starts at 12:00 Moscow time
START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)

BASE = """
storage: {{path: data/test.sqlite3}}
timezone: Europe/Moscow
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    phone: +7 (4712) 00-00-00
    faq: {faq}
    templates: tpl
    staff:
      chat: {{platform: telegram, id: {staff}}}
      members: [{{platform: telegram, id: 1111, name: Иванова А. П.}}]
    announcements:
{announcements}
"""


def write_config(tmp_path: Path, announcements: str) -> Path:
    (tmp_path / "tpl").mkdir(exist_ok=True)
    (tmp_path / "tpl" / "menu.j2").write_text(
        "Меню на {{ now.strftime('%d.%m') }}: {{ data.dish }} — «{{ institution.name }}»",
        encoding="utf-8",
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        BASE.format(
            faq=ROOT / "examples" / "faq" / "school.yaml",
            staff=STAFF_CHAT,
            announcements=announcements,
        ),
        encoding="utf-8",
    )
    return path


Factory = Callable[..., "AppRun"]


class AppRun:
    """Start and stop apps on one config and database, as a process would be restarted."""

    def __init__(self, config: Path, clock: ManualClock) -> None:
        self.config = config
        self.clock = clock
        self.apps: list[App] = []

    async def start(self) -> App:
        app = App(load_config(self.config), clock=self.clock, local=True)
        await app.start()
        self.apps.append(app)
        return app

    async def stop(self, app: App) -> None:
        await app.stop()
        self.apps.remove(app)


@pytest.fixture
async def runs(tmp_path: Path) -> AsyncIterator[Callable[[str], AppRun]]:
    made: list[AppRun] = []

    def make(announcements: str) -> AppRun:
        run = AppRun(write_config(tmp_path, announcements), ManualClock(START))
        made.append(run)
        return run

    yield make
    for run in made:
        for app in list(run.apps):
            await app.stop()


def msk(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, minute, second, tzinfo=UTC) - MSK


async def subscribe(app: App, chat: str, choice: str = "Подписаться") -> None:
    local = app.local_platform("school-17")
    await local.user_says(chat, "/subscribe")
    await app.settle()
    offer = local.last(chat)
    assert "хранит только номер этого чата" in offer.text  # the consent text
    await local.press(chat, offer.id, choice)
    await app.settle()
    assert "вы подписаны" in local.last(chat).text


def texts(app: App, chat: str) -> list[str]:
    return [m.text for m in app.local_platform("school-17").messages(chat)]


def announcements_in(app: App, chat: str, needle: str) -> int:
    return sum(needle in t for t in texts(app, chat))


AT_15 = """      - id: open-day
        at: 2026-09-01T15:00:00+03:00
        text: "День открытых дверей в {{ institution.name }} — в субботу в 10:00 <b>{{ data.room }}</b>"
        data: {room: "актовый зал & холл"}
"""


async def test_subscribers_get_the_scheduled_announcement_and_others_do_not(runs) -> None:
    run = runs(AT_15)
    app = await run.start()
    await subscribe(app, "100")
    await subscribe(app, "200")
    local = app.local_platform("school-17")
    await local.user_says("200", "/unsubscribe")
    await local.user_says("300", "Здравствуйте")  # a citizen who never subscribed
    await app.settle()
    assert "Вы отписались" in local.last("200").text

    run.clock.set(msk(1, 14, 59))
    await feature_of(app).settle()
    assert announcements_in(app, "100", "День открытых дверей") == 0  # not yet

    run.clock.set(msk(1, 15, 0, 1))
    await feature_of(app).settle()
    got = local.last("100")
    assert got.text == (
        "День открытых дверей в МБОУ «Средняя школа № 17» — в субботу в 10:00 актовый зал & холл"
    )
    assert "<b>актовый зал &amp; холл</b>" in got.html  # data is escaped, markup kept
    assert got.buttons and "Отписаться" in got.buttons[0][0][0]
    assert announcements_in(app, "200", "День открытых дверей") == 0
    assert announcements_in(app, "300", "День открытых дверей") == 0

    # the button on the announcement unsubscribes
    await local.press("100", got.id, "Отписаться")
    await app.settle()
    assert "Вы отписались" in local.last("100").text
    assert app.storage is not None
    assert await SubscriptionRepo(app.storage.db).count("school-17") == 0


async def test_an_occurrence_is_created_once_however_often_it_is_fired(runs) -> None:
    run = runs(AT_15)
    app = await run.start()
    await subscribe(app, "100")
    feature = feature_of(app)
    ann = app.loaded.config.institutions["school-17"].announcements[0]
    first = await feature.fire("school-17", ann, msk(1, 15))
    again = await feature.fire("school-17", ann, msk(1, 15))
    assert first is not None and again is None
    run.clock.set(msk(1, 15, 0, 1))
    await feature.settle()
    await feature.tick()  # the scheduler's own tick finds the same occurrence
    await feature.settle()
    assert announcements_in(app, "100", "День открытых дверей") == 1


async def test_quiet_hours_hold_the_announcement_until_morning(runs) -> None:
    run = runs(
        """      - id: menu
        cron: "30 23 * * *"
        template: menu.j2
        data: {dish: каша}
"""
    )
    app = await run.start()
    await subscribe(app, "100")
    run.clock.set(msk(1, 23, 31))
    await feature_of(app).settle()
    assert announcements_in(app, "100", "Меню") == 0  # 23:31 is within 22:00-08:00

    run.clock.set(msk(2, 7, 59))
    await feature_of(app).settle()
    assert announcements_in(app, "100", "Меню") == 0

    run.clock.set(msk(2, 8, 0, 1))
    await feature_of(app).settle()
    assert texts(app, "100")[-1] == "Меню на 01.09: каша — «МБОУ «Средняя школа № 17»»"


async def test_topics_reach_only_those_who_chose_them(runs) -> None:
    run = runs(
        """      - id: menu
        at: 2026-09-01T13:00:00+03:00
        text: Меню на неделю
        topics: [Питание]
      - id: bus
        at: 2026-09-01T13:00:00+03:00
        text: Расписание автобуса
        topics: [Транспорт]
"""
    )
    app = await run.start()
    await subscribe(app, "100", "Питание")
    await subscribe(app, "200", "Транспорт")
    await subscribe(app, "300", "На все объявления")
    run.clock.set(msk(1, 13, 0, 1))
    await feature_of(app).settle()
    assert announcements_in(app, "100", "Меню на неделю") == 1
    assert announcements_in(app, "100", "Расписание автобуса") == 0
    assert announcements_in(app, "200", "Меню на неделю") == 0
    assert announcements_in(app, "200", "Расписание автобуса") == 1
    assert announcements_in(app, "300", "Меню на неделю") == 1
    assert announcements_in(app, "300", "Расписание автобуса") == 1


async def test_missed_while_down_is_sent_late_within_grace_and_skipped_after(
    runs, caplog: pytest.LogCaptureFixture
) -> None:
    run = runs(
        """      - id: daily
        cron: "0 10 * * *"
        text: Доброе утро, это ежедневное объявление
        grace: 1h
"""
    )
    app = await run.start()
    await subscribe(app, "100")
    await run.stop(app)

    run.clock.set(msk(2, 10, 40))  # the 10:00 occurrence was missed 40 minutes ago
    app = await run.start()
    await feature_of(app).settle()
    assert announcements_in(app, "100", "ежедневное") == 1
    await run.stop(app)

    run.clock.set(msk(3, 11, 30))  # missed by 90 minutes: too late to be useful
    with caplog.at_level(logging.WARNING):
        app = await run.start()
        await feature_of(app).settle()
    assert announcements_in(app, "100", "ежедневное") == 0
    assert "older than the grace" in caplog.text

    run.clock.set(msk(4, 10, 0, 1))  # and the next one comes as usual
    await feature_of(app).settle()
    assert announcements_in(app, "100", "ежедневное") == 1


async def test_unreachable_subscribers_are_dropped(runs) -> None:
    run = runs(AT_15)
    app = await run.start()
    for chat in ("100", "200", "300"):
        await subscribe(app, chat)
    local = app.local_platform("school-17")
    local.block("200")  # blocked the bot without the bot knowing yet
    # 300 blocks the bot and the platform tells us
    await app.on_event(
        Event(
            "school-17", "local", ChatRef("local", "300"), User("300"), "blk", membership="blocked"
        )
    )
    run.clock.set(msk(1, 15, 0, 1))
    await feature_of(app).settle()
    assert announcements_in(app, "100", "День открытых дверей") == 1
    assert announcements_in(app, "300", "День открытых дверей") == 0
    assert app.storage is not None
    repo = BroadcastRepo(app.storage.db)
    (b,) = await repo.recent()
    counts = await repo.counts(b.id)
    assert (counts.sent, counts.unreachable, counts.total) == (1, 1, 2)  # 300 was skipped
    assert await SubscriptionRepo(app.storage.db).get("school-17", "local", "200") is None


async def test_staff_announce_previews_sends_and_reports(runs) -> None:
    run = runs(AT_15)
    app = await run.start()
    await subscribe(app, "100")
    await subscribe(app, "200")
    local = app.local_platform("school-17")

    async def staff_says(text: str, user: User = MEMBER) -> None:
        await local.user_says(STAFF_CHAT, text, user=user, kind=ChatKind.GROUP)
        await app.settle()

    await staff_says("/announce")
    assert "текст объявления" in local.last(STAFF_CHAT).text
    await staff_says("Завтра <b>уроков</b> не будет & всё")
    preview = local.last(STAFF_CHAT)
    assert "подписчики (2)" in preview.text
    assert "Завтра <b>уроков</b> не будет & всё" in preview.text  # shown as typed
    assert announcements_in(app, "100", "уроков") == 0  # nothing sent before confirming

    await local.press(STAFF_CHAT, preview.id, "Отправить", user=User("9999"))  # not staff
    await app.settle()
    assert announcements_in(app, "100", "уроков") == 0

    await local.press(STAFF_CHAT, preview.id, "Отправить", user=MEMBER)
    await feature_of(app).settle()
    for chat in ("100", "200"):
        assert texts(app, chat)[-1] == "Завтра <b>уроков</b> не будет & всё"
    staff = texts(app, STAFF_CHAT)
    assert "Рассылка объявления: 2 из 2." in staff
    assert staff[-1].startswith("Рассылка объявления завершена.")
    assert "Доставлено: 2" in staff[-1] and "Не удалось доставить: 0" in staff[-1]

    # the same button again does nothing: the draft is gone
    await local.press(STAFF_CHAT, preview.id, "Отправить", user=MEMBER)
    await feature_of(app).settle()
    assert announcements_in(app, "100", "уроков") == 1


async def test_staff_can_cancel_and_quiet_hours_apply_to_staff_announcements(runs) -> None:
    run = runs(AT_15)
    app = await run.start()
    await subscribe(app, "100")
    local = app.local_platform("school-17")
    run.clock.set(msk(1, 23, 0))
    for text in ("/announce", "Ночное объявление"):
        await local.user_says(STAFF_CHAT, text, user=MEMBER, kind=ChatKind.GROUP)
        await app.settle()
    preview = local.last(STAFF_CHAT)
    assert "рассылка начнётся в 08:00" in preview.text
    await local.press(STAFF_CHAT, preview.id, "Отмена", user=MEMBER)
    await app.settle()
    assert "отменено" in local.last(STAFF_CHAT).text

    for text in ("/announce", "Второе объявление"):
        await local.user_says(STAFF_CHAT, text, user=MEMBER, kind=ChatKind.GROUP)
        await app.settle()
    await local.press(STAFF_CHAT, local.last(STAFF_CHAT).id, "Отправить", user=MEMBER)
    await feature_of(app).settle()
    assert announcements_in(app, "100", "объявление") == 0
    run.clock.set(msk(2, 8, 0, 1))
    await feature_of(app).settle()
    assert texts(app, "100")[-1] == "Второе объявление"
    assert announcements_in(app, "100", "Ночное") == 0


async def test_cli_lists_queues_and_reports(runs, capsys: pytest.CaptureFixture[str]) -> None:
    """`announce send` queues for the running bot; the bot sends it; `status` shows it."""
    from runtime.cli import main

    run = runs(AT_15)
    assert main(["announce", "list", "-c", str(run.config)]) == 0
    listed = capsys.readouterr().out
    assert "school-17/open-day  at 2026-09-01T15:00:00+03:00" in listed

    run.clock.set(datetime.now(UTC))  # the CLI stamps the broadcast with the real time
    app = await run.start()
    await subscribe(app, "100")
    # `priemnaya run` writes this pid file; the local app of the tests does not
    pid_path(load_config(run.config).database_path).write_text(f"{os.getpid()}\n")
    code = await asyncio.to_thread(
        main, ["announce", "send", "-c", str(run.config), "--no-wait", "open-day"]
    )
    assert code == 0 and "queued" in capsys.readouterr().out
    run.clock.set(datetime.now(UTC))
    await feature_of(app).settle()  # the running bot picks it up
    assert announcements_in(app, "100", "День открытых дверей") == 1

    assert await asyncio.to_thread(main, ["announce", "status", "-c", str(run.config)]) == 0
    status = capsys.readouterr().out
    assert "school-17/open-day" in status and "[cli] done: 1 delivered" in status


async def test_send_without_a_running_bot_refuses_and_queues_nothing(
    runs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18 (4): no bot, no broadcast: a refusal with the reason, at once, and no row
    left behind to go out unannounced at the next start."""
    from runtime.cli import main

    run = runs(AT_15)
    for _ in range(2):  # a retry does not queue a second one either
        code = await asyncio.to_thread(
            main, ["announce", "send", "-c", str(run.config), "open-day"]
        )
        out = capsys.readouterr()
        assert code == 1
        assert "not sent: no bot is running" in out.err and "Nothing was queued" in out.err
        assert "[" not in out.out  # no progress bar
    assert await asyncio.to_thread(main, ["announce", "status", "-c", str(run.config)]) == 0
    assert "no broadcasts yet" in capsys.readouterr().out
