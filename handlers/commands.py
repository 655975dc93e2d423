"""Citizens' slash commands. Features register theirs with :func:`command`, so the router
needs no change when a feature adds one (/operator, /subscribe, /forget, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.conversation import Conversation
from handlers.faq import answering

CommandHandler = Callable[[Conversation, str], Awaitable[None]]
CITIZEN_COMMANDS: dict[str, CommandHandler] = {}


def command(*names: str) -> Callable[[CommandHandler], CommandHandler]:
    def register(handler: CommandHandler) -> CommandHandler:
        for name in names:
            CITIZEN_COMMANDS[name] = handler
        return handler

    return register


def parse_command(text: str) -> tuple[str, str] | None:
    """'/start@school17_bot payload' -> ('start', 'payload'); None when not a command."""
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, args = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name.replace("_", "").isalnum():
        return None
    return name, args.strip()


@command("start")
async def start(conv: Conversation, args: str) -> None:
    await answering.show_categories(conv, "start")


@command("help")
async def help_(conv: Conversation, args: str) -> None:
    await conv.reply(conv.render("help"))


async def dispatch(conv: Conversation, name: str, args: str) -> None:
    handler = CITIZEN_COMMANDS.get(name)
    if handler is None:
        await conv.reply(conv.render("unknown_command", command="/" + name))
        return
    await handler(conv, args)
