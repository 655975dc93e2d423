"""What an institution writes under ``max:`` in the config."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from bots.core.schema import Strict


class MaxAccount(Strict):
    token: SecretStr
    api_url: str = "https://platform-api2.max.ru"
    mode: Literal["polling", "webhook"] = "polling"
    ca_bundle: str | None = None
    webhook_secret: SecretStr | None = None
