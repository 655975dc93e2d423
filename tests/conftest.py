"""Shared fixtures: a running app on the local platform, built from the example config."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from handlers.config import load_config
from handlers.faq.semantic import index as semantic_index
from runtime.app import App

ROOT = Path(__file__).resolve().parent.parent

# FAQ vectors are built before a matcher is returned, so no test depends on how fast the
# background build was; one cache folder serves every temporary app of the run (and the next).
semantic_index.BUILD_IN_BACKGROUND = False
os.environ.setdefault(
    semantic_index.CACHE_ENV, str(Path(tempfile.gettempdir()) / "priemnaya-test-vectors")
)


@pytest.fixture
def example_config(tmp_path: Path) -> Path:
    """A copy of config.example.yaml and its FAQs in tmp_path (tests may edit it)."""
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "config.yaml")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path / "config.yaml"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def local_app(example_config: Path, clock: ManualClock) -> AsyncIterator[App]:
    app = App(load_config(example_config), clock=clock, local=True)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
