"""The admin commands with storage cells (runtime/cells.py): with ``storage.cells: 2`` the
school's data is in data/bot.sqlite3 and the polyclinic's in data/bot.cell1.sqlite3, and
``tickets``, ``report``, ``privacy export`` and ``announce status`` show an admin what they
show with one file. The citizen "500" writes to both institutions, so their data is in
both files."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from bots.core.model import User
from handlers.config import load_config
from runtime import cells
from runtime.cli import main
from runtime.region import Region
from runtime.reload import pid_path
from tests.app.two_institutions import institution_lines
from tests.shell_process import run_shell

ROOT = Path(__file__).resolve().parent.parent
CITIZEN = User("500", "Евлампия", "Квазимодова")
PHRASE = "Жуйвалович"  # appears nowhere but in the citizen's messages
QUESTIONS = {
    "school-17": f"мой сын подрался на перемене, прошу разобраться, {PHRASE}",
    "polyclinic-3": f"абвгд ёжз {PHRASE}",
}
LONG = "3650d"


def write_config(tmp_path: Path, cells_line: str = "cells: 2", name: str = "config.yaml") -> Path:
    """Two institutions in two cells (as tests/app/test_storage_cells.py writes them)."""
    if not (tmp_path / "faq").exists():
        shutil.copytree(ROOT / "examples/faq", tmp_path / "faq")
    lines = [f"storage: {{path: data/bot.sqlite3, {cells_line}}}", "timezone: Europe/Moscow"]
    lines.append("institutions:")
    for inst, faq, token, staff_chat in (
        ("school-17", "school", "710001:school-token-abcdef", -1001),
        ("polyclinic-3", "polyclinic", "720002:clinic-token-abcdef", -1002),
    ):
        lines += institution_lines(inst, faq, f'{{token: "{token}"}}', staff_chat, 1111)
        lines += [
            "    announcements:",
            "      - id: open-day",
            "        at: 2036-09-01T15:00:00+03:00",
            f'        text: "День открытых дверей: {inst}"',
        ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def citizen_says(region: Region, institution: str, text: str) -> None:
    await region.local_platform(institution).user_says(CITIZEN.id, text, user=CITIZEN)
    await region.settle()


@pytest.fixture
async def config(tmp_path: Path) -> Path:
    """The citizen asked each institution what its FAQ cannot answer: a ticket in each."""
    path = write_config(tmp_path)
    loaded = load_config(path)
    assert [cells.cell_of(loaded, i) for i in ("school-17", "polyclinic-3")] == [0, 1]
    region = Region(loaded, local=True)
    await region.start()
    try:
        for institution, question in QUESTIONS.items():
            await citizen_says(region, institution, question)
    finally:
        await region.stop()
    return path


def cli(args: list[str]) -> int:
    return main(args)


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = await asyncio.to_thread(cli, list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def files(config: Path) -> list[Path]:
    loaded = load_config(config, offline=True)
    return [cells.cell_path(loaded, 0), cells.cell_path(loaded, 1)]


async def test_tickets_lists_every_cells_tickets_in_one_order(config: Path, capsys) -> None:
    out = await run(capsys, "tickets", "list", "-c", str(config))
    rows = [line.split()[0] for line in out.splitlines()[1:]]
    assert rows == ["school-17", "polyclinic-3"], out  # oldest first over both files
    assert PHRASE in out
    one = await run(capsys, "tickets", "list", "-c", str(config), "-i", "polyclinic-3")
    assert [line.split()[0] for line in one.splitlines()[1:]] == ["polyclinic-3"]
    limited = await run(capsys, "tickets", "list", "-c", str(config), "--limit", "1")
    assert [line.split()[0] for line in limited.splitlines()[1:]] == ["school-17"]


async def test_report_stats_shows_each_institution_from_its_cell(config: Path, capsys) -> None:
    out = await run(
        capsys, "report", "stats", "-c", str(config), "--format", "json", "--since", LONG
    )
    stats = json.loads(out)
    assert [s["institution"] for s in stats] == ["school-17", "polyclinic-3"]  # config order
    for s in stats:
        assert (s["questions"], s["escalated"], s["tickets"]) == (1, 1, 1), s
    unanswered = await run(
        capsys, "report", "unanswered", "-c", str(config), "-i", "polyclinic-3", "--since", LONG
    )
    assert "polyclinic-3: 1 unanswered question(s)" in unanswered
    page = config.parent / "report.html"
    await run(capsys, "report", "html", "-c", str(config), "-o", str(page), "--since", LONG)
    html = page.read_text(encoding="utf-8")
    assert all(question in html for question in QUESTIONS.values())  # both cells' clusters


async def test_export_finds_the_citizen_in_both_cells_and_forget_empties_both(
    config: Path, capsys
) -> None:
    out = await run(capsys, "privacy", "export", "-c", str(config), "--citizen", "local:500")
    tables = json.loads(out)["tables"]
    assert {row["institution"] for row in tables["citizens"]} == set(QUESTIONS)
    asked = {row["text"] for row in tables["message_log"] if row["direction"] == "in"}
    assert asked == set(QUESTIONS.values())
    assert {row["institution"] for row in tables["tickets"]} == set(QUESTIONS)
    for path in files(config):
        assert PHRASE.encode() in path.read_bytes() + wal(path).read_bytes(), path

    # /forget in each institution's bot: each cell's app erases what its file holds
    region = Region(load_config(config), local=True)
    await region.start()
    try:
        for institution in QUESTIONS:
            await citizen_says(region, institution, "/forget")
            local = region.local_platform(institution)
            await local.press(CITIZEN.id, local.last(CITIZEN.id).id, "Удалить", user=CITIZEN)
            await region.settle()
            assert "удалены" in local.last(CITIZEN.id).text
    finally:
        await region.stop()
    for path in files(config):
        stored = path.read_bytes() + wal(path).read_bytes()
        assert PHRASE.encode() not in stored and CITIZEN.first_name.encode() not in stored, path
        with sqlite3.connect(path) as conn:
            left = conn.execute(
                "SELECT count(*) FROM message_log WHERE user_id=?", (CITIZEN.id,)
            ).fetchone()
        assert left == (0,), path
    out = await run(capsys, "privacy", "export", "-c", str(config), "--citizen", "local:500")
    assert "message_log" not in json.loads(out)["tables"]


def wal(path: Path) -> Path:
    found = path.with_name(path.name + "-wal")
    return found if found.exists() else Path("/dev/null")


async def test_another_cell_count_is_refused_with_the_message(
    config: Path, tmp_path: Path, capsys
) -> None:
    three = write_config(tmp_path, "cells: 3", name="three.yaml")
    for args in (
        ["tickets", "list"],
        ["report", "stats"],
        ["privacy", "export", "--citizen", "local:500"],
        ["announce", "status"],
    ):
        code = await asyncio.to_thread(cli, [*args, "-c", str(three)])
        captured = capsys.readouterr()
        assert code == 1, args
        assert "storage.cells: 3" in captured.err and "Traceback" not in captured.err, args
        assert captured.out == "", args


async def test_reads_create_no_cell_file(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    assert "no tickets" in await run(capsys, "tickets", "list", "-c", str(config))
    out = await run(capsys, "report", "stats", "-c", str(config), "--format", "json")
    assert [s["questions"] for s in json.loads(out)] == [0, 0]
    assert not any(path.exists() for path in files(config))


def test_the_real_shell_talks_to_the_institutions_cell(config: Path) -> None:
    """``shell --real`` runs every cell's app: the polyclinic's answer and log are in its
    cell's file, and nothing of it is in the school's."""
    done = run_shell(config, "как вызвать врача на дом\n", args=["-i", "polyclinic-3", "--real"])
    assert done.returncode == 0, done.stderr
    assert "Вызвать врача на дом" in done.stdout
    school, clinic = files(config)
    assert logged(clinic).count("как вызвать врача на дом") == 1
    assert "как вызвать врача на дом" not in logged(school)


async def test_announce_queues_in_the_institutions_cell_and_status_shows_all(
    tmp_path: Path, capsys
) -> None:
    """With cells: 4 both institutions are in cells 2 and 3: the running process's first
    app (cell 2's) writes the pid file, and there is no cell 0 file at all."""
    config = write_config(tmp_path, "cells: 4")
    loaded = load_config(config)
    assert [cells.cell_of(loaded, i) for i in ("school-17", "polyclinic-3")] == [2, 3]
    assert cells.pid_database(loaded) == cells.cell_path(loaded, 2)
    pid_path(cells.pid_database(loaded)).parent.mkdir(parents=True)
    pid_path(cells.pid_database(loaded)).write_text(f"{os.getpid()}\n")  # as `run` does
    for institution in ("school-17", "polyclinic-3"):
        out = await run(
            capsys, "announce", "send", "-c", str(config), "--institution", institution,
            "--no-wait", "open-day",
        )  # fmt: skip
        assert f"queued: {institution}/open-day" in out
    for institution, index in (("school-17", 2), ("polyclinic-3", 3)):
        with sqlite3.connect(cells.cell_path(loaded, index)) as conn:
            queued = conn.execute("SELECT institution FROM broadcasts").fetchall()
        assert queued == [(institution,)]
    status = await run(capsys, "announce", "status", "-c", str(config))
    lines = status.splitlines()
    assert [line.split()[1] for line in lines] == ["polyclinic-3/open-day", "school-17/open-day"]
    assert not cells.cell_path(loaded, 0).exists()


def logged(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM message_log")]
