"""Urgent messages: danger to a life or to health right now. They get the emergency numbers
at once and a ticket due in minutes, whatever else is going on in the conversation.

Why lemmas and phrases rather than substrings: citizens write "ударился головой", "ударилась
головой", "головой ударился", and a substring list either misses the forms or fires on the
wrong word ("травма" inside "травматолог"). Each rule is a short phrase whose words are
compared by dictionary form (the same pymorphy3 analysis the FAQ matcher uses), in any order,
within a few words of each other. A rule may name words that cancel it ("оружие" is no
danger in "справка на оружие").

Rule syntax (the same for the defaults and for an institution's ``urgent: {add: [...]}``):

- words separated by spaces must all occur close together, in any order, any form:
  ``ударился головой``;
- ``a|b|c`` is one word with alternatives: ``пропал ребёнок|сын|дочь``;
- ``-слово`` cancels the rule when that word occurs anywhere in the message:
  ``оружие -справка -лицензия``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from handlers.faq.matching.morph import fold, lemma, lemma_options
from handlers.faq.matching.text import tokenize

#: who may be in danger: a rule about a person needs one of these near its verb
_PEOPLE = (
    "ребенок|сын|дочь|дочка|сынок|мальчик|девочка|ученик|ученица|школьник|школьница"
    "|подросток|малыш|внук|внучка|брат|сестра|муж|жена|мама|мать|папа|отец|бабушка|дедушка"
    "|человек|друг|подруга|одноклассник|учитель|учительница|я|мы|он|она|они|нас|меня|его|ее"
)
_OTHERS = _PEOPLE.replace("|я|мы|", "|")
_BODY = "голова|рука|нога|палец|нос|ключица|кость|ребро|позвоночник|шея|спина|челюсть|зуб"
_PAPERS = "-справка -медкомиссия -лицензия -разрешение -медосмотр -комиссия -осмотр -хранение"

#: the default rules; ``urgent: {remove: [...]}`` takes one out by its text here, with or
#: without its cancelling ``-words``
DEFAULT_RULES: tuple[str, ...] = (
    # injuries
    "травма -справка",
    "травмироваться",
    "травмировать",
    "перелом -рентген -снимок -направление -гипс -реабилитация -срастись",
    f"сломать {_BODY}",
    "сотрясение",
    "ударить|удариться|стукнуться голова",
    f"упасть голова|лестница|высота|окно|крыша|качели|турник|сильно|{_BODY}",
    "разбить голова|лицо|нос|губа|бровь",
    "ожог",
    "обжечься",
    "ошпарить|ошпариться",
    "кипяток",
    "удар тепловой|солнечный",
    "обморожение",
    "переохлаждение",
    "ртуть",
    "удар ток",
    "ударить ток",
    "розетка палец|ударить|ток",
    "вывих",
    "рана",
    "ранить",
    "порезаться",
    "порез",
    "кровотечение",
    "кровь много|рвота|кашлять|идти|течь|хлестать|литься|остановить|останавливаться|весь|лужа|голова|нос|ухо|рот",
    "истекать",
    "укусить собака|змея|клещ",
    "покусать",
    "ужалить",
    "проглотить",
    "подавиться",
    "поперхнуться",
    "застрять горло|горле",
    "передозировка",
    "наглотаться",
    "кислота|щелочь|уксус|химия|отбеливатель|хлорка|бензин выпить|глотнуть|попасть|проглотить",
    "лекарство|средство выпить|проглотить|наглотаться",
    "таблетка выпить|съесть|много|наглотаться",
    "выпасть окно|балкон",
    "провалиться люк|яма|колодец|лед",
    "достать не можем|могу",
    "авария автобус|машина|автомобиль|люди|пострадать|кровь|ребенок|кювет",
    "дтп",
    "сбить машина|автомобиль|автобус|мотоцикл",
    "пострадать " + _OTHERS,
    # life-threatening states
    "сознание",
    "не реагировать",
    "не двигаться",
    "не вставать",
    "стать плохо",
    "плохо " + _OTHERS,
    "перекосить",
    "инсульт",
    "инфаркт",
    "парализовать|паралич",
    "не приходить|прийти себя",
    "припадок",
    "сердце схватить",
    "роды",
    "шприц съесть|уколоться|найти",
    "кома",
    "гипогликемия",
    "онеметь|онемение",
    "перестать говорить|дышать|реагировать|отвечать",
    "невнятный речь",
    "синий губа",
    "не просыпаться|проснуться",
    "захлебнуться",
    "аппендицит",
    "рожать",
    "схватка",
    "отойти вода",
    "бешенство -вакцина -прививка",
    "сердце остановиться|прихватить|колоть|болеть",
    "остановка сердце|дыхание",
    "давление подняться|упасть|скакнуть",
    "температура не сбиваться|спадать",
    "резкий|острый боль",
    "бешеный",
    "давить грудь",
    "боль грудь",
    "хрипеть",
    "опухнуть|распухнуть|отечь|отекать|отек лицо|горло|губа|язык|глаз",
    "сыпь не|температура",
    "запасть глаз",
    "обезвоживание",
    "сахар не|высокий|низкий|упасть|зашкаливать",
    "обморок",
    "не дышать",
    "задыхаться|задыхаеться",
    "дышать трудно|тяжело",
    "судорога",
    "приступ",
    "посинеть",
    "умирать -скука -смех",
    "отек квинке",
    "анафилактический",
    "скорая вызвать|приехать|ехать|увезти|забрать -телефон -номер -станция",
    "реанимация -посещение -передача",
    "тонуть",
    "утонуть",
    "провалиться лед",
    # poisoning
    "отравление",
    "отравиться",
    "отравить",
    "рвота ребенок|дети|много|несколько|класс|после",
    "рвать ребенок|дети|несколько|всех",
    "рвота|тошнить упасть|удариться|ударить|температура|боль",
    # violence and threats
    "драка -психолог",
    "избить",
    "избиение",
    "избивать",
    "педофил",
    "развратный|непристойный",
    "незнакомый|незнакомец увести|увезти|забрать|посадить|уводить",
    "драться сейчас|прямо|толпа",
    "искать ребенок|сын|дочь|мальчик|девочка|бабушка|дедушка|мама|отец|муж",
    "деменция|альцгеймер уйти|пропасть|потеряться",
    "агрессивный мужчина|человек|посетитель|пациент|подросток",
    "чп",
    "душить",
    "столкнуть",
    "маньяк",
    "неадекватный",
    "кидаться",
    "преследовать ",
    "заложник",
    "скулшутинг|шутинг|стрелок",
    "подозрительный предмет|пакет|сумка|человек|коробка",
    "бить " + _PEOPLE,
    "напасть",
    "ворваться",
    "нападение",
    "угроза жизнь|здоровье|убийство|расправа|насилие|получать|поступать|присылать|писать",
    "угрожать " + _PEOPLE + "|убить|нож|расправа|убийство|пистолет|оружие",
    "убить -время -скука",
    "убийство",
    "ударить " + _PEOPLE,
    "угрожать -закрытие -штраф -отключение -снос -выселение -отчисление -исключение -ремонт -банкротство -паводок -наводнение",
    "грозиться -отчислить -исключить -штраф -выселить -уволить",
    "вымогать|шантажировать",
    "пьяный водитель|руль|нож|драться|агрессивный",
    "нож " + _PEOPLE + "|угрожать|прийти|принести|пронести|достать|ударить|ранить|порезать",
    "ножевой",
    "оружие " + _PAPERS,
    "пистолет " + _PAPERS,
    "ружье " + _PAPERS,
    "стрелять",
    "стрельба -секция -тир -спортивный -соревнование",
    "выстрел",
    "теракт",
    "взрыв",
    "взорвать",
    "граната",
    "взрывчатка",
    "заминировать",
    "минирование",
    "эвакуировать|эвакуация",
    "замыкание",
    "сосулька|глыба|наледь",
    "люк открытый",
    "бомба",
    "насилие",
    "изнасиловать",
    "изнасилование",
    "домогаться",
    "домогательство",
    "приставать " + _PEOPLE,
    "похитить",
    "похищение",
    # missing people
    "пропасть " + _PEOPLE,
    "не вернуться домой|школа|секция|прогулка",
    "не прийти домой",
    "не прийти из школа|сад|секция",
    "дома нет его|ее|ребенок|сын|дочь",
    "прощальный записка",
    "кричать помощь",
    "льдина",
    "сорвать крыша|кровля",
    "обрушиться",
    "обрушение",
    "рухнуть",
    "найти не " + _PEOPLE + "|можем|могу",
    "потеряться " + _PEOPLE,
    "убежать|сбежать|уйти из дом",
    "не выходить связь",
    # self-harm
    "суицид",
    "хотеть умереть",
    "селфхарм|самоповреждение",
    "группа смерть",
    "самоубийство",
    "покончить",
    "повеситься",
    "выброситься",
    "вскрыть вена",
    "прыгнуть крыша|окно|мост",
    "не хотеть жить",
    "убить себя",
    "наложить рука",
    "резать|порезать|вскрыть себя|вена",
    "выпрыгнуть",
    "спрыгнуть крыша|окно|мост",
    # fire, smoke, gas
    "пожар",
    "гореть -вечный -дедлайн -отчет -сдача -свет -лампа -лампочка -индикатор -срок -путевка -экран -светофор -глаз",
    "возгорание",
    "загореться",
    "хлопок газ|взрыв",
    "дерево упасть|рухнуть|повалить|падать",
    "искрить",
    "гарь",
    "пламя",
    "огонь -вечный",
    "дым",
    "задымление",
    "газ запах|пахнуть|утечка|отравиться|угарный|травиться -датчик -счетчик -компенсация",
    "угарный",
    "провод оборвать|обрыв|оголенный|искрить",
    "застрять лифт",
)

#: phrases that put a message's danger in the past, in a lesson or on paper ("перелом был
#: год назад, нужна справка", "курсы первой помощи"): a message with one is not urgent
CALM_RULES: tuple[str, ...] = (
    "справка",
    "год|месяц|неделя|полгода назад",
    "прошлый год|месяц|неделя",
    "уже год|месяц|неделя",
    "уже разобраться",
    "решение комиссия",
    "все здоровый",
    "переболеть",
    "учебный",
    "курс",
    "обж",
    "презентация",
    "план эвакуация",
    "фильм|кино|сериал|книга|игра",
    "обжаловать",
    "оказание",
    "профилактика",
    "страхование",
    "дело закрыть",
    "выплата|пособие|компенсация|льгота|инвалидность|страховой|страховка",
    "оформить",
    "памятка|инструкция|лекция|учения",
    "правда ли",
    "это правда",
    "записать|записаться|запись прием|врач",
    "направление",
    "шутка|шутить",
    "слух|новость|статья|сми",
)

#: words closer than this (in tokens, counting from the first to the last) make one phrase
WINDOW_EXTRA = 5
#: long messages are analysed in pieces of about this many characters (tokenize clips
#: a long text to its head and tail; urgency in the middle of a story must not be lost)
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Rule:
    """One phrase: every slot must be met by some token; ``unless`` cancels it."""

    source: str
    slots: tuple[frozenset[str], ...]
    unless: frozenset[str]

    def matches(self, options: Sequence[frozenset[str]], present: frozenset[str]) -> bool:
        if self.unless & present or not all(slot & present for slot in self.slots):
            return False  # the cheap test first: most rules share no word with a message
        first = self.slots[0]
        span = len(self.slots) + WINDOW_EXTRA
        for start, opts in enumerate(options):
            if not first & opts:
                continue
            window = options[max(0, start - span) : start + span + 1]
            if all(any(slot & o for o in window) for slot in self.slots[1:]):
                return True
        return False


def _lemma(word: str) -> str:
    return lemma(fold(word)) if word else word


def parse_rule(text: str) -> Rule:
    """``"ударился головой -справка"`` -> a Rule over dictionary forms."""
    slots: list[frozenset[str]] = []
    unless: set[str] = set()
    for part in text.split():
        if part.startswith("-") and len(part) > 1:
            unless.update(_lemma(w) for w in part[1:].split("|") if w)
            continue
        words = [w for w in part.split("|") if w]
        if words:
            # a form written in the rule matches itself as well as its lemma: "горим" is
            # a word of its own for pymorphy3, but citizens write exactly that form
            slots.append(frozenset({_lemma(w) for w in words} | {fold(w) for w in words}))
    if not slots:
        raise ValueError(f"an urgent phrase needs at least one word: {text!r}")
    return Rule(text, tuple(slots), frozenset(unless))


def _token_options(text: str) -> list[frozenset[str]]:
    pieces = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    return [
        frozenset({tok, *lemma_options(tok)})
        for piece in pieces
        for tok in tokenize(piece)
        if not re.fullmatch(r"\d+", tok)
    ]


class UrgencyDetector:
    """The rules of one institution: the defaults, minus its removals, plus its additions."""

    def __init__(self, rules: Iterable[str], calm: Iterable[str] = CALM_RULES) -> None:
        self.rules = tuple(parse_rule(r) for r in rules)
        self.calm = tuple(parse_rule(r) for r in calm)

    def matching_rule(self, text: str) -> str | None:
        """The first rule the message meets (for explanations), or None."""
        options = _token_options(text)
        if not options:
            return None
        present = frozenset().union(*options)
        if any(rule.matches(options, present) for rule in self.calm):
            return None
        for rule in self.rules:
            if rule.matches(options, present):
                return rule.source
        return None

    def is_urgent(self, text: str) -> bool:
        return self.matching_rule(text) is not None


def _words(rule: str) -> str:
    """A rule without its cancelling words: how ``remove`` may name it ("драка")."""
    return " ".join(p for p in rule.split() if not p.startswith("-"))


def _removed(rule: str, remove: Iterable[str]) -> bool:
    return any(r.strip() in (rule, _words(rule)) for r in remove)


def unknown_removals(remove: Iterable[str]) -> list[str]:
    """Phrases an institution asks to remove that are not default rules (config errors)."""
    return [r for r in remove if not any(_removed(d, [r]) for d in DEFAULT_RULES)]


@lru_cache(maxsize=64)
def detector(add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> UrgencyDetector:
    """The detector for an institution's ``urgent:`` settings (built once per setting)."""
    return UrgencyDetector([*(r for r in DEFAULT_RULES if not _removed(r, remove)), *add])


def is_urgent(text: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> bool:
    return detector(tuple(add), tuple(remove)).is_urgent(text)
