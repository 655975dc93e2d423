"""Running the product as a real process, as an operator would: the kill tests start
``python -m runtime.cli run``, kill it with SIGKILL at a chosen moment and start it again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def priemnaya_run(config: Path, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m runtime.cli run -c CONFIG`` with the test's environment (the tokens), its
    output appended to ``log``; killed at the end if still running."""
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime.cli",
            "--log-level",
            "INFO",
            "run",
            "-c",
            str(config),
            cwd=ROOT,
            env=dict(os.environ),
            stdout=sink,
            stderr=sink,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def kill_9(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()


def tail(log: Path) -> str:
    """The end of the bot's log, for an assertion message."""
    return log.read_text(encoding="utf-8", errors="replace")[-3000:]
