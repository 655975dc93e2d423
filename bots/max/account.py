"""What an institution writes under ``max:`` in the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from bots.core.schema import Strict


class MaxAccount(Strict):
    token: SecretStr
    api_url: str = "https://platform-api2.max.ru"
    mode: Literal["polling", "webhook"] = "polling"
    ca_bundle: str | None = None
    webhook_secret: SecretStr | None = None
    #: the bot's name in its link max.ru/<name>, for `priemnaya link`
    username: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{2,64}$")
