"""Callback payloads that outgrow a platform's limit (Telegram: 64 bytes) are stored and the
button carries a short key instead. The key is derived from the payload, so storing the same
payload twice is harmless and a restart keeps old buttons working."""

from __future__ import annotations

import base64
import hashlib
from typing import Protocol

STORED_PREFIX = "~"


class PayloadStore(Protocol):
    async def put_payload(self, key: str, payload: str) -> None: ...

    async def get_payload(self, key: str) -> str | None: ...


async def encode_payload(payload: str, max_bytes: int, store: PayloadStore) -> str:
    """The payload itself when it fits, else a stored short key."""
    if len(payload.encode()) <= max_bytes and not payload.startswith(STORED_PREFIX):
        return payload
    digest = hashlib.blake2b(payload.encode(), digest_size=15).digest()
    key = STORED_PREFIX + base64.urlsafe_b64encode(digest).decode()
    await store.put_payload(key, payload)
    return key


async def decode_payload(data: str, store: PayloadStore) -> str | None:
    """The original payload, or None for an unknown stored key (a forged or purged button)."""
    if not data.startswith(STORED_PREFIX):
        return data
    return await store.get_payload(data)


class MemoryPayloadStore:
    """For tools and tests that run without a database."""

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    async def put_payload(self, key: str, payload: str) -> None:
        self._items[key] = payload

    async def get_payload(self, key: str) -> str | None:
        return self._items.get(key)
