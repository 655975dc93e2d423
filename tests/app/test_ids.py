"""Issue 18 (1): the ids a config needs, without guessing: /id in any chat, and WARNING
lines an admin finds in the log (the default level) with the snippet to paste."""

from __future__ import annotations

import logging

import pytest

from bots.core.model import ChatKind, User
from runtime.app import App

STAFF_CHAT = "-1001234567890"
NEWCOMER = User("4444", "Ольга", "Смирнова")


async def says(app: App, chat: str, text: str, user: User, kind: ChatKind) -> str:
    local = app.local_platform("school-17")
    before = len(local.messages(chat))
    await local.user_says(chat, text, user=user, kind=kind)
    await app.settle()
    return "\n".join(m.text for m in local.messages(chat)[before:])


async def test_id_in_a_private_chat(local_app: App) -> None:
    said = await says(local_app, "700", "/id", User("700", "Анна"), ChatKind.PRIVATE)
    assert "Этот чат: 700 (личный)" in said and "Ваш id: 700" in said and "(local)" in said


async def test_a_newcomer_in_the_staff_chat_gets_their_id_and_the_log_says_it_once(
    local_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    local_app.local_platform("school-17").open_chat(STAFF_CHAT, ChatKind.GROUP)
    with caplog.at_level(logging.WARNING, logger="handlers.ids"):
        said = await says(local_app, STAFF_CHAT, "/id", NEWCOMER, ChatKind.GROUP)
        await says(local_app, STAFF_CHAT, "я новенькая", NEWCOMER, ChatKind.GROUP)
    # not a member, yet answered: the id and the line for staff.members
    assert "— чат сотрудников" in said and "Ваш id: 4444 (Ольга Смирнова)" in said
    assert "- {platform: local, id: 4444, name: Ольга Смирнова}" in said
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "id 4444 in the staff chat is ignored" in warnings[0]
    assert "staff.members: - {platform: local, id: 4444, name: Ольга Смирнова}" in warnings[0]


async def test_an_unconfigured_group_is_logged_once_and_otherwise_ignored(
    local_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    local_app.local_platform("school-17").open_chat("-500", ChatKind.GROUP)
    with caplog.at_level(logging.WARNING, logger="handlers.ids"):
        first = await says(local_app, "-500", "всем привет", NEWCOMER, ChatKind.GROUP)
        second = await says(local_app, "-500", "как дела", User("5555", "Иван"), ChatKind.GROUP)
    assert first == second == ""  # the bot stays quiet in a group that is not its business
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "local group -500, which no institution names" in warnings[0]
    assert "staff: chat: {platform: local, id: -500}" in warnings[0]
    said = await says(local_app, "-500", "/id@school17_bot", NEWCOMER, ChatKind.GROUP)
    assert "Чтобы сделать этот чат чатом сотрудников" in said
    assert "chat: {platform: local, id: -500}" in said
