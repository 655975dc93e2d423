"""`priemnaya faq ...`: measuring an FAQ against sample questions.

``priemnaya faq eval FAQ.yaml CASES.yaml [FAQ2.yaml CASES2.yaml ...] [--json]`` runs the
matcher over every case, prints each failure and a summary (per pair and, with several
pairs, combined), and exits 0 (1 when a file cannot be loaded). ``ask`` is added by the
CLI's assembly onto the parser group :func:`register` returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bots.core.yamlfile import ProblemsError
from handlers.faq.evaluation import EvalReport, combine, evaluate


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
        help="an FAQ file followed by its cases file; repeat the pair for more FAQs",
    )
    ev.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the integer counts (summed over the pairs) only",
    )
    ev.set_defaults(func=run_eval)
    return commands


def run_eval(args: argparse.Namespace) -> int:
    files: list[Path] = args.files
    if len(files) % 2:
        print("faq eval: give FAQ and CASES files in pairs", file=sys.stderr)
        return 2
    reports: list[EvalReport] = []
    for faq_path, cases_path in zip(files[::2], files[1::2], strict=True):
        try:
            reports.append(evaluate(faq_path, cases_path))
        except ProblemsError as exc:
            print(exc, file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"faq eval: {exc}", file=sys.stderr)
            return 1
    total = combine(reports)
    if args.json:
        print(json.dumps(total.counts()))
        return 0
    for (faq_path, _), report in zip(
        zip(files[::2], files[1::2], strict=True), reports, strict=True
    ):
        print(f"== {faq_path}")
        for f in report.failures:
            expected = f.expected or "(not covered)"
            got = ", ".join(f.got) or "-"
            print(f"  [{f.decision}] {f.q!r}\n      expected {expected}; got {got}")
        print(report.summary())
        print()
    if len(reports) > 1:
        print("== total")
        print(total.summary())
    return 0
