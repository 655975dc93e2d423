"""The whole app on VK: real vk_api over HTTP against the VK emulator, started from a config
file, with SQLite in tmp_path. Each test plays citizens (and staff) in the emulator and
checks what they see in their chats. The last tests run ``priemnaya run`` in a subprocess
to kill it for real."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from runtime.app import App
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.vk import VkEmulator, VkMessage
from tests.processes import priemnaya_run, tail
from tests.running import running_app as running

ROOT = Path(__file__).resolve().parent.parent
GROUP = 4242
TOKEN = "vk1.a.school-token"
TG_TOKEN = "710001:school-token-abcdef"
STAFF_CHAT = 2000000001
STAFF_MEMBER = 7001
FIRST_GRADE = "Как записать ребёнка в первый класс?"
FIRST_GRADE_ANSWER = "Приём заявлений в 1 класс"
MEALS = "Как оплатить питание в столовой?"
MEALS_ANSWER = "лицевой счёт"
FREE_MEALS = "Положено ли бесплатное питание в начальной школе?"
FREE_MEALS_ANSWER = "1–4 классов"
#: a small FAQ of its own, so that these tests follow the adapter, not the matcher's tuning
FAQ = f"""\
entries:
  - id: first-grade
    category: Приём в школу
    questions: ["{FIRST_GRADE}"]
    answer: |
      {FIRST_GRADE_ANSWER} идёт с 1 апреля по 30 июня, в канцелярии ({{{{ institution.address }}}}).
  - id: meal-payment
    category: Питание
    questions: ["{MEALS}"]
    answer: |
      Питание оплачивается через {MEALS_ANSWER} ученика в личном кабинете.
  - id: free-meals
    category: Питание
    questions: ["{FREE_MEALS}"]
    answer: |
      Ученики {FREE_MEALS_ANSWER} получают бесплатный горячий обед.
"""


@pytest.fixture
async def emulator() -> AsyncIterator[VkEmulator]:
    emu = await VkEmulator().start()
    emu.add_community(GROUP, TOKEN)
    emu.users[STAFF_MEMBER] = ("Анна", "Иванова")
    try:
        yield emu
    finally:
        await emu.close()


def write_config(
    tmp_path: Path,
    emulator: VkEmulator,
    monkeypatch: pytest.MonkeyPatch,
    *,
    wait: int = 1,
    telegram: TelegramEmulator | None = None,
) -> Path:
    monkeypatch.setenv("VK_SCHOOL", TOKEN)
    monkeypatch.setenv("TG_SCHOOL", TG_TOKEN)
    faq = tmp_path / "faq"
    faq.mkdir(exist_ok=True)
    (faq / "school.yaml").write_text(FAQ, encoding="utf-8")
    tg = (
        f'    telegram: {{token: "${{TG_SCHOOL}}", api_server: "{telegram.url}"}}\n'
        if telegram
        else ""
    )
    config = f"""\
storage: {{path: data/bot.sqlite3}}
timezone: Europe/Moscow
institutions:
  school-17:
    name: МБОУ «Средняя школа № 17»
    address: г. Курск, ул. Примерная, 1
    phone: +7 (4712) 00-00-00
    site: https://school17.example
    working_hours: {{mon-sun: "00:00-23:59"}}
    faq: faq/school.yaml
    vk: {{token: "${{VK_SCHOOL}}", group_id: {GROUP}, api_url: "{emulator.api_url}", wait: {wait}}}
{tg}    staff:
      chat: {{platform: vk, id: {STAFF_CHAT}}}
      members: [{{platform: vk, id: {STAFF_MEMBER}, name: Иванова А. П.}}]
"""
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


async def until_said(
    emulator: VkEmulator, app: App, peer: int, done: Callable[[list[VkMessage]], bool]
) -> list[VkMessage]:
    """Wait until the bot's messages to ``peer`` satisfy ``done``, then until the app has
    nothing left to send; returns the bot's messages."""
    await emulator.wait_until(lambda: done(emulator.messages(GROUP, peer)), timeout=60)
    await app.settle()
    return emulator.messages(GROUP, peer)


async def ask(emulator: VkEmulator, app: App, peer: int, text: str) -> list[VkMessage]:
    before = len(emulator.messages(GROUP, peer))
    await emulator.user_says(GROUP, peer, text)
    said = await until_said(emulator, app, peer, lambda m: len(m) > before)
    return said[before:]


