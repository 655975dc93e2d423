"""Config checks that concern MAX alone (called from bots/config.py's loader, so both
``priemnaya check`` and ``run`` refuse what fails here).

Since 25 May 2026 MAX delivers webhooks only over HTTPS with a certificate of a trusted CA
(max-messenger/api-schema README); a plain-http ``public_url`` would subscribe fine and
then never receive anything. The one exception is a loopback address, which MAX could
never reach anyway: it only serves local emulators in development and tests.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def problems(doc: Any, config: Any, inst_id: str, inst: Any) -> list[Any]:
    account = getattr(inst, "max", None)
    if account is None or account.mode != "webhook":
        return []
    server = config.server
    url = server.public_url if server is not None else None
    if not url:
        return [
            doc.problem(
                ("institutions", inst_id, "max", "mode"),
                "a MAX account in webhook mode needs server: {host, port, public_url: https://…}",
            )
        ]
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return []
    return [
        doc.problem(
            ("server", "public_url"),
            f"MAX delivers webhooks only over HTTPS since May 2026, and {url!r} is not https:"
            " put a TLS reverse proxy with a trusted certificate in front and write"
            " public_url: https://…, or use mode: polling for development",
        )
    ]
