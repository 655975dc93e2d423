"""/subscribe and /unsubscribe: a citizen chooses to get announcements, by topic or all.

/subscribe shows the consent text (subscribe.j2) with buttons; nothing is stored until the
citizen presses one. Payloads: ``sub:all``, ``sub:t:<topic>`` (checked against the
institution's configured topics, never trusted), ``sub:off`` (on every announcement).
"""

from __future__ import annotations

import logging

from bots.core.model import Button
from handlers.announcements.labels import label
from handlers.conversation import Conversation
from handlers.institution import Institution
from storage.announcements import SubscriptionRepo

log = logging.getLogger(__name__)


def institution_topics(institution: Institution) -> list[str]:
    """Every topic the institution's announcements use, in config order."""
    topics: dict[str, None] = {}
    for ann in institution.config.announcements:
        for topic in ann.topics:
            topics.setdefault(topic, None)
    return list(topics)


def _repo(conv: Conversation) -> SubscriptionRepo:
    return SubscriptionRepo(conv.storage.db)


async def subscribe(conv: Conversation, args: str) -> None:
    topics = institution_topics(conv.institution)
    texts = conv.institution.texts
    if topics:
        rows = [[Button(label(texts, "subscribe_all"), callback="sub:all")]]
        rows += [[Button(topic, callback=f"sub:t:{topic}")] for topic in topics]
    else:
        rows = [[Button(label(texts, "subscribe"), callback="sub:all")]]
    await conv.reply(conv.render("subscribe", topics=topics), rows)


async def unsubscribe(conv: Conversation, args: str) -> None:
    event = conv.event
    was = await _repo(conv).unsubscribe(conv.institution.id, event.platform, event.chat.chat_id)
    await conv.reply(conv.render("unsubscribed", was_subscribed=was))


async def on_callback(conv: Conversation, data: str) -> None:
    """A press on a /subscribe button or on an announcement's "unsubscribe" button."""
    event = conv.event
    inst = conv.institution
    repo = _repo(conv)
    conv.answer_callback()
    parts = data.split(":", 2)
    action = parts[1] if len(parts) > 1 else ""
    if action == "off":
        was = await repo.unsubscribe(inst.id, event.platform, event.chat.chat_id)
        await conv.reply(conv.render("unsubscribed", was_subscribed=was))
        return
    if action == "all":
        topics: list[str] | None = None
    elif action == "t" and len(parts) == 3 and parts[2] in institution_topics(inst):
        current = await repo.get(inst.id, event.platform, event.chat.chat_id)
        chosen = [] if current is None or current.topics is None else current.topics
        topics = sorted({*chosen, parts[2]})
    else:
        log.info("stale subscription button chat=%s", event.chat.key)
        return
    await repo.subscribe(
        inst.id, event.platform, event.chat.chat_id, event.user.id, topics, conv.now
    )
    log.info("chat %s subscribed to %s announcements", event.chat.key, inst.id)
    await conv.reply(conv.render("subscribed", topics=topics or []))
