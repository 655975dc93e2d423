"""The one template environment: every word the bot says comes from a Jinja2 template.

Institutions override any default template by putting a file of the same name in their
``templates:`` folder. FAQ authors are not trusted with code, so the environment is
sandboxed; it autoescapes, so a citizen's text (or an address with ``<``) that reaches a
template can never become markup; and it is strict, so a misspelt variable is an error in
``priemnaya check``, not an empty gap in a message to a citizen.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

import bots
from handlers.render_budget import BudgetedEnvironment, RenderBudgetExceeded, budget

_PACKAGED = Path(bots.__file__).parent / "default_templates"
_SOURCE_TREE = Path(bots.__file__).parent.parent / "templates"
DEFAULT_TEMPLATES = _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE

#: where a template's markup begins, with Jinja's default delimiters (those of _environment)
_JINJA_MARKUP = re.compile(r"\{[{%#]")
#: names every template may use
COMMON_NAMES = frozenset({"institution", "user", "now", "labels"})

#: the templates of the router and the conversation itself, with the extra names each is
#: rendered with; features declare theirs in their Feature object (handlers/feature.py)
CORE_TEMPLATES: dict[str, frozenset[str]] = {
    "non_text.j2": frozenset({"categories"}),
    "unclear.j2": frozenset({"categories"}),
    "staff_help.j2": frozenset(),
    "staff_unknown_command.j2": frozenset({"command"}),
    "staff_reply_unplaced.j2": frozenset(),
    "ids.j2": frozenset(
        {"platform", "chat_id", "group", "user_id", "person", "inst_id", "staff_chat"}
        | {"member", "snippet"}
    ),
    "error.j2": frozenset(),
    "first_contact.j2": frozenset(),
    "unknown_command.j2": frozenset({"command"}),
    "labels.j2": frozenset(),
    "staff_only.j2": frozenset(),
    "macros.j2": frozenset(),
}
ANSWER_NAMES = COMMON_NAMES


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    file: str
    line: int | None
    message: str


class RenderFailed(Exception):
    """A template (an FAQ answer) failed: over its budget (handlers/render_budget.py), a
    forbidden attribute, a missing include, a runaway macro... The message says which."""

    @staticmethod
    def describe(exc: BaseException) -> str:
        if isinstance(exc, RecursionError):
            return "a macro calls itself without end"
        if isinstance(exc, RenderBudgetExceeded):
            return str(exc)
        if isinstance(exc, jinja2.TemplateNotFound):
            return f"no template {exc.name!r} to include"
        return f"{type(exc).__name__}: {exc}"


class Labels:
    """Button labels, from the macros in labels.j2: ``labels.helpful`` -> "👍 Помогло".

    A label macro takes no arguments and its module no context, so each label is rendered
    once (under the budget) and kept: an answer's buttons asked for them on every question
    (1.4% of the app's CPU samples in bench/scale.py)."""

    def __init__(self, module: Any):
        self._module = module
        self._texts: dict[str, str] = {}

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        text = self._texts.get(name)
        if text is not None:
            return text
        macro = getattr(self._module, name, None)
        if macro is None:
            raise AttributeError(f"labels.j2 has no macro {name!r}")
        with budget():
            text = str(macro()).strip()
        self._texts[name] = text
        return text


def module_of(env: SandboxedEnvironment, name: str) -> Any:
    """A template's macros (labels files), built under the render budget."""
    with budget():
        return env.get_template(name).module


class Texts:
    """Renders an institution's templates (its overrides first, then the defaults)."""

    def __init__(
        self, override_dir: Path | None = None, *, institution: dict[str, Any] | None = None
    ):
        folders = [str(p) for p in (override_dir, DEFAULT_TEMPLATES) if p is not None]
        self.override_dir = override_dir
        self.env = _environment(tuple(folders))
        self.institution = institution or {}
        self._answers: dict[str, jinja2.Template] = {}
        #: entry id -> (source, text) of an answer without Jinja markup, or whose markup
        #: only prints the institution's values ({{ institution.phone }}): its text is the
        #: same for every citizen, so it is rendered (under the budget) once, not per
        #: question (most answers of a real FAQ are plain text or such substitutions;
        #: rendering one under the budget's trace took ~125 µs a question)
        self._static: dict[str, tuple[str, str]] = {}
        #: entry id -> why its answer ran over the render budget
        self._over_budget: dict[str, str] = {}
        self.labels = Labels(module_of(self.env, "labels.j2"))

    def render(
        self, name: str, *, user: str = "", now: datetime | None = None, **context: Any
    ) -> str:
        """Render ``name`` (``"start"`` or ``"start.j2"``) to the HTML subset Reply.text uses."""
        template = self.env.get_template(name if name.endswith(".j2") else f"{name}.j2")
        # the shipped templates are ours and take a known, small number of steps; the trace
        # costs ~6x their render time, so only an institution's own folder (whose files any
        # shipped template may import) runs under the budget
        guard = budget() if self.override_dir is not None else contextlib.nullcontext()
        with guard:
            return _tidy(
                template.render(
                    institution=self.institution, user=user, now=now, labels=self.labels, **context
                )
            )

    def answer(
        self, entry_id: str, source: str, *, user: str = "", now: datetime | None = None
    ) -> str:
        """Render an FAQ answer; compiled once per answer text and template environment
        (institutions sharing an FAQ share it), rendered with this institution's values.
        Raises RenderFailed whatever went wrong, so the caller can hand the question to
        staff instead.

        An answer that ran over its budget once is refused at once afterwards (until the
        next reload builds new Texts): each try would stall every chat for up to a second,
        and a citizen could repeat the question that triggers it."""
        spent = self._over_budget.get(entry_id)
        if spent is not None:
            raise RenderFailed(f"{spent} (earlier; not rendered again until a reload)")
        static = self._static.get(entry_id)
        if static is not None and static[0] == source:
            return static[1]
        try:
            with budget():
                template = self._answers.get(entry_id)
                if template is None:
                    template = self._answers[entry_id] = _compiled(self.env, source)
                text = _tidy(
                    template.render(
                        institution=self.institution, user=user, now=now, labels=self.labels
                    )
                )
            if not _JINJA_MARKUP.search(source) or _fixed_per_institution(self.env, source):
                self._static[entry_id] = (source, text)
            return text
        except Exception as exc:  # RecursionError too
            reason = RenderFailed.describe(exc)
            if isinstance(exc, RenderBudgetExceeded):
                self._over_budget[entry_id] = reason
            raise RenderFailed(reason) from None

    def label(self, name: str) -> str:
        return str(getattr(self.labels, name))


@lru_cache(maxsize=256)
def _environment(folders: tuple[str, ...]) -> SandboxedEnvironment:
    return BudgetedEnvironment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(f) for f in folders]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


