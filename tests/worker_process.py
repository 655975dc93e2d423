"""One worker process for tests/test_workers.py and bench/workers.py:
``python -m tests.worker_process CONFIG WORKER_ID LEASE_SECONDS [LOG_LEVEL]``.

It is ``priemnaya run -c CONFIG --worker-id ID --lease S`` (the same App, the same signal
handling) with Telegram's sending pace scaled up a hundredfold: at the real 30 messages/s
per bot a broadcast to thousands would measure the limiter, not the sharing of work, and the
adapter's pacing has tests of its own."""

from __future__ import annotations

import asyncio
import sys

from bots.telegram import TelegramRates
from handlers.config import load_config
from runtime import logs
from runtime.app import App
from runtime.cli.run import _serve

RATE_SCALE = 100.0


def main(argv: list[str]) -> int:
    config, worker_id, lease = argv[0], argv[1], float(argv[2])
    logs.setup(argv[3] if len(argv) > 3 else "INFO", "human")
    app = App(
        load_config(config),
        worker_id=worker_id,
        lease_seconds=lease,
        services_extra={
            "telegram": {"rates": TelegramRates().scaled(RATE_SCALE), "poll_timeout": 5}
        },
    )
    return asyncio.run(_serve(app))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
