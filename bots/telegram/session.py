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

The app's own sendMessage (SendWithKeyboard, every answer) takes a shorter way through the
session than aiogram's generic one, as it is the one call made per update:
- its parameters go as one JSON body (the Bot API takes ``application/json`` for any call
  without files) instead of a urlencoded form: percent-encoding a Cyrillic text cost
  ~40 µs of the ~80 µs aiogram spent building the request, ``json.dumps`` ~10 µs. The values
  are still aiogram's (``prepare_value``: bot defaults, enums, models), and empty ones are
  left out as aiogram leaves them out of its form;
- a successful answer is read for the new message's id only (``SentText``), not validated
  into a full aiogram ``Message`` (~30 µs). Any other answer (an error status, ``ok:
  false``, a body that is not the expected JSON) goes through aiogram's ``check_response``,
  so failures raise the same aiogram exceptions (TelegramRetryAfter, TelegramForbiddenError,
  TelegramMigrateToChat...) that errors.py translates.

Polling's getUpdates (GetRawUpdates) goes the same way and gives the updates' JSON objects,
which the group reads as it reads a webhook's (group.py), instead of validating aiogram's
``Response[list[Update]]`` for every batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import GetUpdates, Response, SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientError, ClientTimeout, FormData
from pydantic import Field, SkipValidation

#: connections a session may open besides the long polls it holds (sends, webhooks set-up)
SPARE_CONNECTIONS = 100

#: result type -> ``Response[result type]``, kept so that pydantic's weak cache keeps it too
_RESPONSE_MODELS: dict[Any, Any] = {}
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class SentText:
    """What a SendWithKeyboard through BotSession returns in place of aiogram's Message:
    the new message's id, all that the platform keeps of it (SentMessage)."""

    message_id: int


class SendWithKeyboard(SendMessage):
    """``sendMessage`` whose inline keyboard is Bot API JSON rows already
    (convert.keyboard_rows), written into the request as they are by BotSession.

    The rows are a field left out of aiogram's dump and not validated (they are built by
    our code): a private attribute cost ~10 µs per send in pydantic's attribute handling,
    a validated field as much in copying the rows."""

    keyboard: SkipValidation[list[list[dict[str, str]]] | None] = Field(default=None, exclude=True)


class GetRawUpdates(GetUpdates):
    """``getUpdates`` whose result BotSession gives as the Bot API's JSON objects (dicts)
    for the group to read (group.py): most become their Event without aiogram's models,
    as a webhook's do. Through another session it gives aiogram's Updates."""


class BotSession(AiohttpSession):
    """An aiogram session that keeps the response models it has used alive and sends the
    app's sendMessage as JSON, reading back only the message id (and polls for updates as
    JSON, reading back the updates' JSON objects)."""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        if type(method) is SendWithKeyboard or type(method) is GetRawUpdates:
            body = self._json_body(bot, method)
            if body is not None:  # None: something only aiogram's form carries (a file)
                return cast(TelegramType, await self._post_json(bot, method, body, timeout))
        return await super().make_request(bot, method, timeout)

    async def _post_json(
        self, bot: Bot, method: TelegramMethod[Any], body: bytes, timeout: int | None
    ) -> Any:
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        limit = ClientTimeout(total=self.timeout if timeout is None else timeout)
        try:
            async with session.post(url, data=body, headers=_JSON_HEADERS, timeout=limit) as resp:
                status = resp.status
                raw = await resp.text()
        # the same exceptions as aiogram's make_request
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        if status == 200:
            result = _result(raw, updates=type(method) is GetRawUpdates)
            if result is not None:
                return result
        return self.check_response(bot, method, status, raw).result

    def _json_body(self, bot: Bot, method: TelegramMethod[Any]) -> bytes | None:
        """The call's parameters as aiogram would put them into its form (its own value
        preparation, empty values left out), as a JSON object; None if it carries a file."""
        params: dict[str, Any] = {}
        files: dict[str, Any] = {}
        for name, value in method.__dict__.items():
            if value is None or name == "keyboard":
                continue
            if type(value) is Default:  # most of them, and mostly unset on the bot
                value = bot.default[value.name]
            if not isinstance(value, str | int):  # bool is an int
                value = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if value:
                params[name] = value
        if isinstance(method, SendWithKeyboard) and method.keyboard is not None:
            params["reply_markup"] = {"inline_keyboard": method.keyboard}
        if files:
            return None
        return json.dumps(params, ensure_ascii=False).encode()

    def check_response(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Response[Any]:
        returning = method.__returning__
        if returning not in _RESPONSE_MODELS:
            _RESPONSE_MODELS[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)

    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> FormData:
        form = super().build_form_data(bot, method)
        if isinstance(method, SendWithKeyboard) and method.keyboard is not None:
            form.add_field("reply_markup", self.json_dumps({"inline_keyboard": method.keyboard}))
        return form


def _result(raw: str, *, updates: bool) -> SentText | list[Any] | None:
    """The result of a successful answer: the new message's id for sendMessage, the list
    of update objects for getUpdates; None for anything else (left to aiogram's
    check_response)."""
    try:
        data = json.loads(raw)
        result = data["result"] if data["ok"] is True else None
    except (ValueError, TypeError, KeyError):
        return None
    if updates:
        return result if type(result) is list else None
    message_id = result.get("message_id") if type(result) is dict else None
    return SentText(message_id) if type(message_id) is int else None


def make_session(
    api_server: str | None, *, timeout: float = 60.0, long_polls: int = 0
) -> BotSession:
    """A session for the bots of one Bot API server (``None``: api.telegram.org); room in
    its pool for ``long_polls`` waiting getUpdates calls plus spare connections."""
    options: dict[str, Any] = {"timeout": timeout, "limit": long_polls + SPARE_CONNECTIONS}
    if api_server:
        options["api"] = TelegramAPIServer.from_base(api_server)
    return BotSession(**options)
