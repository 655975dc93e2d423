"""What several commands share: loading the config with problems printed as file:line."""

from __future__ import annotations

import argparse
import sys

from bots.core.yamlfile import ProblemsError
from handlers.config import LoadedConfig, load_config


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", required=True, metavar="CONFIG", help="the config YAML file"
    )


def load_or_report(path: str) -> LoadedConfig | None:
    """The loaded config, or None after printing every problem to stderr."""
    try:
        return load_config(path)
    except ProblemsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


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
