"""The open-file limit at start: polling bots need a socket each (and more under a backlog);
``run`` raises the soft limit when the hard one allows and otherwise tells the
administrator, in Russian, which number to set."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.config import load_config
from runtime.limits import ensure_open_files, needed

ROOT = Path(__file__).resolve().parent.parent


def region(folder: Path, polling: int, webhook: int = 0, shared: int = 0) -> Path:
    """A config of ``polling`` + ``webhook`` bots, plus ``shared`` institutions on the
    first polling bot's token; the Bot API server is a closed port of 127.0.0.1."""
    lines = ["storage: {path: bot.sqlite3}", "timezone: Europe/Moscow"]
    if webhook:
        lines.append('server: {host: 127.0.0.1, port: 0, public_url: "https://bot.example"}')
    lines.append("institutions:")
    modes = ["polling"] * polling + ["webhook"] * webhook
    tokens = [f"{500000 + n}:limits-token-{n:05d}" for n in range(len(modes))]
    modes += ["polling"] * shared
    tokens += [tokens[0]] * shared
    for n, (mode, token) in enumerate(zip(modes, tokens, strict=True)):
        lines += [
            f"  inst-{n}:",
            f"    name: Школа № {n}",
            f"    faq: {ROOT / 'examples/faq/school.yaml'}",
            f'    telegram: {{token: "{token}", api_server: "http://127.0.0.1:9", mode: {mode}}}',
        ]
    config = folder / "config.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def test_polling_bots_need_sockets_webhooks_and_shared_tokens_hardly_any(tmp_path: Path):
    few = ensure_open_files(
        load_config(region(tmp_path, 2, webhook=3, shared=5)),
        get=lambda _: (1024, 1024),
        set_=lambda *_: pytest.fail("nothing to raise"),
    )
    assert (few.polling, few.webhook) == (2, 3)  # a shared token polls once
    assert few.need == needed(2, 3) and few.enough
    assert needed(1000, 0) > 2 * needed(0, 1000)  # a webhook holds no long poll


def test_a_short_soft_limit_is_raised_to_the_hard_one(tmp_path: Path, caplog):
    asked: list[tuple[int, int]] = []
    result = ensure_open_files(
        load_config(region(tmp_path, 40)),
        get=lambda _: (128, 65536),
        set_=lambda _, limits: asked.append(limits),
    )
    assert asked == [(65536, 65536)]
    assert result.now == 65536 and result.enough
    assert "raised from 128 to 65536" in caplog.text


def test_a_short_hard_limit_is_explained_in_russian(tmp_path: Path, caplog):
    caplog.set_level(logging.ERROR)
    result = ensure_open_files(
        load_config(region(tmp_path, 40)),
        get=lambda _: (128, 128),
        set_=lambda *_: pytest.fail("the hard limit is the soft one"),
    )
    assert not result.enough
    advice = -(-2 * result.need // 1000) * 1000
    assert advice >= result.need
    assert f"LimitNOFILE={advice}" in caplog.text
    assert "40 ботам с опросом" in caplog.text and "mode: webhook" in caplog.text


@pytest.mark.slow
def test_run_says_what_to_raise_when_the_limit_is_short(tmp_path: Path):
    """``priemnaya run`` with 40 polling bots under a hard limit of 128 open files."""
    config = region(tmp_path, 40)

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "run", "-c", str(config)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=low_limit,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:  # the warning comes before anything is started
            lines.append(line)
            if "LimitNOFILE" in line or "running" in line:
                break
        assert "Мало открытых файлов: разрешено 128" in "".join(lines), "".join(lines)
    finally:
        process.kill()  # its stop is tested elsewhere
        process.wait()
