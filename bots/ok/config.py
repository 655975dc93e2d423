"""The ``ok:`` section of an institution, and the checks that concern OK alone.

Kept here rather than in bots/config.py so that OK stays one package; bots/config.py only
names the section and calls :func:`problems`.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bots.ok.client import DEFAULT_API_URL

STAFF_REFUSED = (
    "an OK chat cannot be a staff chat: OK's group messages are dialogs between one person"
    " and the group, so staff cannot sit together in one; put the staff chat on Telegram,"
    " VK or MAX (tickets from OK citizens reach it and the answers come back on OK)"
)


class OkAccount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the group's access key, from the group's settings ("${OK_SCHOOL17}")
    token: SecretStr
    api_url: str = DEFAULT_API_URL
    #: webhook (production; needs server.public_url) or polling (development)
    mode: Literal["webhook", "polling"] = "webhook"
    #: the send endpoint's spelling: me/messages/chat:ID ("me") or chat:ID/messages ("chat")
    send_path: Literal["me", "chat"] = "me"
    #: the unguessable last segment of the webhook path; default derived from the token
    webhook_secret: SecretStr | None = None
    #: networks allowed to call the webhook; "ok" is OK's documented ranges
    allow_from: list[str] = []
    #: behind a reverse proxy: the header carrying the caller's address (X-Real-IP)
    real_ip_header: str | None = None
    #: polling mode: seconds between me/updates calls
    poll_interval: float = Field(3.0, gt=0, le=60)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip() or " " in value.get_secret_value():
            raise ValueError("an OK group token looks like tkn1…:C… (from the group's settings)")
        return value

    @field_validator("allow_from")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry.strip().lower() == "ok":
                continue
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"allow_from: {entry!r} is not a network; write e.g. 217.20.145.192/28 or ok"
                ) from None
        return value


def problems(doc: Any, config: Any, inst_id: str, inst: Any) -> list[Any]:
    """OK's problems of one institution, as ``doc.problem(...)`` entries."""
    found = []
    chat = inst.staff.chat
    if chat is not None and chat.platform == "ok":
        found.append(
            doc.problem(("institutions", inst_id, "staff", "chat", "platform"), STAFF_REFUSED)
        )
    for index, member in enumerate(inst.staff.members):
        if member.platform == "ok":
            found.append(
                doc.problem(
                    ("institutions", inst_id, "staff", "members", index, "platform"),
                    "staff members cannot answer on OK (no staff chat there); list them on the"
                    " staff chat's platform",
                )
            )
    for index, announcement in enumerate(inst.announcements):
        targets = announcement.to if isinstance(announcement.to, list) else []
        for position, target in enumerate(targets):
            if getattr(target, "platform", None) == "ok":
                found.append(
                    doc.problem(
                        ("institutions", inst_id, "announcements", index, "to", position),
                        "the OK group bot cannot post to a chat of its own choosing; OK"
                        " citizens get announcements through 'subscribers'",
                    )
                )
    account = inst.ok
    if account is not None and account.mode == "webhook":
        server = config.server
        if server is None or not server.public_url:
            found.append(
                doc.problem(
                    ("institutions", inst_id, "ok", "mode"),
                    "an OK account in webhook mode needs server: {host, port, public_url}"
                    " (or write mode: polling for development)",
                )
            )
    return found
