"""An emulator of OK's group Bot API (``https://api.ok.ru/graph/``) on 127.0.0.1, built
from shared/OK-NOTES.md for tests with the OK adapter.

What it does the way the notes say, with their markers:

- [DOC] the token comes as the ``access_token`` query parameter; POSTs must be JSON
  (``Content-Type: application/json``); ``GET me/info`` → ``{name, group_id}``;
  ``GET me/subscriptions`` → ``{subscriptions: [{url, time}]}``; ``POST me/subscribe``
  (``url`` and/or ``types``, or ``longPolling: true``), ``POST me/unsubscribe {url}`` →
  ``{success: true}``; sending by ``POST me/messages/chat:ID`` and by
  ``POST chat:ID/messages`` (both spellings), ``sender_action: typing_on``; at most 5
  attachments; ``POST chat:ID/answer?callbackId=`` with a message; webhooks are JSON
  POSTs to every subscribed URL, retried until answered 200 within 5 seconds; the
  group's own messages are not echoed; ids are prefixed strings (``chat:C…``, ``mid:…``,
  ``user:…``, ``group:…``).
- [CODE] ``webhookType``; a press is ``{webhookType: MESSAGE_CALLBACK, callbackId,
  payload, sender, recipient, timestamp}``; the INLINE_KEYBOARD payload is
  ``{keyboard: {buttons: [[{type, text, intent, payload|url}]]}}``; a send answers
  ``{success, recipient_id, message_id}``; errors are ``{error_code, error_msg}``, by
  default with HTTP 200.

Where the notes are silent the emulator assumes, and says so with ``WEAK:`` in the code
below; a check against the real API (README, "OK: what is not verified") should correct
those lines first. The assumptions are pessimistic where that keeps the adapter honest:
a subscription without ``types`` gets only new messages, a button without ``intent`` is
refused, a dialog's chat id differs from its user's id.

Tests play the people (:meth:`OkEmulator.user_says`, :meth:`press`, :meth:`start_chat`),
read what they see (:meth:`bot_messages`, :meth:`answers`), and break things
(:meth:`fail`: an ``error_code`` with HTTP 200 or any HTTP status; :meth:`refuse_token`;
:meth:`deny`: a citizen who does not allow group messages; :meth:`deliver_again`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators.base import note_connection

#: WEAK: OK publishes no text limit; 4000 is what one client splits at
MAX_TEXT = 4000
MAX_ATTACHMENTS = 5  # [DOC]
BUTTON_TYPES = {"CALLBACK", "LINK", "REQUEST_CONTACT", "REQUEST_GEO_LOCATION"}
INTENTS = {"DEFAULT", "POSITIVE", "NEGATIVE"}
EVENT_TYPES = ("MESSAGE_CREATED", "MESSAGE_CALLBACK", "CHAT_SYSTEM")
#: [DOC] a webhook has 5 seconds to answer 200
WEBHOOK_TIMEOUT = 5.0
#: WEAK: error codes from OK's traditional table; which ones the Bot API uses is unknown
PARAM, PERMISSION_DENIED, SESSION_EXPIRED, NOT_FOUND = 100, 10, 102, 300
#: WEAK: seen by one client on me/updates without a long-polling subscription
NO_POLLING = 5000


class OkError(Exception):
    def __init__(
        self, code: int, message: str, *, status: int = 200, retry_after: int | None = None
    ):
        super().__init__(code, message)
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after


@dataclass(slots=True)
class OkMessage:
    """A message as the people in the dialog see it (OK shows plain text)."""

    mid: str
    seq: int
    chat_id: str
    sender_id: str
    from_bot: bool
    text: str
    timestamp: int
    buttons: list[list[dict[str, Any]]] = field(default_factory=list)
    reply_to: str | None = None

    @property
    def labels(self) -> list[list[str]]:
        return [[str(b.get("text", "")) for b in row] for row in self.buttons]

    def button(self, label: str) -> dict[str, Any]:
        for row in self.buttons:
            for button in row:
                if label.lower() in str(button.get("text", "")).lower():
                    return button
        raise KeyError(f"no button {label!r} on {self.mid}: {self.labels}")


@dataclass(slots=True)
class OkChat:
    """A dialog between one person and the group (the only kind of group-message chat)."""

    chat_id: str
    user_id: str
    name: str
    messages: list[OkMessage] = field(default_factory=list)
    #: the person does not allow messages from the group
    denied: bool = False


@dataclass(slots=True)
class Fault:
    key: str
    status: int
    code: int | None
    retry_after: int | None
    times: int


@dataclass(slots=True)
class GroupState:
    token: str
    group_id: str
    name: str
    refused: bool = False
    chats: dict[str, OkChat] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    #: url -> {"url", "types", "time"}
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: url -> index of the next update to deliver there
    delivered: dict[str, int] = field(default_factory=dict)
    long_polling: bool = False
    polled: int = 0
    polls: int = 0
    #: callbackId -> (chat_id, mid) of every press
    callbacks: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: (callbackId, text) of every answer
    answers: list[tuple[str, str]] = field(default_factory=list)
    #: chat ids that got typing_on
    typing: list[str] = field(default_factory=list)
    #: (url, body, status) of every webhook delivery attempt
    deliveries: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class OkEmulator:
    """Start with ``async with OkEmulator() as emu``; point accounts at ``emu.url``."""

    def __init__(self) -> None:
        self.groups: dict[str, GroupState] = {}
        self.faults: list[Fault] = []
        #: "METHOD path-shape" of every request, counted
        self.calls: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._change = asyncio.Event()
        self._closing = False
        self._ids = itertools.count(1)
        self._client: aiohttp.ClientSession | None = None
        #: calls ("POST typing_on", "POST me/subscribe") held unanswered until release()
        self.holding: set[str] = set()
        self.held = 0
        self._release = asyncio.Event()
        #: client connection (address, port) -> the tokens whose calls came over it
        self.connections: dict[Any, set[str]] = {}

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/graph/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/graph/"
        return self.url

    async def stop(self) -> None:
        self._closing = True
        self.release()
        self._changed()
        for group in self.groups.values():
            if group.task is not None:
                group.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await group.task
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> OkEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- set-up ---------------------------------------------------------------------------
    def add_group(self, token: str, group_id: int, name: str = "Школа № 17") -> GroupState:
        group = GroupState(token=token, group_id=f"group:{group_id}", name=name)
        self.groups[token] = group
        return group

    def group(self, token: str) -> GroupState:
        return self.groups[token]

    def dialog(self, token: str, user: int, name: str = "Анна Петрова") -> OkChat:
        """The dialog of person ``user`` with the group (created on first use). WEAK: the
        chat id's shape after ``chat:`` is made up; it never equals the user's id."""
        group = self.groups[token]
        chat_id = f"chat:C{user:x}{abs(hash(group.group_id)) % 4096:03x}a600"
        chat = group.chats.get(chat_id)
        if chat is None:
            chat = group.chats[chat_id] = OkChat(chat_id, f"user:{user}", name)
        return chat

    def fail(
        self,
        key: str,
        *,
        code: int | None = None,
        status: int = 200,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` calls to ``key`` ("POST messages", "GET me/info") fail: with
        ``error_code`` ``code`` (HTTP 200 unless ``status`` says otherwise) or with the bare
        HTTP ``status``."""
        self.faults.append(Fault(key, status, code, retry_after, times))

    def hold(self, key: str) -> None:
        """Keep every call to ``key`` waiting until :meth:`release`. Holding
        ``POST typing_on`` catches a bot that shows "typing" before it handles a message
        between receiving a webhook and answering it."""
        self.holding.add(key)
        self._release.clear()

    def release(self) -> None:
        self.holding.clear()
        self._release.set()

    def refuse_token(self, token: str) -> None:
        """From now on every call with this token fails as an expired session (a new key
        was generated, or 30 days passed without a call). WEAK: the code (102)."""
        self.groups[token].refused = True

    def deny(self, token: str, chat_id: str) -> None:
        """The person does not allow group messages: sends to them fail. WEAK: the code
        (10 PERMISSION_DENIED) and that it comes with HTTP 200."""
        self.groups[token].chats[chat_id].denied = True

    # -- the people -----------------------------------------------------------------------
    def user_says(
        self, token: str, chat_id: str, text: str, *, reply_to: str | None = None
    ) -> OkMessage:
        group = self.groups[token]
        chat = group.chats[chat_id]
        if reply_to is not None:
            self._find(group, reply_to)
        message = self._store(chat, chat.user_id, False, text, [], reply_to)
        body: dict[str, Any] = {"text": text, "seq": message.seq, "mid": message.mid}
        if reply_to is not None:
            body["reply_to"] = reply_to
        self._push(
            group,
            {
                "webhookType": "MESSAGE_CREATED",
                "sender": {"user_id": chat.user_id, "name": chat.name},
                "recipient": {"chat_id": chat.chat_id},
                "message": body,
                "timestamp": message.timestamp,
            },
        )
        return message

    def press(self, token: str, chat_id: str, mid: str, label: str) -> str:
        """The person presses a CALLBACK button; returns the callbackId."""
        group = self.groups[token]
        chat = group.chats[chat_id]
        message = next(m for m in chat.messages if m.mid == mid)
        button = message.button(label)
        if button["type"] != "CALLBACK":
            raise AssertionError(f"{label!r} is a {button['type']} button")
        callback_id = secrets.token_urlsafe(16)
        group.callbacks[callback_id] = (chat_id, mid)
        self._push(
            group,
            {
                "webhookType": "MESSAGE_CALLBACK",
                "callbackId": callback_id,
                "payload": button.get("payload"),
                "sender": {"user_id": chat.user_id, "name": chat.name},
                "recipient": {"chat_id": chat.chat_id},
                # WEAK: a top-level mid naming the keyboard's message (one client's model)
                "mid": mid,
                "timestamp": _now_ms(),
            },
        )
        return callback_id

    def start_chat(self, token: str, user: int, payload: str | None = None) -> str:
        """The person opens the dialog by a generated link. WEAK: the whole shape (one
        client's enum: CHAT_SYSTEM with type CHAT_STARTED and an optional payload)."""
        group = self.groups[token]
        chat = self.dialog(token, user)
        update: dict[str, Any] = {
            "webhookType": "CHAT_SYSTEM",
            "type": "CHAT_STARTED",
            "sender": {"user_id": chat.user_id, "name": chat.name},
            "recipient": {"chat_id": chat.chat_id},
            "timestamp": _now_ms(),
        }
        if payload is not None:
            update["payload"] = payload
        self._push(group, update)
        return chat.chat_id

    async def deliver_again(self, token: str, index: int = -1) -> int:
        """POST update ``index`` once more to every webhook, as OK does after a missed
        5-second answer; the last status."""
        group = self.groups[token]
        status = 0
        for url in list(group.webhooks):
            status = await self._post(group, url, group.updates[index])
        return status

    async def post_raw(self, token: str, body: dict[str, Any]) -> int:
        """POST any body to the group's (last) webhook: forged or odd updates."""
        group = self.groups[token]
        url = list(group.webhooks)[-1]
        return await self._post(group, url, body)

    # -- what people see ------------------------------------------------------------------
    def messages(self, token: str, chat_id: str) -> list[OkMessage]:
        chat = self.groups[token].chats.get(chat_id)
        return list(chat.messages) if chat else []

    def bot_messages(self, token: str, chat_id: str) -> list[OkMessage]:
        return [m for m in self.messages(token, chat_id) if m.from_bot]

    def answers(self, token: str) -> list[tuple[str, str]]:
        return list(self.groups[token].answers)

    def all_delivered(self, token: str) -> bool:
        """Every update went out: to each webhook (answered 200), or was polled."""
        group = self.groups[token]
        if group.webhooks:
            return all(i >= len(group.updates) for i in group.delivered.values())
        return group.polled >= len(group.updates)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._change.wait()

    # -- HTTP -----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body: Any = None
        key = f"{request.method} {_shape(path)}"
        try:
            if request.method == "POST":
                if not request.content_type.startswith("application/json"):
                    # WEAK: what OK answers without the required header
                    raise OkError(PARAM, "Content-Type must be application/json")
                body = await request.json()
                if isinstance(body, dict) and body.get("sender_action"):
                    key = f"POST {body['sender_action']}"
            self.calls[key] += 1
            self._changed()
            group = self.groups.get(request.query.get("access_token", ""))
            if group is not None:
                note_connection(self.connections, request, group.token)
            if group is None or group.refused:
                raise OkError(SESSION_EXPIRED, "PARAM_SESSION_EXPIRED : Session expired")
            self._inject(key)
            if key in self.holding:
                self.held += 1
                self._changed()
                await self._release.wait()
            result = await self._route(group, request.method, path, dict(request.query), body or {})
        except OkError as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            if exc.code is None:
                return web.Response(status=exc.status, headers=headers, text="error")
            return web.json_response(
                {"error_code": exc.code, "error_msg": exc.message},
                status=exc.status,
                headers=headers,
            )
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error_code": PARAM, "error_msg": f"PARAM : {exc}"})
        finally:
            self._changed()
        return web.json_response(result)

    async def _route(
        self, group: GroupState, method: str, path: str, q: dict[str, str], body: dict[str, Any]
    ) -> Any:
        if method == "GET" and path == "me/info":
            return {"name": group.name, "group_id": group.group_id}
        if method == "GET" and path == "me/subscriptions":
            return {
                "subscriptions": [
                    {"url": w["url"], "time": w["time"]} for w in group.webhooks.values()
                ]
            }
        if method == "POST" and path == "me/subscribe":
            return self._subscribe(group, body)
        if method == "POST" and path == "me/unsubscribe":
            url = body["url"]
            if group.webhooks.pop(url, None) is None:
                raise OkError(NOT_FOUND, "NOT_FOUND : no such subscription")  # WEAK
            group.delivered.pop(url, None)
            return {"success": True}
        if method == "GET" and path == "me/updates":
            return self._updates(group)
        if method == "GET" and path.startswith("me/chats"):
            raise OkError(PARAM, "the adapter has no business listing chats")
        if method == "POST" and path.startswith("me/messages/chat:"):
            return self._send(group, path.removeprefix("me/messages/"), body)
        if method == "POST" and path.startswith("chat:") and path.endswith("/messages"):
            return self._send(group, path.removesuffix("/messages"), body)
        if method == "POST" and path.startswith("chat:") and path.endswith("/answer"):
            return self._answer(group, path.removesuffix("/answer"), q, body)
        raise OkError(3, f"METHOD : unknown method {method} {path}", status=404)

    def _inject(self, key: str) -> None:
        for fault in self.faults:
            if fault.key == key and fault.times > 0:
                fault.times -= 1
                message = f"injected {fault.code or fault.status}"
                raise OkError(
                    fault.code, message, status=fault.status, retry_after=fault.retry_after
                )  # type: ignore[arg-type]

    def _subscribe(self, group: GroupState, body: dict[str, Any]) -> Any:
        types = body.get("types")
        if types is not None and (not isinstance(types, list) or set(types) - set(EVENT_TYPES)):
            raise OkError(PARAM, f"PARAM : types {types!r}")
        if body.get("longPolling"):
            group.long_polling = True
            return {"success": True}
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(
            ("http://", "https://")
        ):  # [DOC] http allowed
            raise OkError(PARAM, "PARAM : url")
        group.webhooks[url] = {
            "url": url,
            # WEAK: without explicit types only new messages arrive (the pessimistic guess)
            "types": list(types) if types else ["MESSAGE_CREATED"],
            "time": _now_ms(),
        }
        group.delivered.setdefault(url, len(group.updates))
        if group.task is None or group.task.done():
            group.task = asyncio.create_task(self._webhook_loop(group))
        group.wakeup.set()
        return {"success": True}

    def _updates(self, group: GroupState) -> Any:
        """WEAK: the whole method (one client): no parameters, answers at once, and what
        it returned is not handed out again."""
        if not group.long_polling:
            raise OkError(NO_POLLING, "no long polling subscription")
        group.polls += 1
        batch = group.updates[group.polled :]
        group.polled = len(group.updates)
        return {"updates": batch}

    def _send(self, group: GroupState, chat_id: str, body: dict[str, Any]) -> Any:
        recipient = body.get("recipient") or {}
        if recipient.get("chat_id") not in (None, chat_id):
            raise OkError(PARAM, "PARAM : recipient.chat_id differs from the path")
        chat = group.chats.get(chat_id)
        if chat is None:
            raise OkError(NOT_FOUND, "NOT_FOUND : chat not found")  # WEAK: code
        if chat.denied:
            raise OkError(
                PERMISSION_DENIED, "PERMISSION_DENIED : user does not allow group messages"
            )
        if body.get("sender_action") is not None:
            if body["sender_action"] not in (
                "typing_on",
                "typing_off",
                "mark_seen",
                "sending_photo",
            ):
                raise OkError(PARAM, "PARAM : sender_action")
            group.typing.append(chat_id)
            return {"success": True}
        text, buttons, reply_to = self._message(group, body.get("message") or {})
        message = self._store(chat, group.group_id, True, text, buttons, reply_to)
        return {"success": True, "recipient_id": chat_id, "message_id": message.mid}

    def _answer(
        self, group: GroupState, chat_id: str, q: dict[str, str], body: dict[str, Any]
    ) -> Any:
        callback_id = q.get("callbackId", "")
        if group.callbacks.get(callback_id, ("",))[0] != chat_id:
            raise OkError(PARAM, "PARAM : unknown callbackId")  # WEAK: expiry unknown
        message = body.get("message")
        if not isinstance(message, dict):
            raise OkError(PARAM, "PARAM : an answer must contain a message")  # [DOC] "must"
        text, buttons, _ = self._message(group, message)
        chat = group.chats[chat_id]
        self._store(chat, group.group_id, True, text, buttons, None)  # WEAK: shown as a message
        group.answers.append((callback_id, text))
        return {"success": True}  # WEAK: the response shape

    def _message(
        self, group: GroupState, message: dict[str, Any]
    ) -> tuple[str, list[list[dict[str, Any]]], str | None]:
        text = message.get("text") or ""
        if len(text) > MAX_TEXT:
            raise OkError(PARAM, f"PARAM : text longer than {MAX_TEXT}")
        attachments = list(message.get("attachments") or [])
        if message.get("attachment"):
            attachments.append(message["attachment"])
        if len(attachments) > MAX_ATTACHMENTS:
            raise OkError(PARAM, "PARAM : at most 5 attachments")
        buttons: list[list[dict[str, Any]]] = []
        for attachment in attachments:
            if attachment.get("type") != "INLINE_KEYBOARD":
                raise OkError(PARAM, "PARAM : only keyboards are emulated")
            buttons = _keyboard(attachment.get("payload") or {})
        if not text and not buttons:
            raise OkError(PARAM, "PARAM : text or attachments required")
        reply_to = message.get("reply_to")
        if reply_to is not None:
            self._find(group, str(reply_to))
        return text, buttons, reply_to

    # -- webhook delivery -----------------------------------------------------------------
    async def _webhook_loop(self, group: GroupState) -> None:
        """Deliver updates in order to every subscribed URL; anything but a 200 within
        5 s is tried again (growing pauses)."""
        failures = 0
        while not self._closing:
            due = [
                (url, i)
                for url, i in group.delivered.items()
                if url in group.webhooks and i < len(group.updates)
            ]
            if not due:
                group.wakeup.clear()
                await group.wakeup.wait()
                continue
            for url, index in due:
                update = group.updates[index]
                if update.get("webhookType") not in group.webhooks[url]["types"]:
                    group.delivered[url] = index + 1
                    continue
                status = await self._post(group, url, update)
                if status == 200:
                    if url in group.delivered:
                        group.delivered[url] = max(group.delivered[url], index + 1)
                    failures = 0
                else:
                    failures += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(group.wakeup.wait(), min(1.0, 0.05 * 2**failures))
                    group.wakeup.clear()

    async def _post(self, group: GroupState, url: str, update: dict[str, Any]) -> int:
        if self._client is None:
            self._client = aiohttp.ClientSession()
        try:
            async with self._client.post(
                url,
                data=json.dumps(update, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json;charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 599
        group.deliveries.append((url, update, status))
        self._changed()
        return status

    # -- internals ------------------------------------------------------------------------
    def _store(
        self,
        chat: OkChat,
        sender: str,
        from_bot: bool,
        text: str,
        buttons: list[list[dict[str, Any]]],
        reply_to: str | None,
    ) -> OkMessage:
        n = next(self._ids)
        message = OkMessage(
            mid=f"mid:{chat.chat_id.removeprefix('chat:')}.{n:x}{secrets.token_hex(4)}",
            seq=n,
            chat_id=chat.chat_id,
            sender_id=sender,
            from_bot=from_bot,
            text=text,
            timestamp=_now_ms(),
            buttons=buttons,
            reply_to=reply_to,
        )
        chat.messages.append(message)
        return message

    def _find(self, group: GroupState, mid: str) -> OkMessage:
        for chat in group.chats.values():
            for message in chat.messages:
                if message.mid == mid:
                    return message
        raise OkError(NOT_FOUND, f"NOT_FOUND : message {mid!r}")

    def _push(self, group: GroupState, update: dict[str, Any]) -> None:
        group.updates.append(update)
        group.wakeup.set()
        self._changed()

    def _changed(self) -> None:
        event, self._change = self._change, asyncio.Event()
        event.set()


def _shape(path: str) -> str:
    """A call's name without ids: "me/messages/chat:C1" and "chat:C1/messages" are both
    "messages"; "chat:C1/answer" is "answer"."""
    if path.startswith("me/messages/") or (path.startswith("chat:") and path.endswith("/messages")):
        return "messages"
    if path.startswith("chat:") and path.endswith("/answer"):
        return "answer"
    return path


def _keyboard(payload: dict[str, Any]) -> list[list[dict[str, Any]]]:
    rows = (payload.get("keyboard") or {}).get("buttons")
    try:
        assert isinstance(rows, list) and rows, "keyboard.buttons: at least one row"
        for row in rows:
            assert isinstance(row, list) and row, "an empty row"
            for button in row:
                assert button.get("type") in BUTTON_TYPES, f"type {button.get('type')!r}"
                # WEAK: whether intent is required; refusing its absence keeps it sent
                assert button.get("intent") in INTENTS, "intent is required"
                label = button.get("text")
                assert isinstance(label, str) and label.strip(), "text"
                if button["type"] == "CALLBACK":
                    assert isinstance(button.get("payload"), str), "payload is a string"
                if button["type"] == "LINK":
                    url = button.get("url")
                    assert isinstance(url, str) and url.startswith(("http://", "https://")), "url"
    except AssertionError as exc:
        raise OkError(PARAM, f"PARAM : keyboard: {exc}") from None
    return [list(row) for row in rows]


def _now_ms() -> int:
    return int(time.time() * 1000)
