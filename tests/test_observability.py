"""/metrics and /healthz over HTTP, and logs that never show a token."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from bots.core.clock import ManualClock
from handlers.config import load_config
from runtime import logs, observability
from runtime.app import App
from runtime.reload import pid_path, reloader
from tests.test_reload import rewrite


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


async def scrape(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return samples(await response.text())


async def test_metrics_count_what_citizens_did(local_app: App):
    web_app = web.Application()
    observability.add_routes(local_app, web_app)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            before = await scrape(session, url)
            local = local_app.local_platform("school-17")
            await local.user_says("100", "Как записать ребенка в первый класс?")
            await local.user_says("100", "абвгд ёжз")
            await local_app.settle()
            after = await scrape(session, url)
    finally:
        await server.close()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("priemnaya_updates_total", institution="school-17", platform="local") == 2
    assert delta("priemnaya_faq_outcomes_total", institution="school-17", outcome="answer") == 1
    assert delta("priemnaya_replies_total", institution="school-17", platform="local") >= 2
    assert after[("priemnaya_outbox_pending", (("platform", "local"),))] == 0
    assert after[("priemnaya_institutions", ())] == 2


async def test_health_is_503_when_a_check_fails(local_app: App):
    web_app = web.Application()
    observability.add_routes(local_app, web_app)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/healthz"))
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                body = await response.json()
                assert response.status == 200, body
                assert body["status"] == "ok" and body["checks"]["database"] is True
            observability.HEALTH_CHECKS["scheduler"] = lambda app: False
            try:
                async with session.get(url) as response:
                    body = await response.json()
                    assert response.status == 503
                    assert body["checks"]["scheduler"] is False
            finally:
                del observability.HEALTH_CHECKS["scheduler"]
    finally:
        await server.close()


async def test_a_real_run_serves_health_writes_its_pid_and_reloads_on_sighup(
    example_config: Path,
):
    rewrite(
        example_config, "timezone: Europe/Moscow\n", "timezone: Europe/Moscow\nserver: {port: 0}\n"
    )
    app = App(load_config(example_config), clock=ManualClock())
    await app.start()
    try:
        assert app._runner is not None
        host, port = app._runner.addresses[0][:2]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
        pid_file = pid_path(app.loaded.database_path)
        assert pid_file.read_text().strip() == str(os.getpid())

        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN)
        r = reloader(app)
        generation = r.generation
        old = app.institutions["school-17"]
        os.kill(os.getpid(), signal.SIGHUP)
        async with r.changed:
            await asyncio.wait_for(r.changed.wait_for(lambda: r.generation > generation), 10)
        assert app.institutions["school-17"] is not old
    finally:
        await app.stop()
    assert not pid_path(app.loaded.database_path).exists()


TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
VK_TOKEN = "vk1.a.Zx9-secretvalueofthecommunitytoken_abcdefghijklmnopqrstu"


def test_tokens_never_reach_the_log():
    logs.add_secrets(["plain-configured-secret-42"])
    stream = io.StringIO()
    logs.setup("INFO", "json", stream=stream)
    log = logging.getLogger("priemnaya.test")
    try:
        log.warning("POST https://api.telegram.org/bot%s/sendMessage failed", TOKEN)
        log.warning("vk error: access_token=%s&v=5.199", VK_TOKEN)
        log.warning("config says %s", "plain-configured-secret-42")
        try:
            raise RuntimeError(f"ClientError for https://api.telegram.org/bot{TOKEN}/getUpdates")
        except RuntimeError:
            log.exception("polling failed")
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_priemnaya", False)]:
            root.removeHandler(handler)
    out = stream.getvalue()
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 4 and records[0]["level"] == "WARNING"
    assert "/bot***/sendMessage" in records[0]["message"]
    assert "RuntimeError" in records[3]["exc"]
    for secret in (TOKEN, TOKEN.split(":")[1], VK_TOKEN, "plain-configured-secret-42"):
        assert secret not in out
