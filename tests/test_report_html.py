"""`priemnaya report html`: one self-contained page with charts, opened in a real browser.

A week of a school's bot is played on the local platform (answers, clarifications,
escalations, staff replies in time and late, "Не помогло"), the CLI writes the page, and
headless Chromium (the distribution's package) renders it to a screenshot whose pixels are
checked: the page is not blank and the charts' colours are on it. Without Chromium the
browser test skips with the reason, unless PRIEMNAYA_REQUIRE_CHROMIUM=1 (set by .ci/run)
makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.core.clock import ManualClock
from bots.core.model import ChatKind, User
from bots.local import LocalMessage
from handlers.config import load_config
from runtime.app import App
from runtime.cli import main

STAFF_CHAT = "-1001234567890"
STAFF = User("1111", "Анна", "Иванова")
UNCOVERED = [
    "мой сын подрался на перемене, прошу разобраться",
    "у ребёнка в раздевалке украли куртку, что делать",
    "сына обижают одноклассники, к кому обратиться",
    "ребенок потерял шапку в раздевалке, прошу разобраться",
    "дочку толкнули на перемене, прошу разобраться",
    "учитель кричит на детей, хочу пожаловаться",
    "кто отвечает за раздевалку, опять пропала куртка",
]
ANSWERED = "Как записать ребенка в первый класс?"
CLARIFIED = "питание"
#: the charts' colours (handlers/reports/page.py): answered, escalated, in time
GREEN, RED = (0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def play_a_week(config: Path) -> None:
    start = (datetime.now(UTC) - timedelta(days=9)).replace(hour=7, minute=0, microsecond=0)
    clock = ManualClock(start)
    app = App(load_config(config), clock=clock, local=True)
    await app.start()
    try:
        local = app.local_platform("school-17")
        local.open_chat(STAFF_CHAT, ChatKind.GROUP)

        async def citizen(chat: str, text: str) -> LocalMessage:
            await local.user_says(chat, text, user=User(chat, "Мария", "Петрова"))
            await app.settle()
            return local.last(chat)

        async def staff_reply(card: LocalMessage) -> None:
            await local.user_says(
                STAFF_CHAT, "Разберёмся, спасибо.", user=STAFF, reply_to=card.id,
                kind=ChatKind.GROUP,
            )  # fmt: skip
            await app.settle()

        late: list[LocalMessage] = []
        for day, question in enumerate(UNCOVERED):
            clock.set(start + timedelta(days=day))
            chat = f"7{day}0"
            for n in range(day % 3 + 1):
                answer = await citizen(f"{chat}{n}", ANSWERED)
            if day % 2 == 0:
                label = next(lb for row in answer.buttons for lb, _ in row if "Нет" in lb)
                await local.press(answer.chat_id, answer.id, label, user=User(answer.chat_id))
                await app.settle()
            await citizen(chat, CLARIFIED)
            await citizen(chat + "9", question)
            card = next(m for m in local.messages(STAFF_CHAT) if question in m.text)
            if day % 2 == 0:
                clock.set(clock.now() + timedelta(minutes=30))
                await staff_reply(card)
            elif day != len(UNCOVERED) - 2:
                late.append(card)
        clock.set(start + timedelta(days=8))
        for card in late:  # days later: past the 8 working hours
            await staff_reply(card)
    finally:
        await app.stop()


@pytest.fixture
def report_page(example_config: Path, tmp_path: Path) -> str:
    asyncio.run(play_a_week(example_config))
    out = tmp_path / "report.html"
    code = main(
        ["report", "html", "-c", str(example_config), "-i", "school-17", "--since", "14 дней",
         "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    return out.read_text(encoding="utf-8")


def test_the_page_holds_every_part_and_needs_no_network(report_page: str) -> None:
    page = report_page
    assert page.count('<svg class="chart"') == 2
    assert page.count('class="bar"') >= 14
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "url(" not in page and "@import" not in page
    # the unanswered questions, grouped, with their citizens' words as examples
    assert "Что спрашивают, а в FAQ ответа нет" in page
    assert "раздевалк" in page
    # the entry whose answer did not help, with its count
    row = re.search(
        r"<code>first-grade-enrollment</code></td><td>[^<]+</td><td class=\"n\">(\d+)", page
    )
    assert row is not None and int(row.group(1)) == 4
    # first response against the deadline: in time, late and overdue all appear
    assert "ответ в срок: 1" in page and "ответ с опозданием: 1" in page
    assert "срок прошёл, ответа нет: 1" in page


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, kind = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if tag == b"IHDR":
            width, height, depth, kind = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and kind in (2, 6), (depth, kind)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    step = 3 if kind == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * step
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind_of_filter, row = line[0], bytearray(line[1:])
        for i in range(stride):
            left = row[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind_of_filter == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind_of_filter == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind_of_filter == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind_of_filter == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                row[i] = (row[i] + guess) & 0xFF
        pixels.extend(
            (row[x], row[x + 1], row[x + 2]) for x in range(0, stride, step)
        )  # fmt: skip
        previous = row
    return width, height, pixels


def test_headless_chromium_renders_the_charts(report_page: str, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("PRIEMNAYA_REQUIRE_CHROMIUM"):
            pytest.fail("PRIEMNAYA_REQUIRE_CHROMIUM is set but no chromium is installed")
        pytest.skip("no chromium here (Debian: apt-get install chromium); CI requires it")
    page = tmp_path / "page.html"
    page.write_text(report_page, encoding="utf-8")
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1000,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert shot.exists(), done.stderr[-2000:]
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 1400)
    colours = Counter(pixels)
    _background, most = colours.most_common(1)[0]
    assert most < 0.95 * len(pixels), "the screenshot is one colour: a blank page"
    assert len(colours) > 50  # text, boxes and bars, not a plain fill
    # the bars of both charts are drawn: the answered/in-time green and the escalated red
    assert colours[GREEN] > 200 and colours[RED] > 50, colours.most_common(12)
