"""A MAX Bot API emulator on 127.0.0.1, built from the official OpenAPI schema 0.0.33
(github.com/max-messenger/api-schema, schema.yaml), for tests with the MAX adapter.

It speaks the endpoints the adapter uses, the way the schema describes them: ``GET /me``;
``GET /updates`` (long poll: ``marker`` commits everything before it, no marker means "from
the last commitment"; ``types`` filters; wakes on new updates and on shutdown); ``POST`` and
``PUT /messages`` (NewMessageBody checked against the schema's limits and MAX's keyboard
layout rules); ``POST /answers``; ``GET/POST/DELETE /subscriptions``, after which updates are
POSTed to the subscribed URL with the ``X-Max-Bot-Api-Secret`` header and retried until it
answers 200. The token must come in the ``Authorization`` header; a token in the query string
is refused (401). Errors are ``{"code", "message"}`` with the HTTP status.

Where the emulator must choose what the schema leaves open, it says so: webhook URLs may be
``http://127.0.0.1`` (MAX wants https on port 443); a dialog's chat_id differs from its
user's id (as on MAX), so an adapter mixing them up fails here; sending to a user who
stopped the bot answers 403 ``chat.denied``.

Tests play the people: :meth:`MaxEmulator.user_says` (with ``reply_to`` for a reply),
:meth:`press`, :meth:`start_bot` (bot_started, with a deep-link payload), :meth:`stop_bot`
(bot_stopped); read what they see with :meth:`messages` (per chat, keyboards, edits
applied); and break things: :meth:`fail` (429 with Retry-After, 5xx, any status),
:meth:`slow` (a delay per endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import re
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators.base import EmulatorServer, note_connection

SECRET_HEADER = "X-Max-Bot-Api-Secret"
MAX_TEXT = 4000
MAX_ROWS = 30
MAX_PER_ROW = 7
MAX_LINKS_PER_ROW = 3
MAX_BUTTONS = 210
MAX_LABEL = 128
MAX_CALLBACK_PAYLOAD = 1024
MAX_URL = 2048
BUTTON_TYPES = {
    "callback",
    "link",
    "request_geo_location",
    "request_contact",
    "message",
    "open_app",
    "clipboard",
}
#: the tags MAX renders with ``format: html``; others are stripped (their text kept)
HTML_TAGS = {"i", "em", "b", "strong", "del", "s", "ins", "u", "a", "pre", "code", "mark"}
HTML_TAGS |= {"blockquote", "h1", "br"}
_SECRET = re.compile(r"^[\w-]{5,256}$")
DIALOG_BASE = 900_000_000


class MaxError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(status, code, message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


@dataclass(slots=True)
class MaxMessage:
    """A message as the people in the chat see it (edits applied)."""

    mid: str
    seq: int
    chat_id: int
    sender_id: int
    from_bot: bool
    raw: str
    format: str | None
    timestamp: int
    buttons: list[list[dict[str, Any]]] = field(default_factory=list)
    link: dict[str, Any] | None = None
    notify: bool = True
    edited: int = 0

    @property
    def text(self) -> str:
        """What a reader sees: the markup rendered, entities decoded."""
        return plain(self.raw) if self.format == "html" else self.raw

    @property
    def labels(self) -> list[list[str]]:
        return [[str(b.get("text", "")) for b in row] for row in self.buttons]

    @property
    def reply_to(self) -> str | None:
        link = self.link or {}
        return str(link["mid"]) if link.get("type") == "reply" else None

    def button(self, label: str) -> dict[str, Any]:
        for row in self.buttons:
            for button in row:
                if label.lower() in str(button.get("text", "")).lower():
                    return button
        raise KeyError(f"no button {label!r} on {self.mid}: {self.labels}")


@dataclass(slots=True)
class MaxChat:
    chat_id: int
    type: str  # dialog | chat | channel
    title: str | None = None
    #: the other person of a dialog
    user_id: int | None = None
    messages: list[MaxMessage] = field(default_factory=list)
    #: the user stopped the bot (dialogs) or the bot was removed (chats)
    denied: bool = False


@dataclass(slots=True)
class Fault:
    key: str
    status: int
    code: str
    message: str
    retry_after: int | None
    times: int


@dataclass(slots=True)
class BotState:
    token: str
    user_id: int
    username: str
    name: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    #: updates before this index are committed (a poll passed a marker beyond them)
    committed: int = 0
    chats: dict[int, MaxChat] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    #: callback_id -> (chat_id, mid) of every press
    callbacks: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: (callback_id, notification or None) of every POST /answers
    answers: list[tuple[str, str | None]] = field(default_factory=list)
    polls: int = 0
    #: index of the next update the webhook delivers
    webhook_next: int = 0
    #: HTTP status of every webhook delivery attempt
    webhook_statuses: list[int] = field(default_factory=list)
    webhook_task: asyncio.Task[None] | None = None
    webhook_wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class _Plain(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def plain(markup: str) -> str:
    parser = _Plain()
    parser.feed(markup)
    parser.close()
    return "".join(parser.out)


class MaxEmulator(EmulatorServer):
    """Start with ``await emu.start()`` (or ``async with``); point bots at ``emu.url``."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: serve HTTPS with this server context (to test a custom CA bundle)."""
        super().__init__()
        self.tls = tls
        self.bots: dict[str, BotState] = {}
        self.faults: list[Fault] = []
        self.delays: dict[str, float] = {}
        #: "METHOD /path" of every request, and how many times each was made
        self.calls: Counter[str] = Counter()
        self.request_log: list[tuple[str, dict[str, str]]] = []
        #: requests refused because the token came in the query string
        self.token_in_query = 0
        #: callback buttons sent with the deprecated ``intent`` (MAX ignores it since
        #: mid-2026; the official clients stopped sending it)
        self.intents_sent = 0
        self._ids = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/me", self._h(self._me))
        app.router.add_get("/updates", self._h(self._get_updates))
        app.router.add_post("/messages", self._h(self._send))
        app.router.add_put("/messages", self._h(self._edit))
        app.router.add_post("/answers", self._h(self._answer))
        app.router.add_get("/subscriptions", self._h(self._subscriptions))
        app.router.add_post("/subscriptions", self._h(self._subscribe))
        app.router.add_delete("/subscriptions", self._h(self._unsubscribe))
        # removed from MAX in June 2026 (GET /chats) and August 2026 (/chats/{link}): 404
        app.router.add_get("/chats", self._h(self._removed))
        app.router.add_get("/chats/{link}", self._h(self._removed))
        return await self._serve(app, tls=self.tls)

    async def stop(self) -> None:
        """Stop webhook deliveries, then wake pending long polls and close the server."""
        self._closing = True
        for bot in self.bots.values():
            if bot.webhook_task is not None:
                bot.webhook_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot.webhook_task
        await super().stop()

    # -- set-up ---------------------------------------------------------------------------
    def add_bot(self, token: str, user_id: int, username: str = "school_bot") -> BotState:
        bot = BotState(token=token, user_id=user_id, username=username, name="Приёмная")
        self.bots[token] = bot
        return bot

    def bot(self, token: str) -> BotState:
        return self.bots[token]

    def dialog_id(self, user_id: int) -> int:
        """The chat_id of a user's dialog with a bot (never equal to the user's id)."""
        return DIALOG_BASE + user_id

    def dialog(self, token: str, user_id: int) -> MaxChat:
        bot = self.bots[token]
        chat_id = self.dialog_id(user_id)
        chat = bot.chats.get(chat_id)
        if chat is None:
            chat = bot.chats[chat_id] = MaxChat(chat_id, "dialog", user_id=user_id)
        return chat

    def open_group(self, token: str, chat_id: int, title: str = "Группа") -> MaxChat:
        """A group chat where the bot is an admin with read_all_messages."""
        chat = MaxChat(chat_id, "chat", title=title)
        self.bots[token].chats[chat_id] = chat
        return chat

    def open_channel(self, token: str, chat_id: int, title: str = "Канал") -> MaxChat:
        chat = MaxChat(chat_id, "channel", title=title)
        self.bots[token].chats[chat_id] = chat
        return chat

    def fail(
        self,
        key: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        code: str | None = None,
    ) -> None:
        """The next ``times`` requests to ``key`` ("POST /messages") answer ``status``."""
        default = {
            429: "too.many.requests",
            500: "internal.error",
            502: "bad.gateway",
            503: "service.unavailable",
            403: "chat.denied",
            400: "proto.payload",
        }.get(status, "error")
        self.faults.append(
            Fault(key, status, code or default, f"injected {status}", retry_after, times)
        )

    def slow(self, key: str, seconds: float) -> None:
        """Every request to ``key`` takes ``seconds`` longer (0 to undo)."""
        self.delays[key] = seconds

    # -- the people -----------------------------------------------------------------------
    def user_says(
        self,
        token: str,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Анна",
        reply_to: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> MaxMessage:
        """A person writes in a chat (a dialog's person by default); message_created.
        ``attachments`` go into the body as given (files, contacts: see :func:`file`)."""
        bot = self.bots[token]
        chat = bot.chats.get(chat_id)
        if chat is None and chat_id > DIALOG_BASE:  # a person opens a dialog by writing
            chat = self.dialog(token, chat_id - DIALOG_BASE)
        if chat is None:
            raise KeyError(f"no chat {chat_id}; open a group first")
        uid = user_id if user_id is not None else chat.user_id
        if uid is None:
            raise ValueError("say who writes in a group: user_id=")
        link = None
        if reply_to is not None:
            self._find(bot, reply_to)  # replying to a message that exists
            link = {"type": "reply", "mid": reply_to}
        message = self._store(bot, chat, uid, False, text, None, [], link)
        body = self._message_json(bot, chat, message, first_name=first_name)
        if attachments:
            body["body"]["attachments"] = attachments
        self._push(
            bot,
            {
                "update_type": "message_created",
                "timestamp": message.timestamp,
                "message": body,
                "user_locale": "ru",
            },
        )
        return message

    def press(
        self, token: str, chat_id: int, mid: str, label: str, *, user_id: int | None = None
    ) -> str:
        """A person presses a callback button; message_callback; returns the callback_id."""
        bot = self.bots[token]
        chat = bot.chats[chat_id]
        message = next(m for m in chat.messages if m.mid == mid)
        button = message.button(label)
        if button["type"] != "callback":
            raise AssertionError(f"button {label!r} is a {button['type']} button")
        uid = user_id if user_id is not None else chat.user_id
        assert uid is not None, "say who presses in a group: user_id="
        callback_id = secrets.token_urlsafe(24)
        bot.callbacks[callback_id] = (chat_id, mid)
        now = _now_ms()
        self._push(
            bot,
            {
                "update_type": "message_callback",
                "timestamp": now,
                "callback": {
                    "timestamp": now,
                    "callback_id": callback_id,
                    "payload": button.get("payload"),
                    "user": _user(uid),
                },
                "message": self._message_json(bot, chat, message),
                "user_locale": "ru",
            },
        )
        return callback_id

    def start_bot(self, token: str, user_id: int, payload: str | None = None) -> int:
        """The person presses "Start" (or follows https://max.ru/<bot>?start=payload)."""
        bot = self.bots[token]
        chat = self.dialog(token, user_id)
        chat.denied = False
        update: dict[str, Any] = {
            "update_type": "bot_started",
            "timestamp": _now_ms(),
            "chat_id": chat.chat_id,
            "user": _user(user_id),
            "user_locale": "ru",
        }
        if payload is not None:
            update["payload"] = payload
        self._push(bot, update)
        return chat.chat_id

    def stop_bot(self, token: str, user_id: int) -> None:
        """The person stops the bot: bot_stopped, and sends to them fail from now on."""
        bot = self.bots[token]
        chat = self.dialog(token, user_id)
        chat.denied = True
        self._push(
            bot,
            {
                "update_type": "bot_stopped",
                "timestamp": _now_ms(),
                "chat_id": chat.chat_id,
                "user": _user(user_id),
                "user_locale": "ru",
            },
        )

    def block(self, token: str, chat_id: int) -> None:
        """Sends to this chat fail (403) from now on, without an update."""
        self.bots[token].chats[chat_id].denied = True

    async def post_webhook(self, token: str, update: dict[str, Any], *, secret: str | None) -> int:
        """POST one update to the bot's subscribed URL with the given secret; the status."""
        bot = self.bots[token]
        if not bot.subscriptions:
            raise RuntimeError("the bot has no subscription")
        return await self._post(bot.subscriptions[-1]["url"], update, secret)

    # -- what people see ------------------------------------------------------------------
    def messages(self, token: str, chat_id: int) -> list[MaxMessage]:
        chat = self.bots[token].chats.get(chat_id)
        return list(chat.messages) if chat else []

    def bot_messages(self, token: str, chat_id: int) -> list[MaxMessage]:
        return [m for m in self.messages(token, chat_id) if m.from_bot]

    def answers(self, token: str) -> list[tuple[str, str | None]]:
        return list(self.bots[token].answers)

    def all_committed(self, token: str) -> bool:
        """The bot has confirmed every update so far (it polled with the latest marker)."""
        bot = self.bots[token]
        return bot.committed >= len(bot.updates)

    # -- HTTP -----------------------------------------------------------------------------
    def _h(self, handler: Callable[..., Any]) -> Callable[[web.Request], Any]:
        async def run(request: web.Request) -> web.Response:
            key = f"{request.method} {request.path}"
            self.calls[key] += 1
            self.request_log.append((key, dict(request.query)))
            self._changed()
            try:
                if "access_token" in request.query:
                    self.token_in_query += 1
                    raise MaxError(401, "verify.token", "pass the token in the header")
                bot = self.bots.get(request.headers.get("Authorization", ""))
                if bot is not None:
                    note_connection(self.connections, request, bot.token)
                if bot is None:
                    raise MaxError(401, "verify.token", "Invalid access_token")
                delay = self.delays.get(key)
                if delay:
                    await asyncio.sleep(delay)
                self._inject(key)
                body = await request.json() if request.can_read_body else None
                result = await handler(bot, request.query, body)
            except MaxError as exc:
                headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
                return web.json_response(
                    {"code": exc.code, "message": exc.message}, status=exc.status, headers=headers
                )
            except (ValueError, KeyError, TypeError) as exc:
                return web.json_response({"code": "proto.payload", "message": str(exc)}, status=400)
            finally:
                self._changed()
            return web.json_response(result)

        return run

    def _inject(self, key: str) -> None:
        for fault in self.faults:
            if fault.key == key and fault.times > 0:
                fault.times -= 1
                raise MaxError(fault.status, fault.code, fault.message, fault.retry_after)

    async def _removed(self, bot: BotState, q: Any, body: Any) -> Any:
        raise MaxError(404, "not.found", "this method was removed from the MAX Bot API")

    async def _me(self, bot: BotState, q: Any, body: Any) -> Any:
        return _bot_user(bot)

    async def _get_updates(self, bot: BotState, q: Any, body: Any) -> Any:
        if bot.subscriptions:
            raise MaxError(405, "method.not.allowed", "the bot is subscribed to a webhook")
        bot.polls += 1
        if q.get("marker") not in (None, "", "null"):
            start = int(q["marker"])
            bot.committed = max(bot.committed, min(start, len(bot.updates)))
        else:
            start = bot.committed
        timeout = min(int(q.get("timeout", 30)), 90)
        limit = max(1, min(int(q.get("limit", 100)), 1000))
        types = {t for t in str(q.get("types", "")).split(",") if t}
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            wanted = [
                (i, u)
                for i, u in enumerate(bot.updates[start:], start)
                if not types or u["update_type"] in types
            ][:limit]
            left = deadline - asyncio.get_running_loop().time()
            if wanted or self._closing or left <= 0:
                marker = wanted[-1][0] + 1 if wanted else max(start, len(bot.updates))
                return {"updates": [u for _, u in wanted], "marker": marker}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._change.wait(), left)

    async def _send(self, bot: BotState, q: Any, body: Any) -> Any:
        if "chat_id" in q:
            chat = bot.chats.get(int(q["chat_id"]))
        elif "user_id" in q:
            chat = bot.chats.get(self.dialog_id(int(q["user_id"])))
        else:
            raise MaxError(400, "proto.payload", "chat_id or user_id is required")
        if chat is None:
            raise MaxError(404, "chat.not.found", "Chat not found")
        if chat.denied:
            raise MaxError(403, "chat.denied", "dialog.suspended")
        text, fmt, buttons, link, notify = self._new_message(bot, chat, body or {})
        if chat.type == "channel" and not notify:
            raise MaxError(400, "proto.payload", "notify=false is not allowed in channels")
        message = self._store(bot, chat, bot.user_id, True, text, fmt, buttons or [], link)
        message.notify = notify
        return {"message": self._message_json(bot, chat, message)}

    async def _edit(self, bot: BotState, q: Any, body: Any) -> Any:
        message = self._find(bot, str(q.get("message_id", "")))
        if not message.from_bot:
            raise MaxError(403, "access.denied", "not the bot's message")
        chat = bot.chats[message.chat_id]
        text, fmt, buttons, _, _ = self._new_message(bot, chat, body or {})
        message.raw, message.format = text, fmt
        if buttons is not None:  # null keeps the attachments, [] removes them
            message.buttons = buttons
        message.edited += 1
        return {"success": True}

    async def _answer(self, bot: BotState, q: Any, body: Any) -> Any:
        callback_id = str(q.get("callback_id", ""))
        if callback_id not in bot.callbacks:
            raise MaxError(400, "proto.payload", "unknown callback_id")
        body = body or {}
        notification = body.get("notification")
        if notification is not None and not isinstance(notification, str):
            raise MaxError(400, "proto.payload", "notification is a string")
        if body.get("message") is not None:
            _, mid = bot.callbacks[callback_id]
            await self._edit(bot, {"message_id": mid}, body["message"])
        bot.answers.append((callback_id, notification))
        return {"success": True}

    async def _subscriptions(self, bot: BotState, q: Any, body: Any) -> Any:
        shown = [
            {"url": s["url"], "time": s["time"], "update_types": s["update_types"]}
            for s in bot.subscriptions
        ]
        return {"subscriptions": shown}

    async def _subscribe(self, bot: BotState, q: Any, body: Any) -> Any:
        url = (body or {}).get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://127.0.0.1")):
            raise MaxError(400, "proto.payload", "url must start with https://")
        secret = body.get("secret")
        if secret is not None and not _SECRET.match(str(secret)):
            raise MaxError(400, "proto.payload", "secret: 5-256 of A-Z, a-z, 0-9, _ and -")
        bot.subscriptions = [s for s in bot.subscriptions if s["url"] != url]
        bot.subscriptions.append(
            {
                "url": url,
                "secret": secret,
                "update_types": body.get("update_types"),
                "time": _now_ms(),
            }
        )
        bot.webhook_next = max(bot.webhook_next, bot.committed)
        if bot.webhook_task is None or bot.webhook_task.done():
            bot.webhook_task = asyncio.create_task(self._webhook_loop(bot))
        bot.webhook_wakeup.set()
        return {"success": True}

    async def _unsubscribe(self, bot: BotState, q: Any, body: Any) -> Any:
        url = q.get("url")
        if not url:
            raise MaxError(400, "proto.payload", "url is required")
        bot.subscriptions = [s for s in bot.subscriptions if s["url"] != url]
        return {"success": True}

    # -- webhook delivery -----------------------------------------------------------------
    async def _webhook_loop(self, bot: BotState) -> None:
        """Deliver updates in order to the subscription; anything but 200 is retried."""
        failures = 0
        while not self._closing:
            if not bot.subscriptions or bot.webhook_next >= len(bot.updates):
                bot.webhook_wakeup.clear()
                await bot.webhook_wakeup.wait()
                continue
            sub = bot.subscriptions[-1]
            update = bot.updates[bot.webhook_next]
            types = sub.get("update_types")
            if types and update["update_type"] not in types:
                bot.webhook_next += 1
                continue
            status = await self._post(sub["url"], update, sub.get("secret"))
            bot.webhook_statuses.append(status)
            self._changed()
            if status == 200:
                bot.webhook_next += 1
                failures = 0
            else:
                failures += 1
                with contextlib.suppress(TimeoutError):  # MAX's growing retry interval
                    await asyncio.wait_for(bot.webhook_wakeup.wait(), min(1.0, 0.05 * 2**failures))

    async def _post(self, url: str, update: dict[str, Any], secret: str | None) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        try:
            async with self._session().post(url, json=update, headers=headers) as response:
                return response.status
        except aiohttp.ClientError:
            return 599

    # -- internals ------------------------------------------------------------------------
    def _new_message(
        self, bot: BotState, chat: MaxChat, body: dict[str, Any]
    ) -> tuple[str, str | None, list[list[dict[str, Any]]] | None, dict[str, Any] | None, bool]:
        """Check a NewMessageBody: (text, format, keyboard rows or None, link, notify)."""
        text = body.get("text") or ""
        if len(text) > MAX_TEXT:
            raise MaxError(400, "proto.payload", f"text: {len(text)} > {MAX_TEXT} characters")
        fmt = body.get("format")
        if fmt not in (None, "markdown", "html"):
            raise MaxError(400, "proto.payload", f"format: {fmt!r}")
        if fmt == "html":
            _check_html(text)
        attachments = body.get("attachments")
        buttons: list[list[dict[str, Any]]] | None = None
        if attachments is not None:
            buttons = []
            for attachment in attachments:
                if attachment.get("type") != "inline_keyboard":
                    raise MaxError(400, "proto.payload", "only keyboards are emulated")
                buttons = _check_keyboard(attachment.get("payload") or {})
                self.intents_sent += sum("intent" in b for row in buttons for b in row)
        if not text and not buttons:
            raise MaxError(400, "proto.payload", "text or attachments are required")
        link = body.get("link")
        if link is not None:
            if link.get("type") not in ("reply", "forward"):
                raise MaxError(400, "proto.payload", "link.type is reply or forward")
            self._find(bot, str(link.get("mid", "")))
        notify = body.get("notify", True)
        return text, fmt, buttons, link, bool(notify)

    def _store(
        self,
        bot: BotState,
        chat: MaxChat,
        sender: int,
        from_bot: bool,
        text: str,
        fmt: str | None,
        buttons: list[list[dict[str, Any]]],
        link: dict[str, Any] | None,
    ) -> MaxMessage:
        n = next(self._ids)
        message = MaxMessage(
            mid=f"mid.{n:016x}{secrets.token_hex(8)}",
            seq=n,
            chat_id=chat.chat_id,
            sender_id=sender,
            from_bot=from_bot,
            raw=text,
            format=fmt,
            timestamp=_now_ms(),
            buttons=buttons,
            link=link,
        )
        chat.messages.append(message)
        return message

    def _find(self, bot: BotState, mid: str) -> MaxMessage:
        for chat in bot.chats.values():
            for message in chat.messages:
                if message.mid == mid:
                    return message
        raise MaxError(404, "not.found", f"message {mid!r} not found")

    def _message_json(
        self, bot: BotState, chat: MaxChat, message: MaxMessage, *, first_name: str = "Анна"
    ) -> dict[str, Any]:
        if message.from_bot:
            sender = _bot_user(bot)
        else:
            sender = _user(message.sender_id, first_name)
        recipient: dict[str, Any] = {"chat_id": chat.chat_id, "chat_type": chat.type}
        if chat.type == "dialog":
            recipient["user_id"] = chat.user_id if message.from_bot else bot.user_id
        body: dict[str, Any] = {"mid": message.mid, "seq": message.seq, "text": message.text}
        if message.buttons:
            body["attachments"] = [
                {
                    "type": "inline_keyboard",
                    "callback_id": secrets.token_urlsafe(12),
                    "payload": {"buttons": message.buttons},
                }
            ]
        result: dict[str, Any] = {
            "sender": sender,
            "recipient": recipient,
            "timestamp": message.timestamp,
            "body": body,
        }
        if message.link is not None:
            linked = self._find(bot, str(message.link["mid"]))
            result["link"] = {
                "type": message.link["type"],
                "sender": _bot_user(bot) if linked.from_bot else _user(linked.sender_id),
                "chat_id": linked.chat_id,
                "message": {"mid": linked.mid, "seq": linked.seq, "text": linked.text},
            }
        return result

    def _push(self, bot: BotState, update: dict[str, Any]) -> None:
        bot.updates.append(update)
        bot.webhook_wakeup.set()
        self._changed()


