"""``priemnaya faq ask``: how the bot would answer a question, and why."""

from __future__ import annotations

import argparse

from runtime.cli.common import add_config_argument, institution_matcher


def register(faq_commands: argparse._SubParsersAction) -> None:
    parser = faq_commands.add_parser(
        "ask", help="show the decision, the top 3 entries with scores, and the matched terms"
    )
    add_config_argument(parser)
    parser.add_argument("--institution", "-i", help="institution id (default: the first)")
    parser.add_argument("text", help="the citizen's question, in quotes")
    parser.set_defaults(func=run_ask)


def run_ask(args: argparse.Namespace) -> int:
    found = institution_matcher(args)
    if isinstance(found, int):
        return found
    print(found[1].explain(args.text))
    return 0
