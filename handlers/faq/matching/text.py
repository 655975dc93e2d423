"""Turning what a citizen typed into clean lowercase word tokens.

Handles what real messages contain: ё/е, emoji, punctuation, HTML and Jinja2 markup (never
evaluated, just dropped), words typed on the wrong keyboard layout ("rfr pfgbcfnmcz" is
"как записаться"), Latin look-alike letters inside Cyrillic words, and codes such as
"086/у" or "003-В/у" that must stay one token.
"""

from __future__ import annotations

import re
from functools import lru_cache

from handlers.faq.matching.lexicon import HOMOGLYPHS, LAYOUT_CHARS, LAYOUT_EN_TO_RU
from handlers.faq.matching.morph import fold, is_known

# Long stories are capped: the question is nearly always in the first or last sentences,
# and the cap keeps the worst-case latency bounded for 20,000-character pastes.
HEAD_CHARS = 700
TAIL_CHARS = 500

_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|<[^<>]{0,300}>", re.S)
_WORD = re.compile(r"[0-9a-zа-я]+")
_CYR = re.compile(r"[а-я]")
_LAT = re.compile(r"[a-z]")
_CODE_JOINERS = re.compile(r"(?<=[0-9a-zа-я])[/\\\-](?=[0-9a-zа-я])")
_DIGITS_LETTERS = re.compile(r"^(\d+)([a-zа-я]+)$|^([a-zа-я]+)(\d+)$")
_SENTENCE_PUNCT = ".,;:!?"


def strip_markup(text: str) -> str:
    """Drop Jinja2 expressions/statements/comments and HTML tags (text is never rendered)."""
    return _MARKUP.sub(" ", text)


def clip(text: str) -> str:
    """Keep the head and the tail of a very long message."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + " " + text[-TAIL_CHARS:]


def tokenize(text: str) -> list[str]:
    """Lowercase, ё-folded word tokens with layout and look-alike letters repaired."""
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        return _tokenize(text)
    return list(_tokenize_short(text))


@lru_cache(maxsize=256)
def _tokenize_short(text: str) -> tuple[str, ...]:
    """An update's text is tokenized five times on its way (urgency, small talk, terms,
    lemmas, complaint): the first does the work, the others find it here."""
    return tuple(_tokenize(text))


def forget_recent() -> None:
    """Drop the recent texts ``tokenize`` keeps: after /forget no copy of a citizen's words
    stays in the process either (the cache cannot tell whose a text was, so all go)."""
    _tokenize_short.cache_clear()


def _tokenize(text: str) -> list[str]:
    chunks = fold(strip_markup(clip(text))).split()
    fixed = _fix_layout(chunks)
    tokens: list[str] = []
    for chunk in fixed:
        chunk = _fix_homoglyphs(chunk)
        has_digit = any(ch.isdigit() for ch in chunk)
        if has_digit:
            # "086/у", "003-в/у", "covid-19" are codes: keep them whole, and add the number.
            chunk = _CODE_JOINERS.sub("", chunk)
        for word in _WORD.findall(chunk):
            m = _DIGITS_LETTERS.match(word)
            if m and m.group(1) and len(m.group(1)) <= 2 and len(m.group(2)) == 1:
                # "5б", "11а": a class (or flat, or group) and its letter; the letter names
                # no topic, the number may ("5 класс").
                tokens.append(m.group(1))
                continue
            tokens.append(word)
            if m:
                digits = m.group(1) or m.group(4)
                letters = m.group(2) or m.group(3)
                tokens.append(digits)
                if len(letters) >= 2:
                    tokens.append(letters)
    return tokens


def _fix_homoglyphs(chunk: str) -> str:
    """A word mixing Cyrillic and Latin letters was meant to be Cyrillic."""
    if _CYR.search(chunk) and _LAT.search(chunk):
        return chunk.translate(HOMOGLYPHS)
    return chunk


def _layout_candidate(chunk: str) -> str | None:
    """The chunk re-typed on the Russian layout, if it reads as a known Russian word."""
    if not _LAT.search(chunk) or _CYR.search(chunk):
        return None
    if any(ch not in LAYOUT_CHARS and not ch.isdigit() for ch in chunk.rstrip(_SENTENCE_PUNCT)):
        return None
    for candidate in (chunk, chunk.rstrip(_SENTENCE_PUNCT)):
        if candidate and all(ch in LAYOUT_CHARS or ch.isdigit() for ch in candidate):
            converted = candidate.translate(LAYOUT_EN_TO_RU)
            words = _WORD.findall(converted)
            if words and all(is_known(w) for w in words):
                return converted
    return None


def _fix_layout(chunks: list[str]) -> list[str]:
    """Re-type words typed on the wrong (English) layout.

    A Latin chunk is converted when it then reads as a known Russian word; when most Latin
    chunks of the message convert, the message was typed on the wrong layout as a whole, so
    the rest (typos, unknown words) are converted too.
    """
    latin = [i for i, c in enumerate(chunks) if _LAT.search(c) and not _CYR.search(c)]
    if not latin:
        return chunks
    converted = {i: _layout_candidate(chunks[i]) for i in latin}
    known = [
        i for i in latin if converted[i] is not None and len(chunks[i].strip(_SENTENCE_PUNCT)) >= 2
    ]
    whole = len(known) * 2 > len(latin)
    out = list(chunks)
    for i in latin:
        conv = converted[i]
        if conv is not None and (whole or i in known):
            out[i] = conv
        elif whole and all(ch in LAYOUT_CHARS or ch.isdigit() for ch in chunks[i]):
            out[i] = chunks[i].rstrip(_SENTENCE_PUNCT).translate(LAYOUT_EN_TO_RU)
    return out
