"""The one template environment: every word the bot says comes from a Jinja2 template.

Institutions override any default template by putting a file of the same name in their
``templates:`` folder. FAQ authors are not trusted with code, so the environment is
sandboxed; it autoescapes, so a citizen's text (or an address with ``<``) that reaches a
template can never become markup; and it is strict, so a misspelt variable is an error in
``priemnaya check``, not an empty gap in a message to a citizen.
"""

from __future__ import annotations

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

_PACKAGED = Path(bots.__file__).parent / "default_templates"
_SOURCE_TREE = Path(bots.__file__).parent.parent / "templates"
DEFAULT_TEMPLATES = _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE

#: names every template may use
COMMON_NAMES = frozenset({"institution", "user", "now", "labels"})

#: the templates of the router and the conversation itself, with the extra names each is
#: rendered with; features declare theirs in their Feature object (handlers/feature.py)
CORE_TEMPLATES: dict[str, frozenset[str]] = {
    "non_text.j2": frozenset({"categories"}),
    "unclear.j2": frozenset({"categories"}),
    "staff_help.j2": frozenset(),
    "staff_unknown_command.j2": frozenset({"command"}),
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


class Labels:
    """Button labels, from the macros in labels.j2: ``labels.helpful`` -> "👍 Помогло"."""

    def __init__(self, module: Any):
        self._module = module

    def __getattr__(self, name: str) -> str:
        macro = getattr(self._module, name, None)
        if macro is None:
            raise AttributeError(f"labels.j2 has no macro {name!r}")
        return str(macro()).strip()


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
        self.labels = Labels(self.env.get_template("labels.j2").module)

    def render(
        self, name: str, *, user: str = "", now: datetime | None = None, **context: Any
    ) -> str:
        """Render ``name`` (``"start"`` or ``"start.j2"``) to the HTML subset Reply.text uses."""
        template = self.env.get_template(name if name.endswith(".j2") else f"{name}.j2")
        return _tidy(
            template.render(
                institution=self.institution, user=user, now=now, labels=self.labels, **context
            )
        )

    def answer(
        self, entry_id: str, source: str, *, user: str = "", now: datetime | None = None
    ) -> str:
        """Render an FAQ answer; compiled once per entry and cached (institutions sharing a
        FAQ and template folders share the compiled answer too)."""
        template = self._answers.get(entry_id)
        if template is None:
            template = self._answers[entry_id] = _compiled(self.env, source)
        return _tidy(
            template.render(institution=self.institution, user=user, now=now, labels=self.labels)
        )

    def label(self, name: str) -> str:
        return str(getattr(self.labels, name))


@lru_cache(maxsize=8192)
def _compiled(env: SandboxedEnvironment, source: str) -> jinja2.Template:
    """An FAQ answer compiled once per environment: a thousand institutions sharing one FAQ
    compiled each answer a thousand times, one at each institution's first question."""
    return env.from_string(source)


@lru_cache(maxsize=256)
def _environment(folders: tuple[str, ...]) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(f) for f in folders]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


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
