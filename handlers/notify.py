"""Queueing messages from anywhere in the handlers: a conversation answering an update, or a
background job (SLA reminders, auto-close) that has no update to answer.

Every message is an outbox row with a deterministic dedup key, so doing the same work twice
(a retried update, a timer that fires again after a crash) queues nothing twice."""

from __future__ import annotations

from datetime import datetime

from bots.core.model import Button, ChatRef, Reply
from storage import Storage


async def queue_message(
    storage: Storage,
    institution: str,
    chat: ChatRef,
    text: str,
    buttons: list[list[Button]] | None = None,
    *,
    dedup_key: str,
    now: datetime,
    reply_to: str | None = None,
    ref_kind: str | None = None,
    ref_id: str | None = None,
) -> int | None:
    return await storage.outbox.enqueue(
        institution=institution,
        chat=chat,
        reply=Reply.of(text, buttons, reply_to=reply_to),
        dedup_key=dedup_key,
        now=now,
        ref_kind=ref_kind,
        ref_id=ref_id,
    )


async def queue_edit(
    storage: Storage,
    institution: str,
    ref_kind: str,
    ref_id: str,
    text: str,
    buttons: list[list[Button]] | None = None,
    *,
    dedup_key: str,
    now: datetime,
) -> int | None:
    """Edit the latest message sent (or queued) under (ref_kind, ref_id); None if none.
    An edit of it still waiting to be sent takes this text instead (the latest wins)."""
    item = await storage.outbox.latest_for_ref(ref_kind, ref_id)
    if item is None:
        return None
    return await storage.outbox.enqueue(
        institution=institution,
        chat=item.chat,
        reply=Reply.of(text, buttons),
        dedup_key=dedup_key,
        now=now,
        kind="edit",
        ref_kind=ref_kind,
        ref_id=ref_id,
    )


async def queue_topic(
    storage: Storage,
    institution: str,
    chat: ChatRef,
    title: str,
    *,
    ref_id: str,
    dedup_key: str,
    now: datetime,
) -> int | None:
    """Ask the sender to create a forum topic; messages addressed to the thread
    ``@topic:<ref_id>`` wait for it and go into it."""
    return await storage.outbox.enqueue(
        institution=institution,
        chat=chat,
        reply=Reply(text=title),
        dedup_key=dedup_key,
        now=now,
        kind="topic",
        ref_kind="topic",
        ref_id=ref_id,
    )


def topic_thread(ref_id: str) -> str:
    """The placeholder thread id of a topic the sender has not created yet."""
    return f"@topic:{ref_id}"
