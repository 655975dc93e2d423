"""What to add to the FAQ next: the questions the bot escalated, only clarified, or whose
answer a citizen marked "не помогло", grouped into clusters of similar questions.

Similarity uses the FAQ matcher's own analysis (tokens, lemmas, colloquialisms, the FAQ's
synonyms: :class:`handlers.faq.matching.analysis.TextAnalyzer`), so "справку в бассейн"
and "справка для бассейна" meet on the same terms. Each question becomes a TF-IDF vector
over its terms; handlers/reports/clustering.py groups the vectors bottom-up with average
linkage over their second-order similarity (two groups merge while their questions are,
on average, at least ``threshold`` similar).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.faq.matcher import FaqMatcher
from handlers.faq.matching.analysis import TextAnalyzer
from handlers.reports.clustering import cluster_vectors
from storage import Storage
from storage.reports import ReportQueries
from storage.times import iso

#: the kinds of unanswered questions, as the report names them
KINDS = ("escalate", "clarify", "not_helpful")
DEFAULT_THRESHOLD = 0.1
#: letters of a term's stem feature
STEM = 5
#: the newest questions considered (older ones beyond this are left out)
MAX_QUESTIONS = 5000


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    text: str
    kind: str
    created_at: str


@dataclass(slots=True)
class Cluster:
    questions: list[Question]
    terms: list[str]
    #: the most typical question first
    examples: list[str]
    kinds: dict[str, int]
    nearest_entry: str | None = None
    nearest_title: str | None = None
    nearest_score: float | None = None

    @property
    def size(self) -> int:
        return len(self.questions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "terms": self.terms,
            "examples": self.examples,
            "kinds": self.kinds,
            "nearest_entry": self.nearest_entry,
            "nearest_title": self.nearest_title,
            "nearest_score": self.nearest_score,
        }


@dataclass(slots=True)
class UnansweredReport:
    institution: str
    since: datetime
    questions: int
    clusters: list[Cluster] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "institution": self.institution,
            "since": iso(self.since),
            "questions": self.questions,
            "clusters": [c.as_dict() for c in self.clusters],
        }


async def unanswered_questions(
    storage: Storage, institution: str, since: datetime
) -> list[Question]:
    """Escalated and clarified questions, and those whose answer did not help (once each)."""
    found: dict[int, Question] = {}
    for row in await storage.log.since(institution, since, outcomes=("escalate", "clarify")):
        found[row.id] = Question(row.id, row.text, str(row.outcome), iso(row.created_at))
    rows = await ReportQueries(storage.db).unhelpful_questions(institution, iso(since))
    for r in rows:
        found.setdefault(r["id"], Question(r["id"], r["text"], "not_helpful", r["created_at"]))
    questions = sorted(found.values(), key=lambda q: q.id)
    return questions[-MAX_QUESTIONS:]


def _features(terms: list[str]) -> list[str]:
    """Terms plus their 5-letter stems, so relatives the lemmatiser keeps apart
    ("потерять" / "потерянный", "пропуск" / "пропустить") still meet."""
    return terms + [f"~{t[:STEM]}" for t in terms if len(t) > STEM]


def _domain_prior(
    matcher: FaqMatcher, usable: list[tuple[Question, list[str]]]
) -> dict[str, float]:
    """Words the whole FAQ uses ("школа", "ребёнок" in a school's) say little about what a
    question is about: scale each term by its inverse frequency in the FAQ (1 for words
    the FAQ never uses), and a stem feature by its term's."""
    idf: dict[str, float] = getattr(matcher._index, "idf", {}) or {}
    top = max(idf.values(), default=1.0) or 1.0
    prior: dict[str, float] = {}
    for _, features in usable:
        for term in features:
            if term.startswith("~"):
                continue
            factor = idf.get(term, top) / top
            prior[term] = factor
            if len(term) > STEM:
                stem = f"~{term[:STEM]}"
                prior[stem] = min(prior.get(stem, 1.0), factor)
    return prior


def _vectors(
    term_lists: list[list[str]], prior: dict[str, float] | None = None
) -> list[dict[str, float]]:
    """Unit-length TF-IDF vectors (sublinear tf, smoothed idf), each weight scaled by
    ``prior`` (1 when absent)."""
    df: Counter[str] = Counter()
    for terms in term_lists:
        df.update(set(terms))
    n = len(term_lists)
    vectors = []
    for terms in term_lists:
        tf = Counter(terms)
        vec = {
            t: (1 + math.log(c))
            * (math.log((1 + n) / (1 + df[t])) + 1)
            * (prior.get(t, 1.0) if prior else 1.0)
            for t, c in tf.items()
        }
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        vectors.append({t: w / norm for t, w in vec.items()})
    return vectors


def build_report(
    institution: str,
    since: datetime,
    questions: list[Question],
    matcher: FaqMatcher,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    examples: int = 3,
) -> UnansweredReport:
    analyzer = TextAnalyzer(matcher.faq.synonyms)
    usable = [(q, _features(analyzer.terms(q.text))) for q in questions]
    usable = [(q, t) for q, t in usable if t]
    vectors = _vectors([t for _, t in usable], _domain_prior(matcher, usable))
    report = UnansweredReport(institution, since, len(questions))
    for indices in cluster_vectors(vectors, threshold):
        group = [usable[i][0] for i in indices]
        weights: Counter[str] = Counter()
        for i in indices:
            weights.update(vectors[i])
        # the most typical question: the highest similarity to the cluster's centroid
        ranked = sorted(
            indices,
            key=lambda i: -sum(w * weights[t] for t, w in vectors[i].items()),
        )
        shown: list[str] = []
        for i in ranked:
            text = usable[i][0].text.strip()
            if text.lower() not in {s.lower() for s in shown}:
                shown.append(text)
            if len(shown) >= examples:
                break
        cluster = Cluster(
            questions=group,
            terms=[t for t, _ in weights.most_common(4)],
            examples=shown,
            kinds={k: v for k in KINDS if (v := sum(q.kind == k for q in group))},
        )
        result = matcher.match(usable[ranked[0]][0].text)
        if result.candidates:
            best = result.candidates[0]
            entry = matcher.faq.entry(best.entry_id)
            cluster.nearest_entry = best.entry_id
            cluster.nearest_title = entry.title if entry else None
            cluster.nearest_score = round(best.score, 2)
        report.clusters.append(cluster)
    return report
