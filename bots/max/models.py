"""The part of the MAX Bot API (OpenAPI schema 0.0.33, max-messenger/api-schema) the adapter
reads, as pydantic models.

Only what the adapter decides on is declared; every model ignores unknown fields, so a
field MAX adds tomorrow does not break parsing. Fields the schema marks nullable, or that
real payloads are known to omit, have defaults. Requests are built as plain dicts in
client.py, because they are small and a dict shows exactly what goes over the wire.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class MaxUser(_Model):
    """``User``: ``first_name`` and ``is_bot`` are required by the schema; some payloads
    carry only ``name``, so both are optional here."""

    user_id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    is_bot: bool = False
    name: str | None = None


class BotInfo(MaxUser):
    """``GET /me``."""


class Recipient(_Model):
    chat_id: int | None = None
    #: dialog, chat or channel
    chat_type: str = "dialog"
    user_id: int | None = None


class MessageBody(_Model):
    mid: str
    seq: int | None = None
    text: str | None = None
    attachments: list[dict[str, Any]] | None = None


class LinkedMessage(_Model):
    """A forwarded or replied-to message (``link.type`` forward | reply)."""

    type: str
    sender: MaxUser | None = None
    chat_id: int | None = None
    message: MessageBody


class Message(_Model):
    sender: MaxUser | None = None
    recipient: Recipient
    timestamp: int
    link: LinkedMessage | None = None
    body: MessageBody


class CallbackInfo(_Model):
    """``Callback``: a pressed button."""

    timestamp: int
    callback_id: str
    payload: str | None = None
    user: MaxUser


class Update(_Model):
    """One ``Update`` of any type; which fields are set depends on ``update_type``
    (message_created / message_callback: ``message`` and ``callback``; bot_started /
    bot_stopped: ``chat_id``, ``user`` and for bot_started the deep-link ``payload``)."""

    update_type: str
    timestamp: int
    message: Message | None = None
    callback: CallbackInfo | None = None
    chat_id: int | None = None
    user: MaxUser | None = None
    payload: str | None = None
    user_locale: str | None = None


class UpdateList(_Model):
    """``GET /updates``: raw updates (parsed one by one, so that one odd update cannot
    hide the rest of the batch) and the marker of the next page."""

    updates: list[dict[str, Any]]
    marker: int | None = None


class SendMessageResult(_Model):
    message: Message


class SimpleQueryResult(_Model):
    success: bool
    message: str | None = None


class Subscription(_Model):
    url: str
    time: int | None = None
    update_types: list[str] | None = None


class GetSubscriptionsResult(_Model):
    subscriptions: list[Subscription]


class ErrorBody(_Model):
    """``Error``: ``code`` is a string key such as ``chat.denied``."""

    code: str = ""
    message: str = ""
    error: str | None = None
