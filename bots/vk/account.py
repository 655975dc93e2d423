"""What an institution writes under ``vk:`` in the config."""

from __future__ import annotations

from pydantic import Field, SecretStr

from bots.core.schema import Strict


class VkAccount(Strict):
    token: SecretStr
    group_id: int = Field(gt=0)
    #: VK API base URL; default https://api.vk.ru/method/
    api_url: str | None = None
    #: Bots Long Poll wait, seconds
    wait: int = Field(25, ge=1, le=90)
