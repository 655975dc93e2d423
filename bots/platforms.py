"""The one table of messenger platforms: name -> account model -> adapter group factory.

The config schema (handlers/config.py) takes each platform's account section from here, the
app (runtime/app.py) and the workers (runtime/workers.py) create adapter groups from here,
reload (runtime/reload.py) compares accounts from here. Adding a platform is its folder
``bots/<name>/`` (an account model and ``create_group``) plus one line in ``PLATFORMS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from bots import max as max_adapter
from bots import ok, telegram, vk
from bots.core.adapters import GroupFactory
from bots.max.account import MaxAccount
from bots.max.checks import problems as max_problems
from bots.max.links import deep_link as max_link
from bots.max.online import check_online as max_online
from bots.ok.config import OkAccount
from bots.ok.config import problems as ok_problems
from bots.ok.online import check_online as ok_online
from bots.telegram.account import TelegramAccount
from bots.telegram.links import deep_link as telegram_link
from bots.telegram.online import check_online as telegram_online
from bots.vk.account import VkAccount
from bots.vk.links import deep_link as vk_link
from bots.vk.online import check_online as vk_online

OnlineCheck = Callable[[Any, str | None], Awaitable[tuple[bool, list[str]]]]
ConfigCheck = Callable[[Any, Any, str, Any], list[Any]]
#: ``priemnaya link``: (account, institution id, online) -> the link that opens the chat
DeepLink = Callable[[Any, str, bool], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class PlatformKind:
    """One messenger: the config key an institution writes its account under, the pydantic
    model of that section, and the factory that starts every account of this kind."""

    name: str
    account: type[BaseModel]
    create_group: GroupFactory
    #: ``priemnaya check --online``: (account, public_url) -> (fine, lines); None: not yet
    check_online: OnlineCheck | None = None
    #: the platform's own config rules for one institution (doc, config, id, institution)
    #: -> problems with file:line, e.g. "MAX webhooks need https"; None: no extra rules
    config_problems: ConfigCheck | None = None
    #: ``priemnaya link``: the link (and QR code) that opens the institution's chat
    deep_link: DeepLink | None = None


#: the messengers an institution may have accounts on, in the order the app starts them
PLATFORMS: dict[str, PlatformKind] = {
    kind.name: kind
    for kind in (
        PlatformKind(
            "telegram",
            TelegramAccount,
            telegram.create_group,
            check_online=telegram_online,
            deep_link=telegram_link,
        ),
        PlatformKind("vk", VkAccount, vk.create_group, check_online=vk_online, deep_link=vk_link),
        PlatformKind(
            "max",
            MaxAccount,
            max_adapter.create_group,
            check_online=max_online,
            config_problems=max_problems,
            deep_link=max_link,
        ),
        PlatformKind(
            "ok", OkAccount, ok.create_group, check_online=ok_online, config_problems=ok_problems
        ),
    )
}

#: the in-memory platform (shell, tests): no account, every institution has it in local mode
LOCAL = "local"

#: every platform name a config may name (staff chat, staff members)
NAMES: tuple[str, ...] = (*PLATFORMS, LOCAL)
