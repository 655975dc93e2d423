"""Escalation across platforms with the real adapters: aiogram and vk_api over HTTP against
the Telegram and VK emulators, the app built from a config file, SQLite in tmp_path.

One institution has both a Telegram bot and a VK community. A citizen on one platform asks
what the FAQ does not cover; the ticket card appears in the staff chat on the other
platform (a Telegram supergroup, a forum supergroup with a topic per ticket, or a VK
conversation); staff answer by replying to the card (or inside the topic) and the citizen
reads the answer in their own chat. Only listed staff members are heard.

The last tests run ``python -m runtime.cli run`` as a real process and kill it with SIGKILL at
the two moments escalation must survive: right after a ticket was stored, and right after
a staff answer was accepted.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from runtime.app import App
from storage import Storage
from storage.tickets import Ticket
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.vk import VkEmulator
from tests.processes import kill_9, priemnaya_run, tail
from tests.running import running_app as running

ROOT = Path(__file__).resolve().parent.parent
INSTITUTION = "school-17"
TG_TOKEN = "710001:school-token-abcdef"
VK_TOKEN = "vk1.a.school-token"
VK_GROUP = 4242
#: a supergroup (Telegram gives them -100... ids) and a VK conversation (2000000000 + n)
TG_STAFF_CHAT = -1001234567890
VK_STAFF_CHAT = 2000000001
TG_MEMBER, TG_STRANGER = 1111, 9999
VK_MEMBER, VK_STRANGER = 7001, 7999
STAFF_NAME = "Иванова А. П."
#: the citizen's private chat: a Telegram chat id or a VK user id (= peer_id)
CITIZEN = 501
OTHER_CITIZEN = 502
#: not in examples/faq/school.yaml: `priemnaya faq ask` says «передать сотрудникам — ни одна статья не подходит»
UNCOVERED = "мой сын подрался на перемене, прошу разобраться"
ESCALATED = "передал ваш вопрос сотрудникам"
ANSWER = "Здравствуйте! Классный руководитель свяжется с вами сегодня."
PLATFORM_NAMES = {"telegram": "Telegram", "vk": "ВКонтакте"}
TIMEOUT = 60.0
#: a process has to import everything and connect first
PROCESS_TIMEOUT = 240.0


# -- the config ----------------------------------------------------------------------------
def write_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    telegram: TelegramEmulator,
    vk: VkEmulator,
    *,
    staff_on: str,
    topics: bool = False,
) -> Path:
    """school-17 with a Telegram bot and a VK community, the example school FAQ, and its
    staff chat on ``staff_on``; tokens come from the environment."""
    monkeypatch.setenv("TG_SCHOOL", TG_TOKEN)
    monkeypatch.setenv("VK_SCHOOL", VK_TOKEN)
    (tmp_path / "faq").mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples/faq/school.yaml", tmp_path / "faq/school.yaml")
    if staff_on == "telegram":
        topic_flag = ", topics: true" if topics else ""
        chat = f"{{platform: telegram, id: {TG_STAFF_CHAT}{topic_flag}}}"
        member = f"{{platform: telegram, id: {TG_MEMBER}, name: {STAFF_NAME}}}"
    else:
        chat = f"{{platform: vk, id: {VK_STAFF_CHAT}}}"
        member = f"{{platform: vk, id: {VK_MEMBER}, name: {STAFF_NAME}}}"
    config = f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
institutions:
  {INSTITUTION}:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    phone: +7 (4712) 00-00-00
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
    telegram: {{token: "${{TG_SCHOOL}}", api_server: "{telegram.url}"}}
    vk: {{token: "${{VK_SCHOOL}}", group_id: {VK_GROUP}, api_url: "{vk.api_url}", wait: 1}}
    staff:
      chat: {chat}
      members: [{member}]
      first_response: 8h
"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


# -- the two platforms, seen from the people using them -------------------------------------
@dataclass(frozen=True, slots=True)
class Seen:
    """A bot message as its readers see it: enough to tell whether it changed."""

    id: int
    text: str
    labels: list[list[str]]
    edits: int
    thread: int | None = None


class Side(Protocol):
    """One platform's people: a citizen in a private chat and the staff chat."""

    platform: str
    member: int
    stranger: int

    async def citizen_says(self, text: str, citizen: int = CITIZEN) -> None: ...

    def citizen_sees(self, citizen: int = CITIZEN) -> list[str]: ...

    def staff_sees(self) -> list[Seen]: ...

    async def staff_says(self, text: str, *, user: int, reply_to: int | None = None) -> None: ...

    async def press(self, message: int, label: str, *, user: int) -> None: ...

    def snackbars(self) -> list[str | None]: ...

    def caught_up(self) -> bool: ...

    async def wait_until(self, done: Callable[[], bool], timeout: float = TIMEOUT) -> None: ...


