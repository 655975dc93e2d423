"""Recognising a citizen who asks for a person instead of the bot: «хочу поговорить с
оператором», «позовите живого человека», «соедините с сотрудником».

Such a message holds no question for the FAQ to answer, and matching it offered the
citizen unrelated entries. It is taken like /operator: the bot asks for the question in
one message and hands that message to staff. Only a message made of nothing but such a
request counts (every word a person, a request, a polite word or a greeting): «можно ли
записаться без сотрудника» is a question for the FAQ."""

from __future__ import annotations

from handlers.faq.matching.lexicon import GREETINGS, SMALLTALK_FILLERS
from handlers.faq.matching.morph import fold, lemma
from handlers.faq.matching.text import tokenize

#: who the citizen asks for (dictionary forms)
PERSONS = frozenset(
    "оператор человек сотрудник администратор консультант менеджер работник".split()
)
#: the words a request for a person is made of, besides the person (dictionary forms)
REQUEST_WORDS = frozenset(
    """
    хотеть хотеться можно мочь нужный нужно надо дать позвать соединить связать связаться
    перевести переключить подключить пригласить поговорить говорить пообщаться общаться
    написать переписываться пожалуйста я мы вы ваш с со на к ли не бы а и или же бот
    живой реальный настоящий обычный нормальный какой-нибудь кто-нибудь кто нибудь срочно
    сейчас пусть ответить хоть хотя просто
    """.split()
)
_GREETING_WORDS = frozenset(w for phrase in GREETINGS for w in phrase.split())


def asks_for_person(text: str) -> bool:
    """True when the whole message asks for a person and holds no question of its own."""
    tokens = tokenize(text)
    if not tokens or len(tokens) > 12:
        return False
    found = False
    for token in tokens:
        if token in SMALLTALK_FILLERS or token in _GREETING_WORDS:
            continue
        word = lemma(fold(token))
        if word in PERSONS:
            found = True
        elif word not in REQUEST_WORDS and token not in REQUEST_WORDS:
            return False
    return found
