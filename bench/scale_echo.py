"""The yardstick of bench/scale.py: a bare aiogram echo bot serving the same number of bots
in the same mode, against the same emulator, in a process of its own.

It is what a careful aiogram user would write for many bots: one Dispatcher, one HTTP
session shared by every Bot, ``start_polling`` for polling; for webhooks one aiohttp server
with a route per bot that feeds the update and answers 200 once the handler returned (as
Priemnaya's adapter does). The handler answers every text with the same text.

``python bench/scale_echo.py API_URL TOKENS_FILE polling|webhook [PORT]``
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message, Update
from aiohttp import web

POLL_TIMEOUT = 25  # as Priemnaya's adapter


async def main(api: str, tokens: list[str], mode: str, port: int) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api), limit=len(tokens) + 100)
    bots = [Bot(token, session=session) for token in tokens]
    by_id = {bot.id: bot for bot in bots}
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if mode == "polling":
        polling = asyncio.create_task(
            dispatcher.start_polling(*bots, polling_timeout=POLL_TIMEOUT, handle_signals=False)
        )
        await stop.wait()
        await dispatcher.stop_polling()
        await asyncio.gather(polling, return_exceptions=True)
    else:

        async def webhook(request: web.Request) -> web.Response:
            bot = by_id[int(request.match_info["bot_id"])]
            update = Update.model_validate(await request.json(), context={"bot": bot})
            await dispatcher.feed_update(bot, update)
            return web.Response()

        app = web.Application()
        app.router.add_post("/echo/{bot_id}", webhook)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        for bot in bots:
            await bot.set_webhook(f"http://127.0.0.1:{port}/echo/{bot.id}")
        await stop.wait()
        await runner.cleanup()
    await session.close()


if __name__ == "__main__":
    url, tokens_file, how = sys.argv[1], sys.argv[2], sys.argv[3]
    asyncio.run(
        main(
            url,
            Path(tokens_file).read_text().split(),
            how,
            int(sys.argv[4]) if len(sys.argv) > 4 else 0,
        )
    )