def answers(emulator: VkEmulator, peer: int, fragment: str) -> int:
    return sum(fragment in m.text for m in emulator.messages(GROUP, peer))


# -- in process -------------------------------------------------------------------------
async def test_a_question_gets_its_answer(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        said = await ask(emulator, app, 501, FIRST_GRADE)
    text = "\n".join(m.text for m in said)
    assert FIRST_GRADE_ANSWER in text and "г. Курск, ул. Примерная, 1" in text
    assert "<" not in text  # VK has no markup: the citizen never sees tags
    assert any("Помогло" in label for row in said[-1].labels for label in row)


async def test_a_callback_button_gives_an_answer_and_a_snackbar(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        said = await ask(emulator, app, 502, "/start")
        greeting = said[-1]
        before = len(emulator.messages(GROUP, 502))
        await emulator.press(GROUP, 502, greeting.cmid, "Питание")
        category = (await until_said(emulator, app, 502, lambda m: len(m) > before))[-1]
        assert "Питание" in category.text

        answer = (await ask(emulator, app, 502, FIRST_GRADE))[-1]
        await emulator.press(GROUP, 502, answer.cmid, "Помогло")
        await emulator.wait_until(lambda: len(emulator.snackbars(GROUP)) == 2)
        await app.settle()
    assert "Спасибо" in (emulator.snackbars(GROUP)[-1] or "")


async def test_failed_2_and_failed_3_lose_no_event(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = emulator.communities[GROUP]
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        await emulator.longpoll_failed(GROUP, 2)
        said = await ask(emulator, app, 503, FIRST_GRADE)  # asked while the key expired
        assert FIRST_GRADE_ANSWER in said[-1].text or any(
            FIRST_GRADE_ANSWER in m.text for m in said
        )

        reconnects = community.server_requests
        await emulator.longpoll_failed(GROUP, 3)
        await emulator.wait_until(lambda: community.server_requests > reconnects)
        said = await ask(emulator, app, 503, MEALS)
    assert any(MEALS_ANSWER in m.text for m in said)
    assert answers(emulator, 503, FIRST_GRADE_ANSWER) == 1


async def test_error_6_is_ridden_out(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        await ask(emulator, app, 504, "/start")
        sends = emulator.count_calls("messages.send")
        emulator.fail("messages.send", 6)
        said = await ask(emulator, app, 504, FIRST_GRADE)
    assert [m for m in said if FIRST_GRADE_ANSWER in m.text]
    assert answers(emulator, 504, FIRST_GRADE_ANSWER) == 1
    assert emulator.count_calls("messages.send") - sends == len(said) + 1  # one refused


async def test_error_901_marks_the_citizen_unreachable(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        assert app.storage is not None
        await ask(emulator, app, 505, "/start")
        emulator.block(GROUP, 505)  # the citizen forbids messages right after asking
        sends = emulator.count_calls("messages.send")
        await emulator.user_says(GROUP, 505, FIRST_GRADE)
        await emulator.wait_until(lambda: emulator.count_calls("messages.send") > sends)
        await app.settle()
        citizen = await app.storage.citizens.get("school-17", "vk", "505")
        assert citizen is not None and citizen.unreachable
        assert answers(emulator, 505, FIRST_GRADE_ANSWER) == 0

        # message_deny (the citizen blocks the bot) is a membership event the app records
        await ask(emulator, app, 506, "/start")
        sends = emulator.count_calls("messages.send")
        await emulator.deny(GROUP, 506)
        await emulator.wait_until(lambda: emulator.all_confirmed(GROUP))
        await app.settle()
        other = await app.storage.citizens.get("school-17", "vk", "506")
        assert other is not None and other.unreachable
        assert emulator.count_calls("messages.send") == sends  # known without trying


async def test_a_staff_reply_in_a_vk_conversation_reaches_the_citizen(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(write_config(tmp_path, emulator, monkeypatch)) as app:
        await ask(emulator, app, 507, "/start")
        await emulator.user_says(GROUP, 507, "Во дворе не убран снег, сильный гололёд у ворот")
        await until_said(emulator, app, STAFF_CHAT, lambda m: len(m) >= 1)
        card = emulator.messages(GROUP, STAFF_CHAT)[-1]
        assert "гололёд" in card.text

        before = len(emulator.messages(GROUP, 507))
        await emulator.user_says(
            GROUP,
            STAFF_CHAT,
            "Завтра придёт мастер и заменит стекло.",
            from_id=STAFF_MEMBER,
            reply_to=card.cmid,
        )
        said = await until_said(emulator, app, 507, lambda m: len(m) > before)
    assert any("Завтра придёт мастер" in m.text for m in said[before:])


async def test_one_institution_on_telegram_and_vk_answers_from_one_faq(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TelegramEmulator() as telegram:
        config = write_config(tmp_path, emulator, monkeypatch, telegram=telegram)
        async with running(config) as app:
            vk_said = await ask(emulator, app, 508, FIRST_GRADE)
            telegram.user_says(TG_TOKEN, 508, FIRST_GRADE)
            await telegram.wait_until(
                lambda: any(
                    FIRST_GRADE_ANSWER in m.text for m in telegram.bot_messages(TG_TOKEN, 508)
                )
            )
            await app.settle()
    assert any(FIRST_GRADE_ANSWER in m.text for m in vk_said)
    tg_answer = next(
        m for m in telegram.bot_messages(TG_TOKEN, 508) if FIRST_GRADE_ANSWER in m.text
    )
    vk_answer = next(m for m in vk_said if FIRST_GRADE_ANSWER in m.text)
    assert " ".join(tg_answer.text.split()) == " ".join(vk_answer.text.split())


# -- a real process ---------------------------------------------------------------------
async def polling(emulator: VkEmulator, log: Path, since: int = 0) -> None:
    """Wait until the process polls VK (a_check), i.e. it is up and receiving."""
    community = emulator.communities[GROUP]
    try:
        await emulator.wait_until(lambda: community.polls > since, timeout=240)
    except TimeoutError:
        raise AssertionError(f"the bot never polled; its log:\n{tail(log)}") from None


@pytest.mark.slow
async def test_sigkill_between_fetching_and_answering_answers_each_event_exactly_once(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    log = tmp_path / "bot.log"
    questions = {
        601: (FIRST_GRADE, FIRST_GRADE_ANSWER),
        602: (MEALS, MEALS_ANSWER),
        603: (FREE_MEALS, FREE_MEALS_ANSWER),
    }
    community = emulator.communities[GROUP]
    async with priemnaya_run(config, log) as first:
        await polling(emulator, log)
        emulator.hold_sends()  # VK takes the requests in, and answers nobody yet
        for peer, (question, _) in questions.items():
            await emulator.user_says(GROUP, peer, question)
        await emulator.wait_until(lambda: emulator.held >= 1, timeout=120)
        assert all(not emulator.messages(GROUP, peer) for peer in questions)
        first.kill()
        await first.wait()
    held = emulator.held
    emulator.release_sends()  # what reached VK before the kill is delivered all the same
    await emulator.wait_until(
        lambda: sum(len(emulator.messages(GROUP, p)) for p in questions) >= held
    )

    polls = community.polls
    async with priemnaya_run(config, log) as second:
        await polling(emulator, log, since=polls)
        await emulator.wait_until(
            lambda: all(answers(emulator, p, a) >= 1 for p, (_, a) in questions.items()),
            timeout=120,
        )
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 60) == 0

    for peer, (_, answer) in questions.items():
        assert answers(emulator, peer, answer) == 1, (peer, tail(log))
    assert community.dedup_hits >= 1  # a send VK had taken was retried with its random_id


@pytest.mark.slow
async def test_run_exits_after_sigterm_without_waiting_out_the_long_poll(
    tmp_path: Path, emulator: VkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch, wait=25)
    log = tmp_path / "bot.log"
    async with priemnaya_run(config, log) as process:
        await polling(emulator, log)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
        elapsed = time.monotonic() - started
        print(f"priemnaya run exited {elapsed:.2f} s after SIGTERM (VK wait=25)")
    assert code == 0, tail(log)
    # The long poll holds a request open for 25 s; a stop must not wait it out. About 1-2 s
    # on an idle machine; 6.1 s was seen with load average 10 on 2 cores, hence the bound:
    # loaded-machine headroom, yet far from the 25 s a waited-out poll would take.
    assert elapsed < 15.0, elapsed
