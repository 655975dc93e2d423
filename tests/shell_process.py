"""`priemnaya shell` as a process, fed lines on stdin, with chosen variables taken out of
its environment (the tokens, to show that it needs none)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_shell(
    config: Path, lines: str, *, without: Iterable[str] = (), args: Iterable[str] = ()
) -> subprocess.CompletedProcess[str]:
    drop = set(without)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "shell", "-c", str(config), *args],
        input=lines,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
