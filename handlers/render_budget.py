"""A budget for every template render, so that nothing an FAQ author writes can stall the bot.

Jinja's sandbox stops a template from reaching Python internals and caps ``range()`` at
100 000, but not loops inside loops, a recursive macro, ``'x' * 10**9`` or a string that
doubles itself forty times. A render runs on the event loop, so one such answer would freeze
every institution the process serves (and SIGTERM with them). The budget has four parts:

- **steps**: while a render runs, a trace function (``sys.settrace``, this thread only,
  removed afterwards) counts Python line events: the template's own compiled code and the
  Jinja and filter code it calls. A loop, however nested, costs a step per pass.
- **wall clock**: the same trace function looks at the clock on every event, so a render
  stops within ``SECONDS`` of starting, on a slow machine too.
- **output and work**: the final text, every macro's and block's output, every ``~`` and every
  result of ``*``, ``**``, ``+``, ``%``, a filter or a method call is measured; one value may
  not exceed ``MAX_OUTPUT`` characters and all of them together not ``MAX_WORK``.
- **single operations**: what runs inside C and cannot be interrupted between lines
  (``'x' * n``, ``2 ** n``, ``'x'.center(n)``, ``sep.join(items)``, ``s.replace(a, b)``,
  a ``%`` format with a width) is refused *before* it runs when its result would be too big.

Why a trace function and not a thread or a process: a thread cannot be stopped and holds the
GIL while it burns CPU, and a process per render is far too slow for a chat bot. The trace
costs about a microsecond per line only while a render runs; a real answer takes a few
hundred steps, a staff card a few thousand.
"""

from __future__ import annotations

import functools
import operator
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

#: Python line events a render may take (a real answer takes hundreds, a card thousands)
MAX_STEPS = 300_000
#: seconds a render may take, whatever the machine's load
SECONDS = 1.0
#: characters of one value (and of the whole text): 5x the longest message a platform takes
MAX_OUTPUT = 50_000
#: characters all the values a render builds may add up to
MAX_WORK = 2_000_000
#: a width given to a filter or method that pads or repeats (center, indent...) may not
#: exceed this; other numbers (a sum in an announcement's data) are not limited
MAX_NUMBER = 100_000
#: bits an integer computed by ``**`` or ``*`` may have
MAX_BITS = 100_000
#: a width or precision of six digits or more in a format string: ``%1000000d``,
#: ``%.1000000f``, ``{:>1000000}`` (a plain number in the text, an INN, is not one)
_BIG_FORMAT_NUMBER = re.compile(r"%[-+ #0]*(\d{6,}|\d*\.\d{6,})|\{[^{}]*:[^{}]*\d{6,}[^{}]*\}")
#: filters and str methods whose number argument sets the size of what C code builds
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate"})
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class RenderBudgetExceeded(Exception):
    """A template needed more than its budget; the message says which part in plain words.

    Derives from Exception only: template runtime code catches LookupError, TypeError and
    AttributeError, which must not swallow this."""


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.work = 0
        self.deadline = time.monotonic() + SECONDS
        self.exceeded: str | None = None

    def trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        self.steps += 1
        if self.exceeded is None:
            if self.steps > MAX_STEPS:
                self.exceeded = f"the template takes more than {MAX_STEPS} steps (a loop too long)"
            elif time.monotonic() > self.deadline:
                self.exceeded = f"the template takes longer than {SECONDS:g} s"
        if self.exceeded is not None:
            # raised again at every later event, so code that catches it cannot continue
            raise RenderBudgetExceeded(self.exceeded)
        return self.trace

    def produced(self, size: int) -> None:
        self.work += size
        if self.work > MAX_WORK:
            self.exceeded = f"the template builds more than {MAX_WORK} characters of text"
            raise RenderBudgetExceeded(self.exceeded)


_current = threading.local()


@contextmanager
def budget() -> Iterator[None]:
    """Run a render under the budget (nested renders share the outer one's)."""
    if getattr(_current, "budget", None) is not None:
        yield
        return
    state = _current.budget = _Budget()
    previous = sys.gettrace()
    sys.settrace(state.trace)
    try:
        yield
    finally:
        sys.settrace(previous)
        _current.budget = None


@contextmanager
def _paused() -> Iterator[None]:
    """Compiling a template is not rendering it: its cost depends on the source's length,
    which the FAQ and file checks bound, and it happens once per template."""
    state: _Budget | None = getattr(_current, "budget", None)
    if state is None:
        yield
        return
    started = time.monotonic()
    sys.settrace(None)
    try:
        yield
    finally:
        state.deadline += time.monotonic() - started
        sys.settrace(state.trace)