@lru_cache(maxsize=16384)
def _compiled(env: SandboxedEnvironment, source: str) -> jinja2.Template:
    """A compiled answer (about 3.6 KB each): a region's thousand schools on one FAQ
    would otherwise hold a thousand copies of every answer."""
    return env.from_string(source)


#: the nodes of a template that only prints names and their attributes
_SUBSTITUTION_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Getattr,
    nodes.Const,
)


@lru_cache(maxsize=16384)
def _fixed_per_institution(env: SandboxedEnvironment, source: str) -> bool:
    """Whether the answer ``source`` renders the same text for every citizen
    of an institution: it only substitutes the institution's values and labels (no
    ``user``, no ``now``, no filter, call, loop or test, which could vary: ``random``)."""
    ast = env.parse(source)
    if any(not isinstance(node, _SUBSTITUTION_NODES) for node in ast.find_all(nodes.Node)):
        return False
    return meta.find_undeclared_variables(ast) <= _FIXED_NAMES


#: what an institution's answer may print and still be the same for every citizen
_FIXED_NAMES = frozenset({"institution", "labels"})


def _tidy(text: str) -> str:
    """Templates are written for people; trailing blanks and 3+ newlines are accidents."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and len(out) >= 1 and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out)


def escape(text: str) -> Markup:
    """Escape a citizen's text for use inside a Reply built in code."""
    return Markup.escape(text)


# -- checks for `priemnaya check` --------------------------------------------------------
def check_template_source(
    env: SandboxedEnvironment, source: str, allowed: frozenset[str], file: str, line0: int = 0
) -> list[TemplateProblem]:
    """Syntax errors and names the template uses that its context does not provide."""
    try:
        ast = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [
            TemplateProblem(
                file, line0 + (exc.lineno or 1), f"template syntax error: {exc.message}"
            )
        ]
    problems = []
    for name in sorted(meta.find_undeclared_variables(ast) - allowed):
        line = _first_use(ast, name)
        known = ", ".join(sorted(allowed))
        problems.append(
            TemplateProblem(
                file,
                line0 + (line or 1),
                f"template uses undefined variable {name!r}; available here: {known}",
            )
        )
    problems.extend(_attribute_problems(ast, file, line0))
    return problems


_INSTITUTION_FIELDS = frozenset({"name", "address", "phone", "email", "site", "hours"})
_USER_ATTRS: frozenset[str] = frozenset()


def _attribute_problems(ast: nodes.Template, file: str, line0: int) -> list[TemplateProblem]:
    problems = []
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "institution":
            if node.attr not in _INSTITUTION_FIELDS:
                problems.append(
                    TemplateProblem(
                        file,
                        line0 + node.lineno,
                        f"institution has no field {node.attr!r}; "
                        f"available: {', '.join(sorted(_INSTITUTION_FIELDS))}",
                    )
                )
    return problems


def _first_use(ast: nodes.Template, name: str) -> int | None:
    for node in ast.find_all(nodes.Name):
        if node.name == name:
            return node.lineno
    return None


def check_templates(
    folder: Path,
    env: SandboxedEnvironment,
    names: Mapping[str, frozenset[str]],
    own: dict[str, frozenset[str]] | None = None,
) -> list[TemplateProblem]:
    """Check every known template file in ``folder``; unknown .j2 files are reported too
    (a misspelt file name would otherwise silently never be used). ``names`` are the
    templates the bot uses (CORE_TEMPLATES and the features'), ``own`` the institution's
    own templates (announcement bodies), each with the names it is given."""
    problems: list[TemplateProblem] = []
    known = {**names, **(own or {})}
    for path in sorted(folder.glob("*.j2")):
        extra = known.get(path.name)
        if extra is None:
            problems.append(
                TemplateProblem(
                    str(path),
                    1,
                    f"unknown template {path.name!r}; the bot uses: "
                    + ", ".join(sorted(names))
                    + " (and the templates named by announcements)",
                )
            )
            continue
        source = path.read_text(encoding="utf-8")
        problems.extend(check_template_source(env, source, COMMON_NAMES | extra, str(path)))
    return problems
