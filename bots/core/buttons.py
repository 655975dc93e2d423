"""Button layout helpers shared by adapters whose platforms cap a row's width and a
label's length (MAX, OK): re-flow wide rows in order, shorten long labels visibly."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bots.core.model import Button


def reflow(
    rows: Sequence[Sequence[Button]], width: Callable[[list[Button]], int]
) -> list[list[Button]]:
    """Rows wider than ``width(row)`` become several rows, order kept; empty rows dropped."""
    flowed: list[list[Button]] = []
    for row in rows:
        items = list(row)
        step = width(items)
        for start in range(0, len(items), step):
            flowed.append(items[start : start + step])
    return flowed


def fit_label(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, cut with "…"; never empty."""
    text = " ".join(text.split()) or "·"
    return text if len(text) <= limit else text[: limit - 1] + "…"
