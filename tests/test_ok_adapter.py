"""The OK adapter on its own: our client and OkGroup over HTTP against the OK emulator.

What the contract suite does not cover: how OK's errors become the port's kinds, start
(token check, stale webhooks, explicit event types), stop in the middle of registering,
long polling, the keep-alive on the app's clock, and sending details (split, buttons,
reply_to, the send path spellings, edit sent anew and recorded by the outbox sender)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bots.core.adapters import AccountSpec, Services
from bots.core.clock import Clock, ManualClock, SystemClock
from bots.core.model import Button, ChatRef, Event, Reply, SentMessage
from bots.core.payloads import MemoryPayloadStore
from bots.core.platform import PermanentSendError, PlatformError, RecipientUnreachable
from bots.ok import OkGroup, OkPlatform, create_group
from bots.ok.config import OkAccount
from runtime.sender import Sender
from storage import Storage
from tests.contract.harness_max import MemoryState
from tests.emulators.ok import OkEmulator

TOKEN = "tkn1adapter:CQABPOJKAKEKEKEKE"


@dataclass
class World:
    emulator: OkEmulator
    group: OkGroup
    platform: OkPlatform
    events: asyncio.Queue[Event]
    public_url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def world(
    emulator: OkEmulator,
    *,
    clock: Clock | None = None,
    start: bool = True,
    on_event: Callable[[Event], Awaitable[None]] | None = None,
    answer_within: float = 4.0,
    **account: Any,
) -> AsyncIterator[World]:
    port = free_port()
    web_app = web.Application()
    public_url = f"http://127.0.0.1:{port}"
    services = Services(
        payloads=MemoryPayloadStore(),
        state=MemoryState(),
        clock=clock or SystemClock(),
        web_app=web_app,
        public_url=public_url,
        extra={"ok": {"poll_interval": 0.05, "answer_within": answer_within}},
    )
    settings = OkAccount(token=SecretStr(TOKEN), api_url=emulator.url, **account)
    group = await create_group([AccountSpec("school", settings)], services)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    events: asyncio.Queue[Event] = asyncio.Queue()
    platform = group.ok["school"]
    try:
        if start:
            await group.start(on_event or events.put)
            await asyncio.wait_for(platform.ready.wait(), 15)
        yield World(emulator, group, platform, events, public_url)
    finally:
        await group.stop()
        await runner.cleanup()


@pytest.fixture
async def emulator() -> AsyncIterator[OkEmulator]:
    async with OkEmulator() as emu:
        emu.add_group(TOKEN, 53_000_000_000_002)
        yield emu


def chat(emulator: OkEmulator, user: int = 101) -> ChatRef:
    return ChatRef("ok", emulator.dialog(TOKEN, user).chat_id)


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "kind", "retry_after"),
    [
        ({"code": 8}, PlatformError, 30.0),  # FLOOD_BLOCKED with HTTP 200: back off
        ({"code": 2}, PlatformError, None),  # SERVICE: try again
        ({"status": 429, "retry_after": 7}, PlatformError, 7.0),
        ({"status": 502}, PlatformError, None),
        ({"code": 10}, RecipientUnreachable, None),  # PERMISSION_DENIED
        ({"code": 100}, PermanentSendError, None),  # PARAM: the same call fails again
    ],
)
async def test_ok_errors_become_the_ports_kinds(
    emulator: OkEmulator, fault: dict[str, Any], kind: type[Exception], retry_after: float | None
) -> None:
    async with world(emulator) as w:
        emulator.fail("POST messages", **fault)
        with pytest.raises(kind) as raised:
            await w.platform.send(chat(emulator), Reply("Ответ"), dedup_key="k")
        if retry_after is not None:
            assert isinstance(raised.value, PlatformError)
            assert raised.value.retry_after == retry_after
        await w.platform.send(chat(emulator), Reply("Ответ"), dedup_key="k")  # once only
    assert [m.text for m in emulator.bot_messages(TOKEN, chat(emulator).chat_id)] == ["Ответ"]


async def test_a_refused_token_is_announced_once_and_comes_back(emulator: OkEmulator) -> None:
    told: list[str] = []
    async with world(emulator) as w:

        async def hook(institution: str, reason: str) -> None:
            told.append(institution)

        w.group.token_hooks.append(hook)
        emulator.refuse_token(TOKEN)
        for _ in range(2):
            with pytest.raises(PlatformError) as raised:
                await w.platform.send(chat(emulator), Reply("Ответ"), dedup_key="k")
            assert raised.value.retry_after == 60.0
        assert told == ["school"] and not w.platform.healthy()


# -- start and stop ---------------------------------------------------------------------
async def test_start_removes_our_stale_webhooks_and_keeps_others(emulator: OkEmulator) -> None:
    async with world(emulator, start=False) as w:
        state = emulator.group(TOKEN)
        old = f"{w.public_url}/ok/{'0' * 32}"  # an address from an earlier token
        foreign = "https://crm.example.ru/ok/hook"
        for url in (old, foreign):
            state.webhooks[url] = {"url": url, "types": ["MESSAGE_CREATED"], "time": 1}
        await w.group.start(w.events.put)
        await asyncio.wait_for(w.platform.ready.wait(), 15)
        ours = w.platform.webhook_url
    assert set(state.webhooks) == {foreign, ours}
    assert state.webhooks[ours]["types"] == ["MESSAGE_CREATED", "MESSAGE_CALLBACK", "CHAT_SYSTEM"]
    assert emulator.calls["GET me/info"] >= 1


async def test_stop_during_subscribe_leaves_it_whole(emulator: OkEmulator) -> None:
    async with world(emulator, start=False) as w:
        emulator.hold("POST me/subscribe")
        await w.group.start(w.events.put)
        await emulator.wait_until(lambda: emulator.held >= 1)
        stopping = asyncio.create_task(w.platform.stop())
        await asyncio.sleep(0)  # one loop turn: stop's first step runs (it sets _stopping)
        assert w.platform._stopping.is_set()
        emulator.release()
        await asyncio.wait_for(stopping, 15)
    assert list(emulator.group(TOKEN).webhooks) == [w.platform.webhook_url]


async def test_long_polling_receives_and_resubscribes(emulator: OkEmulator) -> None:
    async with world(emulator, mode="polling") as w:
        state = emulator.group(TOKEN)
        assert state.long_polling and not state.webhooks
        emulator.user_says(TOKEN, chat(emulator).chat_id, "Здравствуйте")
        first = await asyncio.wait_for(w.events.get(), 15)
        state.long_polling = False  # OK forgot the subscription: me/updates answers 5000
        emulator.user_says(TOKEN, chat(emulator).chat_id, "Ещё вопрос")
        second = await asyncio.wait_for(w.events.get(), 15)
    assert (first.text, second.text) == ("Здравствуйте", "Ещё вопрос")
    assert emulator.calls["POST me/subscribe"] >= 2


async def test_the_token_is_kept_alive_daily_on_the_apps_clock(emulator: OkEmulator) -> None:
    clock = ManualClock()
    async with world(emulator, clock=clock):
        calls = emulator.calls["GET me/info"]
        clock.advance(24 * 3600)
        await emulator.wait_until(lambda: emulator.calls["GET me/info"] == calls + 1)
    assert emulator.calls["GET me/info"] == calls + 1


# -- receiving --------------------------------------------------------------------------
async def test_bodies_without_webhook_type_and_a_started_chat_are_understood(
    emulator: OkEmulator,
) -> None:
    async with world(emulator) as w:
        where = chat(emulator).chat_id
        emulator.start_chat(TOKEN, 101, payload="from-site")
        started = await asyncio.wait_for(w.events.get(), 15)
        old_style = {  # the old docs' example: no webhookType
            "sender": {"user_id": "user:101"},
            "recipient": {"chat_id": where},
            "message": {"text": "text", "seq": 1, "mid": "mid:old.1"},
            "timestamp": 1498581292941,
        }
        assert await emulator.post_raw(TOKEN, old_style) == 200
        message = await asyncio.wait_for(w.events.get(), 15)
    assert (started.text, started.start_payload) == ("/start", "from-site")
    assert (message.text, message.message_id, message.user.id) == ("text", "mid:old.1", "user:101")


async def test_slow_handling_answers_503_in_time_and_a_redelivery_joins_it(
    emulator: OkEmulator,
) -> None:
    """OK wants an answer within 5 s. Handling that takes longer gets a 503 (OK delivers
    again); a redelivery arriving meanwhile waits for the handling under way instead of
    starting a second one. (One arriving after it finished is the inbox's to skip.)"""
    release = asyncio.Event()
    started: list[str] = []

    async def slow(event: Event) -> None:
        started.append(event.update_key)
        await release.wait()

    async with world(emulator, on_event=slow, answer_within=0.2):
        group = emulator.group(TOKEN)
        emulator.user_says(TOKEN, chat(emulator).chat_id, "Вопрос")
        await emulator.wait_until(lambda: sum(s == 503 for *_, s in group.deliveries) >= 2)
        assert len(started) == 1  # the redelivery joined the first handling
        release.set()
        await emulator.wait_until(lambda: emulator.all_delivered(TOKEN))
    assert [status for *_, status in group.deliveries][-1] == 200


# -- sending ----------------------------------------------------------------------------
@pytest.mark.parametrize("send_path", ["me", "chat"])
async def test_a_long_answer_with_buttons_and_reply_to(
    emulator: OkEmulator, send_path: str
) -> None:
    where = chat(emulator)
    question = emulator.user_says(TOKEN, where.chat_id, "Вопрос")
    text = "\n\n".join(f"Абзац {i}. " + "слово " * 100 for i in range(12))
    rows = [[Button(f"Кнопка {i}", callback=f"b:{i}") for i in range(5)]]
    async with world(emulator, send_path=send_path) as w:
        sent = await w.platform.send(
            where, Reply.of(text, rows, reply_to=question.mid), dedup_key="k"
        )
    seen = emulator.bot_messages(TOKEN, where.chat_id)
    assert len(seen) == len(sent) >= 2 and all(len(m.text) <= 4000 for m in seen)
    assert seen[0].reply_to == question.mid and seen[1].reply_to is None
    assert seen[-1].labels == [["Кнопка 0", "Кнопка 1", "Кнопка 2"], ["Кнопка 3", "Кнопка 4"]]
    assert all(b["intent"] == "DEFAULT" for row in seen[-1].buttons for b in row)
    assert not any(m.buttons for m in seen[:-1])


async def test_an_edit_through_the_outbox_is_sent_anew_and_recorded(
    emulator: OkEmulator, tmp_path: Path
) -> None:
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "db.sqlite3", clock.now)
    try:
        async with world(emulator) as w:
            sender = Sender(storage, lambda institution, kind: w.platform, clock)
            where = chat(emulator)
            for kind, text in (("send", "Заявка: новая"), ("edit", "Заявка: взята")):
                await storage.outbox.enqueue(
                    institution="school",
                    chat=where,
                    reply=Reply.of(text, [[Button("Закрыть", callback="c")]]),
                    dedup_key=kind,
                    now=clock.now(),
                    kind=kind,
                    ref_kind="card",
                    ref_id="1",
                )
                (item,) = await storage.outbox.due_all(clock.now())
                assert await sender._deliver(item) is True
            records = await storage.outbox.sent_for_ref("card", "1")
    finally:
        await storage.close()
    seen = emulator.bot_messages(TOKEN, where.chat_id)
    assert [m.text for m in seen] == ["Заявка: новая", "Заявка: взята"]
    assert records[-1].message == SentMessage(where, seen[-1].mid)  # replies name the new one


