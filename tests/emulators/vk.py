"""A VK API and Bots Long Poll emulator on 127.0.0.1, for tests with the real vk_api.

It speaks what the adapter uses, the way VK does (API 5.199): ``/method/<name>`` answers
``{"response": ...}`` or ``{"error": {"error_code", "error_msg", "request_params"}}``;
groups.getLongPollServer points at the emulator's own ``a_check`` URL, which long-polls
(wakes on new events, on injected failures and on shutdown). messages.send deduplicates
``random_id`` per peer as VK does and understands the ``peer_ids`` batch form.

Tests play the people: :meth:`VkEmulator.user_says`, :meth:`press`, :meth:`deny`; read
what a user sees with :meth:`messages` (per-peer history with keyboards, edits applied);
and break things on demand: :meth:`fail` (API error codes), :meth:`fail_http` (5xx),
:meth:`longpoll_failed` (failed 1/2/3), :meth:`hold_sends` (messages.send waits until
:meth:`release_sends`, to kill a bot between fetching and answering).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.emulators.base import EmulatorServer, note_connection

API_VERSION = "5.199"
CONVERSATION_PEER_BASE = 2_000_000_000
MAX_TEXT = 9000
ALL_EVENTS = ("message_new", "message_reply", "message_event", "message_allow", "message_deny")
_BUTTON_TYPES = {"text", "callback", "open_link", "location", "vkpay", "open_app"}


class VkApiFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class VkMessage:
    """A message as the people in the chat see it (edits applied)."""

    id: int
    cmid: int
    peer_id: int
    from_id: int
    text: str
    keyboard: dict[str, Any] | None = None
    reply_to: int | None = None
    random_id: int | None = None
    payload: str | None = None
    edited: int = 0

    @property
    def from_bot(self) -> bool:
        return self.from_id < 0

    @property
    def rows(self) -> list[list[dict[str, Any]]]:
        return list(self.keyboard.get("buttons", [])) if self.keyboard else []

    @property
    def labels(self) -> list[list[str]]:
        return [[b["action"].get("label", "") for b in row] for row in self.rows]

    def button(self, label: str) -> dict[str, Any]:
        for row in self.rows:
            for button in row:
                if label.lower() in str(button["action"].get("label", "")).lower():
                    return button
        raise KeyError(f"no button {label!r} on message {self.cmid}: {self.labels}")


@dataclass(slots=True)
class Community:
    group_id: int
    token: str
    name: str
    key: str = field(default_factory=lambda: secrets.token_hex(8))
    events: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(
        default_factory=lambda: {
            "is_enabled": True,
            "api_version": API_VERSION,
            "events": dict.fromkeys(ALL_EVENTS, 1),
        }
    )
    chats: dict[int, list[VkMessage]] = field(default_factory=dict)
    by_random: dict[tuple[int, int], VkMessage] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    issued_events: set[str] = field(default_factory=set)
    #: (event_id, event_data or None) of every messages.sendMessageEventAnswer
    answers: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    #: sends dropped because their random_id was already used in that chat
    dedup_hits: int = 0
    server_requests: int = 0
    polls: int = 0
    #: the highest ts a client polled from: events before it were handled (acknowledged)
    confirmed: int = 0
    #: a failed:1 to answer, with the ts it gives
    pending_failed: int | None = None
    lost: bool = False


class VkEmulator(EmulatorServer):
    def __init__(self) -> None:
        super().__init__()
        self.communities: dict[int, Community] = {}
        self.users: dict[int, tuple[str, str]] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []
        #: time.monotonic() of every API call, to check the pace
        self.call_times: list[float] = []
        self._faults: dict[str, deque[tuple[int | None, int | None]]] = {}
        self._ids = itertools.count(1001)
        self._gate = asyncio.Event()
        self._gate.set()
        self.held = 0

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> VkEmulator:
        app = web.Application()
        app.router.add_route("*", "/method/{name}", self._method)
        app.router.add_get("/lp/{group_id}", self._a_check)
        await self._serve(app, shutdown_timeout=1.0)
        return self

    async def close(self) -> None:
        self._gate.set()
        await self.stop()

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/method/"

    def add_community(self, group_id: int, token: str, name: str = "Сообщество") -> Community:
        community = Community(group_id, token, name)
        self.communities[group_id] = community
        return community

    # -- the people -----------------------------------------------------------------------
    async def user_says(
        self,
        group_id: int,
        peer_id: int | str,
        text: str,
        *,
        from_id: int | str | None = None,
        reply_to: int | str | None = None,
        payload: str | None = None,
    ) -> VkMessage:
        """A person writes to the community (in a private chat or a conversation)."""
        c = self.communities[group_id]
        peer = int(peer_id)
        sender = int(from_id) if from_id is not None else peer
        message = self._store(c, peer, sender, text, reply_to=_opt_int(reply_to))
        message.payload = payload
        body: dict[str, Any] = {
            "date": int(time.time()),
            "from_id": sender,
            "id": message.id,
            "out": 0,
            "peer_id": peer,
            "text": text,
            "conversation_message_id": message.cmid,
            "fwd_messages": [],
            "attachments": [],
            "important": False,
            "is_hidden": False,
            "random_id": 0,
        }
        if payload is not None:
            body["payload"] = payload
        if message.reply_to is not None:
            original = self._find(c, peer, message.reply_to)
            body["reply_message"] = {
                "date": int(time.time()),
                "from_id": original.from_id,
                "text": original.text,
                "attachments": [],
                "conversation_message_id": original.cmid,
                "peer_id": peer,
                "id": original.id,
            }
        client_info = {
            "button_actions": sorted(_BUTTON_TYPES),
            "keyboard": True,
            "inline_keyboard": True,
            "carousel": True,
            "lang_id": 0,
        }
        await self._event(c, "message_new", {"message": body, "client_info": client_info})
        return message

    async def press(
        self,
        group_id: int,
        peer_id: int | str,
        cmid: int | str,
        label: str,
        *,
        user_id: int | str | None = None,
    ) -> str:
        """A person presses a button on a bot message; returns the callback's event_id."""
        c = self.communities[group_id]
        peer = int(peer_id)
        user = int(user_id) if user_id is not None else peer
        message = self._find(c, peer, int(cmid))
        action = message.button(label)["action"]
        if action["type"] == "open_link":
            raise AssertionError(f"button {label!r} is a link to {action['link']}")
        if action["type"] == "text":
            await self.user_says(
                group_id, peer, action["label"], from_id=user, payload=action.get("payload")
            )
            return ""
        event_id = secrets.token_hex(6)
        c.issued_events.add(event_id)
        await self._event(
            c,
            "message_event",
            {
                "user_id": user,
                "peer_id": peer,
                "event_id": event_id,
                "payload": json.loads(action["payload"]) if action.get("payload") else {},
                "conversation_message_id": message.cmid,
            },
        )
        return event_id

    async def deny(self, group_id: int, user_id: int) -> None:
        """The user forbids messages from the community (message_deny)."""
        c = self.communities[group_id]
        c.blocked.add(user_id)
        await self._event(c, "message_deny", {"user_id": user_id, "key": ""})

    async def allow(self, group_id: int, user_id: int) -> None:
        c = self.communities[group_id]
        c.blocked.discard(user_id)
        await self._event(c, "message_allow", {"user_id": user_id, "key": ""})

    def block(self, group_id: int, peer_id: int) -> None:
        """Sends to this peer fail with 901, without an event."""
        self.communities[group_id].blocked.add(peer_id)

    # -- what people see ------------------------------------------------------------------
    def messages(
        self, group_id: int, peer_id: int | str, *, from_bot: bool | None = True
    ) -> list[VkMessage]:
        chat = self.communities[group_id].chats.get(int(peer_id), [])
        return [m for m in chat if from_bot is None or m.from_bot == from_bot]

    def snackbars(self, group_id: int) -> list[str | None]:
        return [
            data.get("text") if data else None for _, data in self.communities[group_id].answers
        ]

    def all_confirmed(self, group_id: int) -> bool:
        """The bot has acknowledged every event so far (it polls from the latest ts)."""
        c = self.communities[group_id]
        return c.confirmed >= len(c.events)

    def count_calls(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    # -- faults ---------------------------------------------------------------------------
    def fail(self, method: str, code: int, times: int = 1, *, after: int = 0) -> None:
        """After ``after`` good calls, the next ``times`` calls of ``method`` answer VK
        error ``code``."""
        queue = self._faults.setdefault(method, deque())
        queue.extend([(None, None)] * after + [(code, None)] * times)

    def fail_http(self, method: str, status: int = 502, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (or of the long-poll server, method
        "a_check") answer HTTP ``status``."""
        self._faults.setdefault(method, deque()).extend([(None, status)] * times)

    async def longpoll_failed(self, group_id: int, code: int) -> None:
        """1: history outdated (new ts given); 2: the key expires; 3: information lost."""
        c = self.communities[group_id]
        if code == 2:
            c.key = secrets.token_hex(8)
        elif code == 3:
            c.key = secrets.token_hex(8)
            c.lost = True
        else:  # history lost up to now: the new ts is the current one
            c.pending_failed = len(c.events)
        await self._notify()

    def hold_sends(self) -> None:
        """messages.send waits (after arriving, before taking effect) until released."""
        self._gate.clear()

    def release_sends(self) -> None:
        self._gate.set()

    # -- HTTP -----------------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        self.calls.append((name, params))
        self.call_times.append(time.monotonic())
        await self._notify()
        code, status = self._fault(name)
        if status is not None:
            return web.Response(status=status, text="<html>Bad Gateway</html>")
        if code is not None:
            return _error(code, f"injected error {code}", params)
        try:
            if params.get("v") != API_VERSION:
                raise VkApiFailure(8, f"Invalid request: version {params.get('v')!r}")
            c = next(
                (x for x in self.communities.values() if x.token == params.get("access_token")),
                None,
            )
            if c is None:
                raise VkApiFailure(5, "User authorization failed: invalid access_token (4).")
            note_connection(self.connections, request, c.token)
            handler = getattr(self, "_m_" + name.replace(".", "_"), None)
            if handler is None:
                raise VkApiFailure(3, "Unknown method passed.")
            result = await handler(c, params)
        except VkApiFailure as exc:
            return _error(exc.code, exc.message, params)
        await self._notify()
        return web.json_response({"response": result})

    async def _m_groups_getLongPollServer(self, c: Community, p: dict[str, str]) -> Any:
        _same_group(c, p)
        c.server_requests += 1
        c.lost = False
        return {
            "key": c.key,
            "server": f"{self.base_url}/lp/{c.group_id}",
            "ts": str(len(c.events)),
        }

    async def _m_groups_getLongPollSettings(self, c: Community, p: dict[str, str]) -> Any:
        _same_group(c, p)
        return c.settings

    async def _m_groups_getById(self, c: Community, p: dict[str, str]) -> Any:
        group = {"id": c.group_id, "name": c.name, "screen_name": f"club{c.group_id}"}
        return {"groups": [{**group, "type": "group", "is_closed": 0}], "profiles": []}

    async def _m_users_get(self, c: Community, p: dict[str, str]) -> Any:
        found = []
        for raw in p.get("user_ids", "").split(","):
            if raw.strip().lstrip("-").isdigit():
                uid = int(raw)
                first, last = self.users.get(uid, ("Гражданин", str(uid)))
                found.append({"id": uid, "first_name": first, "last_name": last})
        return found

    async def _m_messages_send(self, c: Community, p: dict[str, str]) -> Any:
        if not self._gate.is_set():
            self.held += 1
            await self._notify()
            await self._gate.wait()
        if "random_id" not in p:
            raise VkApiFailure(100, "One of the parameters specified was missing: random_id")
        random_id = int(p["random_id"])
        text = p.get("message", "")
        if not text:
            raise VkApiFailure(100, "One of the parameters specified was missing: message")
        if len(text) > MAX_TEXT:
            raise VkApiFailure(914, "Message is too long")
        keyboard = _keyboard(p.get("keyboard"))
        reply_to = _reply_to(p.get("forward"))
        if "peer_ids" in p:
            return [
                self._send_one(c, int(peer), text, keyboard, reply_to, random_id, batch=True)
                for peer in p["peer_ids"].split(",")
            ]
        peer_raw = p.get("peer_id") or p.get("user_id")
        if not peer_raw:
            raise VkApiFailure(100, "you should specify peer_id, user_id, domain or chat_id")
        result = self._send_one(c, int(peer_raw), text, keyboard, reply_to, random_id, batch=False)
        return result["message_id"]

    def _send_one(
        self,
        c: Community,
        peer: int,
        text: str,
        keyboard: dict[str, Any] | None,
        reply_to: int | None,
        random_id: int,
        *,
        batch: bool,
    ) -> dict[str, Any]:
        if peer in c.blocked:
            if not batch:
                raise VkApiFailure(901, "Can't send messages for users without permission")
            description = "Can't send messages for users without permission"
            return {"peer_id": peer, "error": {"code": 901, "description": description}}
        existing = c.by_random.get((peer, random_id)) if random_id else None
        if existing is not None:
            c.dedup_hits += 1
            message = existing
        else:
            message = self._store(c, peer, -c.group_id, text, reply_to=reply_to)
            message.keyboard = keyboard
            message.random_id = random_id
            if random_id:
                c.by_random[(peer, random_id)] = message
        return {"peer_id": peer, "message_id": message.id, "conversation_message_id": message.cmid}

    async def _m_messages_edit(self, c: Community, p: dict[str, str]) -> Any:
        peer = int(p.get("peer_id", "0"))
        text = p.get("message", "")
        if len(text) > MAX_TEXT:
            raise VkApiFailure(914, "Message is too long")
        keyboard = _keyboard(p.get("keyboard"))
        chat = c.chats.get(peer, [])
        if "conversation_message_id" in p:
            cmid = int(p["conversation_message_id"])
            found = [m for m in chat if m.cmid == cmid]
        else:
            mid = int(p.get("message_id", "0"))
            found = [m for m in chat if m.id == mid and mid != 0]
        if not found or not found[0].from_bot:
            raise VkApiFailure(100, "One of the parameters specified was missing or invalid")
        message = found[0]
        message.text, message.keyboard = text, keyboard
        message.edited += 1
        return 1

    async def _m_messages_sendMessageEventAnswer(self, c: Community, p: dict[str, str]) -> Any:
        event_id = p.get("event_id", "")
        if event_id not in c.issued_events:
            raise VkApiFailure(100, "One of the parameters specified was missing: event_id")
        data = json.loads(p["event_data"]) if p.get("event_data") else None
        if data is not None and len(str(data.get("text", ""))) > 90:
            raise VkApiFailure(100, "event_data text is too long")
        c.answers.append((event_id, data))
        return 1

    async def _a_check(self, request: web.Request) -> web.Response:
        c = self.communities[int(request.match_info["group_id"])]
        c.polls += 1
        q = request.query
        if q.get("key") == c.key and str(q.get("ts", "")).isdigit():
            c.confirmed = max(c.confirmed, int(q["ts"]))
        await self._notify()
        _, status = self._fault("a_check")
        if status is not None:
            return web.Response(status=status, text="<html>Bad Gateway</html>")
        wait = min(float(q.get("wait", "25")), 90.0)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            if c.pending_failed is not None:
                new_ts, c.pending_failed = c.pending_failed, None
                return web.json_response({"failed": 1, "ts": str(new_ts)})
            if c.lost:
                return web.json_response({"failed": 3})
            if q.get("key") != c.key:
                return web.json_response({"failed": 2})
            ts = int(q.get("ts", "0") or 0)
            if ts > len(c.events):
                return web.json_response({"failed": 1, "ts": str(len(c.events))})
            left = deadline - asyncio.get_running_loop().time()
            if len(c.events) > ts or self._closing or left <= 0:
                body = {"ts": str(len(c.events)), "updates": c.events[ts:]}
                return web.json_response(body)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._change.wait(), left)

    # -- internals ------------------------------------------------------------------------
    def _fault(self, name: str) -> tuple[int | None, int | None]:
        faults = self._faults.get(name)
        return faults.popleft() if faults else (None, None)

    def _store(
        self, c: Community, peer: int, sender: int, text: str, *, reply_to: int | None
    ) -> VkMessage:
        chat = c.chats.setdefault(peer, [])
        message_id = 0 if peer >= CONVERSATION_PEER_BASE else next(self._ids)
        message = VkMessage(message_id, len(chat) + 1, peer, sender, text, reply_to=reply_to)
        chat.append(message)
        return message

    def _find(self, c: Community, peer: int, cmid: int) -> VkMessage:
        for message in c.chats.get(peer, []):
            if message.cmid == cmid:
                return message
        raise KeyError(f"no message {cmid} in chat {peer}")

    async def _event(self, c: Community, kind: str, obj: dict[str, Any]) -> None:
        c.events.append(
            {
                "group_id": c.group_id,
                "type": kind,
                "event_id": secrets.token_hex(20),
                "v": API_VERSION,
                "object": obj,
            }
        )
        await self._notify()

    async def _notify(self) -> None:
        self._changed()


def _error(code: int, message: str, params: dict[str, str]) -> web.Response:
    shown = [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
    body = {"error": {"error_code": code, "error_msg": message, "request_params": shown}}
    return web.json_response(body)


def _same_group(c: Community, p: dict[str, str]) -> None:
    if p.get("group_id") and int(p["group_id"]) != c.group_id:
        raise VkApiFailure(15, "Access denied: no access to this group")


def _opt_int(value: int | str | None) -> int | None:
    return None if value is None else int(value)


def _reply_to(forward: str | None) -> int | None:
    if not forward:
        return None
    data = json.loads(forward)
    ids = data.get("conversation_message_ids") or []
    return int(ids[0]) if data.get("is_reply") and ids else None


def _keyboard(raw: str | None) -> dict[str, Any] | None:
    """Parse and check a keyboard as VK does; error 911 when it breaks a rule."""
    if not raw:
        return None
    try:
        keyboard = json.loads(raw)
        rows = keyboard["buttons"]
        inline = bool(keyboard.get("inline"))
        assert isinstance(rows, list)
        assert len(rows) <= (6 if inline else 10), "too many rows"
        assert sum(len(r) for r in rows) <= (10 if inline else 40), "too many buttons"
        for row in rows:
            assert 0 < len(row) <= 5, "row width"
            for button in row:
                action = button["action"]
                assert action["type"] in _BUTTON_TYPES, "button type"
                if action["type"] in ("text", "callback", "open_link"):
                    assert 0 < len(action.get("label", "")) <= 40, "label length"
                if action["type"] == "open_link":
                    assert str(action.get("link", "")).startswith(("http://", "https://"))
                if "payload" in action:
                    assert isinstance(action["payload"], str), "payload is a string"
                    assert len(action["payload"]) <= 255, "payload length"
                    json.loads(action["payload"])
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise VkApiFailure(911, f"Keyboard format is invalid: {exc}") from None
    return keyboard if rows else None
