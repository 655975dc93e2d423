"""OK's errors in the port's terms: retry later, recipient unreachable, or refused for good.

OK reports errors as ``error_code``/``error_msg``, sometimes with HTTP 200 (bots/ok/client.py
turns both into OkApiError). The codes are those of OK's traditional API table [CODE:
pyodnoklassniki]; whether the group Bot API uses exactly these is [UNVERIFIED], so the
mapping is cautious: what is not known to be final is retried.
"""

from __future__ import annotations

from bots.core.model import ChatRef
from bots.core.platform import PermanentSendError, PlatformError, RecipientUnreachable
from bots.ok.client import OkApiError

#: FLOOD_BLOCKED and LIMIT_REACHED: back off well beyond the sender's first retry
FLOOD_CODES = frozenset({8, 11})
FLOOD_PAUSE = 30.0
#: UNKNOWN, SERVICE, SYSTEM: OK's side failed; try again
TRANSIENT_CODES = frozenset({1, 2, 9999})
#: PARAM_SESSION_EXPIRED, PARAM_SESSION_KEY, PARAM_SIGNATURE: the token is not accepted
TOKEN_CODES = frozenset({102, 103, 104})
#: ACTION_BLOCKED, PERMISSION_DENIED, PARAM_PERMISSION, NOT_FOUND: when sending, this chat
#: cannot be written to (the citizen did not allow group messages, or left)
UNREACHABLE_CODES = frozenset({7, 10, 200, 300})
#: seen on me/updates; one client re-subscribes when it comes [CODE, UNVERIFIED meaning]
RESUBSCRIBE_CODE = 5000
TOKEN_PAUSE = 60.0


def token_refused(exc: OkApiError) -> bool:
    return exc.status == 401 or exc.code in TOKEN_CODES


def port_error(exc: OkApiError, chat: ChatRef, *, sending: bool) -> Exception:
    """The exception the outbox sender and the broadcast engine understand."""
    status = exc.status
    if status is None or status == 429 or status >= 500:
        return PlatformError(str(exc), code=status, retry_after=exc.retry_after)
    if exc.code in FLOOD_CODES:
        return PlatformError(str(exc), code=exc.code, retry_after=exc.retry_after or FLOOD_PAUSE)
    if exc.code in TRANSIENT_CODES:
        return PlatformError(str(exc), code=exc.code, retry_after=exc.retry_after)
    if token_refused(exc):
        return PlatformError(str(exc), code=exc.code or status, retry_after=TOKEN_PAUSE)
    if sending and (exc.code in UNREACHABLE_CODES or status in (403, 404)):
        return RecipientUnreachable(chat, f"OK error_code {exc.code} (HTTP {status})")
    return PermanentSendError(str(exc), code=exc.code or status)
