"""`priemnaya faq ...`: measuring an FAQ against sample questions.

``priemnaya faq eval FAQ.yaml CASES.yaml [FAQ2.yaml CASES2.yaml ...] [--json]`` runs the
matcher over every case, prints each failure and a summary (per pair and, with several
pairs, combined), and exits 0 (1 when a file cannot be loaded). ``priemnaya faq eval -c
CONFIG -i ID CASES.yaml ...`` measures an institution's FAQ with its own ``matching:``
settings (the cases files may then leave out ``faq:``). ``ask`` and ``fit`` are added by the
CLI's assembly onto the parser group :func:`register` returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bots.core.yamlfile import ProblemsError
from handlers.faq.evaluation import EvalReport, combine, evaluate, load_cases, run_cases
from handlers.faq.explain_words import DECISIONS
from runtime.cli.common import institution_matcher


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``faq`` command; returns its sub-command group so others can add to it."""
    faq = subparsers.add_parser("faq", help="work with an institution's FAQ")
    commands = faq.add_subparsers(dest="faq_command", metavar="COMMAND", required=True)
    ev = commands.add_parser(
        "eval",
        help="measure the matcher on sample questions",
        description="Match every question of a cases file against its FAQ and count "
        "answered right/wrong, clarified and escalated. Give one or more FAQ/CASES pairs, "
        "e.g. `faq eval school.yaml school.cases.yaml polyclinic.yaml polyclinic.cases.yaml`; "
        "with several pairs the totals are summed.",
    )
    ev.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FAQ CASES",
        help="an FAQ file followed by its cases file; repeat the pair for more FAQs "
        "(with -c: cases files only)",
    )
    ev.add_argument(
        "-c", "--config", metavar="CONFIG", help="take the FAQ and matching settings from here"
    )
    ev.add_argument("-i", "--institution", help="institution id (default: the first)")
    ev.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the integer counts (summed over the pairs) only",
    )
    ev.set_defaults(func=run_eval)
    return commands


def run_eval(args: argparse.Namespace) -> int:
    files: list[Path] = args.files
    if args.config:
        return _eval_institution(args)
    if len(files) % 2:
        print("faq eval: give FAQ and CASES files in pairs", file=sys.stderr)
        return 2
    try:
        reports = [evaluate(f, c) for f, c in zip(files[::2], files[1::2], strict=True)]
    except (ProblemsError, OSError) as exc:
        return _unreadable(exc)
    return _print_reports(files[::2], reports, args.json)


def _unreadable(exc: Exception) -> int:
    print(exc if isinstance(exc, ProblemsError) else f"faq eval: {exc}", file=sys.stderr)
    return 1


def _eval_institution(args: argparse.Namespace) -> int:
    found = institution_matcher(args)
    if isinstance(found, int):
        return found
    _, matcher = found
    try:
        reports = [run_cases(matcher, load_cases(path).cases) for path in args.files]
    except (ProblemsError, OSError) as exc:
        return _unreadable(exc)
    return _print_reports(args.files, reports, args.json)


def _print_reports(names: list[Path], reports: list[EvalReport], as_json: bool) -> int:
    total = combine(reports)
    if as_json:
        print(json.dumps(total.counts()))
        return 0
    for faq_path, report in zip(names, reports, strict=True):
        print(f"== {faq_path}")
        for f in report.failures:
            expected = f.expected or "(ответа в FAQ нет)"
            got = ", ".join(f.got) or "-"
            decision = DECISIONS.get(str(f.decision), str(f.decision))
            print(f"  [{decision}] {f.q!r}\n      ожидалось: {expected}; получено: {got}")
        print(report.summary())
        print()
    if len(reports) > 1:
        print("== всего")
        print(total.summary())
    return 0
