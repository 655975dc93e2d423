"""The Platform port's contract: every adapter and the local platform must pass it.

Each test plays a user through the platform's harness and checks what the user (or the app
behind ``start``) would notice."""

from __future__ import annotations

import pytest

from bots.core.model import Button, ChatKind, ChatRef, Reply
from bots.core.platform import RecipientUnreachable
from tests.contract.harness import Harness


def chat(h: Harness, chat_id: str) -> ChatRef:
    return ChatRef(h.platform.name, chat_id)


async def test_a_users_text_becomes_an_event(harness: Harness) -> None:
    text = "Здравствуйте! Как записаться 👋 <b>&amp;</b> {{ x }}"
    await harness.user_says(harness.private_chat, text)
    event = await harness.next_event()
    assert event.text == text
    assert event.chat.chat_id == harness.private_chat
    assert event.chat.platform == harness.platform.name
    assert event.chat_kind is ChatKind.PRIVATE
    assert event.institution == harness.platform.institution
    assert event.user.id
    assert event.message_id
    assert event.callback is None


async def test_each_update_has_its_own_key(harness: Harness) -> None:
    await harness.user_says(harness.private_chat, "раз")
    await harness.user_says(harness.private_chat, "два")
    first, second = await harness.next_event(), await harness.next_event()
    assert first.update_key != second.update_key


async def test_a_group_message_is_marked_as_group(harness: Harness) -> None:
    if harness.group_chat is None:
        pytest.skip(f"{harness.platform.name} has no group chats")
    await harness.user_says(harness.group_chat, "вопрос из группы", user_id="7001")
    event = await harness.next_event()
    assert event.chat_kind is ChatKind.GROUP
    assert event.chat.chat_id == harness.group_chat
    assert event.user.id == "7001"


async def test_a_sent_message_reads_as_plain_text(harness: Harness) -> None:
    reply = Reply(text="Приём <b>с 1 апреля</b> &lt;важно&gt; 😊")
    sent = await harness.platform.send(chat(harness, harness.private_chat), reply, dedup_key="k1")
    assert len(sent) == 1
    seen = await harness.seen(harness.private_chat)
    assert [s.text for s in seen] == ["Приём с 1 апреля <важно> 😊"]
    assert seen[0].id == sent[0].message_id


async def test_a_long_text_arrives_split_in_order(harness: Harness) -> None:
    limit = harness.platform.limits.max_text
    paragraphs = [f"Абзац {i}. " + "Слово " * 60 for i in range(limit * 3 // 360 + 2)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 2 * limit
    sent = await harness.platform.send(
        chat(harness, harness.private_chat), Reply(text=text), dedup_key="long"
    )
    seen = await harness.seen(harness.private_chat)
    assert len(seen) == len(sent) >= 3
    assert all(len(s.text) <= limit for s in seen)
    joined = " ".join(s.text for s in seen).split()
    assert joined == text.split()


async def test_buttons_round_trip_even_with_a_long_payload(harness: Harness) -> None:
    long_payload = "faq:answer:" + "очень-длинный-идентификатор-" * 8
    reply = Reply.of(
        "Выберите:",
        [
            [Button("Короткая", callback="a:1"), Button("Длинная", callback=long_payload)],
            [Button("Сайт", url="https://example.org/")],
        ],
    )
    sent = await harness.platform.send(chat(harness, harness.private_chat), reply, dedup_key="b")
    seen = await harness.seen(harness.private_chat)
    assert seen[-1].buttons == [["Короткая", "Длинная"], ["Сайт"]]

    await harness.user_presses(harness.private_chat, sent[-1].message_id, "Длинная")
    event = await harness.next_event()
    assert event.callback is not None
    assert event.callback.data == long_payload
    assert event.message_id == sent[-1].message_id

    await harness.user_presses(harness.private_chat, sent[-1].message_id, "Короткая")
    event2 = await harness.next_event()
    assert event2.callback is not None and event2.callback.data == "a:1"

    await harness.platform.answer_callback(event, "Готово")
    await harness.platform.answer_callback(event2)
    expected = ["Готово", None] if harness.silent_answers_visible else ["Готово"]
    assert await harness.callback_answers() == expected


async def test_an_edit_replaces_text_and_buttons(harness: Harness) -> None:
    """Where the platform cannot edit (limits.supports_edit False) the new version arrives
    as a new message: the reader still sees it last, without the old buttons."""
    where = harness.group_chat or harness.private_chat
    reply = Reply.of("Заявка №1: новая", [[Button("Взять", callback="t:take:1")]])
    sent = await harness.platform.send(chat(harness, where), reply, dedup_key="card")
    await harness.platform.edit(sent[0], Reply(text="Заявка №1: взята Ивановой"))
    seen = await harness.seen(where)
    assert seen[-1].text == "Заявка №1: взята Ивановой"
    assert seen[-1].buttons == []
    assert len(seen) == (1 if harness.platform.limits.supports_edit else 2)


async def test_a_reply_names_the_message_it_answers(harness: Harness) -> None:
    where = harness.group_chat or harness.private_chat
    sent = await harness.platform.send(chat(harness, where), Reply(text="Карточка"), dedup_key="c")
    await harness.user_says(
        where,
        "Ответ сотрудника",
        reply_to=sent[0].message_id,
        user_id="7001" if harness.group_chat else None,
    )
    event = await harness.next_event()
    assert event.reply_to == sent[0].message_id
    assert event.text == "Ответ сотрудника"


async def test_a_user_who_blocked_the_bot_is_unreachable(harness: Harness) -> None:
    await harness.block(harness.other_private_chat)
    with pytest.raises(RecipientUnreachable):
        await harness.platform.send(
            chat(harness, harness.other_private_chat), Reply(text="Объявление"), dedup_key="x"
        )
    # others are still reachable
    await harness.platform.send(
        chat(harness, harness.private_chat), Reply(text="Объявление"), dedup_key="y"
    )
    assert [s.text for s in await harness.seen(harness.private_chat)] == ["Объявление"]
