"""PostgreSQL for tests: a fresh schema per test, dropped afterwards, so tests are
independent of each other and of what a previous run left behind.

The server is ``PRIEMNAYA_TEST_POSTGRES`` (default postgresql://root@127.0.0.1:5432/test).
Where none is reachable the PostgreSQL tests are skipped with the reason, unless
``PRIEMNAYA_REQUIRE_POSTGRES=1`` (set by .ci/run): then they fail, so CI cannot go green
without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("PRIEMNAYA_TEST_POSTGRES", DEFAULT_URL)


def required() -> bool:
    return os.environ.get("PRIEMNAYA_REQUIRE_POSTGRES", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip (or fail, when PostgreSQL is required) with ``reason``."""
    if required():
        pytest.fail(f"PostgreSQL is required (PRIEMNAYA_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"no PostgreSQL: {reason} (set PRIEMNAYA_TEST_POSTGRES to a server's URL)")


def with_schema(url: str, schema: str) -> str:
    """The URL whose connections use ``schema`` (asyncpg passes unknown query parameters
    on as server settings)."""
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A URL to an empty schema of its own; the schema is dropped afterwards."""
    try:
        import asyncpg
    except ImportError:
        unavailable("asyncpg is not installed")
        raise  # unreachable: unavailable() raises
    url = server_url()
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except Exception as exc:
        unavailable(f"cannot connect to {url}: {type(exc).__name__}: {exc}")
        raise
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield with_schema(url, schema)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
