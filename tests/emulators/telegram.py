"""A Telegram Bot API emulator: enough of the real API for aiogram to run against it offline.

It serves ``/bot{token}/{method}`` on 127.0.0.1 (a random port) and keeps what the real
service keeps: every bot's queue of updates (confirmed by the getUpdates offset, long-polled
with a timeout), every chat's history as its users see it (plain text after HTML parsing,
buttons, edits, forum topics), answered callback queries and the webhook a bot registered.

Tests play the people on the other side (``user_says``, ``press``, ``block``), inject faults
(``fail``: 429 with retry_after, 403, 5xx; ``slow``) and read the outcome (``bot_messages``,
``calls``). ``wait_until`` waits on a condition the emulator signals on every change, so a
test never sleeps to synchronise. For benchmarks the emulator can enforce rate limits the way
Telegram does: a request over the limit is answered 429 with retry_after.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators.base import EmulatorServer

MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64
MAX_BUTTONS_PER_ROW = 8
MAX_ROWS = 100
_ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "blockquote",
}


class ApiError(Exception):
    """An error answer of the Bot API: the status code doubles as ``error_code``."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


# -- what users see ----------------------------------------------------------------------


@dataclass(slots=True)
class Button:
    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(slots=True)
class Message:
    """A message in a chat's history, as its readers see it."""

    message_id: int
    chat_id: int
    from_bot: bool
    user_id: int
    text: str
    html: str = ""
    buttons: list[list[Button]] = field(default_factory=list)
    thread_id: int | None = None
    reply_to: int | None = None
    edits: int = 0
    date: int = 0
    service: dict[str, Any] | None = None

    @property
    def labels(self) -> list[list[str]]:
        return [[b.text for b in row] for row in self.buttons]

    def button(self, label: str) -> Button:
        """The first button whose label contains ``label`` (case-insensitive)."""
        for row in self.buttons:
            for b in row:
                if label.lower() in b.text.lower():
                    return b
        raise KeyError(f"no button {label!r} on message {self.message_id}: {self.labels}")


@dataclass(slots=True)
class Chat:
    id: int
    type: str  # private, group, supergroup, channel
    title: str = ""
    is_forum: bool = False
    blocked: bool = False
    messages: list[Message] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(1))
    topics: dict[int, str] = field(default_factory=dict)

    def find(self, message_id: int) -> Message | None:
        for m in reversed(self.messages):
            if m.message_id == message_id:
                return m
        return None


@dataclass(slots=True)
class Fault:
    """An injected error: the next ``times`` matching calls get it instead of an answer."""

    method: str
    status: int
    description: str
    retry_after: int | None = None
    times: int = 1
    chat_id: int | None = None
    token: str | None = None
    migrate_to_chat_id: int | None = None


@dataclass(slots=True)
class Bucket:
    """A token bucket (``rate`` per second, ``burst`` deep), how the emulator rate-limits."""

    rate: float
    burst: float
    level: float = -1.0
    stamp: float = 0.0

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        if self.level < 0:
            self.level, self.stamp = self.burst, now
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.rate


@dataclass(frozen=True, slots=True)
class RateRules:
    """Telegram's sending limits as token buckets: (messages per second, burst)."""

    overall: tuple[float, float] = (30.0, 30.0)
    private: tuple[float, float] = (1.0, 3.0)
    group: tuple[float, float] = (20 / 60, 20.0)


@dataclass(slots=True)
class BotState:
    token: str
    id: int
    updates: list[dict[str, Any]] = field(default_factory=list)
    redeliver: list[dict[str, Any]] = field(default_factory=list)
    update_ids: Any = field(default_factory=lambda: itertools.count(1))
    chats: dict[int, Chat] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secret: str | None = None
    webhook_task: asyncio.Task[None] | None = None
    webhook_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    webhook_statuses: list[int] = field(default_factory=list)
    callbacks: dict[str, tuple[int, int]] = field(default_factory=dict)
    answered: list[tuple[str, str | None]] = field(default_factory=list)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    served: Counter[int] = field(default_factory=Counter)

    @property
    def username(self) -> str:
        return f"bot{self.id}_bot"

    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": f"Bot {self.id}",
            "username": self.username,
        }


