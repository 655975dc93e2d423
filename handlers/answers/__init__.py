"""Answering citizens from the FAQ (answering.py): /start and /help, topic navigation
buttons (``faq:``), feedback buttons (``fb:``) and every plain text a citizen sends, which
the router hands to :func:`answering.on_text`."""

from __future__ import annotations

from handlers.answers import answering
from handlers.feature import Feature

FEATURE = Feature(
    name="answers",
    commands={"start": answering.start_command, "help": answering.help_command},
    callbacks={"faq": answering.on_callback, "fb": answering.on_feedback},
    templates={
        "start.j2": frozenset({"categories"}),
        "help.j2": frozenset(),
        "category.j2": frozenset({"category", "entries"}),
        "clarify.j2": frozenset({"entries"}),
        "not_understood.j2": frozenset(),
        "smalltalk.j2": frozenset({"kind"}),
        "feedback_thanks.j2": frozenset({"helpful"}),
        "not_helpful.j2": frozenset(),
    },
)