def file(name: str = "заявление.pdf", size: int = 52_431) -> dict[str, Any]:
    """A file attachment with the fields MAX added in May 2026 (``filename``, ``size``)."""
    return {
        "type": "file",
        "payload": {"url": "https://files.max.ru/f/1", "token": "f1"},
        "filename": name,
        "size": size,
    }


def contact(name: str = "Анна") -> dict[str, Any]:
    """A contact attachment with the fields MAX added in May 2026."""
    return {
        "type": "contact",
        "payload": {
            "vcf_info": f"BEGIN:VCARD\nFN:{name}\nEND:VCARD",
            "max_info": _user(4242, name),
            "hash": "c0ffee",
        },
    }


def _bot_user(bot: BotState) -> dict[str, Any]:
    return {
        "user_id": bot.user_id,
        "first_name": bot.name,
        "username": bot.username,
        "is_bot": True,
        "name": bot.name,
    }


def _user(user_id: int, first_name: str = "Анна") -> dict[str, Any]:
    return {
        "user_id": user_id,
        "first_name": first_name,
        "last_name": f"Гражданка{user_id}",
        "is_bot": False,
        "last_activity_time": _now_ms(),
        "name": first_name,
    }


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_html(text: str) -> None:
    """Tags must be closed and known to MAX; entities must be valid (else 400)."""
    stack: list[str] = []
    for match in re.finditer(r"<(/?)([a-zA-Z0-9]+)[^>]*>", text):
        closing, tag = match.group(1), match.group(2).lower()
        if tag == "br":
            continue
        if tag not in HTML_TAGS:
            continue  # MAX strips unknown tags
        if closing:
            if not stack or stack[-1] != tag:
                raise MaxError(400, "proto.payload", f"unbalanced </{tag}>")
            stack.pop()
        else:
            stack.append(tag)
    if stack:
        raise MaxError(400, "proto.payload", f"unclosed <{stack[-1]}>")
    for entity in re.findall(r"&[^;\s]*;?", text):
        if html.unescape(entity) == entity:
            raise MaxError(400, "proto.payload", f"bad entity {entity!r}")


