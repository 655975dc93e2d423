"""The searchable form of one FAQ: terms of every entry by field, their weights, their relatives.

Each entry has three fields, as in BM25F: its question variants (the admin's phrasing, the
strongest evidence), its answer text (long, and full of the words citizens actually use:
"справка", "канцелярия", "натощак") and its category (shared by several entries, so it only breaks ties). Jinja2 markup
is stripped from answers before indexing and never rendered.

A word's weight is its inverse document frequency, where an entry that only mentions the
word in its answer or category counts as a fraction of a document: "директор" in one
question and in passing in five answers is still the word of that one entry.

A query word the FAQ never uses is related to FAQ words that share a long prefix
(derivation: "льгота"/"льготный", "инвалид"/"инвалидность") or are a short edit away
(typos: "поликленика"). These relations are cached per word.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz, process

from handlers.faq.matching.analysis import TextAnalyzer, is_number
from handlers.faq.matching.text import strip_markup
from handlers.faq.model import Faq

PREFIX_BUCKET = 4


@dataclass(frozen=True, slots=True)
class FieldWeights:
    """How much a word found in each field of an entry counts (its questions count 1)."""

    answer: float = 0.6
    category: float = 0.3
    answer_df: float = 0.5  # an answer-only mention as a share of a document, for the IDF


@dataclass(slots=True)
class IndexedEntry:
    """One FAQ entry as sets of terms."""

    entry_id: str
    title: str
    question_terms: frozenset[str]
    answer_terms: frozenset[str]
    variants: list[tuple[str, ...]]
    bigrams: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    # Per question variant: its distinct terms and the sum of their IDF (filled by FaqIndex).
    variant_sets: list[tuple[frozenset[str], float]] = field(default_factory=list)


@dataclass(slots=True)
class Relative:
    """An FAQ term related to a query word, with how sure we are it means the same."""

    term: str
    similarity: float


class FaqIndex:
    """Terms, document frequencies and postings over one FAQ."""

    def __init__(
        self,
        faq: Faq,
        *,
        prefix_min: int,
        prefix_similarity: float,
        typo_cutoff: float,
        typo_similarity: float,
        fields: FieldWeights | None = None,
    ):
        fw = fields or FieldWeights()
        self.analyzer = TextAnalyzer(faq.synonyms)
        self.entries: list[IndexedEntry] = []
        texts: list[str] = []
        strengths: list[dict[str, float]] = []
        df: dict[str, float] = defaultdict(float)
        for entry in faq.entries:
            answer_text = strip_markup(entry.answer)
            texts.extend([*entry.questions, answer_text, entry.category])
            q_seqs = [self.analyzer.terms(q, numbers=True) for q in entry.questions]
            a_seq = self.analyzer.terms(answer_text, numbers=True)
            c_seq = self.analyzer.terms(entry.category, numbers=True)
            variants = [tuple(t for t in v if not is_number(t)) for v in q_seqs]
            q_terms = frozenset(t for v in variants for t in v)
            a_list = [t for t in a_seq if not is_number(t)]
            c_list = [t for t in c_seq if not is_number(t)]
            a_terms = frozenset(a_list) - q_terms
            c_terms = frozenset(c_list) - q_terms - a_terms
            strength: dict[str, float] = dict.fromkeys(q_terms, 1.0)
            strength.update(dict.fromkeys(a_terms, fw.answer))
            strength.update(dict.fromkeys(c_terms, fw.category))
            for t in q_terms:
                df[t] += 1.0
            for t in a_terms | c_terms:
                df[t] += fw.answer_df
            bigrams = frozenset(
                pair for seq in [*q_seqs, a_seq, c_seq] for pair in itertools.pairwise(seq)
            )
            self.entries.append(
                IndexedEntry(entry.id, entry.title, q_terms, a_terms, variants, bigrams)
            )
            strengths.append(strength)
        n = len(self.entries)
        # Postings: term -> (entry, how strongly the entry holds it, whether in a question).
        self.postings: dict[str, list[tuple[int, float, bool]]] = defaultdict(list)
        for i, strength in enumerate(strengths):
            q_terms = self.entries[i].question_terms
            for t, s in strength.items():
                self.postings[t].append((i, s, t in q_terms))
        self.pair_postings: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, e in enumerate(self.entries):
            for pair in e.bigrams:
                self.pair_postings[pair].append(i)
        # A pair found in most entries ("детский сад" in a kindergarten's FAQ) tells them
        # apart no better than any other word: its bonus shrinks with its spread, like an IDF.
        rarest = math.log(1.0 + (n - 0.5) / 1.5) if n > 1 else 1.0
        self.pair_weight: dict[tuple[str, str], float] = {
            pair: max(0.0, math.log(1.0 + (n - len(ids) + 0.5) / (len(ids) + 0.5)) / rarest)
            for pair, ids in self.pair_postings.items()
        }
        self.idf: dict[str, float] = {
            t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()
        }
        for e in self.entries:
            e.variant_sets = [
                (frozenset(v), sum(self.idf[t] for t in set(v))) for v in e.variants if v
            ]
        self.unknown_idf = math.log(1.0 + (n + 0.5) / 0.5) if n else 1.0
        self.vocabulary = sorted(self.idf)
        self.analyzer.learn_forms(texts, self.idf)
        self._buckets: dict[str, list[str]] = defaultdict(list)
        for t in self.vocabulary:
            if len(t) >= PREFIX_BUCKET:
                self._buckets[t[:PREFIX_BUCKET]].append(t)
        self._prefix_min = prefix_min
        self._prefix_similarity = prefix_similarity
        self._typo_cutoff = typo_cutoff
        self._typo_similarity = typo_similarity
        self.relatives = lru_cache(maxsize=32768)(self._relatives)

    def terms(self, text: str) -> list[str]:
        """The query's terms, ambiguous and misspelt words read the way this FAQ knows them.

        Short numbers are kept (for word pairs such as "10 класс"); see :func:`is_number`.
        """
        return self.analyzer.terms(text, self.idf, numbers=True)

    def _relatives(self, word: str) -> tuple[Relative, ...]:
        """FAQ terms that ``word`` may stand for, best first (the word itself when known)."""
        found: dict[str, float] = {}
        if word in self.idf:
            found[word] = 1.0
        if len(word) >= self._prefix_min:
            for cand in self._buckets.get(word[:PREFIX_BUCKET], ()):
                if cand == word:
                    continue
                common = _common_prefix(word, cand)
                if common >= self._prefix_min and common >= 0.6 * max(len(word), len(cand)):
                    found[cand] = max(found.get(cand, 0.0), self._prefix_similarity)
        if word not in self.idf and len(word) >= 4 and not word.isdigit():
            cutoff = self._typo_cutoff if len(word) >= 6 else max(self._typo_cutoff, 85.0)
            for cand, score, _ in process.extract(
                word, self.vocabulary, scorer=fuzz.ratio, score_cutoff=cutoff, limit=3
            ):
                sim = self._typo_similarity * score / 100.0
                if sim > found.get(cand, 0.0):
                    found[cand] = sim
        return tuple(Relative(t, s) for t, s in sorted(found.items(), key=lambda kv: -kv[1]))


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
