"""Personal data (152-FZ): /forget, the retention job and the export of what is stored.

``/forget`` asks for confirmation (buttons Удалить / Отмена: a citizen who typed it by
mistake loses nothing), then, in the update's transaction, deletes the citizen's messages
and feedback, the bot's messages to their chat, erases their name, and lets other features
anonymise what they keep (their Feature's ``forget_hooks``: the escalation feature
anonymises its tickets). Deleted rows must not survive in the file either: the connection runs
with ``PRAGMA secure_delete=ON`` (freed space is zeroed), and after the commit the WAL is
checkpointed and truncated, so neither ``.sqlite3`` nor ``-wal`` holds the text.

The retention job deletes messages older than config ``retention`` (default 180 days)
once a day on the app's clock. :func:`export_citizen` gathers every row that concerns a
citizen for ``priemnaya privacy export``.

Callback payloads: ``priv:del`` (confirm), ``priv:no`` (cancel).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bots.core.background import Periodic
from bots.core.model import Button
from handlers.conversation import Conversation, ForgetHook
from handlers.faq.matching.text import forget_recent
from handlers.feature import Feature, Host
from handlers.texts import Labels, module_of
from storage import Storage
from storage.port import Database
from storage.privacy import PrivacyRepo
from storage.times import iso

log = logging.getLogger(__name__)


#: how often the retention job runs
RETENTION_PERIOD = timedelta(days=1)


def _labels(conv: Conversation) -> Labels:
    return Labels(module_of(conv.institution.texts.env, "privacy_labels.j2"))


async def forget(conv: Conversation, args: str) -> None:
    labels = _labels(conv)
    rows = [[Button(labels.delete, callback="priv:del"), Button(labels.cancel, callback="priv:no")]]
    await conv.reply(conv.render("forget_confirm"), rows, log=False)


async def on_callback(conv: Conversation, data: str) -> None:
    conv.answer_callback()
    if data == "priv:no":
        await conv.reply(conv.render("forget_cancelled"), log=False)
        return
    if data != "priv:del":
        return
    event = conv.event
    counts = await erase_citizen(
        conv.storage,
        conv.institution.id,
        event.platform,
        event.user.id,
        event.chat.chat_id,
        conv.forget_hooks,
    )
    log.info(
        "forget: institution=%s chat=%s: %d message(s) deleted",
        conv.institution.id,
        event.chat.key,
        counts["messages"],
    )
    conv.extras.setdefault("after_commit", []).append(lambda: scrub_files(conv.storage))
    await conv.reply(conv.render("forgotten"), log=False)


async def erase_citizen(
    storage: Storage,
    institution: str,
    platform: str,
    user_id: str,
    chat_id: str,
    forget_hooks: Sequence[ForgetHook] = (),
) -> dict[str, int]:
    """Delete and anonymise everything about one citizen (call inside a transaction);
    ``forget_hooks`` are the features' own (the escalation feature's ticket anonymiser)."""
    counts = await PrivacyRepo(storage.db).erase_citizen(institution, platform, user_id, chat_id)
    await storage.citizens.forget(institution, platform, user_id)
    for hook in forget_hooks:
        await hook(storage, institution, platform, user_id, chat_id)
    forget_recent()
    return counts


async def scrub_files(storage: Storage) -> None:
    """Empty the WAL after a deletion committed (see storage/privacy.py)."""
    await PrivacyRepo(storage.db).scrub_files()


# -- retention -----------------------------------------------------------------------------
async def purge(storage: Storage, now: datetime, retention: timedelta) -> dict[str, int]:
    """Delete what is older than ``retention``: messages, feedback, delivered messages and
    handled updates. Citizens' rows stay (subscriptions and counts need them)."""
    counts = await PrivacyRepo(storage.db).purge(iso(now - retention))  # in short batches
    if any(counts.values()):
        await scrub_files(storage)
    return counts


_jobs: weakref.WeakKeyDictionary[Any, Periodic] = weakref.WeakKeyDictionary()


def retention_job(app: Host) -> Periodic:
    """The app's retention job: :func:`purge` at start and then every
    :data:`RETENTION_PERIOD` of app time (tests wait on its runs)."""
    job = _jobs.get(app)
    if job is None:

        async def run() -> dict[str, int]:
            assert app.storage is not None  # the job runs between start and stop
            counts = await purge(app.storage, app.clock.now(), app.loaded.config.retention)
            if any(counts.values()):
                log.info("retention: deleted %s", counts)
            return counts

        job = _jobs[app] = Periodic("retention", run, RETENTION_PERIOD.total_seconds(), app.clock)
    return job


def install(app: Host) -> None:
    """App feature: secure deletion on the connection, and the daily retention job."""
    job = retention_job(app)

    async def on_start(_: Any) -> None:
        assert app.storage is not None  # on_start hooks run after storage opened
        await PrivacyRepo(app.storage.db).enable_secure_delete()
        job.start()

    async def on_stop(_: Any) -> None:
        await job.stop()

    app.on_start.append(on_start)
    app.on_stop.append(on_stop)


# -- export ------------------------------------------------------------------------------
async def export_citizen(
    db: Database, platform: str, user_id: str, institution: str | None = None
) -> dict[str, Any]:
    """Every stored row about a citizen, table by table (storage/privacy.py finds them)."""
    return await PrivacyRepo(db).export_citizen(platform, user_id, institution)


FEATURE = Feature(
    name="privacy",
    commands={"forget": forget},
    callbacks={"priv": on_callback},
    templates={
        "forget_confirm.j2": frozenset(),
        "forgotten.j2": frozenset(),
        "forget_cancelled.j2": frozenset(),
        "privacy_labels.j2": frozenset(),
    },
    install=install,
)
