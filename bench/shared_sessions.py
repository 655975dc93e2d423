"""Benchmark: what N accounts of one platform (VK, OK or MAX) cost to start, the way the app
builds them (the platform's ``create_group``, then ``start``), over HTTPS.

The platform's emulator from tests/emulators/ serves HTTPS on 127.0.0.1 with a throwaway
certificate appended to a copy of certifi's bundle; the clients trust that copy
(``SSL_CERT_FILE`` for aiohttp, ``REQUESTS_CA_BUNDLE`` for requests), so every client does
the TLS work it does in production, with a production-sized CA bundle. Every account
long-polls (VK, MAX) or polls (OK, every 60 s); the start ends when the emulator saw a poll
from every account. Then, after 16 s without calls (past aiohttp's keep-alive, as between
two answers of a small institution), every account sends one message, ten at a time. Prints, for the one platform named: start time
(wall and CPU), RSS before and after, RSS per account, the client TCP connections open to
the emulator, the new connections (TCP and TLS handshakes) the sends opened and the CPU
they took, and how long ``stop`` took. The emulator runs in the same process, so its side of every TLS
connection is in the figures too (the same before and after a change).

Run one platform per process, e.g. ``python bench/shared_sessions.py vk 1000``; for the
figures before a change, run a copy of this file with the old tree on PYTHONPATH.

Measured at N = 1,000 (2 cores shared with other work, load 5-10), a session per account
-> shared sessions: VK start 430 s -> 56 s wall, 161 s -> 27 s CPU, 2,143 -> 398 KB per
community, 2,000 -> 1,006 connections (one SSL context per CA bundle instead of one per
connection). OK and MAX start the same (aiohttp already shared one SSL context; every
account's start-up call or long poll holds a connection either way), but after 16 s idle
1,000 sends opened 910 (OK) and 1,000 (MAX) new connections before, 10 after.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.emulators.tls import self_signed

FOLDER = Path(tempfile.mkdtemp(prefix="bench-tls-"))


def make_trust() -> tuple[Path, Path, Path]:
    """(server certificate, its key, a CA bundle: certifi's plus that certificate)."""
    import certifi

    cert, key = self_signed(FOLDER)
    bundle = FOLDER / "bundle.pem"
    shutil.copyfile(certifi.where(), bundle)
    with bundle.open("a") as out:
        out.write("\n" + cert.read_text())
    return cert, key, bundle


# the trust must be in place before aiohttp builds its default SSL context at import
CERT, KEY, BUNDLE = make_trust()
os.environ["SSL_CERT_FILE"] = str(BUNDLE)
os.environ["REQUESTS_CA_BUNDLE"] = str(BUNDLE)

import asyncio  # noqa: E402
import ssl  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from aiohttp import web  # noqa: E402

from bots.core.adapters import AccountSpec, Services  # noqa: E402
from bots.core.clock import SystemClock  # noqa: E402
from bots.core.model import ChatRef, Reply  # noqa: E402
from bots.core.payloads import MemoryPayloadStore  # noqa: E402
from bots.platforms import PLATFORMS  # noqa: E402
from tests.contract.harness_vk import MemoryState  # noqa: E402
from tests.emulators.max import MaxEmulator  # noqa: E402
from tests.emulators.ok import OkEmulator  # noqa: E402
from tests.emulators.vk import VkEmulator  # noqa: E402

#: (host, port) of the client connection of every request the emulator answered
PEERS: set[Any] = set()
#: the same for the sends
SEND_PEERS: set[Any] = set()
#: seconds without calls before the sends: longer than aiohttp's 15 s keep-alive, as
#: between two answers of one small institution
IDLE = 16.0


@web.middleware
async def note_peers(request: web.Request, handler: Any) -> web.StreamResponse:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    PEERS.add(peer)
    if request.method == "POST" and "messages" in request.path:
        SEND_PEERS.add(peer)
    return await handler(request)


def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    return context


class TlsVk(VkEmulator):
    async def _serve(self, app: web.Application, **options: Any) -> str:
        app.middlewares.append(note_peers)
        return await super()._serve(app, **{**options, "tls": server_tls()})


class TlsMax(MaxEmulator):
    async def _serve(self, app: web.Application, **options: Any) -> str:
        app.middlewares.append(note_peers)
        return await super()._serve(app, **options)


class TlsOk(OkEmulator):
    async def start(self) -> str:
        app = web.Application(middlewares=[note_peers])
        app.router.add_route("*", "/graph/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_tls())
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"https://{host}:{port}/graph/"
        return self.url


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def client_connections(port: int) -> int:
    """Established TCP connections from this host to ``port`` (the clients' side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


Setup = tuple[Any, list[AccountSpec], Callable[[], bool], list[ChatRef]]


async def accounts(kind: str, n: int) -> Setup:
    """The started emulator, N account specs, "every account has polled", and per account
    a chat to send to."""
    model = PLATFORMS[kind].account
    if kind == "vk":
        vk = await TlsVk().start()
        specs = []
        for i in range(n):
            vk.add_community(1000 + i, f"vk-token-{i}")
            account = {"token": f"vk-token-{i}", "group_id": 1000 + i, "api_url": vk.api_url}
            specs.append(AccountSpec(f"i{i}", model.model_validate(account)))
        chats = [ChatRef("vk", "101")] * n
        return vk, specs, lambda: all(c.polls for c in vk.communities.values()), chats
    if kind == "ok":
        ok = TlsOk()
        await ok.start()
        specs = []
        for i in range(n):
            ok.add_group(f"ok-token-{i}", 1000 + i)
            account = {"token": f"ok-token-{i}", "api_url": ok.url, "mode": "polling"}
            specs.append(AccountSpec(f"i{i}", model.model_validate(account)))
        chats = [ChatRef("ok", ok.dialog(f"ok-token-{i}", 101).chat_id) for i in range(n)]
        return ok, specs, lambda: all(g.polls for g in ok.groups.values()), chats
    mx = TlsMax(tls=server_tls())
    await mx.start()
    specs = []
    for i in range(n):
        mx.add_bot(f"max-token-{i}", 1000 + i)
        account = {"token": f"max-token-{i}", "api_url": mx.url}
        specs.append(AccountSpec(f"i{i}", model.model_validate(account)))
    chats = [ChatRef("max", str(mx.dialog(f"max-token-{i}", 101).chat_id)) for i in range(n)]
    return mx, specs, lambda: all(b.polls for b in mx.bots.values()), chats


async def main(kind: str, n: int) -> None:
    emulator, specs, all_polled, chats = await accounts(kind, n)
    port = int(emulator.url.split(":")[2].split("/")[0])
    services = Services(
        payloads=MemoryPayloadStore(),
        state=MemoryState(),
        clock=SystemClock(),
        extra={"ok": {"poll_interval": 60.0}, "max": {"poll_timeout": 30}},
    )

    async def on_event(event: Any) -> None:
        return None

    before = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    group = await PLATFORMS[kind].create_group(specs, services)
    await group.start(on_event)
    await emulator.wait_until(all_polled, timeout=3600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = rss_mb()
    connections = client_connections(port)
    await asyncio.sleep(IDLE)
    known = set(PEERS)
    sending = time.process_time()
    await send_round(group, specs, chats)
    sent_cpu = time.process_time() - sending
    opened = len(SEND_PEERS - known)
    stopping = time.perf_counter()
    await group.stop()
    stopped = time.perf_counter() - stopping
    print(
        f"{kind} N={n}: start {wall:.1f} s wall, {cpu:.1f} s CPU; RSS {before:.0f} -> "
        f"{after:.0f} MB ({(after - before) * 1000 / n:.0f} KB per account); "
        f"{connections} client connections; after {IDLE:.0f} s idle {n} sends"
        f" opened {opened} connections, {sent_cpu:.1f} s CPU; stop {stopped:.1f} s"
    )
    await (emulator.close() if kind == "vk" else emulator.stop())


async def send_round(group: Any, specs: list[AccountSpec], chats: list[ChatRef]) -> None:
    """One message from every account, ten at a time."""
    gate = asyncio.Semaphore(10)

    async def send(spec: AccountSpec, chat: ChatRef) -> None:
        async with gate:
            platform = group.platforms[spec.institution]
            await platform.send(chat, Reply("Ответ"), dedup_key=f"{spec.institution}:1")

    await asyncio.gather(*(send(s, c) for s, c in zip(specs, chats, strict=True)))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000))
    finally:
        shutil.rmtree(FOLDER, ignore_errors=True)
