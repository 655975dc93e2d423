"""The PostgreSQL backend beyond the storage contract: the SQL translation, migrations kept
in step with SQLite's, and what several processes sharing one database rely on (claims
that never overlap, an update handled by one worker only)."""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from bots.core.model import ChatRef, Event, User
from bots.core.yamlfile import ProblemsError
from handlers.config import load_config
from storage import Storage, StorageError
from storage.announcements import Audience, BroadcastRepo, SubscriptionRepo
from storage.pg import placeholders, redact, translate
from tests.pg import fresh_schema


# -- translation -------------------------------------------------------------------------
def test_placeholders_are_numbered_outside_literals_and_comments() -> None:
    sql = "SELECT '?', \"a?\" FROM t WHERE a=? AND b='it''s ?' -- why?\n AND c IN (?,?)"
    assert placeholders(sql) == (
        "SELECT '?', \"a?\" FROM t WHERE a=$1 AND b='it''s ?' -- why?\n AND c IN ($2,$3)"
    )


def test_an_insert_into_a_table_with_an_id_returns_it() -> None:
    ids = frozenset({"outbox"})
    assert translate("INSERT INTO outbox(a) VALUES (?) ON CONFLICT(k) DO NOTHING", ids) == (
        "INSERT INTO outbox(a) VALUES ($1) ON CONFLICT(k) DO NOTHING RETURNING id",
        True,
    )
    assert translate("INSERT INTO kv(a) VALUES (?)", ids) == (
        "INSERT INTO kv(a) VALUES ($1)",
        False,
    )
    assert translate("INSERT INTO kv(a) VALUES (?) RETURNING a", ids)[1] is True
    assert translate("UPDATE outbox SET a=? WHERE id=?", ids) == (
        "UPDATE outbox SET a=$1 WHERE id=$2",
        False,
    )


def test_a_password_never_appears_in_messages() -> None:
    assert redact("postgresql://bot:s3cret@db:5432/p") == "postgresql://bot:***@db:5432/p"
    assert redact("postgresql://root@127.0.0.1/test") == "postgresql://root@127.0.0.1/test"


def test_both_dialects_have_the_same_numbered_migrations() -> None:
    def numbered(folder: str) -> dict[str, str]:
        files = importlib.resources.files("storage") / folder
        return {
            f.name[:4]: f.name
            for f in files.iterdir()
            if f.name[:4].isdigit() and f.name.endswith(".sql")
        }

    sqlite, pg = numbered("migrations"), numbered("migrations_pg")
    assert sorted(sqlite) == sorted(pg)
    assert sqlite == pg  # the same names too, so a reader finds the twin


# -- two processes over one database -------------------------------------------------------
@asynccontextmanager
async def two_workers() -> AsyncIterator[tuple[Storage, Storage, ManualClock]]:
    """Two Storage objects on one schema: two connection pools, as two processes have."""
    clock = ManualClock()
    async with fresh_schema() as url:
        first = await Storage.open(url, clock.now)
        second = await Storage.open(url, clock.now)
        try:
            yield first, second, clock
        finally:
            await first.close()
            await second.close()


async def test_two_workers_claim_disjoint_deliveries_of_one_broadcast() -> None:
    async with two_workers() as (a, b, clock):
        t = clock.now()
        await SubscriptionRepo(a.db).add_many(
            [("school", "telegram", str(n), str(n)) for n in range(1200)], t
        )
        repo_a, repo_b = BroadcastRepo(a.db), BroadcastRepo(b.db)
        bid = await repo_a.create(
            institution="school",
            announcement_id="menu",
            scheduled_for=t,
            send_after=t,
            text="Меню",
            audience=Audience(subscribers=True),
            origin="schedule",
            now=t,
        )
        assert bid is not None
        subs = await SubscriptionRepo(a.db).reachable("school", ["telegram"])
        await repo_a.start(bid, [(s.platform, s.chat_id, "subscriber") for s in subs], t)
        claimed: list[list[str]] = [[], []]
        while True:
            rounds = await asyncio.gather(
                repo_a.due_deliveries(bid, t, 2000), repo_b.due_deliveries(bid, t, 2000)
            )
            if not any(rounds):
                break
            for mine, got in zip(claimed, rounds, strict=True):
                mine.extend(d.chat_id for d in got)
        assert claimed[0] and claimed[1]  # both took a share
        assert not set(claimed[0]) & set(claimed[1])  # nobody's twice
        assert len(claimed[0]) + len(claimed[1]) == 1200
        # a claim runs out: a worker that died leaves its rows to the others
        clock.advance(121)
        assert len(await repo_b.due_deliveries(bid, clock.now(), 2000)) == 500


async def test_an_update_two_workers_handle_at_once_is_handled_by_one() -> None:
    async with two_workers() as (a, b, clock):
        event = Event(
            institution="school",
            platform="telegram",
            chat=ChatRef("telegram", "42"),
            user=User("42", "Анна"),
            update_key="7",
            text="вопрос",
        )
        assert await a.inbox.accept(event, clock.now())
        assert await b.inbox.accept(event, clock.now())  # pending: both would handle it
        first_claimed = asyncio.Event()
        release = asyncio.Event()

        async def handle(storage: Storage, hold: bool) -> bool:
            async with storage.transaction():
                if not await storage.inbox.claim(event):
                    return False
                if hold:
                    first_claimed.set()
                    await release.wait()
                await storage.kv.set("handled", "7", "yes")
                await storage.inbox.done(event)
                return True

        one = asyncio.create_task(handle(a, True))
        await first_claimed.wait()
        two = asyncio.create_task(handle(b, False))
        await until_a_backend_waits_on_a_lock(a)  # `two`, on the row `one` holds
        assert not two.done()
        release.set()
        assert await one is True
        assert await two is False
        assert await b.inbox.accept(event, clock.now()) is False


async def until_a_backend_waits_on_a_lock(storage: Storage, timeout: float = 10.0) -> None:
    """PostgreSQL signals nothing when a backend starts waiting: poll its activity view."""
    async with asyncio.timeout(timeout):
        while True:
            waiting = await storage.db.fetchval(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.01)


async def test_a_task_spawned_inside_a_transaction_does_not_share_its_connection() -> None:
    async with two_workers() as (a, _b, _clock):
        async with a.transaction():
            await a.kv.set("s", "k", "inside")
            # another task sees only committed data, and does not break the transaction
            seen = await asyncio.create_task(a.kv.get("s", "k"))
            assert seen is None
        assert await a.kv.get("s", "k") == "inside"


async def test_a_wrong_url_says_where_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        await Storage.open("postgresql://bot:s3cret@127.0.0.1:1/none", ManualClock().now)
    assert "127.0.0.1:1" in str(caught.value) and "s3cret" not in str(caught.value)


def test_the_config_takes_a_postgresql_url_and_rejects_anything_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "faq.yaml").write_text("entries: []\n", encoding="utf-8")

    def config(url: str) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(
            f'storage: {{url: "{url}"}}\ninstitutions:\n  school:\n    name: Школа\n'
            "    faq: faq.yaml\n",
            encoding="utf-8",
        )
        return path

    monkeypatch.setenv("DB_URL", "postgresql://bot:s3cret@db/priemnaya")
    loaded = load_config(config("${DB_URL}"))
    assert loaded.database_target == "postgresql://bot:s3cret@db/priemnaya"
    assert "s3cret" not in repr(loaded.config.storage)
    with pytest.raises(ProblemsError) as caught:
        load_config(config("mysql://db/priemnaya"))
    assert "postgresql://" in str(caught.value.problems)