def _measure(value: Any) -> Any:
    """Count a value a template built; too big a value is refused."""
    if isinstance(value, str | bytes | list | tuple | dict):
        size = len(value)
        if size > MAX_OUTPUT:
            raise RenderBudgetExceeded(
                f"the template makes a text or list of {size} items (at most {MAX_OUTPUT})"
            )
        state: _Budget | None = getattr(_current, "budget", None)
        if state is not None:
            state.produced(size)
    elif isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise RenderBudgetExceeded("the template computes too big a number")
    return value


def _size(value: Any) -> int:
    """How many characters or items ``value`` holds (a range too); 0 when it cannot tell."""
    try:
        return len(value)
    except Exception:  # no len(), or a Sample/Undefined that refuses it
        return 0


def _check_arguments(args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise RenderBudgetExceeded(
                f"the number {value} given to a filter or method is too big (at most {MAX_NUMBER})"
            )


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and _BIG_FORMAT_NUMBER.search(fmt):
        raise RenderBudgetExceeded("a format string asks for too wide a field")


def _check_product(*sizes: int) -> None:
    """``sep.join(items)`` and ``s.replace(a, b)`` can multiply their inputs' sizes."""
    first, second = sorted(sizes)[-2:] if len(sizes) >= 2 else (0, 0)
    if first * second > MAX_OUTPUT * 4:
        raise RenderBudgetExceeded("the template would build too long a text")


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_BITS:
                raise RenderBudgetExceeded("the template computes too big a number")
            return
        count = left if isinstance(left, int) else right if isinstance(right, int) else None
        seq = right if isinstance(left, int) else left
        if count is not None and _size(seq) * max(count, 0) > MAX_OUTPUT:
            raise RenderBudgetExceeded(
                f"the template repeats a text more than {MAX_OUTPUT} characters long"
            )
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right > MAX_BITS or left.bit_length() * right > MAX_BITS:
                raise RenderBudgetExceeded("the template computes too big a number")
    elif op == "%":
        _check_format(left)


class _BudgetCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a measured concatenation (a string doubling itself in a loop
    would otherwise reach gigabytes in forty steps)."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.measure(")
        super().visit_Concat(node, frame)
        self.write(")")


def _measured_concat(parts: Iterable[str]) -> str:
    """Joins a render's, a macro's or a block's output, stopping once it is too long."""
    out: list[str] = []
    size = 0
    for part in parts:
        size += len(part)
        if size > MAX_OUTPUT:
            raise RenderBudgetExceeded(
                f"the template's text is longer than {MAX_OUTPUT} characters"
            )
        out.append(part)
    return _measure("".join(out))


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 2 if getattr(func, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(func)  # keeps jinja_pass_arg, so Jinja passes the context as before
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value = args[skip - 1] if len(args) >= skip else None
        rest = args[skip:]
        if name in _WIDTH_FILTERS:
            _check_arguments(rest, kwargs)
        if name == "format":
            _check_format(value)
        elif name == "join":
            sep = rest[0] if rest else kwargs.get("d", "")
            _check_product(_size(value), _size(sep))
        elif name == "replace":
            new = rest[1] if len(rest) > 1 else kwargs.get("new", "")
            _check_product(_size(value), _size(new))
        return _measure(func(*args, **kwargs))

    return bounded


class BudgetedEnvironment(SandboxedEnvironment):
    """The sandbox with the budget's checks on every operation that can grow without bound
    (see the module's docstring). ``budget()`` around a render adds steps and the clock."""

    code_generator_class = _BudgetCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.concat = _measured_concat  # type: ignore[assignment]
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    measure = staticmethod(_measure)

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        with _paused():
            return super().compile(*args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in ("format", "format_map"):
            _check_format(owner)
        return super().wrap_str_format(value)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        _check_binop(operator_, left, right)
        return _measure(_BINOPS[operator_](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            method = getattr(__obj, "__name__", "")
            if method in _WIDTH_METHODS:
                _check_arguments(args, kwargs)
            elif method == "join" and args:
                _check_product(len(owner), _size(args[0]))
            elif method == "replace" and len(args) > 1:
                _check_product(len(owner), _size(args[1]))
        return _measure(super().call(__context, __obj, *args, **kwargs))


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "%": operator.mod,
}
