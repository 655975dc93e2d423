"""What several commands share: loading the config with problems printed as file:line."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from bots.core.yamlfile import ProblemsError, is_unresolved
from handlers.config import LoadedConfig, load_config, parse_duration
from handlers.faq.decision import DecisionModel
from handlers.faq.matcher import FaqMatcher


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", required=True, metavar="CONFIG", help="the config YAML file"
    )


def load_or_report(path: str, *, offline: bool = True) -> LoadedConfig | None:
    """The loaded config, or None after printing every problem to stderr.

    Offline by default: only ``run`` talks to the messengers, so only it needs the tokens'
    environment variables (``offline=False``); the shell, ``faq ask``, reports and the rest
    work on a machine that has none of them."""
    try:
        loaded = load_config(path, offline=offline)
    except ProblemsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    return loaded


def database_or_report(loaded: LoadedConfig) -> str | None:
    """The database to open, or None after saying which variable its URL still needs
    (offline commands load the config without environment variables)."""
    url = loaded.config.storage.url
    if url is not None and is_unresolved(url.get_secret_value()):
        print(
            f"{loaded.path}: storage.url is {url.get_secret_value()}, and that environment"
            " variable is not set: export it to read the database",
            file=sys.stderr,
        )
        return None
    return loaded.database_target


def duration_argument(value: str) -> timedelta:
    """argparse type for --since and the like: '30d', '30 дней', '2 ч'."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pick_institution(loaded: LoadedConfig, wanted: str | None) -> str | None:
    ids = list(loaded.config.institutions)
    if wanted is None:
        return ids[0]
    if wanted not in ids:
        print(
            f"no institution {wanted!r} in {loaded.path}; configured: {', '.join(ids)}",
            file=sys.stderr,
        )
        return None
    return wanted


def load_institution(args: argparse.Namespace) -> tuple[LoadedConfig, str] | int:
    """The config of ``-c CONFIG`` and the institution of ``-i ID`` (default: the first),
    or the exit code after saying what is wrong."""
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    inst_id = pick_institution(loaded, args.institution)
    if inst_id is None:
        return 2
    return loaded, inst_id


def institution_matcher(
    args: argparse.Namespace, model: DecisionModel | None = None
) -> tuple[str, FaqMatcher] | int:
    """The matcher of ``-c CONFIG -i ID`` with the institution's matching settings and its
    FAQ's vectors built (commands wait for them), or the exit code after saying why not."""
    found = load_institution(args)
    if isinstance(found, int):
        return found
    loaded, inst_id = found
    matcher = FaqMatcher.build(
        loaded.faqs[inst_id].faq,
        loaded.config.institutions[inst_id].matching,
        vectors_dir=loaded.database_path.parent / "vectors",
        model=model,
        background=False,
    )
    return inst_id, matcher
