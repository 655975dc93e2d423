"""The MAX adapter against the MAX emulator: what the contract suite does not cover —
the token's place, the marker that makes a restart lose and repeat nothing, start/stop,
MAX's keyboard limits, error mapping, pacing and a custom CA bundle."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import SystemClock
from bots.core.model import Button, ChatRef, Event, Reply, SentMessage
from bots.core.payloads import MemoryPayloadStore
from bots.core.platform import PermanentSendError, PlatformError, RecipientUnreachable
from bots.max import MaxGroup, MaxPlatform, create_group
from bots.max.account import MaxAccount
from tests.contract.harness_max import MemoryState
from tests.emulators.max import MaxEmulator
from tests.emulators.tls import self_signed

TOKEN = "max-adapter-token-1"
BOT_ID = 5200
USER = 301


@pytest.fixture
async def emulator() -> AsyncIterator[MaxEmulator]:
    async with MaxEmulator() as emu:
        emu.add_bot(TOKEN, BOT_ID, username="school17_bot")
        yield emu


@asynccontextmanager
async def running(
    emulator: MaxEmulator,
    on_event: Callable[[Event], Awaitable[None]],
    *,
    state: MemoryState | None = None,
    payloads: MemoryPayloadStore | None = None,
    ca_bundle: str | None = None,
) -> AsyncIterator[MaxPlatform]:
    services = Services(
        payloads=payloads or MemoryPayloadStore(),
        state=state or MemoryState(),
        clock=SystemClock(),
        extra={"max": {"poll_timeout": 5}},
    )
    account = MaxAccount(token=SecretStr(TOKEN), api_url=emulator.url, ca_bundle=ca_bundle)
    group: MaxGroup = await create_group([AccountSpec("school", account)], services)
    platform = group.max["school"]
    await group.start(on_event)
    try:
        yield platform
    finally:
        await group.stop()


class Inbox:
    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    async def __call__(self, event: Event) -> None:
        await self.events.put(event)

    async def next(self) -> Event:
        return await asyncio.wait_for(self.events.get(), 10)


def dialog(emulator: MaxEmulator, user: int = USER) -> ChatRef:
    return ChatRef("max", str(emulator.dialog(TOKEN, user).chat_id))


async def test_the_token_travels_only_in_the_authorization_header(
    emulator: MaxEmulator,
) -> None:
    inbox = Inbox()
    async with running(emulator, inbox) as platform:
        await platform.send(dialog(emulator), Reply(text="Здравствуйте"), dedup_key="a")
        emulator.user_says(TOKEN, emulator.dialog_id(USER), "вопрос")
        await inbox.next()
    assert emulator.calls["POST /messages"] == 1 and emulator.calls["GET /updates"] >= 1
    assert emulator.token_in_query == 0
    assert not any(TOKEN in str(query) for _, query in emulator.request_log)
    assert TOKEN not in repr(platform.client)


async def test_start_and_stop_and_a_deep_link(emulator: MaxEmulator) -> None:
    inbox = Inbox()
    async with running(emulator, inbox):
        chat_id = emulator.start_bot(TOKEN, USER, payload="school-17-menu")
        started = await inbox.next()
        emulator.stop_bot(TOKEN, USER)
        stopped = await inbox.next()
    assert started.text == "/start" and started.start_payload == "school-17-menu"
    assert started.chat.chat_id == str(chat_id) and started.user.id == str(USER)
    assert stopped.membership == "blocked" and stopped.text is None
    assert stopped.chat.chat_id == str(chat_id)
    assert started.update_key != stopped.update_key


async def test_a_restart_neither_loses_nor_repeats_an_update(emulator: MaxEmulator) -> None:
    """The marker is stored only after the whole batch went through on_event: a crash in
    the middle of a batch makes MAX serve it again, with the same update keys."""
    state = MemoryState()
    chat = emulator.dialog_id(USER)
    for text in ("раз", "два", "три"):
        emulator.user_says(TOKEN, chat, text)

    seen: list[tuple[str, str | None]] = []
    broke = asyncio.Event()

    async def crashes_on_two(event: Event) -> None:
        if event.text == "два":
            broke.set()
            raise RuntimeError("the database went away")
        seen.append((event.update_key, event.text))

    async with running(emulator, crashes_on_two, state=state):
        await asyncio.wait_for(broke.wait(), 10)
    assert not emulator.all_committed(TOKEN)
    assert [t for _, t in seen] == ["раз"]

    again: list[tuple[str, str | None]] = []
    got_three = asyncio.Event()

    async def works(event: Event) -> None:
        again.append((event.update_key, event.text))
        if event.text == "три":
            got_three.set()

    async with running(emulator, works, state=state):
        await asyncio.wait_for(got_three.wait(), 10)
        await emulator.wait_until(lambda: emulator.all_committed(TOKEN))
    # "раз" comes again with the same key (the app's inbox skips it); nothing is lost
    assert [t for _, t in again] == ["раз", "два", "три"]
    assert again[0][0] == seen[0][0]

    after: list[Event] = []
    polls = emulator.bot(TOKEN).polls

    async def record(event: Event) -> None:
        after.append(event)

    async with running(emulator, record, state=state):
        await emulator.wait_until(lambda: emulator.bot(TOKEN).polls > polls)
    assert after == []  # a clean restart repeats nothing


async def test_polling_removes_a_leftover_webhook_subscription(emulator: MaxEmulator) -> None:
    emulator.bot(TOKEN).subscriptions.append(
        {"url": "https://old.example/max/1", "secret": "x" * 8, "update_types": None, "time": 1}
    )
    inbox = Inbox()
    async with running(emulator, inbox):
        emulator.user_says(TOKEN, emulator.dialog_id(USER), "вопрос")
        event = await inbox.next()
    assert event.text == "вопрос"
    assert emulator.calls["DELETE /subscriptions"] == 1
    assert emulator.bot(TOKEN).subscriptions == []


async def test_wide_rows_are_reflowed_to_maxs_limits(emulator: MaxEmulator) -> None:
    nine = [Button(f"Тема {n}", callback=f"faq:c:{n}") for n in range(9)]
    links = [Button(f"Сайт {n}", url=f"https://example.org/{n}") for n in range(4)]
    async with running(emulator, Inbox()) as platform:
        await platform.send(dialog(emulator), Reply.of("Выберите:", [nine, links]), dedup_key="kb")
        with pytest.raises(PermanentSendError):
            many = [[Button(f"{n}", callback=f"x:{n}")] for n in range(31)]
            await platform.send(dialog(emulator), Reply.of("Слишком много", many), dedup_key="k")
    (seen,) = emulator.bot_messages(TOKEN, emulator.dialog_id(USER))
    assert [len(row) for row in seen.labels] == [7, 2, 3, 1]
    assert [label for row in seen.labels for label in row] == [b.text for b in nine + links]


async def test_a_payload_over_1024_bytes_is_stored_and_comes_back(
    emulator: MaxEmulator,
) -> None:
    inbox = Inbox()
    payload = "faq:a:" + "длинный-идентификатор-" * 40  # about 1,600 bytes
    async with running(emulator, inbox) as platform:
        (sent,) = await platform.send(
            dialog(emulator), Reply.of("Ответ", [[Button("Да", callback=payload)]]), dedup_key="p"
        )
        (seen,) = emulator.bot_messages(TOKEN, emulator.dialog_id(USER))
        assert len(seen.button("Да")["payload"]) < 64
        emulator.press(TOKEN, emulator.dialog_id(USER), sent.message_id, "Да")
        event = await inbox.next()
    assert event.callback is not None and event.callback.data == payload


async def test_sent_text_is_html_and_a_reply_links_the_message(emulator: MaxEmulator) -> None:
    async with running(emulator, Inbox()) as platform:
        chat = dialog(emulator)
        (first,) = await platform.send(chat, Reply(text="<b>Заявка</b> &amp; ответ"), dedup_key="h")
        await platform.send(
            chat, Reply(text="Дополнение", reply_to=first.message_id), dedup_key="r"
        )
    one, two = emulator.bot_messages(TOKEN, emulator.dialog_id(USER))
    assert one.format == "html" and one.raw == "<b>Заявка</b> &amp; ответ"
    assert one.text == "Заявка & ответ"
    assert two.reply_to == one.mid


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, 3, PlatformError),
        (429, None, PlatformError),
        (503, None, PlatformError),
        (403, None, RecipientUnreachable),
        (400, None, PermanentSendError),
    ],
)
async def test_send_errors_map_onto_the_port(
    emulator: MaxEmulator, status: int, retry_after: int | None, expected: type[Exception]
) -> None:
    async with running(emulator, Inbox()) as platform:
        emulator.fail("POST /messages", status, retry_after=retry_after)
        with pytest.raises(expected) as caught:
            await platform.send(dialog(emulator), Reply(text="Ответ"), dedup_key="e")
        # the next try goes through: the adapter itself never retries
        await platform.send(dialog(emulator), Reply(text="Ответ"), dedup_key="e")
    assert emulator.calls["POST /messages"] == 2
    if expected is PlatformError:
        assert isinstance(caught.value, PlatformError)
        assert caught.value.code == status and caught.value.retry_after == retry_after


async def test_a_stopped_bot_and_a_vanished_message(emulator: MaxEmulator) -> None:
    inbox = Inbox()
    async with running(emulator, inbox) as platform:
        emulator.stop_bot(TOKEN, USER)
        await inbox.next()
        with pytest.raises(RecipientUnreachable):
            await platform.send(dialog(emulator), Reply(text="Объявление"), dedup_key="s")
        gone = SentMessage(dialog(emulator), "mid.does-not-exist")
        with pytest.raises(PermanentSendError):
            await platform.edit(gone, Reply(text="Заявка закрыта"))


async def test_sends_are_paced_to_30_a_second(emulator: MaxEmulator) -> None:
    async with running(emulator, Inbox()) as platform:
        chat = dialog(emulator)
        started = time.monotonic()
        await asyncio.gather(
            *(platform.send(chat, Reply(text=f"№{n}"), dedup_key=f"n{n}") for n in range(45))
        )
        elapsed = time.monotonic() - started
    assert len(emulator.bot_messages(TOKEN, emulator.dialog_id(USER))) == 45
    assert elapsed >= 1.2, elapsed  # 45 calls at 30/s, no burst beyond one


async def test_a_ca_bundle_makes_an_unknown_root_trusted(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    async with MaxEmulator(tls=tls) as emu:
        emu.add_bot(TOKEN, BOT_ID)
        assert emu.url.startswith("https://")
        chat = ChatRef("max", str(emu.dialog(TOKEN, USER).chat_id))
        async with running(emu, Inbox()) as untrusting:
            with pytest.raises(PlatformError):  # certificate verify failed: a transport error
                await untrusting.send(chat, Reply(text="Здравствуйте"), dedup_key="t")
        async with running(emu, Inbox(), ca_bundle=str(cert)) as trusting:
            await trusting.send(chat, Reply(text="Здравствуйте"), dedup_key="t")
            await asyncio.wait_for(trusting.ready.wait(), 10)
    assert [m.text for m in emu.bot_messages(TOKEN, emu.dialog_id(USER))] == ["Здравствуйте"]


async def test_stop_lets_a_slow_send_finish(emulator: MaxEmulator) -> None:
    emulator.slow("POST /messages", 0.3)
    async with running(emulator, Inbox()) as platform:
        sending = asyncio.create_task(
            platform.send(dialog(emulator), Reply(text="Ответ"), dedup_key="slow")
        )
        await emulator.wait_until(lambda: emulator.calls["POST /messages"] == 1)
    # the group stopped while MAX was still answering: the send was not cut off
    (sent,) = await sending
    (seen,) = emulator.bot_messages(TOKEN, emulator.dialog_id(USER))
    assert seen.mid == sent.message_id


# -- what changed in MAX in 2026 (shared/OK-NOTES.md §4) ----------------------------------
async def test_no_intent_on_buttons_and_no_chat_list_calls(emulator: MaxEmulator) -> None:
    """MAX deprecated ``intent`` on callback buttons and removed GET /chats and
    /chats/{link}: the adapter sends the one and calls the others never."""
    inbox = Inbox()
    async with running(emulator, inbox) as platform:
        emulator.start_bot(TOKEN, USER)
        await inbox.next()
        reply = Reply.of(
            "Выберите:", [[Button("Да", callback="y"), Button("Сайт", url="https://a.ru")]]
        )
        (sent,) = await platform.send(dialog(emulator), reply, dedup_key="k")
        emulator.press(TOKEN, int(dialog(emulator).chat_id), sent.message_id, "Да")
        pressed = await inbox.next()
        await platform.answer_callback(pressed, "Принято")
    assert emulator.intents_sent == 0
    assert not [key for key in emulator.calls if key.startswith("GET /chats")]
    assert pressed.user.id == str(USER)  # from callback.user


async def test_new_attachment_fields_are_accepted(emulator: MaxEmulator) -> None:
    """Files with ``filename``/``size`` and contacts with ``vcf_info``/``max_info``/``hash``
    (MAX, May 2026) do not stop an update from becoming an Event."""
    from tests.emulators.max import contact, file

    inbox = Inbox()
    async with running(emulator, inbox):
        where = emulator.dialog(TOKEN, USER).chat_id
        emulator.user_says(TOKEN, where, "Вот заявление", attachments=[file(), contact()])
        event = await inbox.next()
    assert event.text == "Вот заявление" and event.user.id == str(USER)


@pytest.mark.parametrize(
    ("public_url", "refused"),
    [
        ("http://bot.example.ru", True),
        ("https://bot.example.ru", False),
        ("http://127.0.0.1:8080", False),  # loopback: only local emulators, never MAX
    ],
)
def test_a_max_webhook_needs_an_https_public_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, public_url: str, refused: bool
) -> None:
    from runtime.features import TEMPLATES
    from runtime.validation import check_all

    monkeypatch.setenv("MAX_T", TOKEN)
    (tmp_path / "faq.yaml").write_text(
        "entries:\n  - id: a\n    questions: [Вопрос]\n    answer: Ответ\n", encoding="utf-8"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"server: {{host: 127.0.0.1, port: 8080, public_url: '{public_url}'}}\n"
        "institutions:\n  school:\n    name: Школа\n    faq: faq.yaml\n"
        '    max: {token: "${MAX_T}", mode: webhook}\n',
        encoding="utf-8",
    )
    problems, _ = check_all(str(config), TEMPLATES)
    https = [p for p in problems if "only over HTTPS" in p.message]
    assert bool(https) == refused
    if refused:
        assert https[0].line == 1 and public_url in https[0].message
