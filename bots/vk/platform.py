"""One VK community as a Platform: Bots Long Poll in, messages.send / edit out.

Identifiers: ChatRef.chat_id is the peer_id (a user id for private chats, 2000000000+ for
conversations); SentMessage.message_id, Event.message_id and Event.reply_to are
conversation_message_ids, which is what messages.edit, a reply in a conversation and a
pressed button all name. Sends use the ``peer_ids`` form even for one peer because only
that form answers with the conversation_message_id.

Each logical message gets a random_id derived from its dedup_key (and the part index), so
a retry after a lost answer is dropped by VK instead of reaching the citizen twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import requests
from aiolimiter import AsyncLimiter

from bots.core.adapters import Services
from bots.core.model import Button, ChatRef, Event, PlatformLimits, Reply, SentMessage, User
from bots.core.payloads import decode_payload, encode_payload
from bots.core.platform import (
    EventHandler,
    PermanentSendError,
    Platform,
    PlatformError,
    RecipientUnreachable,
)
from bots.core.text import html_to_plain, split_text
from bots.vk import keyboard as kb
from bots.vk.api import API_VERSION, VkCallError, VkClient
from bots.vk.events import PLATFORM, PageTurn, Translator
from bots.vk.longpoll import LongPoll

log = logging.getLogger(__name__)

VK_LIMITS = PlatformLimits(
    max_text=9000,
    max_buttons_per_row=kb.MAX_PER_ROW,
    max_rows=kb.MAX_ROWS,
    max_callback_bytes=kb.INLINE_DATA_BYTES,
    supports_html=False,
    supports_edit=True,
    supports_threads=False,
)
#: messages.send accepts at most this many peer_ids
BATCH = 100
SNACKBAR_MAX = 90
#: how long stop() lets an event being handled finish
STOP_GRACE = 10.0
#: how long start() waits for each of its calls before leaving them to the poll loop
START_STEP = 10.0

RATE_LIMITED = {6: "too many requests per second", 9: "flood control", 29: "rate limit reached"}
UNREACHABLE = {
    900: "the user is in the community's blacklist",
    901: "the user has not allowed messages from the community",
    902: "the user's privacy settings forbid it",
}
BUGS = {911: "keyboard format is invalid", 914: "message is too long"}
TOKEN_REJECTED = {5: "authorization failed", 27: "group authorization failed"}
#: VK's own hiccups: unknown error, internal server error
TRANSIENT = {1, 10}
#: Long Poll event types the adapter consumes
NEEDED_EVENTS = ("message_new", "message_event", "message_allow", "message_deny")
SETTINGS_PATH = "Управление → Работа с API → Long Poll API"
_NAME_CACHE = 10_000


def random_id(dedup_key: str, part: int) -> int:
    """A signed 32-bit id, stable for the same logical message and part, never 0."""
    digest = hashlib.blake2b(f"{dedup_key}\x1f{part}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True) or 1


class VkPlatform(Platform):
    name = PLATFORM
    limits = VK_LIMITS

    def __init__(
        self,
        institution: str,
        *,
        token: str,
        group_id: int,
        services: Services,
        api_url: str | None = None,
        wait: int = 25,
        limiter: AsyncLimiter | None = None,
        api_session: requests.Session | None = None,
        poll_session: requests.Session | None = None,
    ) -> None:
        self.institution = institution
        self.group_id = group_id
        self._store = services.payloads
        self.client = VkClient(token, api_url=api_url, limiter=limiter, session=api_session)
        self._poll = LongPoll(self.client, group_id, wait, services.state, poll_session)
        self._translator = Translator(institution, group_id, services.payloads, self._user)
        self._names: dict[int, User] = {}
        self._on_event: EventHandler | None = None
        self._task: asyncio.Task[None] | None = None

    # -- receiving ------------------------------------------------------------------------
    async def start(self, on_event: EventHandler) -> None:
        """Check the community's Long Poll settings, connect, and start polling. A failed
        connect is logged and retried by the poll loop, so one broken community does not
        keep the others from starting."""
        self._on_event = on_event
        try:
            await asyncio.wait_for(self._check_settings(), START_STEP)
            await asyncio.wait_for(self._poll.connect(), START_STEP)
        except VkCallError as exc:
            self._log_call_error("groups.getLongPollServer", exc)
        except TimeoutError:
            log.warning(
                "vk group %s: VK is slow to answer; connecting in the background", self.group_id
            )
        self._task = asyncio.create_task(
            self._poll.run(self._handle, self._learn_names), name=f"vk-{self.group_id}"
        )

    async def stop(self) -> None:
        """Stop polling at once: a long-poll request in flight is abandoned (its events
        stay unacknowledged and come again next start), an event being handed to the app
        is let finish; then let sends in flight finish."""
        task, self._task = self._task, None
        if task is not None:
            self._poll.stopping = True
            if not self._poll.delivering:
                task.cancel()  # waiting on the network or a backoff: nothing to lose
            done, _ = await asyncio.wait({task}, timeout=STOP_GRACE)
            if not done:  # an event handler hangs: give up on it, it stays unacknowledged
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.drain(5.0)
        self._poll.close()
        self.client.close()

    async def _handle(self, raw: dict[str, Any]) -> None:
        item = await self._translator.translate(raw)
        if item is None:
            log.debug("vk group %s: ignored %s", self.group_id, raw.get("type"))
        elif isinstance(item, PageTurn):
            await self._turn_page(item)
        else:
            assert self._on_event is not None
            log.info(
                "vk group %s: %s %s from %s in %s",
                self.group_id,
                raw.get("type"),
                item.update_key,
                item.user.id,
                item.chat.chat_id,
            )
            await self._on_event(item)

    async def _check_settings(self) -> None:
        """Say clearly, at start, what the community's admin must switch on."""
        try:
            settings = await self.client.call("groups.getLongPollSettings", group_id=self.group_id)
        except VkCallError as exc:
            log.warning(
                "vk group %s: cannot read Long Poll settings (%s); make sure Long Poll API is on,"
                " version %s, with events %s (%s)",
                self.group_id,
                exc,
                API_VERSION,
                ", ".join(NEEDED_EVENTS),
                SETTINGS_PATH,
            )
            return
        if not settings.get("is_enabled"):
            log.warning(
                "vk group %s: Long Poll API is switched off; switch it on in %s",
                self.group_id,
                SETTINGS_PATH,
            )
        version = str(settings.get("api_version") or "")
        if version and version != API_VERSION:
            log.warning(
                "vk group %s: Long Poll API version is %s; set %s in %s",
                self.group_id,
                version,
                API_VERSION,
                SETTINGS_PATH,
            )
        events = settings.get("events") or {}
        off = [name for name in NEEDED_EVENTS if not events.get(name)]
        if off:
            log.warning(
                "vk group %s: Long Poll events switched off: %s; switch them on in %s → Типы событий",
                self.group_id,
                ", ".join(off),
                SETTINGS_PATH,
            )

    async def _user(self, user_id: int) -> User:
        """The person's name for staff cards; best effort, cached, id-only on failure."""
        if user_id not in self._names:
            await self._fetch_names([user_id])
        return self._names.get(user_id) or User(id=str(user_id))

    async def _learn_names(self, updates: list[dict[str, Any]]) -> None:
        """One users.get for every new person of a batch, not one per event: names share
        the community's 20 requests/s with the answers."""
        wanted: set[int] = set()
        for raw in updates:
            obj = raw.get("object") or {}
            sender = (obj.get("message") or {}).get("from_id") or obj.get("user_id")
            if isinstance(sender, int) and sender > 0 and sender not in self._names:
                wanted.add(sender)
        if wanted:
            await self._fetch_names(sorted(wanted))

    async def _fetch_names(self, user_ids: list[int]) -> None:
        try:
            found = await self.client.call(
                "users.get", user_ids=",".join(str(u) for u in user_ids[:1000])
            )
        except VkCallError as exc:  # names are cosmetic: go on with bare ids
            log.debug("vk group %s: users.get failed: %s", self.group_id, exc)
            found = []
        if len(self._names) + len(user_ids) > _NAME_CACHE:
            self._names.clear()
        for user_id in user_ids:
            self._names[user_id] = User(id=str(user_id))
        for person in found or []:
            user_id = int(person.get("id") or 0)
            self._names[user_id] = User(
                id=str(user_id),
                first_name=str(person.get("first_name") or ""),
                last_name=str(person.get("last_name") or ""),
                username=person.get("screen_name") or None,
            )

    # -- sending --------------------------------------------------------------------------
    async def send(self, chat: ChatRef, reply: Reply, *, dedup_key: str) -> list[SentMessage]:
        parts = self._parts(reply.text)
        keyboard = await self._keyboard(reply.buttons, parts[-1])
        sent: list[SentMessage] = []
        for index, part in enumerate(parts):
            params = self._message_params(
                chat.chat_id,
                part,
                keyboard if index == len(parts) - 1 else None,
                reply.reply_to if index == 0 else None,
            )
            results = await self._call(
                "messages.send",
                chat,
                peer_ids=chat.chat_id,
                random_id=random_id(dedup_key, index),
                **params,
            )
            sent.append(self._one_result(results, chat))
        return sent

    async def send_many(
        self, chat_ids: list[str], reply: Reply, *, dedup_key: str
    ) -> dict[str, SentMessage | Exception]:
        """One message to many peers, up to 100 per messages.send; per-peer outcomes.

        A peer's SentMessage is its last part (the one carrying the buttons); a peer that
        fails a part gets the exception and no further parts. A retry with the same
        dedup_key reaches nobody twice (random_id is per logical message and part)."""
        peer_ids = chat_ids
        parts = self._parts(reply.text)
        keyboard = await self._keyboard(reply.buttons, parts[-1])
        outcome: dict[str, SentMessage | Exception] = {}
        for start in range(0, len(peer_ids), BATCH):
            alive = list(dict.fromkeys(peer_ids[start : start + BATCH]))
            for index, part in enumerate(parts):
                if not alive:
                    break
                params = self._message_params(
                    None, part, keyboard if index == len(parts) - 1 else None, None
                )
                try:
                    results = await self._call(
                        "messages.send",
                        None,
                        peer_ids=",".join(alive),
                        random_id=random_id(dedup_key, index),
                        **params,
                    )
                except (PlatformError, PermanentSendError) as exc:
                    for peer in alive:
                        outcome[peer] = exc
                    break
                by_peer = {str(r.get("peer_id")): r for r in results or []}
                still: list[str] = []
                for peer in alive:
                    chat = ChatRef(PLATFORM, peer)
                    try:
                        outcome[peer] = self._result(by_peer.get(peer), chat)
                        still.append(peer)
                    except (PlatformError, PermanentSendError, RecipientUnreachable) as exc:
                        outcome[peer] = exc
                alive = still
        return outcome

    async def edit(self, message: SentMessage, reply: Reply) -> None:
        text = self._parts(reply.text)[0]
        keyboard = await self._keyboard(reply.buttons, text)
        if not message.message_id.isdigit():
            raise PermanentSendError(f"not a VK conversation message id: {message.message_id}")
        await self._call(
            "messages.edit",
            message.chat,
            peer_id=message.chat.chat_id,
            conversation_message_id=int(message.message_id),
            message=text,
            keyboard=keyboard,  # omitted when None: the buttons go away
            dont_parse_links=1,
            disable_mentions=1,
            keep_forward_messages=1,
        )

    async def answer_callback(self, event: Event, text: str | None = None) -> None:
        """Answer a callback button; a text becomes a snackbar. Failures are logged only:
        an unanswered button merely stops spinning by itself."""
        if event.callback is None or not event.callback.id:
            return  # a text-button press has nothing to answer
        data = None
        if text:
            short = text if len(text) <= SNACKBAR_MAX else text[: SNACKBAR_MAX - 1] + "…"
            data = kb.dumps({"type": "show_snackbar", "text": short})
        try:
            await self.client.call(
                "messages.sendMessageEventAnswer",
                event_id=event.callback.id,
                user_id=event.user.id,
                peer_id=event.chat.chat_id,
                event_data=data,
            )
        except VkCallError as exc:
            log.warning("vk group %s: answering a button failed: %s", self.group_id, exc)

    # -- helpers --------------------------------------------------------------------------
    def _parts(self, html_text: str) -> list[str]:
        plain = html_to_plain(html_text).strip()
        if not plain:
            raise PermanentSendError("message text is empty")
        return split_text(plain, self.limits.max_text, html_markup=False)

    @staticmethod
    def _message_params(
        peer: str | None, text: str, keyboard: str | None, reply_to: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "message": text,
            "dont_parse_links": 1,
            "disable_mentions": 1,
            "keyboard": keyboard,
        }
        if peer is not None and reply_to is not None and reply_to.isdigit():
            params["forward"] = kb.dumps(
                {"peer_id": int(peer), "conversation_message_ids": [int(reply_to)], "is_reply": 1}
            )
        return params

    async def _keyboard(self, rows: Sequence[Sequence[Button]], text: str) -> str | None:
        if not any(rows):
            return None
        vk_rows = [[await kb.vk_button(b, self._store) for b in row] for row in kb.reflow(rows)]
        pages = kb.paginate(vk_rows)
        if len(pages) == 1:
            return kb.page_keyboard(pages, 0, None)
        record = kb.dumps({"t": text, "pages": pages})
        key = await encode_payload(record, 0, self._store)
        return kb.page_keyboard(pages, 0, key)

    async def _turn_page(self, turn: PageTurn) -> None:
        try:
            stored = await decode_payload(turn.pages_key, self._store)
            if stored is not None:
                record = json.loads(stored)
                pages = record["pages"]
                page = max(0, min(turn.page, len(pages) - 1))
                await self.client.call(
                    "messages.edit",
                    peer_id=turn.peer_id,
                    conversation_message_id=turn.conversation_message_id,
                    message=record["t"],
                    keyboard=kb.page_keyboard(pages, page, turn.pages_key),
                    dont_parse_links=1,
                    disable_mentions=1,
                )
            else:
                log.warning("vk group %s: unknown keyboard page set", self.group_id)
            await self.client.call(
                "messages.sendMessageEventAnswer",
                event_id=turn.event_id,
                user_id=turn.user_id,
                peer_id=turn.peer_id,
            )
        except VkCallError as exc:  # the user can press again; never stall the long poll
            log.warning("vk group %s: turning a keyboard page failed: %s", self.group_id, exc)

    async def _call(self, method: str, chat: ChatRef | None, **params: Any) -> Any:
        try:
            return await self.client.call(method, **params)
        except VkCallError as exc:
            raise self._port_error(exc, chat, method) from None

    def _one_result(self, results: Any, chat: ChatRef) -> SentMessage:
        if isinstance(results, list):
            match = next((r for r in results if str(r.get("peer_id")) == chat.chat_id), None)
            return self._result(match, chat)
        raise PlatformError(f"unexpected messages.send answer for {chat.key}")

    def _result(self, item: dict[str, Any] | None, chat: ChatRef) -> SentMessage:
        """One peer's entry of a peer_ids answer: the sent message, or its error raised."""
        if item is None:
            raise PlatformError(f"messages.send answered nothing for {chat.key}")
        error = item.get("error")
        if error:
            code = error.get("code", error.get("error_code"))
            message = error.get("description", error.get("error_msg", ""))
            raise self._port_error(
                VkCallError(int(code) if code is not None else None, str(message)),
                chat,
                "messages.send",
            )
        cmid = item.get("conversation_message_id")
        if cmid is None:
            raise PlatformError(f"messages.send gave no conversation_message_id for {chat.key}")
        return SentMessage(chat, str(cmid))

    def _port_error(self, exc: VkCallError, chat: ChatRef | None, method: str) -> Exception:
        """VK's error codes in the port's terms: retry later, unreachable, or refused."""
        code = exc.code
        if code in RATE_LIMITED:
            return PlatformError(str(exc), code=code, retry_after=1.0)
        if code in UNREACHABLE and chat is not None:
            return RecipientUnreachable(chat, f"VK {code}: {UNREACHABLE[code]}")
        if code in BUGS:
            log.error(
                "vk group %s: %s refused for %s with error %s (%s): a bug, the request must"
                " be fixed",
                self.group_id,
                method,
                chat.key if chat else "several peers",
                code,
                BUGS[code],
            )
            return PermanentSendError(str(exc), code=code)
        if code in TOKEN_REJECTED:
            self._log_call_error(method, exc)
            return PlatformError(str(exc), code=code, retry_after=60.0)
        if code is None or code in TRANSIENT:
            return PlatformError(str(exc), code=code if code is not None else exc.status)
        return PermanentSendError(str(exc), code=code)

    def _log_call_error(self, method: str, exc: VkCallError) -> None:
        if exc.code in TOKEN_REJECTED:
            log.error(
                "vk group %s: the community token was rejected (%s); create a new one with"
                " the 'messages' right and put it in the config",
                self.group_id,
                exc,
            )
        else:
            log.warning("vk group %s: %s failed: %s", self.group_id, method, exc)
