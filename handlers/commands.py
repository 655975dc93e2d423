"""Citizens' slash commands: parsing, and dispatch to the command tables of the app's
features (handlers/feature.py), so the router needs no change when a feature adds one
(/operator, /subscribe, /forget, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from handlers.conversation import Conversation

CommandHandler = Callable[[Conversation, str], Awaitable[None]]


def parse_command(text: str) -> tuple[str, str] | None:
    """'/start@school17_bot payload' -> ('start', 'payload'); None when not a command."""
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, args = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name.replace("_", "").isalnum():
        return None
    return name, args.strip()


async def dispatch(
    conv: Conversation, commands: Mapping[str, CommandHandler], name: str, args: str
) -> None:
    handler = commands.get(name)
    if handler is None:
        await conv.reply(conv.render("unknown_command", command="/" + name))
        return
    await handler(conv, args)
