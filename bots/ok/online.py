"""``priemnaya check --online`` for an OK group: is the token accepted, and where does OK
deliver? Read-only: ``me/info`` (which also renews the token) and ``me/subscriptions``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bots.ok.client import OkApiError, OkClient
from bots.ok.errors import token_refused
from bots.ok.group import webhook_hook_for
from bots.ok.platform import WEBHOOK_PATH


async def check_online(account: Any, public_url: str | None) -> tuple[bool, list[str]]:
    """(fine, lines to print)."""
    token = account.token.get_secret_value()
    client = OkClient(token, api_url=account.api_url, send_path=account.send_path)
    lines: list[str] = []
    try:
        try:
            info = await client.info()
        except OkApiError as exc:
            hint = (
                " — the token is refused: get a new key in the group's settings"
                if token_refused(exc)
                else ""
            )
            return False, [f"ok: me/info failed: {exc}{hint}"]
        lines.append(f"ok: token accepted for group {info.name!r} ({info.group_id})")
        try:
            listed = (await client.subscriptions()).subscriptions
        except OkApiError as exc:
            return False, [*lines, f"ok: me/subscriptions failed: {exc}"]
    finally:
        await client.close()
    ours = None
    if public_url and account.mode == "webhook":
        hook = (
            account.webhook_secret.get_secret_value()
            if account.webhook_secret is not None
            else webhook_hook_for(token)
        )
        ours = public_url.rstrip("/") + WEBHOOK_PATH.format(hook=hook)
    lines.append(f"ok: {len(listed)} subscription(s)")
    for subscription in listed:
        since = (
            datetime.fromtimestamp(subscription.time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
            if subscription.time
            else "?"
        )
        mark = " (this config's webhook)" if ours is not None and subscription.url == ours else ""
        lines.append(f"ok:   {_masked(subscription.url)} since {since}{mark}")
    if ours is not None and not any(s.url == ours for s in listed):
        lines.append("ok: this config's webhook is not subscribed yet (the bot does it at start)")
    return True, lines


def _masked(url: str) -> str:
    """A webhook address without its secret last segment."""
    head, sep, tail = url.rpartition("/ok/")
    return f"{head}/ok/{tail[:4]}…" if sep and len(tail) > 8 else url