class TelegramSide:
    platform = "telegram"
    member = TG_MEMBER
    stranger = TG_STRANGER

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emulator = emulator

    async def citizen_says(self, text: str, citizen: int = CITIZEN) -> None:
        self.emulator.user_says(TG_TOKEN, citizen, text, first_name="Мария")

    def citizen_sees(self, citizen: int = CITIZEN) -> list[str]:
        return [m.text for m in self.emulator.bot_messages(TG_TOKEN, citizen)]

    def staff_sees(self) -> list[Seen]:
        return [
            Seen(m.message_id, m.text, m.labels, m.edits, m.thread_id)
            for m in self.emulator.bot_messages(TG_TOKEN, TG_STAFF_CHAT)
        ]

    async def staff_says(self, text: str, *, user: int, reply_to: int | None = None) -> None:
        self.emulator.user_says(
            TG_TOKEN, TG_STAFF_CHAT, text, user_id=user, first_name="Анна", reply_to=reply_to
        )

    async def press(self, message: int, label: str, *, user: int) -> None:
        self.emulator.press(TG_TOKEN, TG_STAFF_CHAT, message, label, user_id=user)

    def snackbars(self) -> list[str | None]:
        return [text for _, text in self.emulator.answered(TG_TOKEN)]

    def caught_up(self) -> bool:
        """Every update was handled and confirmed (the bot polled past it)."""
        return self.emulator.pending_updates(TG_TOKEN) == 0

    async def wait_until(self, done: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        await self.emulator.wait_until(done, timeout)


class VkSide:
    platform = "vk"
    member = VK_MEMBER
    stranger = VK_STRANGER

    def __init__(self, emulator: VkEmulator) -> None:
        self.emulator = emulator

    async def citizen_says(self, text: str, citizen: int = CITIZEN) -> None:
        await self.emulator.user_says(VK_GROUP, citizen, text)

    def citizen_sees(self, citizen: int = CITIZEN) -> list[str]:
        return [m.text for m in self.emulator.messages(VK_GROUP, citizen)]

    def staff_sees(self) -> list[Seen]:
        return [
            Seen(m.cmid, m.text, m.labels, m.edited)
            for m in self.emulator.messages(VK_GROUP, VK_STAFF_CHAT)
        ]

    async def staff_says(self, text: str, *, user: int, reply_to: int | None = None) -> None:
        """A message in the conversation; a reply arrives as message_new whose
        reply_message names the card by its conversation_message_id."""
        await self.emulator.user_says(
            VK_GROUP, VK_STAFF_CHAT, text, from_id=user, reply_to=reply_to
        )

    async def press(self, message: int, label: str, *, user: int) -> None:
        await self.emulator.press(VK_GROUP, VK_STAFF_CHAT, message, label, user_id=user)

    def snackbars(self) -> list[str | None]:
        return self.emulator.snackbars(VK_GROUP)

    def caught_up(self) -> bool:
        return self.emulator.all_confirmed(VK_GROUP)

    async def wait_until(self, done: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        await self.emulator.wait_until(done, timeout)


@dataclass(slots=True)
class World:
    telegram: TelegramEmulator
    vk: VkEmulator

    def sides(self, staff_on: str) -> tuple[Side, Side]:
        """(the citizen's side, the staff's side): the citizen is on the other platform."""
        tg, vk = TelegramSide(self.telegram), VkSide(self.vk)
        return (vk, tg) if staff_on == "telegram" else (tg, vk)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    vk = await VkEmulator().start()
    vk.add_community(VK_GROUP, VK_TOKEN, "Школа № 17")
    vk.users[CITIZEN] = ("Мария", "Петрова")
    vk.users[OTHER_CITIZEN] = ("Олег", "Сидоров")
    vk.users[VK_MEMBER] = ("Анна", "Иванова")
    vk.users[VK_STRANGER] = ("Пётр", "Посторонний")
    try:
        async with TelegramEmulator() as telegram:
            group = telegram.open_group(TG_TOKEN, TG_STAFF_CHAT, "Сотрудники школы")
            group.type = "supergroup"
            yield World(telegram, vk)
    finally:
        await vk.close()


def cards(staff: Side) -> list[Seen]:
    return [m for m in staff.staff_sees() if "Обращение №" in m.text]


def count(texts: list[str], fragment: str) -> int:
    return sum(fragment in t for t in texts)


async def escalate(app: App, citizen: Side, staff: Side) -> Seen:
    """The citizen asks the uncovered question; returns the card once the citizen was told
    the question went to staff and the app has nothing left to do."""
    await citizen.citizen_says(UNCOVERED)
    await staff.wait_until(lambda: bool(cards(staff)))
    await citizen.wait_until(lambda: count(citizen.citizen_sees(), ESCALATED) == 1)
    await app.settle()
    return cards(staff)[0]


def the_card(staff: Side, card: Seen) -> Seen:
    """The card as it is now (after edits)."""
    return next(m for m in staff.staff_sees() if m.id == card.id)


async def ticket(app: App, number: int = 1) -> Ticket:
    assert app.storage is not None
    found = await app.storage.tickets.by_number(INSTITUTION, number)
    assert found is not None, f"no ticket № {number}"
    return found


# -- in process ------------------------------------------------------------------------------
@pytest.mark.parametrize("staff_on", ["telegram", "vk"])
async def test_a_citizens_question_reaches_staff_on_the_other_platform_and_the_answer_comes_back(
    staff_on: str,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """telegram: a VK citizen, the staff in a Telegram supergroup, answering with a reply to
    the card. vk: a Telegram citizen, the staff in a VK conversation (peer 2000000001),
    whose reply is message_new with reply_message naming the card's cmid."""
    citizen, staff = world.sides(staff_on)
    config = write_config(tmp_path, monkeypatch, world.telegram, world.vk, staff_on=staff_on)
    async with running(config) as app:
        card = await escalate(app, citizen, staff)
        told = "\n".join(citizen.citizen_sees())
        assert "№ 1" in told and "<" not in told
        assert f"Обращение № 1 · {PLATFORM_NAMES[citizen.platform]}" in card.text
        assert UNCOVERED in card.text and "Мария" in card.text and "<" not in card.text
        assert card.labels == [["Взять", "Закрыть"]]

        before = len(citizen.citizen_sees())
        await staff.staff_says(ANSWER, user=staff.member, reply_to=card.id)
        await citizen.wait_until(lambda: len(citizen.citizen_sees()) > before)
        await staff.wait_until(lambda: "отвечено" in the_card(staff, card).text)
        await app.settle()
        answered = await ticket(app)

    said = citizen.citizen_sees()[before:]
    assert len(said) == 1
    assert ANSWER in said[0] and STAFF_NAME in said[0] and "№ 1" in said[0]
    assert f"отвечено ({STAFF_NAME})" in the_card(staff, card).text
    assert answered.status == "answered" and answered.first_response_at is not None
    assert answered.platform == citizen.platform and answered.chat_id == str(CITIZEN)


@pytest.mark.parametrize("staff_on", ["telegram", "vk"])
async def test_a_non_member_in_the_staff_chat_is_not_heard(
    staff_on: str,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone in the staff chat who is not in staff.members replies to the card and presses
    Взять and Закрыть: the citizen gets nothing, the card stays as it was, and the presses
    are answered "only for staff"."""
    citizen, staff = world.sides(staff_on)
    config = write_config(tmp_path, monkeypatch, world.telegram, world.vk, staff_on=staff_on)
    async with running(config) as app:
        card = await escalate(app, citizen, staff)
        seen_by_citizen = citizen.citizen_sees()

        await staff.staff_says(
            "Я тоже отвечу: сами разбирайтесь", user=staff.stranger, reply_to=card.id
        )
        await staff.press(card.id, "Взять", user=staff.stranger)
        await staff.press(card.id, "Закрыть", user=staff.stranger)
        await staff.wait_until(lambda: len(staff.snackbars()) == 2 and staff.caught_up())
        await app.settle()
        still = await ticket(app)

    assert citizen.citizen_sees() == seen_by_citizen
    assert the_card(staff, card) == card  # same text, same buttons, never edited
    assert all("только для сотрудников" in (s or "") for s in staff.snackbars())
    assert still.status == "open" and still.assignee_id is None


@pytest.mark.parametrize("staff_on", ["telegram", "vk"])
async def test_take_and_close_change_the_card(
    staff_on: str,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    citizen, staff = world.sides(staff_on)
    config = write_config(tmp_path, monkeypatch, world.telegram, world.vk, staff_on=staff_on)
    async with running(config) as app:
        card = await escalate(app, citizen, staff)

        await staff.press(card.id, "Взять", user=staff.member)
        await staff.wait_until(lambda: the_card(staff, card).edits == 1)
        taken = the_card(staff, card)
        assert f"взято ({STAFF_NAME})" in taken.text
        assert taken.labels == [["Закрыть"]]
        await staff.wait_until(lambda: len(staff.snackbars()) == 1)
        took = staff.snackbars()[0] or ""
        assert f"ведёт {STAFF_NAME}" in took and ".." not in took  # issue 18: no «П..»

        before = len(citizen.citizen_sees())
        await staff.press(card.id, "Закрыть", user=staff.member)
        await staff.wait_until(lambda: the_card(staff, card).edits == 2)
        await citizen.wait_until(lambda: len(citizen.citizen_sees()) > before)
        await app.settle()
        closed = the_card(staff, card)
        assert f"закрыто ({STAFF_NAME})" in closed.text
        assert closed.labels == []
        assert (await ticket(app)).status == "closed"
    assert "Обращение № 1 закрыто" in citizen.citizen_sees()[-1]


async def test_a_forum_supergroup_gets_a_topic_per_ticket_and_staff_answer_inside_it(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """staff.chat.topics: true. Each ticket opens a forum topic (createForumTopic), its
    card goes into it, a staff member's plain message in the topic (message_thread_id,
    is_topic_message, no reply) reaches the citizen, and the citizen's follow-up (a reply to
    the answer) is forwarded into the same topic."""
    telegram = world.telegram
    forum = telegram.open_group(TG_TOKEN, TG_STAFF_CHAT, "Сотрудники школы", forum=True)
    citizen, staff = world.sides("telegram")
    config = write_config(
        tmp_path, monkeypatch, telegram, world.vk, staff_on="telegram", topics=True
    )
    async with running(config) as app:
        card = await escalate(app, citizen, staff)
        assert telegram.calls["createForumTopic"] == 1
        assert list(forum.topics.values()) == ["№ 1 · Мария Петрова"]
        topic = next(iter(forum.topics))
        assert card.thread == topic

        await citizen.citizen_says(UNCOVERED.replace("сын", "сосед"), citizen=OTHER_CITIZEN)
        await staff.wait_until(lambda: len(cards(staff)) == 2)
        await app.settle()
        assert list(forum.topics.values()) == ["№ 1 · Мария Петрова", "№ 2 · Олег Сидоров"]
        assert cards(staff)[1].thread != topic

        before = len(citizen.citizen_sees())
        telegram.user_says(
            TG_TOKEN, TG_STAFF_CHAT, ANSWER, user_id=TG_MEMBER, first_name="Анна", thread_id=topic
        )
        await citizen.wait_until(lambda: len(citizen.citizen_sees()) > before)
        await app.settle()
        assert ANSWER in citizen.citizen_sees()[-1]
        assert not any(ANSWER in t for t in citizen.citizen_sees(OTHER_CITIZEN))

        # a reply to the staff answer is a follow-up of the ticket (a plain message after
        # an answer would be a question of its own)
        answer = world.vk.messages(VK_GROUP, CITIZEN)[-1]
        await world.vk.user_says(
            VK_GROUP, CITIZEN, "Спасибо! А во сколько позвонят?", reply_to=answer.cmid
        )
        await staff.wait_until(lambda: "во сколько позвонят" in staff.staff_sees()[-1].text)
        await app.settle()
        assert staff.staff_sees()[-1].thread == topic
        assert (await ticket(app)).status == "open"  # the follow-up reopened it for staff


async def test_two_communities_whose_staff_conversations_share_a_peer_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schools on VK, each with its own community and staff conversation; both
    conversations are peer 2000000001 (in different communities). The second school's
    staff reply to its card reaches its citizen."""
    vk = await VkEmulator().start()
    groups = {"school-a": (4242, "vk1.a.token-a", 7001), "school-b": (4343, "vk1.a.token-b", 7002)}
    shutil.copy(ROOT / "examples/faq/school.yaml", tmp_path / "school.yaml")
    sections = []
    for name, (group, token, member) in groups.items():
        vk.add_community(group, token)
        variable = f"VK_{name.upper().replace('-', '_')}"
        monkeypatch.setenv(variable, token)
        sections.append(
            f"""\
  {name}:
    name: Школа {name}
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: school.yaml
    vk: {{token: "${{{variable}}}", group_id: {group}, api_url: "{vk.api_url}", wait: 1}}
    staff:
      chat: {{platform: vk, id: {VK_STAFF_CHAT}}}
      members: [{{platform: vk, id: {member}, name: {STAFF_NAME}}}]
"""
        )
    config = tmp_path / "config.yaml"
    config.write_text(
        "storage: {path: bot.sqlite3}\ntimezone: Europe/Moscow\ninstitutions:\n"
        + "".join(sections),
        encoding="utf-8",
    )
    try:
        async with running(config) as app:
            for group, _, _ in groups.values():
                await vk.user_says(group, CITIZEN, UNCOVERED)
                await vk.wait_until(lambda g=group: bool(vk.messages(g, VK_STAFF_CHAT)))
                await app.settle()
            group, _, member = groups["school-b"]
            card = vk.messages(group, VK_STAFF_CHAT)[0]
            await vk.user_says(group, VK_STAFF_CHAT, ANSWER, from_id=member, reply_to=card.cmid)
            await vk.wait_until(lambda: vk.all_confirmed(group))
            await app.settle()
        assert count([m.text for m in vk.messages(group, CITIZEN)], ANSWER) == 1
        assert "отвечено" in vk.messages(group, VK_STAFF_CHAT)[0].text
    finally:
        await vk.close()


# -- a real process, killed -------------------------------------------------------------------
async def stop_cleanly(process: asyncio.subprocess.Process, log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 15) == 0, tail(log)


async def until(side: Side | VkEmulator, done: Callable[[], bool], what: str, log: Path) -> None:
    """Wait for ``done`` while a bot process runs; a timeout fails with the process's log."""
    try:
        await side.wait_until(done, PROCESS_TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"{what} never happened; the bot's log:\n{tail(log)}") from None


async def vk_polling(vk: VkEmulator, log: Path, since: int = 0) -> None:
    """Wait until the process long-polls VK: a community's first long-poll server starts at
    the current ts, so a message written before that is not the bot's to see."""
    community = vk.communities[VK_GROUP]
    await until(vk, lambda: community.polls > since, "polling VK", log)


async def stored_tickets(config: Path) -> list[Ticket]:
    """Every ticket in the bot's database (read after the process exited)."""
    storage = await Storage.open(config.parent / "data/bot.sqlite3", lambda: datetime.now(UTC))
    try:
        return await storage.tickets.find(
            INSTITUTION, ("open", "in_progress", "answered", "closed")
        )
    finally:
        await storage.close()


@pytest.mark.slow
async def test_sigkill_right_after_the_ticket_was_stored(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves: a ticket committed together with its card and notice survives a SIGKILL
    that comes before they were delivered, and nothing is doubled by the restart.

    A Telegram citizen, the staff chat a VK conversation. At the kill, the card's
    messages.send had reached VK and was held there (VK takes it in after the kill: the
    "sent, but the bot never heard back" case), and every Telegram send to the citizen had
    been refused, so nothing reached the citizen. After the restart: one card (VK dropped
    the repeated random_id), one notice, one ticket, and the card still works."""
    telegram, vk = world.telegram, world.vk
    community = vk.communities[VK_GROUP]
    citizen = TelegramSide(telegram)
    config = write_config(tmp_path, monkeypatch, telegram, vk, staff_on="vk")
    log = tmp_path / "bot.log"

    vk.hold_sends()
    telegram.fail("sendMessage", 500, times=1000, chat_id=CITIZEN)
    async with priemnaya_run(config, log) as first:
        await citizen.citizen_says(UNCOVERED)
        # the card's send reaching VK means the ticket was committed
        await until(vk, lambda: vk.held >= 1, "the card's send", log)
        await until(citizen, lambda: telegram.calls["sendMessage"] >= 1, "the notice's send", log)
        await kill_9(first)
    assert not citizen.citizen_sees() and not vk.messages(VK_GROUP, VK_STAFF_CHAT)
    vk.release_sends()  # what reached VK before the kill takes effect all the same
    await vk.wait_until(lambda: len(vk.messages(VK_GROUP, VK_STAFF_CHAT)) == 1)
    telegram.faults.clear()

    def staff_chat() -> list[str]:
        return [m.text for m in vk.messages(VK_GROUP, VK_STAFF_CHAT)]

    polls = community.polls
    async with priemnaya_run(config, log) as second:
        await vk_polling(vk, log, since=polls)
        await until(citizen, lambda: count(citizen.citizen_sees(), ESCALATED) >= 1, "notice", log)
        # the card works after the restart. Its answer goes out after the notice in the
        # citizen's chat, and its edit after the repeated card in the staff chat: once both
        # are there, nothing else is waiting to go out to either chat
        card = vk.messages(VK_GROUP, VK_STAFF_CHAT)[0]
        await vk.user_says(VK_GROUP, VK_STAFF_CHAT, ANSWER, from_id=VK_MEMBER, reply_to=card.cmid)
        await until(citizen, lambda: count(citizen.citizen_sees(), ANSWER) >= 1, "answer", log)
        await until(vk, lambda: count(staff_chat(), "отвечено") >= 1, "the card's edit", log)
        await stop_cleanly(second, log)

    assert count(staff_chat(), "Обращение №") == 1, staff_chat()
    assert community.dedup_hits >= 1  # the card was sent again, and VK dropped it
    assert "Обращение № 1 ·" in staff_chat()[0] and UNCOVERED in staff_chat()[0]
    seen = citizen.citizen_sees()
    assert count(seen, ESCALATED) == 1, (seen, tail(log))
    assert count(seen, ANSWER) == 1, seen
    tickets = await stored_tickets(config)
    assert [(t.number, t.status) for t in tickets] == [(1, "answered")]


@pytest.mark.slow
async def test_sigkill_after_the_staff_answer_was_accepted(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves: a staff answer the bot accepted reaches the citizen exactly once although
    the bot was killed before it was delivered.

    A VK citizen, the staff chat a Telegram supergroup. The staff member's reply to the card
    is handled (its messages.send to the citizen reached VK and was held there) when the
    process is SIGKILLed; VK takes the held send in. After the restart the bot sends the
    answer again with the same random_id, VK drops it, and the citizen has one answer; the
    ticket is answered and a further answer follows it in order."""
    telegram, vk = world.telegram, world.vk
    community = vk.communities[VK_GROUP]
    citizen, staff = VkSide(vk), TelegramSide(telegram)
    config = write_config(tmp_path, monkeypatch, telegram, vk, staff_on="telegram")
    log = tmp_path / "bot.log"

    async with priemnaya_run(config, log) as first:
        await vk_polling(vk, log)
        await citizen.citizen_says(UNCOVERED)
        await staff.wait_until(lambda: bool(cards(staff)))
        await citizen.wait_until(lambda: count(citizen.citizen_sees(), ESCALATED) == 1)
        card = cards(staff)[0]
        vk.hold_sends()
        await staff.staff_says(ANSWER, user=TG_MEMBER, reply_to=card.id)
        await vk.wait_until(lambda: vk.held >= 1)  # the answer is on its way: accepted
        await kill_9(first)
    assert count(citizen.citizen_sees(), ANSWER) == 0
    vk.release_sends()
    await vk.wait_until(lambda: count(citizen.citizen_sees(), ANSWER) == 1)

    async with priemnaya_run(config, log) as second:
        await staff.wait_until(staff.caught_up)  # the reply's update, if redelivered, is done
        # a further answer goes out after anything still queued for the citizen
        await staff.staff_says("Если что-то ещё — пишите.", user=TG_MEMBER, reply_to=card.id)
        await until(
            citizen, lambda: count(citizen.citizen_sees(), "что-то ещё") == 1, "answer 2", log
        )
        await staff.wait_until(lambda: "отвечено" in the_card(staff, card).text)
        await stop_cleanly(second, log)

    seen = citizen.citizen_sees()
    assert count(seen, ANSWER) == 1, (seen, tail(log))
    assert community.dedup_hits >= 1  # the answer was sent again, and VK dropped it
    assert count(seen, ESCALATED) == 1
    assert f"отвечено ({STAFF_NAME})" in the_card(staff, card).text
    tickets = await stored_tickets(config)
    assert len(tickets) == 1 and tickets[0].status == "answered"
    assert tickets[0].first_response_at is not None
