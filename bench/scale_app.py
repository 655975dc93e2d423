"""The app side of bench/scale.py: ``priemnaya run`` (the same checks at start, the same App,
the same signal handling, runtime/cli/run.py:serve) with Telegram's sending pace scaled
by a factor, and optionally profiled.

``python bench/scale_app.py CONFIG RATE_SCALE [PROFILE_FILE]``
"""

from __future__ import annotations

import cProfile
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.telegram import TelegramRates  # noqa: E402
from runtime import logs  # noqa: E402
from runtime.cli.common import load_or_report  # noqa: E402
from runtime.cli.run import serve  # noqa: E402


def main(argv: list[str]) -> int:
    config, scale = argv[0], float(argv[1])
    logs.setup("WARNING", "human")
    logging.getLogger("runtime.heap").setLevel(logging.INFO)  # the freeze's pause, printed
    loaded = load_or_report(config, offline=False)
    if loaded is None:
        return 1
    extra = {"telegram": {"rates": TelegramRates().scaled(scale)}}
    if len(argv) > 2:
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(serve, loaded, services_extra=extra)
        finally:
            profiler.dump_stats(argv[2])
    return serve(loaded, services_extra=extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
