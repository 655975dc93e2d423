"""Matching a citizen's message to an FAQ entry: answer, clarify, or escalate to staff.

A wrong answer from a state institution is worse than a human one a few hours later, so
the matcher answers only when one entry clearly explains the message; it offers 2-3
entries when it is unsure, and escalates when nothing fits (complaints, other
institutions' business, questions the FAQ does not cover).

Usage::

    matcher = FaqMatcher.build(load_faq(path).faq)
    result = matcher.match("rfr pfgbcfnmcz r lbhtrnjhe")   # "как записаться к директору"
    result.decision, result.candidates[0].entry_id
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from handlers.faq.matching.analysis import PhraseTable, is_number, lemmas
from handlers.faq.matching.index import FaqIndex, FieldWeights
from handlers.faq.matching.lexicon import COMPLAINT_PHRASES, COMPLAINT_WORDS, NARRATIVE_WORDS
from handlers.faq.matching.morph import is_genitive_noun, is_noun_like, lemma_options
from handlers.faq.matching.scoring import EntryScore, ScoreWeights, score_entries
from handlers.faq.matching.sentences import question_sentences, split_sentences
from handlers.faq.matching.smalltalk import SmallTalk, detect
from handlers.faq.matching.text import tokenize
from handlers.faq.model import Faq

__all__ = ["Candidate", "Decision", "FaqMatcher", "MatchResult", "MatcherSettings", "SmallTalk"]


class Decision(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    ESCALATE = "escalate"
    SMALLTALK = "smalltalk"


class MatcherSettings(BaseModel):
    """Knobs of the matcher.

    Defaults were calibrated with ``bench/faq_fit.py joint``: the ranking knobs and the
    answer thresholds together, on the dev FAQs (a school and a polyclinic) with slack under
    the bars (at most 2.5% wrong answers, 5 of 60 uncovered questions answered), choosing
    among settings that reach the 80% bar there the one that fares best on FAQs of two
    other institution kinds (tests/fixtures/faq-check). Four more kinds (faq-unseen), on
    which nothing was chosen, show what carries over: fewer right answers (about 54%) and
    more wrong ones (about 4%) than on the dev FAQs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer_threshold: float = Field(
        0.38, ge=0, le=1, description="Lowest top score that may be answered without asking."
    )
    answer_max_ratio: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Answer only if the runner-up scores at most this share of the top score; "
        "closer than that, the citizen is asked which one they meant.",
    )
    max_unexplained_topic: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Largest share of the message's weight that one topic word (a noun, an "
        "abbreviation) the best entry does not explain may carry for an answer: "
        "'прививка ребёнку' in an adults' polyclinic is not answered from 'прививка'.",
    )
    clarify_threshold: float = Field(
        0.15, ge=0, le=1, description="Below this top score nothing fits: escalate to staff."
    )
    clarify_relative: float = Field(
        0.5,
        ge=0,
        le=1,
        description="When clarifying, offer entries scoring at least this share of the top one.",
    )
    clarify_max: int = Field(3, ge=2, le=3, description="At most this many entries to offer.")
    answer_field_weight: float = Field(
        0.7,
        ge=0,
        le=1,
        description="How much a word found only in an entry's answer text counts, relative "
        "to a word of its questions.",
    )
    category_field_weight: float = Field(
        0.3, ge=0, le=1, description="How much a word found only in an entry's category counts."
    )
    answer_document_share: float = Field(
        0.6,
        ge=0,
        le=1,
        description="For a word's rarity (IDF), an entry that only mentions it in its answer "
        "or category counts as this share of an entry.",
    )
    non_topic_word_weight: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Weight of a verb, adjective or adverb relative to a topic word (a noun, "
        "an abbreviation) of the same rarity.",
    )
    unknown_word_weight: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Weight of a word the FAQ never uses, as a share of the rarest word's "
        "weight: unexplained words lower every entry's coverage.",
    )
    narrative_word_weight: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Weight factor of everyday story words (family, days, months, places): "
        "they say when or who, seldom which entry, even when the FAQ happens to use them.",
    )
    query_coverage_share: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Score = this × (share of the message explained by the entry) + the rest × "
        "(share of the entry's best question the message touched).",
    )
    bigram_bonus: float = Field(
        0.15, ge=0, le=0.2, description="Bonus per shared adjacent word pair (at most two)."
    )
    prefix_min: int = Field(
        5, ge=3, le=10, description="Shortest shared prefix that relates two words (derivation)."
    )
    prefix_similarity: float = Field(
        0.5, ge=0, le=1, description="How much a prefix-related word counts as the same word."
    )
    typo_cutoff: float = Field(
        80.0, ge=50, le=100, description="Lowest rapidfuzz ratio for a typo of an FAQ word."
    )
    typo_similarity: float = Field(
        0.85, ge=0, le=1, description="How much a typo counts as the word (times the ratio)."
    )

    def score_weights(self) -> ScoreWeights:
        return ScoreWeights(
            unknown_word=self.unknown_word_weight,
            narrative_word=self.narrative_word_weight,
            query_coverage=self.query_coverage_share,
            bigram_bonus=self.bigram_bonus,
            non_topic_word=self.non_topic_word_weight,
        )

    def field_weights(self) -> FieldWeights:
        return FieldWeights(
            answer=self.answer_field_weight,
            category=self.category_field_weight,
            answer_df=self.answer_document_share,
        )


