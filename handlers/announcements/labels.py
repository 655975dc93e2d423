"""Button labels of this feature, from the macros in announce_labels.j2 (an institution
re-words them by overriding that file, like labels.j2)."""

from __future__ import annotations

from typing import Any

LABELS_TEMPLATE = "announce_labels.j2"


def label(texts: Any, name: str) -> str:
    module = texts.env.get_template(LABELS_TEMPLATE).module
    macro = getattr(module, name, None)
    if macro is None:
        raise AttributeError(f"{LABELS_TEMPLATE} has no macro {name!r}")
    return str(macro()).strip()
