"""Hot reload: the whole app on the local platform picks up edited files without a restart,
and a broken edit never goes live."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from watchfiles import Change

from handlers.config import load_config
from runtime.app import App
from runtime.cli import main
from runtime.reload import pid_path, reload, reloader

BUS_ENTRY = """
  - id: school-bus
    category: Организация учёбы
    questions:
      - Есть ли школьный автобус?
      - Как записаться на подвоз школьным автобусом?
    answer: |
      Школьный автобус ходит от посёлка Заречный в 7:40, обратно в 14:30 и 16:00.
"""

STAFF_CHAT = "-1001234567890"  # school-17's staff chat in config.example.yaml


async def ask(app: App, text: str, chat: str = "100") -> str:
    local = app.local_platform("school-17")
    before = len(local.messages(chat))
    await local.user_says(chat, text)
    await app.settle()
    return "\n".join(m.text for m in local.messages(chat)[before:])


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def real(path: Path) -> str:
    """The path as the watcher reports it: absolute, symlinks resolved."""
    return os.path.realpath(path)


def faq_path(config: Path) -> Path:
    return config.parent / "examples" / "faq" / "school.yaml"


async def test_an_edited_faq_answers_without_a_restart(local_app: App, example_config: Path):
    before = await ask(local_app, "Во сколько ходит школьный автобус?")
    assert "7:40" not in before

    faq = faq_path(example_config)
    faq.write_text(faq.read_text(encoding="utf-8") + BUS_ENTRY, encoding="utf-8")
    result = await reload(local_app)

    assert result.ok and "school-17" in result.swapped
    assert "7:40" in await ask(local_app, "Во сколько ходит школьный автобус?")
    # the rest of the FAQ still answers, and the other institution was not disturbed
    assert "Приём заявлений в 1 класс" in await ask(
        local_app, "Как записать ребенка в первый класс?"
    )


async def test_a_watch_event_on_the_faq_reloads_and_other_files_do_not(
    local_app: App, example_config: Path
):
    faq = faq_path(example_config)
    faq.write_text(faq.read_text(encoding="utf-8") + BUS_ENTRY, encoding="utf-8")
    r = reloader(local_app)

    unrelated = example_config.parent / "data" / "priemnaya.sqlite3-wal"
    assert await r.on_changes({(Change.modified, str(unrelated))}) is None
    assert "7:40" not in await ask(local_app, "Во сколько ходит школьный автобус?")

    result = await r.on_changes({(Change.modified, str(faq))})
    assert result is not None and result.ok
    assert "7:40" in await ask(local_app, "Во сколько ходит школьный автобус?")


async def test_a_broken_faq_keeps_the_old_answers_and_tells_log_and_staff(
    local_app: App, example_config: Path, caplog: pytest.LogCaptureFixture
):
    faq = faq_path(example_config)
    text = faq.read_text(encoding="utf-8")
    # the first entry loses its answer: line 9 of the file is "    answer: |"
    lines = text.splitlines()
    assert lines[8].strip() == "answer: |"
    broken = "\n".join([*lines[:8], "    answer:", *lines[10:]]) + "\n" + BUS_ENTRY
    faq.write_text(broken, encoding="utf-8")

    with caplog.at_level(logging.ERROR, logger="runtime.reload"):
        result = await reload(local_app)

    assert not result.ok
    problem = result.problems[0]
    assert problem.file.endswith("school.yaml") and problem.line is not None
    where = f"school.yaml:{problem.line}"
    assert any(where in r.getMessage() for r in caplog.records)
    # the old FAQ is still live: the old answer, and not the half-written new entry
    assert "Приём заявлений в 1 класс" in await ask(
        local_app, "Как записать ребенка в первый класс?"
    )
    assert "7:40" not in await ask(local_app, "Во сколько ходит школьный автобус?")
    # the staff chat of the institution whose FAQ broke got the file:line list
    staff = local_app.local_platform("school-17").messages(STAFF_CHAT)
    assert any(where in m.text and "не применены" in m.text for m in staff)
    # the polyclinic's FAQ is fine: its staff are not bothered
    assert local_app.local_platform("polyclinic-3").messages("-1009876543210") == []

    # the same broken file saved again is not posted twice; fixing it goes live
    await reload(local_app)
    await local_app.settle()
    assert len(local_app.local_platform("school-17").messages(STAFF_CHAT)) == len(staff)
    faq.write_text(text + BUS_ENTRY, encoding="utf-8")
    assert (await reload(local_app)).ok
    assert "7:40" in await ask(local_app, "Во сколько ходит школьный автобус?")


async def test_institutions_sharing_an_faq_share_one_index_and_an_edit_reaches_both(
    local_app: App, example_config: Path
):
    """A region's schools answer from one FAQ file: it is indexed once, a reload with
    nothing changed indexes nothing again, and an edit of the file reaches every school."""
    rewrite(example_config, "faq: examples/faq/polyclinic.yaml", "faq: examples/faq/school.yaml")
    assert (await reload(local_app)).ok
    school, clinic = local_app.institutions["school-17"], local_app.institutions["polyclinic-3"]
    assert school.matcher is clinic.matcher
    # one index, but each institution's answer names its own address
    assert "Примерная" in await ask(local_app, "Как записать ребенка в первый класс?")
    clinic_chat = local_app.local_platform("polyclinic-3")
    await clinic_chat.user_says("200", "Как записать ребенка в первый класс?")
    await local_app.settle()
    assert "Больничная" in clinic_chat.messages("200")[-1].text

    assert (await reload(local_app)).ok  # nothing changed: the index is kept
    assert local_app.institutions["polyclinic-3"].matcher is school.matcher

    faq = faq_path(example_config)
    faq.write_text(faq.read_text(encoding="utf-8") + BUS_ENTRY, encoding="utf-8")
    assert (await reload(local_app)).ok
    edited = local_app.institutions["school-17"].matcher
    assert edited is not school.matcher
    assert local_app.institutions["polyclinic-3"].matcher is edited
    assert "7:40" in await ask(local_app, "Во сколько ходит школьный автобус?")
    await clinic_chat.user_says("200", "Во сколько ходит школьный автобус?")
    await local_app.settle()
    assert "7:40" in clinic_chat.messages("200")[-1].text


async def test_an_edited_template_goes_live(local_app: App, example_config: Path):
    folder = example_config.parent / "tpl"
    folder.mkdir()
    (folder / "help.j2").write_text("Справка версии один.\n", encoding="utf-8")
    rewrite(
        example_config,
        "    faq: examples/faq/school.yaml\n",
        "    faq: examples/faq/school.yaml\n    templates: tpl/\n",
    )
    assert (await reload(local_app)).ok
    assert "версии один" in await ask(local_app, "/help")

    (folder / "help.j2").write_text("Справка версии два.\n", encoding="utf-8")
    assert reloader(local_app).relevant(folder / "help.j2")
    assert (await reload(local_app)).ok
    assert "версии два" in await ask(local_app, "/help")


async def test_reload_hooks_run_after_a_successful_swap(local_app: App):
    seen: list[object] = []

    async def hook(app: App) -> None:
        seen.append(app.institutions["school-17"])

    local_app.on_reload.append(hook)
    old = local_app.institutions["school-17"]
    assert (await reload(local_app)).ok
    assert seen == [local_app.institutions["school-17"]] and seen[0] is not old


@pytest.mark.slow
def test_the_reload_command_signals_the_running_process(example_config: Path, capsys):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys\n"
            "signal.signal(signal.SIGHUP, lambda *a: sys.exit(7))\n"
            "print('ready', flush=True)\n"
            "signal.pause()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        pid_file = pid_path(example_config.parent / "data" / "priemnaya.sqlite3")
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{child.pid}\n")
        assert main(["reload", "-c", str(example_config)]) == 0
        assert child.wait(timeout=10) == 7
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_reload_command_refuses_broken_files(example_config: Path, capsys):
    faq = faq_path(example_config)
    faq.write_text("entries: [\n", encoding="utf-8")
    assert main(["reload", "-c", str(example_config)]) == 1
    out = capsys.readouterr()
    assert "school.yaml:" in out.out and "nothing reloaded" in out.err


async def test_the_database_beside_the_config_never_triggers_a_reload(example_config: Path, clock):
    """SQLite's -wal changes on every write; with the database in the config's folder each
    write was a watch event that resolved every institution's paths."""
    folder = example_config.parent
    app = App(load_config(example_config), clock=clock, local=True, database=str(folder / "bot.db"))
    await app.start()
    try:
        watcher = reloader(app)
        found = watcher.watch_set()
        assert Path(real(folder)) in found.folders
        for name in ("bot.db", "bot.db-wal", "bot.db-shm", "bot.db-journal", "bot.pid"):
            assert not watcher.relevant(Path(real(folder)) / name)
        assert await watcher.on_changes([(Change.modified, str(folder / "bot.db-wal"))]) is None
        assert watcher.generation == 0
        # the config and the FAQs still count, in the spelling the watcher reports them
        config = real(example_config)
        assert watcher.relevant(config)
        assert watcher.relevant(real(faq_path(example_config)))
        result = await watcher.on_changes([(Change.modified, config)])
        assert result is not None and result.ok and watcher.generation == 1
    finally:
        await app.stop()


async def test_the_watched_paths_are_computed_once_per_config(local_app: App):
    watcher = reloader(local_app)
    first = watcher.watch_set()
    assert watcher.watch_set() is first  # every event reuses it
    assert (await reload(local_app)).ok  # a reload brings a new config: computed anew
    assert watcher.watch_set() is not first
    assert watcher.watch_set().files == first.files


async def test_an_urgent_phrase_added_by_a_reload_takes_effect(local_app: App, example_config):
    """The detector keeps what it learnt of each word (handlers/urgency.py, _options) for
    every setting: the same words met before the reload must meet the new phrase after it,
    and the phrase must not leak to an institution that did not add it."""
    text = "У крыльца школы лежит провод под напряжением"
    assert "112" not in await ask(local_app, text)

    rewrite(
        example_config,
        "    faq: examples/faq/school.yaml\n",
        "    faq: examples/faq/school.yaml\n    urgent: {add: [провод напряжение]}\n",
    )
    assert (await reload(local_app)).ok
    assert "112" in await ask(local_app, text, chat="101")

    polyclinic = local_app.local_platform("polyclinic-3")
    await polyclinic.user_says("102", text)
    await local_app.settle()
    assert "112" not in "\n".join(m.text for m in polyclinic.messages("102"))
