"""``priemnaya faq fit``: fit the answer / offer / escalate decision on an admin's own cases.

The shipped decision (handlers/faq/decision.json) was fitted on FAQs of 32 institution kinds;
an institution with a few hundred labelled questions of its own can fit one for its FAQ and
name the file in ``matching: {decision_file: ...}``. Prints the figures on the cases it was
fitted on (in-sample: expect less on new questions).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bots.core.yamlfile import ProblemsError
from handlers.faq.evaluation import combine, load_cases, run_cases
from handlers.faq.fitting import FitData, add_cases, bars_for, fit_model
from runtime.cli.common import add_config_argument, institution_matcher


def register(faq_commands: argparse._SubParsersAction) -> None:
    parser = faq_commands.add_parser(
        "fit",
        help="fit the answer/offer/escalate decision on your own cases",
        description="Fit the decision on labelled questions of an institution's FAQ and "
        "write it as JSON; name the file in the institution's matching.decision_file.",
    )
    add_config_argument(parser)
    parser.add_argument("--institution", "-i", help="institution id (default: the first)")
    parser.add_argument("cases", nargs="+", type=Path, help="cases files (q / expect)")
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("decision.json"), help="the file to write"
    )
    parser.set_defaults(func=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    found = institution_matcher(args)
    if isinstance(found, int):
        return found
    inst_id, matcher = found
    data = FitData()
    cases = []
    try:
        for path in args.cases:
            cases.extend(load_cases(path).cases)
        add_cases(data, matcher, cases)
    except (ProblemsError, OSError, ValueError) as exc:
        print(f"faq fit: {exc}", file=sys.stderr)
        return 1
    if data.in_scope < 20 or data.out_of_scope < 5:
        print("faq fit: need at least 20 covered and 5 uncovered questions", file=sys.stderr)
        return 1
    bars = bars_for(matcher.settings.encoder)
    model = fit_model(data, bars, f"{inst_id}: {', '.join(map(str, args.cases))}")
    if matcher.semantic is not None:  # the similarities it holds for (a check at start)
        model.space = matcher.semantic.space
    args.output.write_text(model.to_json(), encoding="utf-8")
    refitted = institution_matcher(args, model)
    if isinstance(refitted, int):
        return refitted
    print(combine([run_cases(refitted[1], cases)]).summary())
    print(f"wrote {args.output}")
    return 0
