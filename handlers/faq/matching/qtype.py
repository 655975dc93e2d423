"""What kind of thing a question asks: when, how much, where, which documents, may I, how to.

Neighbouring entries on one topic ("когда подать заявление" / "какие документы для
заявления") share nearly all their words and differ mostly here, so agreement between the
message's kind and an entry's kind is a feature of the ranking and of the decision. A
message may ask several kinds at once; "how to" counts only when nothing more specific does.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Asks(StrEnum):
    WHEN = "when"
    COST = "cost"
    WHERE = "where"
    DOCUMENTS = "documents"
    MAY = "may"
    HOW = "how"


_PATTERNS: dict[Asks, re.Pattern[str]] = {
    Asks.WHEN: re.compile(
        r"\b(когда|во сколько|во скока|до скольки|со скольки|с какого|до какого|какого числа|"
        r"срок\w*|сколько (?:дней|времени|ждать|дел\w*|длит\w*|час\w*)|как долго|"
        r"график\w*|расписани\w*|часы работы|время работы|работает ли|открыт\w*|выходн\w*)\b"
    ),
    Asks.COST: re.compile(
        r"\b(сколько сто\w*|стоимост\w*|цен\w|цена|платн\w*|бесплатн\w*|оплат\w*|плат\w*|"
        r"заплат\w*|тариф\w*|пошлин\w*|руб\w*|деньг\w*|льгот\w*|компенсац\w*)\b"
    ),
    Asks.WHERE: re.compile(
        r"\b(где|куда|адрес\w*|кабинет\w*|в каком|как (?:добраться|проехать|найти)|"
        r"находит\w*|окн[оа]\b)"
    ),
    Asks.DOCUMENTS: re.compile(
        r"\b(документ\w*|справк\w*|бумаг\w*|что (?:нужно |надо )?(?:принести|взять|с собой)|"
        r"паспорт\w*|заявлени\w*|выписк\w*|копи[ияю]\w*|полис\w*|снилс\w*)"
    ),
    Asks.MAY: re.compile(
        r"\b(можно|могу|может|разреш\w*|имею ли|имеет ли|право|положен\w*|обязательн\w*|"
        r"обязан\w*|нужно ли|надо ли|пустят|пускают|примут ли|допуска\w*)\b"
    ),
}
_HOW = re.compile(r"\b(как|каким образом|порядок|что делать|что нужно сделать|процедур\w*)\b")


def asks(text: str) -> frozenset[Asks]:
    """The kinds of question ``text`` asks (empty when none is recognisable)."""
    low = text.lower().replace("ё", "е")
    found = {kind for kind, pattern in _PATTERNS.items() if pattern.search(low)}
    if not found and _HOW.search(low):
        found.add(Asks.HOW)
    return frozenset(found)


_BITS = {kind: 1 << i for i, kind in enumerate(Asks)}


def asks_mask(kinds: frozenset[Asks]) -> int:
    """``kinds`` as bits (one per kind of question), to compare many entries at once."""
    return sum(_BITS[k] for k in kinds)


def agreement(query: frozenset[Asks], entry: frozenset[Asks]) -> tuple[float, float]:
    """(agree, conflict): the message asks a kind the entry answers; or both ask something
    and nothing in common."""
    if not query or not entry:
        return 0.0, 0.0
    if query & entry:
        return 1.0, 0.0
    return 0.0, 1.0


class Figure(StrEnum):
    """A figure a citizen may ask for, which an answer either states or does not."""

    #: a sum of money: a price, a fee, a fine, the size of a benefit
    AMOUNT = "amount"
    #: a length of time: how long something takes or stays valid
    DURATION = "duration"


#: up to two words between ("сколько сейчас стоит"), none of them a unit of time ("сколько
#: месяцев будут платить" asks how long) nor "в"/"за" ("сколько занятий в месяц")
_W = r"(?:(?!(?:дн|сут|месяц|недел|час|лет\b|год|минут|раз\b|в\b|за\b))[\w-]+\s+){0,2}"
_ANY = r"(?:[\w-]+\s+){0,2}"
_ASKED: dict[Figure, re.Pattern[str]] = {
    Figure.AMOUNT: re.compile(
        rf"(\bсколько\s+{_W}(?:сто[ия]т\w*|руб\w*|плат\w*|заплат\w*|процент\w*|выплач\w*|"
        rf"составля\w*|составит)|\bкак(?:ая|ой|ова|ов)\s+{_W}(?:стоимость|цена|сумма|размер)\b|"
        r"\bв\s+рублях\b|\bсколько\s+конкретно\b)"
    ),
    Figure.DURATION: re.compile(
        rf"(\bсколько\s+{_W}(?:дней|дня|суток|минут|месяц\w*|недел\w*|час\w*|времени)\b|"
        rf"\bкак\s+долго\b|\bсколько\s+{_ANY}(?:длит\w*|действ\w*)|\bсрок\w*\s+действи\w*)"
    ),
}
#: a number of something, or a word that settles the question without one
_NUMBER = (
    r"(?:\d[\d\s]*(?:[,.]\d+)?\S*|од(?:ин|на|ного|ной)|дв(?:а|е|ух)|тр(?:и|ех)|пят\w+|десят\w+)"
)
_STATED: dict[Figure, re.Pattern[str]] = {
    Figure.AMOUNT: re.compile(
        rf"({_NUMBER}\s*(?:руб|₽|%|процент|тыс|млн|коп)|бесплатн|не\s+взима|без\s+оплат|"
        r"прожиточн\w*\s+минимум|мрот|прейскурант|прайс|\{\{|"
        r"размер\w*\s+(?:\w+\s+){0,6}(?:устанавлива|утвержда|зависит|рассчитыва|определя))"
    ),
    Figure.DURATION: re.compile(
        rf"({_NUMBER}\s*(?:рабоч\w+\s+|календарн\w+\s+)?(?:дн|день|дня|сут|минут|мин\b|месяц|"
        r"недел|час|год|лет)|в\s+течение|бессроч|в\s+тот\s+же\s+день|в\s+день\s+обращения|"
        r"\bсразу\b|несколько\s+(?:дней|минут|недель|часов)|полгода|"
        r"\b(?:за|через|на|в)\s+(?:неделю|месяц|сутки|день|год)\b|\{\{)"
    ),
}


def asked_figures(text: str) -> frozenset[Figure]:
    """The figures ``text`` asks for ("сколько стоит", "какой размер", "как долго")."""
    low = text.lower().replace("ё", "е")
    return frozenset(f for f, pattern in _ASKED.items() if pattern.search(low))


#: the institution's contacts, which hold no sum nor length of time
_CONTACTS = re.compile(r"\{\{\s*institution\.\w+\s*\}\}")


def stated_figures(answer: str) -> frozenset[Figure]:
    """The figures an answer states: a sum, "бесплатно", a length of time. A template
    variable (``{{ ... }}``) other than the institution's contacts may hold any, so it
    counts as stating each."""
    low = _CONTACTS.sub(" ", answer.lower().replace("ё", "е"))
    return frozenset(f for f, pattern in _STATED.items() if pattern.search(low))