@dataclass(slots=True)
class Candidate:
    """One entry that may answer the message; ``matched_terms`` say why."""

    entry_id: str
    score: float
    matched_terms: list[str]


@dataclass(slots=True)
class MatchResult:
    """What to do with a message, and the entries behind the decision (best first, ≤ 3)."""

    decision: Decision
    candidates: list[Candidate] = field(default_factory=list)
    smalltalk: SmallTalk | None = None
    normalized: str = ""
    reason: str = ""


class FaqMatcher:
    """Matches messages against one FAQ. Build once per FAQ version; ``match`` is pure."""

    def __init__(self, faq: Faq, settings: MatcherSettings):
        self.faq = faq
        self.settings = settings
        self._index = FaqIndex(
            faq,
            prefix_min=settings.prefix_min,
            prefix_similarity=settings.prefix_similarity,
            typo_cutoff=settings.typo_cutoff,
            typo_similarity=settings.typo_similarity,
            fields=settings.field_weights(),
        )
        self._weights = settings.score_weights()
        self._complaints = PhraseTable(
            (tuple(lemmas(p)), ("<complaint>",)) for p in COMPLAINT_PHRASES
        )
        # The same phrases word for word: some are made of stop words only ("сколько можно"),
        # which vanish from lemmas.
        self._complaint_forms = PhraseTable(
            (tuple(tokenize(p)), ("<complaint>",)) for p in COMPLAINT_PHRASES
        )

    @classmethod
    def build(cls, faq: Faq, settings: MatcherSettings | None = None) -> FaqMatcher:
        return cls(faq, settings or MatcherSettings())

    def match(self, text: str) -> MatchResult:
        """Decide how to handle ``text``. Never raises on any string."""
        tokens = tokenize(text)
        normalized = " ".join(tokens)
        talk = detect(tokens, text)
        if talk is not None:
            return MatchResult(Decision.SMALLTALK, [], talk, normalized, "small talk only")
        seq = self._index.terms(text)
        terms = [t for t in seq if not is_number(t)]
        if not terms:
            return MatchResult(Decision.ESCALATE, [], None, normalized, "no content words")
        scores = score_entries(self._index, seq, self._weights)
        candidates = [self._candidate(s) for s in scores[: self.settings.clarify_max]]
        s = self.settings
        top = scores[0].score if scores else 0.0
        if not scores or top < s.clarify_threshold:
            return MatchResult(Decision.ESCALATE, candidates, None, normalized, "nothing fits")
        if self._is_complaint(terms, text):
            return MatchResult(Decision.ESCALATE, candidates, None, normalized, "complaint")
        second = scores[1].score if len(scores) > 1 else 0.0
        topic_gap = self.topic_gap(text, scores[0])
        if top >= s.answer_threshold and second <= s.answer_max_ratio * top:
            if topic_gap <= s.max_unexplained_topic:
                return MatchResult(Decision.ANSWER, candidates, None, normalized, "confident")
            reason = "a topic word is not explained by the best entry"
        else:
            reason = "not confident enough" if top < s.answer_threshold else "runner-up too close"
        offered = [c for c in candidates if c.score >= s.clarify_relative * top]
        if len(offered) < 2:
            offered = candidates[:2]
        return MatchResult(Decision.CLARIFY, offered, None, normalized, reason)

    def explain(self, text: str) -> str:
        """A human-readable account of a match, for ``priemnaya faq ask``."""
        result = self.match(text)
        seq = self._index.terms(text)
        terms = [t for t in seq if not is_number(t)]
        lines = [
            f"decision: {result.decision.value}"
            + (f" ({result.smalltalk.value})" if result.smalltalk else "")
            + (f" — {result.reason}" if result.reason else ""),
            f"normalized: {result.normalized or '(empty)'}",
            f"terms: {' '.join(terms) or '(none)'}",
        ]
        scores = score_entries(self._index, seq, self._weights) if terms else []
        for rank, sc in enumerate(scores[:3], 1):
            entry = self._index.entries[sc.index]
            missing = ", ".join(w for w, _ in sc.unexplained) or "-"
            lines.append(
                f"{rank}. {entry.entry_id} score={sc.score:.2f} "
                f"(message covered {sc.query_coverage:.2f}, question covered "
                f"{sc.question_coverage:.2f}) «{entry.title}»"
            )
            lines.append(f"   matched: {', '.join(sc.matched) or '-'}; not explained: {missing}")
        if not scores and result.decision is not Decision.SMALLTALK:
            lines.append("no entry shares a word with the message")
        return "\n".join(lines)

    def topic_gap(self, text: str, best: EntryScore) -> float:
        """The largest share of the message carried by one topic word that the best entry
        does not explain, leaving out the story around the question and genitive details."""
        foreign = [(w, share) for w, share in best.unexplained if self._is_foreign_topic(w)]
        if not foreign:  # the usual case: no sentence or grammar analysis needed
            return 0.0
        context = self._context_terms(text)
        details = self._details(text, best.matched)
        return max(
            (share for w, share in foreign if w not in context and w not in details), default=0.0
        )

    def _context_terms(self, text: str) -> frozenset[str]:
        """Terms that only occur in the story around the question, not in the question."""
        sentences = split_sentences(text)
        if len(sentences) < 2:
            return frozenset()
        asks = question_sentences(sentences)
        if not any(asks) or all(asks):
            return frozenset()
        asked: set[str] = set()
        told: set[str] = set()
        for sentence, is_question in zip(sentences, asks, strict=True):
            (asked if is_question else told).update(self._index.terms(sentence))
        return frozenset(told - asked)

    def _candidate(self, score: EntryScore) -> Candidate:
        return Candidate(
            self._index.entries[score.index].entry_id, round(score.score, 4), list(score.matched)
        )

    def _is_foreign_topic(self, word: str) -> bool:
        """A topic word (noun, abbreviation) this FAQ never uses, nor anything like it."""
        return (
            word not in NARRATIVE_WORDS and not self._index.relatives(word) and is_noun_like(word)
        )

    @staticmethod
    def _details(text: str, matched: list[str]) -> set[str]:
        """Nouns in the genitive right after a matched noun: details of a known topic
        ("МРТ колена", "УЗИ щитовидки"), not another topic. A word standing elsewhere in the
        message ("прививка ребёнку", "медкомиссия на оружие") gets no such allowance."""
        heads = {t for t in matched if is_noun_like(t)}
        details: set[str] = set()
        tokens = tokenize(text)
        for prev, word in itertools.pairwise(tokens):
            if is_genitive_noun(word) and heads.intersection(lemma_options(prev)):
                details.update(lemma_options(word))
        return details

    def _is_complaint(self, terms: list[str], text: str) -> bool:
        if any(t in COMPLAINT_WORDS for t in terms):
            return True
        marked = self._complaints.apply([lemma for lemma in lemmas(text)])
        return "<complaint>" in marked or "<complaint>" in self._complaint_forms.apply(
            tokenize(text)
        )
