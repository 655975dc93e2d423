"""Benchmark of the FAQ matcher on a 1,000-entry FAQ, against a plain rapidfuzz matcher.

Builds the FAQ from the dev FAQs (tests/fixtures/faq-dev): every entry is copied 20 times with
perturbed questions (dropped and swapped words, typos) and perturbed answers, under new
ids. Queries are the dev cases. Also prints the memory a built matcher holds (tracemalloc,
after a first build has filled the per-process word caches), per FAQ entry, for the big
FAQ and the two dev FAQs. Prints figures only; run with `.venv/bin/python
bench/faq_match.py [--no-vectors] [--encoder=use]`.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.faq.matcher import FaqMatcher, MatcherSettings, MatchResult
from handlers.faq.model import Faq, FaqEntry, load_faq
from handlers.faq.semantic.cache import VectorCache
from handlers.faq.semantic.encoder import DEFAULT, shared_encoder
from handlers.faq.semantic.index import SemanticIndex
from runtime import heap

DATA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faq-dev"
TARGET_ENTRIES = 1000


def perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) > 3 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
    if len(words) > 2 and rng.random() < 0.5:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    if words and rng.random() < 0.5:
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 4:
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + w[j + 1 :]
    return " ".join(words)


def big_faq() -> tuple[Faq, list[str]]:
    rng = random.Random(17)
    base: list[FaqEntry] = []
    queries: list[str] = []
    for name in ("school", "polyclinic"):
        base.extend(load_faq(DATA / f"{name}.yaml").faq.entries)
        cases = yaml.safe_load((DATA / f"{name}.cases.yaml").read_text(encoding="utf-8"))
        queries.extend(c["q"] for c in cases["cases"])
    entries: list[FaqEntry] = []
    copy = 0
    while len(entries) < TARGET_ENTRIES:
        for e in base:
            if len(entries) >= TARGET_ENTRIES:
                break
            entries.append(
                FaqEntry(
                    id=f"{e.id[:40]}-{copy}",
                    category=e.category,
                    questions=[perturb(q, rng) for q in e.questions],
                    answer=perturb(e.answer, rng),
                )
            )
        copy += 1
    return Faq(entries=entries), queries


def timed(match, queries: list[str], rounds: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    start = time.perf_counter()
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            match(q)
            latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return len(latencies) / total, p50, p99


def matcher_bytes(faq: Faq) -> int:
    """What one more matcher of ``faq`` holds once built (its index, tables, caches)."""
    FaqMatcher.build(faq)  # fills the process-wide lemma caches, which are not the index's
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    matcher = FaqMatcher.build(faq)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del matcher
    return size


def print_memory(big: Faq) -> None:
    faqs = {"1,000-entry": big}
    for name in ("school", "polyclinic"):
        faqs[name] = load_faq(DATA / f"{name}.yaml").faq
    for name, faq in faqs.items():
        size = matcher_bytes(faq)
        print(
            f"matcher memory, {name} FAQ: {size / 1024:.0f} KB, "
            f"{size / len(faq.entries) / 1024:.1f} KB per entry"
        )


def main() -> None:
    faq, queries = big_faq()
    n_questions = sum(len(e.questions) for e in faq.entries)
    print(
        f"FAQ: {len(faq.entries)} entries, {n_questions} question variants; {len(queries)} queries"
    )

    lexical = MatcherSettings(semantic="off")
    t = time.perf_counter()
    matcher = FaqMatcher.build(faq, lexical)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    matcher = FaqMatcher.build(faq, lexical)
    warm = time.perf_counter() - t
    print(
        f"lexical  build: cold {cold:.2f} s (first in process, loads pymorphy3), warm {warm:.2f} s"
    )
    timed(matcher.match, queries, 1)  # first pass fills the per-word caches
    rate, p50, p99 = timed(matcher.match, queries, 5)
    print(f"lexical  match: {rate:7.0f} matches/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    if "--no-vectors" not in sys.argv:
        vectors(faq, queries)

    questions = [q for e in faq.entries for q in e.questions]
    t = time.perf_counter()
    owners = [e.id for e in faq.entries for _ in e.questions]
    plain_build = time.perf_counter() - t

    def plain(q: str) -> str | None:
        hit = process.extractOne(q, questions, scorer=fuzz.WRatio)
        return owners[hit[2]] if hit else None

    p_rate, p_p50, p_p99 = timed(plain, queries, 2)
    print(f"rapidfuzz build: {plain_build:.3f} s")
    print(f"rapidfuzz match: {p_rate:7.0f} matches/s, p50 {p_p50:.2f} ms, p99 {p_p99:.2f} ms")
    print(f"ratio matcher/rapidfuzz: throughput x{rate / p_rate:.2f}, p99 x{p99 / p_p99:.2f}")
    print_memory(faq)


def vectors(faq: Faq, queries: list[str]) -> None:
    """The semantic side: the FAQ's vectors with an empty cache and a full one, the build as
    the app sees it (vectors in the background), and matching once the vectors are ready."""
    choice = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--encoder=")), None)
    encoder = shared_encoder(choice)
    if encoder is None:
        print(f"vectors: the package of encoder {choice or DEFAULT} is not installed")
        return
    print(f"encoder: {encoder.name}")
    with tempfile.TemporaryDirectory(prefix="faq-vectors-") as folder:
        cache = VectorCache(Path(folder))
        t = time.perf_counter()
        SemanticIndex(faq, encoder, cache).build()
        cold = time.perf_counter() - t
        t = time.perf_counter()
        SemanticIndex(faq, encoder, cache).build()
        warm = time.perf_counter() - t
        print(
            f"vectors  build: cold {cold:.1f} s (empty cache, {encoder.builders} batch(es) at "
            f"once, in the background in the app), warm {warm:.2f} s (from the disk cache)"
        )
        t = time.perf_counter()
        settings = MatcherSettings(encoder=choice)  # type: ignore[arg-type]
        matcher = FaqMatcher.build(faq, settings, vectors_dir=Path(folder), background=True)
        started = time.perf_counter() - t
        assert matcher.semantic is not None
        matcher.semantic.wait()
        ready = time.perf_counter() - t
        print(
            f"hybrid   build: {started:.2f} s until the matcher answers (lexically), "
            f"{ready:.2f} s until its vectors are ready (warm cache)"
        )
        embedded = 0
        for q in queries:
            pending = matcher.begin(q)
            embedded += not isinstance(pending, MatchResult) and matcher.needs_vector(pending)
        rate, p50, p99 = timed(matcher.match, queries, 2)
        print(
            f"hybrid   match: {rate:7.0f} matches/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms "
            f"({embedded} of {len(queries)} queries embedded, the rest decided lexically; "
            "heap not frozen)"
        )
        # `priemnaya run` freezes the heap built at start (runtime/heap.py): without that,
        # about one query in a hundred pays a full collection of the process (~20 ms here)
        heap.freeze()
        rate, p50, p99 = timed(matcher.match, queries, 2)
        print(
            f"hybrid   match: {rate:7.0f} matches/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms "
            "(heap frozen as in the app)"
        )
        print_parts(matcher, queries, 3)
        print_worst(matcher)
        gc.unfreeze()


def print_worst(matcher: FaqMatcher) -> None:
    """CPU time of the slowest messages a citizen can send: the encoder embeds only the
    start and end of a long one, within its token budget."""
    story = "Здравствуйте! " + "Мы переехали весной из другого города, сын пойдёт в школу. " * 65
    worst = {
        "4,000-character story": story + "Какие документы нужны для зачисления?",
        "200 emoji": "😀" * 200,
    }
    line = []
    for name, text in worst.items():
        assert matcher.semantic is not None
        took = []
        for _ in range(3):
            t0 = time.thread_time()
            pending = matcher.begin(text)
            vector = matcher.semantic.embed_query(text)
            if not isinstance(pending, MatchResult):
                matcher.finish(pending, vector)
            took.append((time.thread_time() - t0) * 1000)
        line.append(f"{name} {min(took):.0f} ms")
    print("hybrid   CPU of the longest messages (embedded at once): " + "; ".join(line))


def print_parts(matcher: FaqMatcher, queries: list[str], rounds: int) -> None:
    """CPU time of this thread (what one core spends, whatever else runs) per part of a
    hybrid match: the lexical part, the message's embedding, the rest (similarities,
    ranking, features, decision)."""
    parts: dict[str, list[float]] = {"lexical": [], "embed": [], "decide": [], "all": []}
    for _ in range(rounds):
        for q in queries:
            t0 = time.thread_time()
            pending = matcher.begin(q)
            t1 = t2 = t3 = time.thread_time()
            if not isinstance(pending, MatchResult):
                vector = None
                if matcher.semantic is not None and matcher.needs_vector(pending):
                    vector = matcher.semantic.embed_query(q)
                t2 = time.thread_time()
                matcher.finish(pending, vector)
                t3 = time.thread_time()
            for name, took in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                parts[name].append(took * 1000)
    line = []
    for name, xs in parts.items():
        xs.sort()
        line.append(f"{name} p50 {statistics.median(xs):.2f} p99 {xs[int(len(xs) * 0.99) - 1]:.2f}")
    print("hybrid   CPU ms per part: " + "; ".join(line))


if __name__ == "__main__":
    main()
