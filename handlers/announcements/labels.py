"""Button labels of this feature, from the macros in announce_labels.j2 (an institution
re-words them by overriding that file, like labels.j2)."""

from __future__ import annotations

from typing import Any

from handlers.render_budget import budget
from handlers.texts import module_of

LABELS_TEMPLATE = "announce_labels.j2"


def label(texts: Any, name: str) -> str:
    module = module_of(texts.env, LABELS_TEMPLATE)
    macro = getattr(module, name, None)
    if macro is None:
        raise AttributeError(f"{LABELS_TEMPLATE} has no macro {name!r}")
    with budget():
        return str(macro()).strip()
