"""Urgent questions: words that mean a life may be at risk get the emergency numbers at once
and put the ticket first in the staff chat. The list is configurable per institution
(``urgent_keywords``); these defaults are generic."""

from __future__ import annotations

import re

DEFAULT_URGENT = (
    "угроза жизни",
    "угрожает жизни",
    "пожар",
    "горим",
    "отравление",
    "отравился",
    "отравилась",
    "без сознания",
    "не дышит",
    "суицид",
    "покончить с собой",
    "насилие",
    "избивают",
    "взрыв",
    "теракт",
    "заминирован",
    "истекает кровью",
)


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("ё", "е"))


def is_urgent(text: str, keywords: list[str] | None) -> bool:
    folded = _fold(text)
    return any(_fold(k) in folded for k in (keywords if keywords is not None else DEFAULT_URGENT))
