"""What an institution writes under ``telegram:`` in the config."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from bots.core.schema import Strict
from bots.core.yamlfile import is_unresolved


class TelegramAccount(Strict):
    token: SecretStr
    #: a self-hosted Bot API server or a proxy; default https://api.telegram.org
    api_server: str | None = None
    mode: Literal["polling", "webhook"] = "polling"
    #: webhook secret_token; defaults to one derived from the token
    webhook_secret: SecretStr | None = None
    #: the bot's @username without the @, for deep links and QR codes (`priemnaya link`);
    #: `link --online` asks getMe instead
    username: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if is_unresolved(value.get_secret_value()):
            return value  # the unset variable is its own problem
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{10,}", value.get_secret_value()):
            raise ValueError("a Telegram token looks like 123456789:AA... (from @BotFather)")
        return value
