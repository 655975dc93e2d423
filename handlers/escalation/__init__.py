"""Escalation: questions the FAQ cannot answer become tickets in the institution's staff
chat; staff answer inside the messenger and the answer reaches the citizen on the
citizen's platform; SLA reminders keep tickets from being forgotten.

:data:`FEATURE` brings the citizen's /operator and ``esc:`` buttons, the staff commands
(/tickets, /ticket, /close, /reply, /stats), the staff buttons (``tk:``), the staff reply
hook, the /forget anonymiser of tickets and the SLA timers."""

from __future__ import annotations

from handlers.escalation import staff_side, timers
from handlers.escalation.citizen import (
    claim_before_matching,
    escalate,
    on_callback,
    operator,
)
from handlers.escalation.privacy import anonymise_tickets
from handlers.feature import Feature

__all__ = ["FEATURE", "claim_before_matching", "escalate", "on_callback"]

FEATURE = Feature(
    name="escalation",
    commands={"operator": operator, "staff": operator, "оператор": operator},
    callbacks={"esc": on_callback},
    staff_commands={
        "reply": staff_side.reply_command,
        "r": staff_side.reply_command,
        "ответ": staff_side.reply_command,
        "close": staff_side.close_command,
        "закрыть": staff_side.close_command,
        "tickets": staff_side.list_command,
        "обращения": staff_side.list_command,
        "ticket": staff_side.show_command,
        "обращение": staff_side.show_command,
        "stats": staff_side.stats_command,
        "статистика": staff_side.stats_command,
    },
    staff_callbacks={"tk": staff_side.on_ticket_button},
    message_hooks=(staff_side.answer_by_reply,),
    forget_hooks=(anonymise_tickets,),
    templates={
        "escalated.j2": frozenset({"ticket", "urgent", "expect_at", "out_of_hours", "due"}),
        "not_helped_note.j2": frozenset(),
        "urgent.j2": frozenset(),
        "operator_prompt.j2": frozenset(),
        "ticket_joined.j2": frozenset({"ticket"}),
        "staff_answer.j2": frozenset({"staff", "text", "number"}),
        "ticket_closed.j2": frozenset({"number"}),
        "ticket_card.j2": frozenset({"ticket", "recent", "answered_by"}),
        "ticket_forward.j2": frozenset({"ticket", "text"}),
        "topic_title.j2": frozenset({"ticket"}),
        "tickets_list.j2": frozenset({"tickets"}),
        "ticket_history.j2": frozenset({"ticket", "history"}),
        "staff_stats.j2": frozenset(
            {"questions", "answered", "clarified", "escalated", "breached", "median_response"}
        ),
        "sla_reminder.j2": frozenset({"ticket"}),
        "sla_breach.j2": frozenset({"ticket", "supervisors", "chat_platform"}),
        "staff_bad_number.j2": frozenset({"text"}),
        "staff_usage.j2": frozenset({"command"}),
        "staff_ticket_closed.j2": frozenset({"number"}),
        "staff_took.j2": frozenset({"number", "staff"}),
        "staff_closed.j2": frozenset({"number"}),
    },
    install=timers.install,
)
