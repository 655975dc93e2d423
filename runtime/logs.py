"""Logging setup: human-readable lines by default, one JSON object per line with
``--log-format json`` (for journald/Loki/ELK), and secrets masked everywhere.

Why a filter on the handlers and not discipline in the code: a token reaches the log in
ways nobody writes on purpose — an aiohttp error that quotes the request URL
(``https://api.telegram.org/bot123:AA.../sendMessage``), a VK error echoing its
``access_token`` parameter, a traceback. :class:`RedactingFilter` masks anything shaped like
a Telegram or VK token and every token value the config names, in the message, its
arguments, the traceback and the stack, before any handler formats the record.

Personal data: the project logs ids, never message texts, at INFO; this module cannot
enforce that, but the JSON formatter carries no extra fields a handler did not put there.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, SecretStr

from handlers.feature import Feature, Host

MASK = "***"

#: shapes of secrets that are masked even when the config is not loaded yet
_PATTERNS = [
    # Telegram bot token, also inside /bot<token>/ URLs
    re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"),
    # VK tokens: the current vk1.a.… form and the legacy 85-hex-character one
    re.compile(r"vk1\.a\.[A-Za-z0-9_.-]{20,}"),
    re.compile(r"\b[0-9a-f]{80,}\b"),
    # anything passed as a token parameter in a query string or form
    re.compile(r"(?i)((?:access_token|token|secret|secret_token)=)[^&\s\"']+"),
]

_secrets: set[str] = set()
_lock = threading.Lock()


def add_secrets(values: Iterable[str]) -> None:
    """Mask these exact values from now on (tokens from the config, webhook secrets)."""
    with _lock:
        for value in values:
            if value and len(value) >= 6:
                _secrets.add(value)


def config_secrets(config: Any) -> list[str]:
    """Every SecretStr value in a loaded config (pydantic models, walked generically so a
    new account type with a token is covered without a change here)."""

    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(config)
    return found


def redact(text: str) -> str:
    """``text`` with every known secret and anything shaped like a token masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record before any formatter sees it (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message (+ exc when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False)


HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: str | int = "WARNING", fmt: str = "human", stream: Any = None) -> None:
    """Configure the root logger for the CLI: one stderr handler, redacting.

    When someone else already configured logging (a program embedding us, pytest), their
    handlers stay and only get the redacting filter, as ``logging.basicConfig`` would."""
    if isinstance(level, str):
        level = getattr(logging, level.upper(), logging.WARNING)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_priemnaya", False)]:
        root.removeHandler(old)
    if root.handlers and stream is None:
        protect_handlers()
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(HUMAN_FORMAT))
    handler.addFilter(RedactingFilter())
    handler._priemnaya = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def protect_handlers() -> None:
    """Add the redacting filter to every root handler that lacks it (an embedding program
    or pytest may have configured logging without :func:`setup`)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def install(app: Host) -> None:
    """App feature: mask the configured tokens (again after every reload)."""
    add_secrets(config_secrets(app.loaded.config))
    protect_handlers()


FEATURE = Feature(name="logs", install=install)
