"""Grouping unanswered questions: the nearest-neighbour chain merges what always merging
the most similar pair would, and a big batch of alike questions still groups by topic."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from handlers.faq.matcher import FaqMatcher
from handlers.faq.model import load_faq
from handlers.reports.clustering import NEIGHBOURS, average_linkage
from handlers.reports.unanswered import Question, build_report

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ROOT / "tests" / "fixtures" / "unanswered" / "school_paraphrases.yaml"


def greedy_average_linkage(similar: np.ndarray, threshold: float) -> list[list[int]]:
    """The textbook version: merge the most similar pair of groups while it is similar
    enough (the similarity of two groups is the mean over their pairs)."""
    groups = [[i] for i in range(len(similar))]
    while True:
        best, pair = threshold, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                mean = float(np.mean(similar[np.ix_(groups[a], groups[b])]))
                if mean >= best:
                    best, pair = mean, (a, b)
        if pair is None:
            break
        a, b = pair
        groups[a] = groups[a] + groups.pop(b)
    return sorted((sorted(g) for g in groups), key=lambda g: (-len(g), g[0]))


def test_the_chain_finds_the_clusters_of_the_greedy_merging() -> None:
    rng = np.random.default_rng(20)
    for _ in range(20):
        n = int(rng.integers(2, 30))
        points = rng.random((n, 3)).astype(np.float32)
        similar = points @ points.T / 3  # a Gram matrix, as the second-order similarity is
        similar[rng.random((n, n)) < 0.3] = 0  # pairs with nothing in common
        similar = np.minimum(similar, similar.T)
        threshold = float(rng.uniform(0.05, 0.3))
        expected = greedy_average_linkage(similar.copy(), threshold)
        assert average_linkage(similar.copy(), threshold) == expected


def test_a_big_batch_of_alike_questions_groups_by_topic() -> None:
    """Past the neighbourhood size (each question keeps its NEIGHBOURS most similar), 300
    questions over 6 topics still make few clusters, each of one topic."""
    topics = yaml.safe_load(TOPICS.read_text(encoding="utf-8"))["topics"]
    pool = [(topic, q) for topic, qs in topics.items() for q in qs]
    rng = random.Random(7)
    questions, topic_of = [], {}
    for i in range(300):
        topic, text = pool[i % len(pool)]
        words = text.split()
        if i >= len(pool) and len(words) > 3:
            del words[rng.randrange(len(words))]
        questions.append(Question(i, " ".join(words), "escalate", "2026-09-01T00:00:00+00:00"))
        topic_of[i] = topic
    assert len(questions) > NEIGHBOURS + 1
    matcher = FaqMatcher.build(load_faq(ROOT / "examples" / "faq" / "school.yaml").faq)
    report = build_report("school-17", datetime(2026, 9, 1, tzinfo=UTC), questions, matcher)
    big = [c for c in report.clusters if c.size >= 10]
    assert sum(c.size for c in big) >= 270
    assert len(big) <= 15
    majorities = [Counter(topic_of[q.id] for q in c.questions).most_common(1)[0] for c in big]
    # most questions sit with their own topic, and every topic leads a cluster of its own
    assert sum(n for _, n in majorities) >= 0.85 * sum(c.size for c in big), majorities
    assert {topic for topic, _ in majorities} == set(topics)
