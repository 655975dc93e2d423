"""What the adapter reads from OK's group Bot API, as tolerant pydantic models.

Sources are in shared/OK-NOTES.md. Every model ignores unknown fields, ids are strings
("Все возвращаемые айди могут быть строковыми" [DOC]; a number is turned into a string),
and anything not confirmed by the docs has a default, so a payload that differs from
the notes in a detail is still read.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

#: an id OK may send as a number or a string; always a string here
Id = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class GroupInfo(_Model):
    """``GET me/info`` with a group token: ``{"name", "group_id": "group:…"}`` [DOC]."""

    name: str = ""
    group_id: Id | None = None


class Subscription(_Model):
    url: str = ""
    #: ms since epoch [DOC]
    time: int | None = None


class Subscriptions(_Model):
    subscriptions: list[Subscription] = []


class Success(_Model):
    """``{"success": true}``; a list for sends to several users [DOC]."""

    success: bool | list[bool | None] = True


class SendResult(_Model):
    """``{"success", "recipient_id", "message_id": "mid:…"}`` [CODE: 2 clients]; one client
    reads ``mid`` instead, so both are accepted."""

    success: bool | list[bool | None] = True
    recipient_id: Id | None = None
    message_id: Id | None = None
    mid: Id | None = None


class UpdateList(_Model):
    """``GET me/updates``: ``{"updates": [webhook bodies]}`` [CODE: one client only]."""

    updates: list[dict[str, Any]] = []


class Sender(_Model):
    user_id: Id = ""
    #: "first last" (present in GET messages, optional in webhooks [CODE])
    name: str = ""


class Recipient(_Model):
    chat_id: Id = ""


class MessageBody(_Model):
    text: str | None = None
    mid: Id = ""
    seq: int | None = None
    reply_to: Id | None = None
    attachments: list[dict[str, Any]] | None = None
    attachment: dict[str, Any] | None = None


class Update(_Model):
    """One webhook body (or one entry of ``me/updates``).

    ``webhookType`` is MESSAGE_CREATED, MESSAGE_CALLBACK or CHAT_SYSTEM [DOC types, CODE
    field name]; the old docs' examples omit it, so :func:`bots.ok.events.kind_of` also
    infers it. A press carries ``callbackId`` and the button's ``payload`` at the top level
    [CODE: 3 clients]; a top-level ``mid`` (the keyboard's message?) is [UNVERIFIED]. A
    CHAT_SYSTEM body's ``type`` (CHAT_STARTED) and ``payload`` are [CODE: one client]."""

    webhook_type: str | None = Field(None, alias="webhookType")
    sender: Sender | None = None
    recipient: Recipient | None = None
    message: MessageBody | None = None
    timestamp: int | None = None
    callback_id: Id | None = Field(None, alias="callbackId")
    payload: Any = None
    mid: Id | None = None
    type: str | None = None
