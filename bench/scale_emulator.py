"""A lean Telegram Bot API emulator for bench/scale.py: thousands of bots, and a new update
wakes only the bot it is for.

The test emulator (tests/emulators/telegram.py) keeps every chat's history, parses HTML and
wakes every waiting long poll on any change, which is right for tests and measures the
emulator once a thousand bots wait on it. This one keeps per bot only its queue of updates,
its one waiting long poll (or its webhook) and counters; it answers the calls aiogram makes
(getMe, getUpdates, setWebhook, deleteWebhook, sendMessage, answerCallbackQuery, ...) and
reports every sendMessage to ``on_message``. Webhook updates are POSTed one at a time per
bot, retried until answered 2xx, like Telegram does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

#: (token, chat id, text, perf_counter when the call arrived)
MessageListener = Callable[[str, int, str, float], None]


@dataclass(slots=True)
class FastBot:
    token: str
    id: int
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    update_ids: Any = field(default_factory=lambda: itertools.count(1))
    message_ids: Any = field(default_factory=lambda: itertools.count(1))
    waiter: asyncio.Future[None] | None = None
    webhook_url: str = ""
    webhook_secret: str | None = None
    delivering: bool = False

    def user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": "Bot", "username": f"b{self.id}_bot"}


class FastTelegram:
    def __init__(self, on_message: MessageListener) -> None:
        self.on_message = on_message
        self.bots: dict[str, FastBot] = {}
        self.calls = 0
        #: perf_counter of each bot's first getUpdates or setWebhook: when it began receiving
        self.receiving: dict[str, float] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self.url

    async def stop(self) -> None:
        self._closing = True
        for bot in self.bots.values():
            if bot.waiter is not None and not bot.waiter.done():
                bot.waiter.set_result(None)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def bot(self, token: str) -> FastBot:
        found = self.bots.get(token)
        if found is None:
            found = self.bots[token] = FastBot(token, int(token.split(":", 1)[0]))
        return found

    # -- the people on the other side ------------------------------------------------
    def user_says(self, token: str, chat_id: int, text: str) -> None:
        bot = self.bot(token)
        update = {
            "update_id": next(bot.update_ids),
            "message": {
                "message_id": next(bot.message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "Анна"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "Анна"},
                "text": text,
            },
        }
        bot.updates.append(update)
        if bot.webhook_url:
            self._deliver(bot)
        elif bot.waiter is not None and not bot.waiter.done():
            bot.waiter.set_result(None)  # wakes this bot's long poll only

    # -- HTTP --------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        self.calls += 1
        bot = self.bot(request.match_info["token"])
        method = request.match_info["method"].lower()
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items()})
        if method in ("getupdates", "setwebhook"):
            self.receiving.setdefault(bot.token, arrived)
        if method == "getupdates":
            result: Any = await self._get_updates(bot, params)
        elif method == "sendmessage":
            chat_id = int(params["chat_id"])
            text = str(params.get("text", ""))
            self.on_message(bot.token, chat_id, text, arrived)
            result = {
                "message_id": next(bot.message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "Анна"},
                "from": bot.user(),
                "text": text,
            }
        elif method == "getme":
            result = {**bot.user(), "can_join_groups": True, "supports_inline_queries": False}
        elif method == "setwebhook":
            bot.webhook_url = str(params.get("url") or "")
            bot.webhook_secret = params.get("secret_token") or None
            if bot.updates:
                self._deliver(bot)
            result = True
        elif method == "deletewebhook":
            bot.webhook_url, bot.webhook_secret = "", None
            result = True
        elif method in ("answercallbackquery", "close", "logout", "editmessagetext"):
            result = True
        else:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.json_response({"ok": True, "result": result})

    async def _get_updates(self, bot: FastBot, params: dict[str, Any]) -> list[dict[str, Any]]:
        if bot.webhook_url:
            return []
        offset = int(params.get("offset") or 0)
        while bot.updates and bot.updates[0]["update_id"] < offset:
            bot.updates.popleft()
        timeout = float(params.get("timeout") or 0)
        if not bot.updates and timeout > 0 and not self._closing:
            bot.waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bot.waiter, timeout)
            bot.waiter = None
        limit = int(params.get("limit") or 100)
        return list(itertools.islice(bot.updates, limit))

    # -- webhooks ----------------------------------------------------------------------
    def _deliver(self, bot: FastBot) -> None:
        if bot.delivering or self._closing:
            return
        bot.delivering = True
        task = asyncio.create_task(self._webhook_loop(bot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _webhook_loop(self, bot: FastBot) -> None:
        assert self._client is not None
        try:
            while bot.updates and bot.webhook_url and not self._closing:
                headers = {"Content-Type": "application/json"}
                if bot.webhook_secret:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = bot.webhook_secret
                try:
                    async with self._client.post(
                        bot.webhook_url, data=json.dumps(bot.updates[0]), headers=headers
                    ) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = 0
                if 200 <= status < 300:
                    bot.updates.popleft()
                else:
                    await asyncio.sleep(0.5)  # Telegram's pause before delivering again
        finally:
            bot.delivering = False
