"""The HTTP session Telegram bots talk through: one per Bot API server, shared by every bot.

aiogram gives each Bot its own ``AiohttpSession`` unless told otherwise, and each session
builds an SSL context at once (about 28 ms and 0.7 MB each): a thousand institutions paid
that a thousand times and kept two idle sockets per bot. A session only ever uses the bot's
token to build the URL, so the group makes one per ``api_server`` and gives it to every
bot; its connection pool is sized for the long polls that hold a connection each.

It also keeps aiogram's response models alive. ``check_response`` validates every answer
with ``Response[method.__returning__]``; pydantic caches such parametrized models in a
weak-value dictionary, so once the garbage collector takes one it is built again (about
46 ms each, tens of times a minute under load). Holding one reference per result type here
makes every later lookup a cache hit.

And it sends an inline keyboard given as plain rows (SendWithKeyboard) as they are: built
as aiogram's models, a keyboard was validated and then dumped back to dicts for every send
(~65 µs of the ~110 µs aiogram spent building a sendMessage with three buttons).
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import Response, SendMessage, TelegramMethod
from aiohttp import FormData
from pydantic import PrivateAttr

#: connections a session may open besides the long polls it holds (sends, webhooks set-up)
SPARE_CONNECTIONS = 100

#: result type -> ``Response[result type]``, kept so that pydantic's weak cache keeps it too
_RESPONSE_MODELS: dict[Any, Any] = {}


class SendWithKeyboard(SendMessage):
    """``sendMessage`` whose inline keyboard is Bot API JSON rows already
    (convert.keyboard_rows), written into the request as they are by BotSession."""

    _keyboard: list[list[dict[str, str]]] | None = PrivateAttr(default=None)

    @classmethod
    def with_keyboard(
        cls, keyboard: list[list[dict[str, str]]] | None, **fields: Any
    ) -> SendWithKeyboard:
        method = cls(**fields)
        method._keyboard = keyboard
        return method


class BotSession(AiohttpSession):
    """An aiogram session that keeps the response models it has used alive."""

    def check_response(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Response[Any]:
        returning = method.__returning__
        if returning not in _RESPONSE_MODELS:
            _RESPONSE_MODELS[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)

    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> FormData:
        form = super().build_form_data(bot, method)
        if isinstance(method, SendWithKeyboard) and method._keyboard is not None:
            form.add_field("reply_markup", self.json_dumps({"inline_keyboard": method._keyboard}))
        return form


def make_session(
    api_server: str | None, *, timeout: float = 60.0, long_polls: int = 0
) -> BotSession:
    """A session for the bots of one Bot API server (``None``: api.telegram.org); room in
    its pool for ``long_polls`` waiting getUpdates calls plus spare connections."""
    options: dict[str, Any] = {"timeout": timeout, "limit": long_polls + SPARE_CONNECTIONS}
    if api_server:
        options["api"] = TelegramAPIServer.from_base(api_server)
    return BotSession(**options)
