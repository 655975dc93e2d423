"""Escalation: questions the FAQ cannot answer become tickets in the institution's staff
chat; staff answer inside the messenger and the answer reaches the citizen on the
citizen's platform; SLA reminders keep tickets from being forgotten.

Importing this package registers its commands (/operator), staff commands (/tickets,
/ticket, /close, /reply, /stats), staff buttons (tk:...) and the staff reply hook."""

from __future__ import annotations

from handlers.escalation import privacy as _privacy  # noqa: F401  (registers /forget hook)
from handlers.escalation import staff_side as _staff_side  # noqa: F401  (registers handlers)
from handlers.escalation.citizen import claim_before_matching, escalate, on_callback

__all__ = ["claim_before_matching", "escalate", "on_callback"]
