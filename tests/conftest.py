"""Shared fixtures: a running app on the local platform, built from the example config."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from handlers.config import load_config
from runtime.app import App

ROOT = Path(__file__).resolve().parent.parent


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