class _HtmlToText(HTMLParser):
    """Telegram's HTML parse mode: a few tags, strict nesting, entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            raise ApiError(
                400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
            )
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise ApiError(
                400,
                f"Bad Request: can't parse entities: Can't find end tag corresponding to \"{tag}\"",
            )
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def parse_html(text: str) -> str:
    """The plain text a user reads, or ApiError 400 like Telegram for broken markup."""
    parser = _HtmlToText()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise ApiError(
            400, f"Bad Request: can't parse entities: unclosed start tag {parser.stack[-1]!r}"
        )
    return "".join(parser.parts)


# -- the emulator ------------------------------------------------------------------------


class TelegramEmulator(EmulatorServer):
    """Start with ``await emu.start()`` (or ``async with``); point bots at ``emu.url``."""

    def __init__(self, *, rate_rules: RateRules | None = None) -> None:
        super().__init__()
        self.rate_rules = rate_rules
        self.bots: dict[str, BotState] = {}
        self.faults: list[Fault] = []
        self.delays: dict[str, float] = {}
        #: chat id -> event: calls to that chat hang until it is set (see ``hold``)
        self.held: dict[int, asyncio.Event] = {}
        self.calls: Counter[str] = Counter()
        self.rate_limited = 0
        self._query_ids = itertools.count(1)
        #: called with (method, params) on every request, and with every message a bot sent
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.message_listeners: list[Callable[[Message], None]] = []
        #: every update served by getUpdates, per token, for ``deliver_again``
        self.sent_updates: dict[str, list[dict[str, Any]]] = {}

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return await self._serve(app)

    async def stop(self) -> None:
        """Stop webhook deliveries, then wake pending long polls and close the server."""
        self._closing = True
        for bot in self.bots.values():
            if bot.webhook_task is not None:
                bot.webhook_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot.webhook_task
        await super().stop()

    # -- set-up and fault injection ----------------------------------------------------
    def bot(self, token: str) -> BotState:
        state = self.bots.get(token)
        if state is None:
            state = self.bots[token] = BotState(token=token, id=int(token.split(":", 1)[0]))
        return state

    def open_group(
        self, token: str, chat_id: int, title: str = "Группа", *, forum: bool = False
    ) -> Chat:
        """A group (``forum=True``: a forum supergroup) the bot is a member of."""
        chat = Chat(
            id=chat_id, type="supergroup" if forum else "group", title=title, is_forum=forum
        )
        self.bot(token).chats[chat_id] = chat
        return chat

    def add_to_group(self, token: str, chat_id: int, title: str = "Группа") -> Chat:
        """Someone adds the bot to a group: the bot gets a my_chat_member update."""
        chat = self.open_group(token, chat_id, title)
        self._member_update(token, chat, "left", "member")
        return chat

    def fail(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
        chat_id: int | None = None,
        token: str | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (to ``chat_id``, by ``token``) fail;
        ``migrate_to_chat_id``: the group became that supergroup (Telegram answers 400)."""
        default = {
            429: "Too Many Requests: retry after {}",
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request: something is wrong",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(status, "Error")
        text = description or default.format(retry_after)
        self.faults.append(
            Fault(method, status, text, retry_after, times, chat_id, token, migrate_to_chat_id)
        )

    def slow(self, method: str, seconds: float) -> None:
        """Every call of ``method`` takes ``seconds`` longer (0 to undo)."""
        self.delays[method] = seconds

    def hold(self, chat_id: int) -> asyncio.Event:
        """Every call addressed to ``chat_id`` hangs (a request stuck in the network) until
        the returned event is set."""
        gate = self.held[chat_id] = asyncio.Event()
        return gate

    def block(self, token: str, chat_id: int, *, notify: bool = True) -> None:
        """The user blocks the bot; with ``notify`` the bot gets a my_chat_member update."""
        chat = self._chat(token, chat_id)
        chat.blocked = True
        if notify:
            self._member_update(token, chat, "member", "kicked")

    def unblock(self, token: str, chat_id: int, *, notify: bool = True) -> None:
        chat = self._chat(token, chat_id)
        chat.blocked = False
        if notify:
            self._member_update(token, chat, "kicked", "member")

    # -- the people on the other side --------------------------------------------------
    def user_says(
        self,
        token: str,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Анна",
        reply_to: int | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A person writes ``text``; returns the message, whose update is now queued."""
        chat = self._chat(token, chat_id)
        uid = user_id if user_id is not None else abs(chat_id)
        message = Message(
            message_id=next(chat.ids),
            chat_id=chat_id,
            from_bot=False,
            user_id=uid,
            text=text,
            html=html.escape(text),
            thread_id=thread_id,
            reply_to=reply_to,
            date=int(time.time()),
        )
        chat.messages.append(message)
        payload = self._message_json(
            token,
            chat,
            message,
            sender={"id": uid, "is_bot": False, "first_name": first_name, "language_code": "ru"},
        )
        self.push_update(token, {"message": payload})
        return message

    def press(
        self, token: str, chat_id: int, message_id: int, label: str, *, user_id: int | None = None
    ) -> str:
        """A person presses the button labelled ``label``; returns the callback query id."""
        chat = self._chat(token, chat_id)
        message = chat.find(message_id)
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        button = message.button(label)
        if button.callback_data is None:
            raise AssertionError(f"button {button.text!r} is a link to {button.url}")
        query_id = f"{self.bot(token).id}{next(self._query_ids):08d}"
        self.bot(token).callbacks[query_id] = (chat_id, message_id)
        uid = user_id if user_id is not None else abs(chat_id)
        self.push_update(
            token,
            {
                "callback_query": {
                    "id": query_id,
                    "from": {"id": uid, "is_bot": False, "first_name": "Анна"},
                    "chat_instance": f"ci{chat_id}",
                    "message": self._message_json(token, chat, message),
                    "data": button.callback_data,
                }
            },
        )
        return query_id

    def push_update(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update (``update_id`` is added); returns it."""
        bot = self.bot(token)
        update = {"update_id": next(bot.update_ids), **body}
        bot.updates.append(update)
        self._changed()
        if bot.webhook_url:
            bot.webhook_wakeup.set()
        return update

    def deliver_again(self, token: str, update_id: int) -> None:
        """Serve an update once more although it may have been confirmed, as Telegram does
        now and then (a lost acknowledgement): the bot must not handle it twice."""
        bot = self.bot(token)
        for update in self.sent_updates.get(token, []):
            if update["update_id"] == update_id:
                bot.redeliver.append(update)
                self._changed()
                return
        raise KeyError(f"update {update_id} was never served")

    async def post_webhook(self, token: str, update: dict[str, Any], *, secret: str | None) -> int:
        """POST one update to the bot's webhook with the given secret header; the status."""
        bot = self.bot(token)
        if not bot.webhook_url:
            raise RuntimeError("the bot has no webhook")
        return await self._post(bot, update, secret)

    # -- reading what happened ---------------------------------------------------------
    def messages(self, token: str, chat_id: int) -> list[Message]:
        chat = self.bot(token).chats.get(chat_id)
        return list(chat.messages) if chat else []

    def bot_messages(self, token: str, chat_id: int) -> list[Message]:
        return [m for m in self.messages(token, chat_id) if m.from_bot and m.service is None]

    def answered(self, token: str) -> list[tuple[str, str | None]]:
        return list(self.bot(token).answered)

    def pending_updates(self, token: str) -> int:
        return len(self.bot(token).updates)

    async def _wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._change.wait()

    # -- HTTP --------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        if not _token_ok(token):
            return _error(ApiError(401, "Unauthorized"))
        params = await _params(request)
        self.calls[method] += 1
        for listener in self.listeners:
            listener(method, params)
        delay = self.delays.get(method, 0.0)
        if delay:
            await asyncio.sleep(delay)  # an emulated slow server, not synchronisation
        gate = self.held.get(_int_or_none(params.get("chat_id")) or 0)
        if gate is not None:
            self._changed()  # the call arrived (waiters may look at ``calls``)
            await gate.wait()
        try:
            self._inject_fault(token, method, params)
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(self.bot(token), params)
        except ApiError as exc:
            return _error(exc)
        finally:
            self._changed()
        return web.json_response({"ok": True, "result": result})

    def _inject_fault(self, token: str, method: str, params: dict[str, Any]) -> None:
        chat_id = _int_or_none(params.get("chat_id"))
        for fault in self.faults:
            if fault.method.lower() != method.lower() or fault.times <= 0:
                continue
            if fault.chat_id is not None and fault.chat_id != chat_id:
                continue
            if fault.token is not None and fault.token != token:
                continue
            fault.times -= 1
            parameters: dict[str, Any] = {}
            if fault.retry_after is not None:
                parameters["retry_after"] = fault.retry_after
            if fault.migrate_to_chat_id is not None:
                parameters["migrate_to_chat_id"] = fault.migrate_to_chat_id
            raise ApiError(fault.status, fault.description, parameters or None)
        if self.rate_rules is not None and method in ("sendMessage", "editMessageText"):
            self._enforce_rates(self.bot(token), chat_id)

    def _enforce_rates(self, bot: BotState, chat_id: int | None) -> None:
        rules = self.rate_rules
        assert rules is not None
        now = time.monotonic()
        keys = [("overall", rules.overall)]
        if chat_id is not None:
            keys.append((f"chat:{chat_id}", rules.private if chat_id > 0 else rules.group))
        for key, (rate, burst) in keys:
            bucket = bot.buckets.setdefault(key, Bucket(rate, burst))
            wait = bucket.take(now)
            if wait:
                self.rate_limited += 1
                retry = max(1, int(wait + 0.999))
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )

    # -- Bot API methods ---------------------------------------------------------------
    async def _m_getme(self, bot: BotState, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **bot.user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getupdates(self, bot: BotState, params: dict[str, Any]) -> list[dict[str, Any]]:
        if bot.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active;"
                " use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(int(params.get("limit") or 100), 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            confirmed = len(bot.updates)
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
            if len(bot.updates) != confirmed:
                self._changed()

        def ready() -> bool:
            return bool(bot.updates or bot.redeliver) or self._closing

        if not ready() and timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wait_for(ready)
        batch = bot.redeliver + bot.updates[:limit]
        bot.redeliver = []
        for update in batch:
            bot.served[update["update_id"]] += 1
        self.sent_updates.setdefault(bot.token, []).extend(batch)
        return batch

    async def _m_sendmessage(self, bot: BotState, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target(bot, params)
        text = self._text(params)
        buttons = _buttons(params.get("reply_markup"))
        thread_id = _int_or_none(params.get("message_thread_id"))
        if thread_id is not None and chat.is_forum and thread_id not in chat.topics:
            raise ApiError(400, "Bad Request: message thread not found")
        reply_to = None
        if params.get("reply_parameters"):
            reply = json.loads(params["reply_parameters"])
            reply_to = int(reply["message_id"])
            if chat.find(reply_to) is None:
                if not reply.get("allow_sending_without_reply"):
                    raise ApiError(400, "Bad Request: message to be replied not found")
                reply_to = None
        message = Message(
            message_id=next(chat.ids),
            chat_id=chat.id,
            from_bot=True,
            user_id=bot.id,
            text=text,
            html=str(params.get("text", "")),
            buttons=buttons,
            thread_id=thread_id,
            reply_to=reply_to,
            date=int(time.time()),
        )
        chat.messages.append(message)
        for listener in self.message_listeners:
            listener(message)
        return self._message_json(bot.token, chat, message)

    async def _m_editmessagetext(self, bot: BotState, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target(bot, params)
        message = chat.find(int(params.get("message_id") or 0))
        if message is None or not message.from_bot:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = self._text(params)
        buttons = _buttons(params.get("reply_markup"))
        source = str(params.get("text", ""))
        if text == message.text and buttons == message.buttons and source == message.html:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply"
                " markup are exactly the same as a current content and reply markup of the message",
            )
        message.text, message.html, message.buttons = text, source, buttons
        message.edits += 1
        return self._message_json(bot.token, chat, message)

    async def _m_answercallbackquery(self, bot: BotState, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in bot.callbacks:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        del bot.callbacks[query_id]
        bot.answered.append((query_id, params.get("text") or None))
        return True

    async def _m_setwebhook(self, bot: BotState, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._m_deletewebhook(bot, params)
        if params.get("drop_pending_updates") in ("true", "True", True):
            bot.updates.clear()
        bot.webhook_url = url
        bot.webhook_secret = params.get("secret_token") or None
        if bot.webhook_task is None or bot.webhook_task.done():
            bot.webhook_task = asyncio.create_task(self._webhook_loop(bot))
        bot.webhook_wakeup.set()
        return True

    async def _m_deletewebhook(self, bot: BotState, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") in ("true", "True", True):
            bot.updates.clear()
        bot.webhook_url = ""
        bot.webhook_secret = None
        if bot.webhook_task is not None:
            bot.webhook_task.cancel()
            bot.webhook_task = None
        return True

    async def _m_getwebhookinfo(self, bot: BotState, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": bot.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }

    async def _m_createforumtopic(self, bot: BotState, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target(bot, params)
        if not chat.is_forum:
            raise ApiError(400, "Bad Request: the chat is not a forum")
        name = str(params.get("name") or "")
        if not 1 <= len(name) <= 128:
            raise ApiError(400, "Bad Request: TOPIC_TITLE_EMPTY")
        created = Message(
            message_id=next(chat.ids),
            chat_id=chat.id,
            from_bot=True,
            user_id=bot.id,
            text="",
            service={"forum_topic_created": {"name": name, "icon_color": 7322096}},
            date=int(time.time()),
        )
        created.thread_id = created.message_id
        chat.messages.append(created)
        chat.topics[created.message_id] = name
        return {"message_thread_id": created.message_id, "name": name, "icon_color": 7322096}

    async def _m_getchat(self, bot: BotState, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target(bot, params)
        return {
            **self._chat_json(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _m_deletemessage(self, bot: BotState, params: dict[str, Any]) -> bool:
        chat = self._target(bot, params)
        message = chat.find(int(params.get("message_id") or 0))
        if message is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        chat.messages.remove(message)
        return True

    async def _m_close(self, bot: BotState, params: dict[str, Any]) -> bool:
        return True

    # -- webhook delivery ----------------------------------------------------------------
    async def _webhook_loop(self, bot: BotState) -> None:
        """Deliver queued updates one by one, like Telegram; retry until answered 2xx."""
        while True:
            await bot.webhook_wakeup.wait()
            bot.webhook_wakeup.clear()
            while bot.updates and bot.webhook_url:
                update = bot.updates[0]
                try:
                    status = await self._post(bot, update, bot.webhook_secret)
                except aiohttp.ClientError:
                    status = 0
                if 200 <= status < 300:
                    bot.updates.pop(0)
                    bot.served[update["update_id"]] += 1
                    self._changed()
                else:
                    await asyncio.sleep(0.05)  # Telegram's retry pause, emulated

    async def _post(self, bot: BotState, update: dict[str, Any], secret: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with self._session().post(
            bot.webhook_url, data=json.dumps(update), headers=headers
        ) as resp:
            await resp.read()
            bot.webhook_statuses.append(resp.status)
            return resp.status

    # -- helpers -------------------------------------------------------------------------
    def _chat(self, token: str, chat_id: int) -> Chat:
        bot = self.bot(token)
        chat = bot.chats.get(chat_id)
        if chat is None:
            chat = bot.chats[chat_id] = Chat(id=chat_id, type="private" if chat_id > 0 else "group")
        return chat

    def _target(self, bot: BotState, params: dict[str, Any]) -> Chat:
        chat_id = _int_or_none(params.get("chat_id"))
        chat = bot.chats.get(chat_id) if chat_id is not None else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _text(self, params: dict[str, Any]) -> str:
        raw = str(params.get("text") or "")
        text = parse_html(raw) if str(params.get("parse_mode", "")).upper() == "HTML" else raw
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    def _chat_json(self, chat: Chat) -> dict[str, Any]:
        data: dict[str, Any] = {"id": chat.id, "type": chat.type}
        if chat.type == "private":
            data["first_name"] = "Анна"
        else:
            data["title"] = chat.title or "Группа"
        if chat.is_forum:
            data["is_forum"] = True
        return data

    def _message_json(
        self,
        token: str,
        chat: Chat,
        message: Message,
        *,
        sender: dict[str, Any] | None = None,
        nested: bool = False,
    ) -> dict[str, Any]:
        bot = self.bot(token)
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date or int(time.time()),
            "chat": self._chat_json(chat),
            "from": sender or (bot.user() if message.from_bot else _person(message.user_id)),
        }
        if message.service is not None:
            data.update(message.service)
        else:
            data["text"] = message.text
        if message.buttons:
            data["reply_markup"] = {
                "inline_keyboard": [
                    [
                        {"text": b.text, "callback_data": b.callback_data}
                        if b.callback_data is not None
                        else {"text": b.text, "url": b.url}
                        for b in row
                    ]
                    for row in message.buttons
                ]
            }
        if message.thread_id is not None and chat.is_forum:
            data["message_thread_id"] = message.thread_id
            data["is_topic_message"] = True
        reply_to = message.reply_to
        if (
            reply_to is None
            and message.thread_id is not None
            and chat.is_forum
            and message.service is None
        ):
            reply_to = message.thread_id  # Telegram: a topic message replies to the topic's root
        if reply_to is not None and not nested:
            original = chat.find(reply_to)
            if original is not None:
                data["reply_to_message"] = self._message_json(token, chat, original, nested=True)
        return data

    def _member_update(self, token: str, chat: Chat, old: str, new: str) -> None:
        bot = self.bot(token)
        person = _person(chat.id)
        self.push_update(
            token,
            {
                "my_chat_member": {
                    "chat": self._chat_json(chat),
                    "from": person,
                    "date": int(time.time()),
                    "old_chat_member": _member(bot.user(), old),
                    "new_chat_member": _member(bot.user(), new),
                }
            },
        )


def _person(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Анна"}


def _member(user: dict[str, Any], status: str) -> dict[str, Any]:
    if status == "kicked":
        return {"status": "kicked", "user": user, "until_date": 0}
    return {"status": status, "user": user}


def _token_ok(token: str) -> bool:
    head, _, tail = token.partition(":")
    return head.isdigit() and len(tail) >= 10


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _buttons(raw: Any) -> list[list[Button]]:
    if not raw:
        return []
    markup = json.loads(raw) if isinstance(raw, str) else raw
    rows = markup.get("inline_keyboard")
    if rows is None:
        return []
    if len(rows) > MAX_ROWS:
        raise ApiError(400, "Bad Request: too many inline keyboard rows")
    result: list[list[Button]] = []
    for row in rows:
        if len(row) > MAX_BUTTONS_PER_ROW:
            raise ApiError(400, "Bad Request: too many buttons in a row")
        out: list[Button] = []
        for b in row:
            data = b.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if data is None and not b.get("url"):
                raise ApiError(400, "Bad Request: can't parse inline keyboard button")
            out.append(Button(text=b["text"], callback_data=data, url=b.get("url")))
        result.append(out)
    return result


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST":
        if request.content_type == "application/json":
            body = await request.json()
            params.update(
                {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in body.items()}
            )
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _error(exc: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
    if exc.parameters:
        body["parameters"] = exc.parameters
    return web.json_response(body, status=exc.status)
