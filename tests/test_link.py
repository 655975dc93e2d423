"""`priemnaya link`: the deep links and printable QR codes of a shared bot, decoded back
with a QR reader (zxing-cpp), and `check` on shared bots (a shared token is fine, a shared
staff chat is not)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from runtime.cli import main
from runtime.cli.check import check_config
from tests.emulators.telegram import TelegramEmulator
from tests.test_shared_bot_e2e import DISTRICT, write_config

ROOT = Path(__file__).resolve().parent.parent


def decoded(path: Path) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(path))]


def named(config: Path, username: str = "kursk_district_bot") -> Path:
    text = config.read_text(encoding="utf-8")
    text = text.replace('api_server: "', f'username: {username}, api_server: "')
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


async def test_link_prints_the_deep_link_and_its_qr_decodes_to_it(
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = named(write_config(tmp_path, emulator, monkeypatch))
    png = tmp_path / "qr" / "school.png"
    assert (
        await asyncio.to_thread(
            main, ["link", "-c", str(config), "-i", "school-17", "--qr", str(png)]
        )
        == 0
    )
    link = "https://t.me/kursk_district_bot?start=school-17"
    assert f"school-17: telegram: {link}" in capsys.readouterr().out
    assert decoded(png) == [link]
    svg = tmp_path / "clinic.svg"
    assert (
        await asyncio.to_thread(
            main, ["link", "-c", str(config), "-i", "polyclinic-3", "--qr", str(svg)]
        )
        == 0
    )
    assert svg.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


async def test_link_all_writes_one_qr_per_institution(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = named(write_config(tmp_path, emulator, monkeypatch))
    folder = tmp_path / "print"
    assert (
        await asyncio.to_thread(main, ["link", "-c", str(config), "--all", "--qr-dir", str(folder)])
        == 0
    )
    assert sorted(p.name for p in folder.iterdir()) == ["polyclinic-3.png", "school-17.png"]
    assert decoded(folder / "polyclinic-3.png") == [
        "https://t.me/kursk_district_bot?start=polyclinic-3"
    ]


async def test_link_online_asks_getme_for_the_username(
    tmp_path: Path,
    emulator: TelegramEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)  # no username in the config
    png = tmp_path / "school.png"
    args = ["link", "-c", str(config), "-i", "school-17", "--qr", str(png)]
    assert await asyncio.to_thread(main, args) == 1
    assert "username is unknown" in capsys.readouterr().out
    assert not png.exists()
    assert await asyncio.to_thread(main, [*args, "--online"]) == 0
    username = emulator.bot(DISTRICT).username
    assert decoded(png) == [f"https://t.me/{username}?start=school-17"]


async def test_check_accepts_a_shared_token_and_refuses_a_shared_staff_chat(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    assert check_config(str(config)) == ([], [])
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("id: -1002}", "id: -1001}"), encoding="utf-8")
    problems, _ = check_config(str(config))
    assert [p.message for p in problems] == [
        "the staff chat is also 'school-17''s: each institution needs its own staff chat,"
        " or staff would see the other's tickets"
    ]
    assert problems[0].line is not None
