"""Full validation of a config and everything it refers to: the config itself, every FAQ,
every template override and every FAQ answer template. Used by ``priemnaya check`` and by
hot reload, which must refuse exactly what check refuses."""

from __future__ import annotations

from collections.abc import Mapping

import jinja2

from bots.core.yamlfile import Problem, ProblemsError
from handlers.config import LoadedConfig, load_config
from handlers.texts import ANSWER_NAMES, Texts, check_template_source, check_templates


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
    for inst_id, inst in loaded.config.institutions.items():
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
        faq = loaded.faqs[inst_id]
        answers_key = (texts.env, faq.digest, str(faq.document.path))
        if answers_key in checked_answers:
            continue
        checked_answers.add(answers_key)
        for index, entry in enumerate(faq.faq.entries):
            # template line 1 is the first line of the answer's text
            first_line = (faq.line_of_entry(index, "answer") or 1) - 1
            for p in check_template_source(
                texts.env, entry.answer, ANSWER_NAMES, str(faq.document.path), first_line
            ):
                problems.append(Problem(p.file, p.line, f"entry {entry.id!r}: {p.message}"))
    return problems