# -- config -----------------------------------------------------------------------------
def test_check_names_oks_config_mistakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.features import TEMPLATES
    from runtime.validation import check_all

    monkeypatch.setenv("OK_T", TOKEN)
    (tmp_path / "faq.yaml").write_text(
        "entries:\n  - id: a\n    questions: [Вопрос]\n    answer: Ответ\n", encoding="utf-8"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "institutions:\n  school:\n    name: Школа\n    faq: faq.yaml\n"
        '    ok: {token: "${OK_T}", allow_from: [ok, 10.0.0.0/8]}\n'
        "    announcements:\n"
        "      - {id: a, every: 1d, text: Привет, to: [subscribers, {platform: ok, id: x}]}\n",
        encoding="utf-8",
    )
    problems, _ = check_all(str(config), TEMPLATES)
    messages = {p.line: p.message for p in problems}
    assert "needs server" in messages[5] and "mode: polling" in messages[5]
    assert "through 'subscribers'" in messages[7]
    config.write_text(
        config.read_text(encoding="utf-8").replace("10.0.0.0/8", "10.0.0.0/33"), encoding="utf-8"
    )
    (problem,) = [p for p in check_all(str(config), TEMPLATES)[0] if "allow_from" in p.message]
    assert problem.line == 5 and "not a network" in problem.message