def _check_keyboard(payload: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """InlineKeyboardAttachmentRequestPayload and MAX's layout limits, else 400."""
    rows = payload.get("buttons")
    try:
        assert isinstance(rows, list) and rows, "buttons: at least one row"
        assert len(rows) <= MAX_ROWS, f"{len(rows)} rows > {MAX_ROWS}"
        assert sum(len(r) for r in rows) <= MAX_BUTTONS, "too many buttons"
        for row in rows:
            assert isinstance(row, list) and row, "an empty row"
            links = sum(1 for b in row if b.get("type") == "link")
            assert len(row) <= MAX_PER_ROW, f"{len(row)} buttons in a row > {MAX_PER_ROW}"
            assert not links or len(row) <= MAX_LINKS_PER_ROW, "a row with links: 3 at most"
            for button in row:
                assert button.get("type") in BUTTON_TYPES, f"type {button.get('type')!r}"
                label = button.get("text")
                assert isinstance(label, str) and 0 < len(label) <= MAX_LABEL, "text 1-128"
                if button["type"] == "callback":
                    data = button.get("payload")
                    assert isinstance(data, str), "callback payload is a string"
                    assert len(data) <= MAX_CALLBACK_PAYLOAD, "payload > 1024 characters"
                if button["type"] == "link":
                    url = button.get("url")
                    assert isinstance(url, str) and len(url) <= MAX_URL, "url ≤ 2048"
                    assert url.startswith(("http://", "https://")), "url scheme"
    except AssertionError as exc:
        raise MaxError(400, "proto.payload", f"keyboard: {exc}") from None
    return [list(row) for row in rows]
