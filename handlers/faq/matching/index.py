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

import bisect
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
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


#: one question variant: its distinct terms and the sum of their IDF
VariantTerms = tuple[tuple[str, ...], float]
#: a posting: (entry, how strongly the entry holds the term, whether in a question)
Posting = tuple[int, float, bool]
Pair = tuple[str, str]


@dataclass(slots=True)
class IndexedEntry:
    """One FAQ entry as the scoring reads it: its question variants as term sets.

    What else an entry holds (answer and category terms, word pairs) lives in the index's
    postings only: a region shares one index per FAQ, but an FAQ of a thousand entries
    is still kept in full, so an entry stores nothing twice."""

    entry_id: str
    title: str
    #: per question variant: its distinct terms (a handful, a tuple is smaller than a set)
    #: and the sum of their IDF
    variant_sets: tuple[VariantTerms, ...] = ()

    @property
    def question_terms(self) -> frozenset[str]:
        return frozenset(t for terms, _ in self.variant_sets for t in terms)


@dataclass(slots=True)
class Relative:
    """An FAQ term related to a query word, with how sure we are it means the same."""

    term: str
    similarity: float


class FaqIndex:
    """Terms, document frequencies and postings over one FAQ.

    Built once per FAQ content and shared read-only (handlers/faq/shelf.py). Its memory
    goes to the postings of every term and word pair, so those hold tuples (no spare list
    capacity), and the posting tuples and pair entry lists are shared where equal: an
    entry's posting is one of three tuples, and a pair only one entry has points to that
    entry's one-element tuple."""

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
        df: dict[str, float] = defaultdict(float)
        postings: dict[str, list[Posting]] = defaultdict(list)
        pair_postings: dict[Pair, list[int]] = defaultdict(list)
        variants_of: list[list[tuple[str, ...]]] = []
        for i, entry in enumerate(faq.entries):
            answer_text = strip_markup(entry.answer)
            texts.extend([*entry.questions, answer_text, entry.category])
            q_seqs = [self.analyzer.terms(q, numbers=True) for q in entry.questions]
            a_seq = self.analyzer.terms(answer_text, numbers=True)
            c_seq = self.analyzer.terms(entry.category, numbers=True)
            variants = [tuple(dict.fromkeys(t for t in v if not is_number(t))) for v in q_seqs]
            q_terms = {t for v in variants for t in v}
            a_terms = {t for t in a_seq if not is_number(t)} - q_terms
            c_terms = {t for t in c_seq if not is_number(t)} - q_terms - a_terms
            question, answer, category = (
                (i, 1.0, True),
                (i, fw.answer, False),
                (i, fw.category, False),
            )
            for t in q_terms:
                df[t] += 1.0
                postings[t].append(question)
            for t in a_terms:
                df[t] += fw.answer_df
                postings[t].append(answer)
            for t in c_terms:
                df[t] += fw.answer_df
                postings[t].append(category)
            for pair in {p for seq in [*q_seqs, a_seq, c_seq] for p in itertools.pairwise(seq)}:
                pair_postings[pair].append(i)
            self.entries.append(IndexedEntry(entry.id, entry.title))
            variants_of.append(variants)
        n = len(self.entries)
        self.postings: dict[str, tuple[Posting, ...]] = {t: tuple(ps) for t, ps in postings.items()}
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        self.pair_postings: dict[Pair, tuple[int, ...]] = {
            pair: shared.setdefault(tuple(ids), tuple(ids)) for pair, ids in pair_postings.items()
        }
        # A pair found in most entries ("детский сад" in a kindergarten's FAQ) tells them
        # apart no better than any other word: its bonus shrinks with its spread, like an IDF.
        rarest = math.log(1.0 + (n - 0.5) / 1.5) if n > 1 else 1.0
        self._pair_weights = [
            max(0.0, math.log(1.0 + (n - k + 0.5) / (k + 0.5)) / rarest) for k in range(n + 1)
        ]
        self.idf: dict[str, float] = {
            t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()
        }
        for e, variants in zip(self.entries, variants_of, strict=True):
            e.variant_sets = tuple((v, sum(self.idf[t] for t in v)) for v in variants if v)
        self.unknown_idf = math.log(1.0 + (n + 0.5) / 0.5) if n else 1.0
        self.vocabulary = sorted(self.idf)
        self.analyzer.learn_forms(texts, self.idf)
        self._prefix_min = prefix_min
        self._prefix_similarity = prefix_similarity
        self._typo_cutoff = typo_cutoff
        self._typo_similarity = typo_similarity
        self.relatives = lru_cache(maxsize=32768)(self._relatives)

    def pair_weight(self, pair: Pair) -> float:
        """How much sharing the adjacent word pair tells entries apart (0 when no entry has
        it, 1 when only one does)."""
        ids = self.pair_postings.get(pair)
        return self._pair_weights[len(ids)] if ids else 0.0

    def answer_terms(self, index: int) -> frozenset[str]:
        """Terms the entry holds in its answer or category only (for analysis scripts)."""
        return frozenset(
            t for t, ps in self.postings.items() for i, _, q in ps if i == index and not q
        )

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
        if len(word) >= max(self._prefix_min, PREFIX_BUCKET):
            for cand in self._sharing_prefix(word[:PREFIX_BUCKET]):
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

    def _sharing_prefix(self, prefix: str) -> list[str]:
        """FAQ terms starting with ``prefix``: a range of the sorted vocabulary."""
        vocabulary = self.vocabulary
        start = bisect.bisect_left(vocabulary, prefix)
        end = bisect.bisect_left(vocabulary, prefix + "\U0010ffff", lo=start)
        return vocabulary[start:end]


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
