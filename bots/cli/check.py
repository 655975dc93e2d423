"""``priemnaya check``: validate the config, every FAQ and every template before deploying.

Prints ``file:line: message`` for each problem (and ``file:line: warning: ...`` for what
would not stop the local demo), exits 0 when clean and 1 otherwise."""

from __future__ import annotations

import argparse
import sys

from bots.cli.common import add_config_argument
from bots.config import LoadedConfig, load_config
from bots.yamlfile import Problem, ProblemsError
from handlers.texts import ANSWER_NAMES, Texts, check_template_source, check_templates


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="validate the config, FAQs and templates")
    add_config_argument(parser)
    parser.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    problems, warnings = check_all(args.config)
    for warning in warnings:
        print(f"{warning.file}:{warning.line or 1}: warning: {warning.message}")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{args.config}: OK", file=sys.stderr)
    return 0


def check_all(config_path: str) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) for a config and everything it refers to."""
    try:
        loaded = load_config(config_path)
    except ProblemsError as exc:
        return exc.problems, []
    return _template_problems(loaded), loaded.warnings


def _template_problems(loaded: LoadedConfig) -> list[Problem]:
    problems: list[Problem] = []
    checked_folders: set[str] = set()
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
            problems.extend(
                Problem(p.file, p.line, p.message) for p in check_templates(folder, texts.env)
            )
        faq = loaded.faqs[inst_id]
        for index, entry in enumerate(faq.faq.entries):
            # template line 1 is the first line of the answer's text
            first_line = (faq.line_of_entry(index, "answer") or 1) - 1
            for p in check_template_source(
                texts.env, entry.answer, ANSWER_NAMES, str(faq.document.path), first_line
            ):
                problems.append(Problem(p.file, p.line, f"entry {entry.id!r}: {p.message}"))
    return problems
