"""Full validation of a config and everything it refers to: the config itself, every FAQ,
every template override and every FAQ answer template, each also rendered (answers with
the context a citizen gets, templates with a sample; handlers/render_check.py), so an
answer that fails on every use or runs over the render budget is refused here. Used by
``priemnaya check`` and by hot reload, which must refuse exactly what check refuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from bots.core.yamlfile import Problem, ProblemsError
from handlers.config import AnnouncementConfig, LoadedConfig, load_config
from handlers.render_check import answer_problem, template_problem
from handlers.texts import (
    ANSWER_NAMES,
    DEFAULT_TEMPLATES,
    Texts,
    check_template_source,
    check_templates,
)


def check_all(
    config_path: str, templates: Mapping[str, frozenset[str]]
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) for a config and everything it refers to; ``templates`` are
    the template names the bot uses (runtime/features.py: TEMPLATES)."""
    try:
        loaded = load_config(config_path)
    except ProblemsError as exc:
        return exc.problems, []
    return template_problems(loaded, templates), loaded.warnings


def template_problems(
    loaded: LoadedConfig, templates: Mapping[str, frozenset[str]]
) -> list[Problem]:
    problems: list[Problem] = []
    checked_folders: set[str] = set()
    #: FAQ answers are checked once per FAQ content and template environment, however many
    #: institutions share them (a region: one FAQ file, a thousand schools)
    checked_answers: set[tuple[object, str, str]] = set()
    rendered_folders: set[str | None] = set()
    for inst_id, inst in loaded.config.institutions.items():
        now = datetime.now(ZoneInfo(inst.timezone or loaded.config.timezone))
        folder = loaded.templates_dir(inst_id)
        try:
            texts = Texts(folder, institution=inst.template_context())
        except Exception as exc:  # a broken labels.j2 override fails at load
            problems.append(
                Problem(str(folder or "templates"), getattr(exc, "lineno", None), str(exc))
            )
            continue
        if folder is not None and str(folder) not in checked_folders:
            checked_folders.add(str(folder))
            own = {
                a.template: frozenset({"data"})
                for a in inst.announcements
                if a.template is not None
            }
            problems.extend(
                Problem(p.file, p.line, p.message)
                for p in check_templates(folder, texts.env, templates, own)
            )
        for index, announcement in enumerate(inst.announcements):
            if announcement.template is None:
                continue
            try:
                texts.env.get_template(announcement.template)
            except Exception as exc:  # missing file or a syntax error in it
                where = loaded.document.problem(
                    ("institutions", inst_id, "announcements", index, "template"),
                    f"announcement {announcement.id!r}: template {announcement.template!r}: "
                    + (
                        "not found in the institution's templates folder"
                        if isinstance(exc, jinja2.TemplateNotFound)
                        else str(exc)
                    ),
                )
                problems.append(where)
        key = None if folder is None else str(folder)
        if key not in rendered_folders:
            rendered_folders.add(key)
            # a template with a problem already found is not rendered (the same problem twice)
            known = {Path(p.file).name for p in problems if folder and p.file.startswith(key or "")}
            problems.extend(
                _render_problems(texts, folder, templates, inst.announcements, now, known)
            )
        faq = loaded.faqs[inst_id]
        answers_key = (texts.env, faq.digest, str(faq.document.path))
        if answers_key in checked_answers:
            continue
        checked_answers.add(answers_key)
        for index, entry in enumerate(faq.faq.entries):
            # template line 1 is the first line of the answer's text
            first_line = (faq.line_of_entry(index, "answer") or 1) - 1
            found = check_template_source(
                texts.env, entry.answer, ANSWER_NAMES, str(faq.document.path), first_line
            )
            for p in found:
                problems.append(Problem(p.file, p.line, f"entry {entry.id!r}: {p.message}"))
            if not found:
                failure = answer_problem(texts, entry.id, entry.answer, now)
                if failure is not None:
                    line = faq.document.line_of(("entries", index, "answer"))
                    faq_file = str(faq.document.path)
                    problems.append(Problem(faq_file, line, f"entry {entry.id!r}: {failure}"))
    return problems


def _render_problems(
    texts: Texts,
    folder: Path | None,
    templates: Mapping[str, frozenset[str]],
    announcements: Sequence[AnnouncementConfig],
    now: datetime,
    skip: set[str],
) -> list[Problem]:
    """Render every template the bot uses (and the announcements' own) with a sample."""
    own = {a.template: frozenset({"data"}) for a in announcements if a.template is not None}
    problems = []
    for name, names in sorted({**templates, **own}.items()):
        if name in skip:
            continue
        failure = template_problem(texts, name, names, now)
        if failure is not None:
            path = folder / name if folder is not None and (folder / name).exists() else None
            where = str(path or DEFAULT_TEMPLATES / name)
            problems.append(Problem(where, None, failure))
    return problems
