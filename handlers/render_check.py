"""``priemnaya check`` renders what it checks: every FAQ answer with the context it gets at
run time, every template with a sample of its variables.

Reading a template's source finds syntax errors and unknown names, not an answer that fails
on every use (``{{ ''.__class__ }}``, a macro that calls itself, an include of a file that
does not exist) or one that would run for minutes (loops inside loops: the render budget,
handlers/render_budget.py, stops it). Rendering finds both, and hot reload refuses them too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from jinja2 import TemplateNotFound, TemplateSyntaxError
from jinja2.exceptions import SecurityError

from handlers.render_budget import RenderBudgetExceeded
from handlers.texts import COMMON_NAMES, RenderFailed, Texts

#: the first name a sample render greets
SAMPLE_USER = "Анна"


#: attributes Jinja looks for on a value to decide how to treat it; a Sample has none
_JINJA_MARKS = frozenset({"unsafe_callable", "alters_data", "jinja_pass_arg"})


#: failures of a template whatever values it is given
CERTAIN = (
    RenderBudgetExceeded,
    SecurityError,
    TemplateNotFound,
    TemplateSyntaxError,
    RecursionError,
)


class Sample:
    """A stand-in for any value a template is given (a ticket, a list of entries, a count):
    every attribute and item is again a Sample, it iterates over two Samples, reads as
    "пример" and as the number 2, so a template's own logic runs to its end."""

    def __getattr__(self, name: str) -> Sample:
        if name.startswith("__") or name in _JINJA_MARKS:
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Sample:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Sample:
        return self

    def __iter__(self) -> Iterator[Sample]:
        return iter((Sample(), Sample()))

    def __len__(self) -> int:
        return 2

    def __contains__(self, item: Any) -> bool:
        return False

    def __str__(self) -> str:
        return "пример"

    def __format__(self, spec: str) -> str:
        try:
            return format(2, spec)
        except ValueError:
            return format(str(self), spec)

    def __bool__(self) -> bool:
        return True

    def __int__(self) -> int:
        return 2

    def __index__(self) -> int:
        return 2

    def __float__(self) -> float:
        return 2.0

    def __round__(self, ndigits: int | None = None) -> int:
        return 2

    def __hash__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        return other is self

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def _same(self, other: Any) -> Sample:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _same

    def __neg__(self) -> Sample:
        return self


def answer_problem(texts: Texts, entry_id: str, source: str, now: datetime) -> str | None:
    """Why the answer cannot be rendered for a citizen, or None."""
    try:
        texts.answer(entry_id, source, user=SAMPLE_USER, now=now)
    except RenderFailed as exc:
        return f"the answer cannot be shown: {exc}"
    return None


def template_problem(texts: Texts, name: str, names: frozenset[str], now: datetime) -> str | None:
    """Why the template ``name`` fails with a sample of ``names``, or None.

    Only failures that do not depend on the values are reported: over the budget, a
    forbidden attribute, an include of a missing file, a macro without end. A sample cannot
    be every ticket (``{"open": ...}[t.status]`` has no entry for a Sample), so any other
    error here says more about the sample than about the template."""
    context = {n: Sample() for n in names - COMMON_NAMES}
    try:
        texts.render(name, user=SAMPLE_USER, now=now, **context)
    except CERTAIN as exc:
        return f"the template cannot be shown: {RenderFailed.describe(exc)}"
    except Exception:
        return None
    return None
