"""``priemnaya faq ask``: how the bot would answer a question, and why."""

from __future__ import annotations

import argparse

from handlers.faq.matcher import FaqMatcher
from runtime.cli.common import add_config_argument, load_or_report, pick_institution


def register(faq_commands: argparse._SubParsersAction) -> None:
    parser = faq_commands.add_parser(
        "ask", help="show the decision, the top 3 entries with scores, and the matched terms"
    )
    add_config_argument(parser)
    parser.add_argument("--institution", "-i", help="institution id (default: the first)")
    parser.add_argument("text", help="the citizen's question, in quotes")
    parser.set_defaults(func=run_ask)


def run_ask(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    inst_id = pick_institution(loaded, args.institution)
    if inst_id is None:
        return 2
    inst = loaded.config.institutions[inst_id]
    matcher = FaqMatcher.build(
        loaded.faqs[inst_id].faq,
        inst.matching,
        vectors_dir=loaded.database_path.parent / "vectors",
        background=False,
    )
    print(matcher.explain(args.text))
    return 0
