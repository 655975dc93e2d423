"""Scoring every entry against a query's terms.

The score of an entry mixes two coverages, both weighted by IDF (rare words decide):
- query coverage: how much of what the citizen wrote the entry explains (its questions
  count fully, its answer text and category partly, see :class:`FieldWeights`). Words the
  FAQ never uses stay unexplained, so a question about something else (pensions, fines, a
  rude doctor) scores low everywhere;
- question coverage: how much of the entry's best question variant the citizen touched,
  which favours the entry whose own phrasing the citizen echoes.
Topic words (nouns, abbreviations) weigh more than verbs and adjectives: in "как записаться
к директору" the director says which entry, "записаться" only what to do there.
Everyday story words (family, days, months, places) weigh less again, known or not.
Adjacent word pairs shared with the entry add a small bonus (word order carries meaning:
"первый класс" is not "класс ... первый урок"; "10 класс" is not "1 класс"), scaled like an
IDF by how many entries share the pair ("детский сад" in every entry of a kindergarten's
FAQ tells none of them apart).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from handlers.faq.matching.analysis import is_number
from handlers.faq.matching.index import FaqIndex, Relative
from handlers.faq.matching.lexicon import NARRATIVE_WORDS
from handlers.faq.matching.morph import is_noun_like


@dataclass(slots=True)
class ScoreWeights:
    unknown_word: float
    narrative_word: float
    query_coverage: float
    bigram_bonus: float
    non_topic_word: float = 1.0  # weight of a verb, adjective or adverb next to a noun's 1


@dataclass(slots=True)
class EntryScore:
    index: int
    score: float
    query_coverage: float
    question_coverage: float
    matched: list[str] = field(default_factory=list)
    unexplained: list[tuple[str, float]] = field(default_factory=list)


def _word_weight(
    index: FaqIndex, word: str, rels: tuple[Relative, ...], weights: ScoreWeights
) -> float:
    if rels:
        weight = index.idf[rels[0].term]
        if not is_noun_like(rels[0].term):
            weight *= weights.non_topic_word
    else:
        weight = weights.unknown_word * index.unknown_idf
    if word in NARRATIVE_WORDS:
        # "8 марта", "в понедельник", "сын": rare in an FAQ, yet they say when or who,
        # seldom which entry.
        weight *= weights.narrative_word
    return weight


@dataclass(frozen=True, slots=True)
class UnknownWords:
    """How much of a message this FAQ knows nothing about (no word, no relative of it in
    any entry), as shares of the message's weight: a question about a thing the FAQ never
    names ("частный сад", "зубной", "виниловые пластинки") is seldom covered by it."""

    share: float = 0.0
    #: the share of unknown topic words (nouns, abbreviations; not story words)
    topic_share: float = 0.0
    #: the largest share of one unknown topic word
    topic_max: float = 0.0
    #: distinct content words of the message
    words: int = 0


def unknown_words(index: FaqIndex, seq: list[str], weights: ScoreWeights) -> UnknownWords:
    """The shares of the message (``seq``: its terms) no entry of the FAQ explains."""
    unique = list(dict.fromkeys(t for t in seq if not is_number(t)))
    total = unknown = topic = topic_max = 0.0
    for word in unique:
        rels = index.relatives(word)
        weight = _word_weight(index, word, rels, weights)
        total += weight
        if not rels:
            unknown += weight
            if is_noun_like(word) and word not in NARRATIVE_WORDS:
                topic += weight
                topic_max = max(topic_max, weight)
    if total <= 0:
        return UnknownWords(words=len(unique))
    return UnknownWords(unknown / total, topic / total, topic_max / total, len(unique))


def score_entries(
    index: FaqIndex, seq: list[str], weights: ScoreWeights, limit: int = 5
) -> list[EntryScore]:
    """Every entry that shares at least one term with the query, best first.

    ``seq`` is the query's terms in order, short numbers included (they only count in word
    pairs). ``matched`` and ``unexplained`` are filled for the first ``limit`` entries only.
    """
    terms = [t for t in seq if not is_number(t)]
    unique = list(dict.fromkeys(terms))
    if not unique:
        return []
    total_weight = 0.0
    word_weight: dict[str, float] = {}
    gained: dict[int, float] = {}
    hit_terms: dict[int, dict[str, float]] = {}
    matched_words: dict[int, list[str]] = {}
    for word in unique:
        rels = index.relatives(word)
        weight = _word_weight(index, word, rels, weights)
        total_weight += weight
        word_weight[word] = weight
        best: dict[int, float] = {}
        for rel in rels:
            for i, strength, in_question in index.postings.get(rel.term, ()):
                m = rel.similarity * strength
                if m > best.get(i, 0.0):
                    best[i] = m
                if in_question:
                    hits = hit_terms.setdefault(i, {})
                    if rel.similarity > hits.get(rel.term, 0.0):
                        hits[rel.term] = rel.similarity
        for i, m in best.items():
            gained[i] = gained.get(i, 0.0) + weight * m
            matched_words.setdefault(i, []).append(word)
    shared_pairs: dict[int, float] = {}
    for pair in set(itertools.pairwise(unique)) | set(itertools.pairwise(seq)):
        pair_weight = index.pair_weight(pair)
        for i in index.pair_postings.get(pair, ()):
            shared_pairs[i] = shared_pairs.get(i, 0.0) + pair_weight
    results: list[EntryScore] = []
    qc_w = weights.query_coverage
    idf = index.idf
    for i, g in gained.items():
        entry = index.entries[i]
        entry_hits = hit_terms.get(i)
        vcov = 0.0
        if entry_hits:
            for terms_of_variant, denom in entry.variant_sets:
                if denom > 0:
                    num = sum(idf[t] * s for t, s in entry_hits.items() if t in terms_of_variant)
                    if num > vcov * denom:
                        vcov = num / denom
        score = qc_w * g / total_weight + (1.0 - qc_w) * vcov
        shared = shared_pairs.get(i)
        if shared:
            score = min(1.0, score + weights.bigram_bonus * min(shared, 2))
        results.append(EntryScore(i, score, g / total_weight, vcov))
    results.sort(key=lambda r: -r.score)
    for r in results[:limit]:
        matched = matched_words.get(r.index, [])
        r.matched = matched
        r.unexplained = [(w, word_weight[w] / total_weight) for w in unique if w not in matched]
    return results
