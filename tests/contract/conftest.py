"""Parametrizes the Platform contract suite over every ``harness_*.py`` in this folder."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.harness import Harness

_HERE = Path(__file__).parent
HARNESS_MODULES = sorted(p.stem for p in _HERE.glob("harness_*.py"))


@pytest.fixture(params=HARNESS_MODULES, ids=lambda m: m.removeprefix("harness_"))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    module = importlib.import_module(f"tests.contract.{request.param}")
    async with module.make_harness(tmp_path) as made:
        yield made
