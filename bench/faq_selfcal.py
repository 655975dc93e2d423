"""Experiment (negative result): self-supervised, per-FAQ calibration of the decision thresholds.

`.venv/bin/python bench/faq_selfcal.py` fits each dev FAQ's thresholds on probes made from the
FAQ alone (no labelled cases), then measures the dev cases, which are therefore held out, next
to the shipped defaults and to the in-sample oracle (the best thresholds per file chosen on
the dev cases themselves, an upper bound for any per-FAQ threshold calibration).
Prints figures only; not a test.


No labelled questions are needed. At build time the FAQ itself yields probes whose right
outcome is known:
- in scope (the entry that should answer is known): every question variant held out of the
  index and asked against the rest (leave-one-variant-out, two rotations), also with a word
  dropped; a few content words of a sentence of the entry's answer; the category's words with
  a word of the entry;
- out of scope (nothing should be answered): words of two entries of different categories
  mixed; an entry's words with a topic word the FAQ never uses; two such foreign words with
  one word of the FAQ.
The thresholds (lowest top score, largest runner-up ratio, largest unexplained topic share)
are then chosen within sane global bounds as the ones that answer the most in-scope probes
while keeping the probes' wrong answers and answered out-of-scope probes under a target.
"""

from __future__ import annotations

import itertools
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from handlers.faq.matching.analysis import is_number
from handlers.faq.matching.index import FaqIndex
from handlers.faq.matching.morph import is_noun_like
from handlers.faq.matching.scoring import ScoreWeights, score_entries
from handlers.faq.matching.text import strip_markup
from handlers.faq.model import Faq

# Topic words no public-service FAQ is likely to be about; used only when this FAQ never
# uses them (nor anything like them).
FOREIGN_TOPICS: tuple[str, ...] = tuple(
    """
    пенсия налог штраф квартира автобус проезд загранпаспорт собака кошка ремонт крыша
    мусор вода отопление дорога машина парковка газ электричество банк кредит ипотека
    футбол концерт театр магазин рынок такси поезд самолет билет море пляж отпуск
    оружие охота рыбалка суд полиция армия выборы депутат церковь кладбище гараж дача
    огород сосед лифт подъезд интернет телефон компьютер погода снег лед праздник салют
    """.split()
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    answer: float
    max_ratio: float
    max_topic_gap: float
    probes_in: int = 0
    probes_out: int = 0


@dataclass(frozen=True, slots=True)
class Bounds:
    answer: tuple[float, float] = (0.3, 0.55)
    max_ratio: tuple[float, float] = (0.65, 0.9)
    max_topic_gap: tuple[float, float] = (0.2, 0.4)


_SENTENCE = re.compile(r"[.!?;\n]+")


def calibrate(
    faq: Faq,
    index: FaqIndex,
    make_index: Callable[[Faq], FaqIndex],
    weights: ScoreWeights,
    is_foreign_topic: Callable[[FaqIndex, str], bool],
    *,
    max_wrong: float = 0.02,
    max_out_answered: float = 0.05,
    max_probes: int = 600,
    bounds: Bounds | None = None,
    seed: int = 17,
    debug: dict | None = None,
) -> Thresholds | None:
    """Thresholds for this FAQ, or None when it is too small to learn anything from."""
    bounds = bounds or Bounds()
    rng = random.Random(seed)
    n = len(faq.entries)
    if n < 4:
        return None
    rows_in: list[tuple[float, float, float, bool]] = []
    rows_out: list[tuple[float, float, float]] = []

    def features(idx: FaqIndex, seq: list[str]) -> tuple[float, float, float, int] | None:
        terms = [t for t in seq if not is_number(t)]
        if not terms:
            return None
        scores = score_entries(idx, seq, weights, limit=1)
        if not scores:
            return (0.0, 0.0, 0.0, -1)
        top = scores[0].score
        second = scores[1].score if len(scores) > 1 else 0.0
        gap = max(
            (share for w, share in scores[0].unexplained if is_foreign_topic(idx, w)), default=0.0
        )
        return top, (second / top if top else 0.0), gap, scores[0].index

    budget_in = max_probes * 2 // 3
    budget_out = max_probes - budget_in

    # In scope: leave-one-variant-out, in two rotations so that every variant of an entry with
    # two or three variants is held out once.
    loo: list[tuple[FaqIndex, int, str]] = []
    for rotation in range(2):
        held: dict[int, int] = {}
        entries = []
        for i, e in enumerate(faq.entries):
            if len(e.questions) >= 2:
                k = (i + rotation) % len(e.questions)
                held[i] = k
                qs = [q for j, q in enumerate(e.questions) if j != k]
                entries.append(e.model_copy(update={"questions": qs}))
            else:
                entries.append(e)
        if not held:
            break
        sample = list(held.items())
        if len(sample) > budget_in // 4:
            sample = rng.sample(sample, budget_in // 4)
        idx = make_index(faq.model_copy(update={"entries": entries}))
        for i, k in sample:
            loo.append((idx, i, faq.entries[i].questions[k]))
    in_probes: list[tuple[FaqIndex, list[str], int]] = []
    for idx, i, text in loo:
        seq = idx.terms(text)
        in_probes.append((idx, seq, i))
        content = [t for t in seq if not is_number(t)]
        if len(content) >= 3:
            drop = rng.randrange(len(seq))
            in_probes.append((idx, seq[:drop] + seq[drop + 1 :], i))
    # In scope: answer sentences and category words, against the full index.
    others = list(range(n))
    rng.shuffle(others)
    for i in others[: max(1, budget_in // 4)]:
        e = faq.entries[i]
        sentences = [s for s in _SENTENCE.split(strip_markup(e.answer)) if s.strip()]
        if sentences:
            seq = [t for t in index.terms(rng.choice(sentences)) if not is_number(t)]
            if len(seq) >= 3:
                start = rng.randrange(max(1, len(seq) - 3))
                in_probes.append((index, seq[start : start + rng.randint(3, 5)], i))
        q_terms = sorted(index.entries[i].question_terms)
        cat = [t for t in index.terms(e.category) if not is_number(t)]
        if q_terms and cat:
            in_probes.append((index, [*cat, rng.choice(q_terms)], i))
    for idx, seq, i in in_probes[:budget_in]:
        f = features(idx, seq)
        if f is not None:
            rows_in.append((f[0], f[1], f[2], f[3] == i))

    # Out of scope: each entry's most distinctive topic word (its rarest noun) stands for it.
    def distinctive(i: int) -> str | None:
        nouns = [t for t in index.entries[i].question_terms if is_noun_like(t)]
        return max(nouns, key=lambda t: (index.idf[t], t)) if nouns else None

    marks = [distinctive(i) for i in range(n)]
    foreign = [w for w in FOREIGN_TOPICS if not index.relatives(w)]
    categories = [e.category for e in faq.entries]
    out_probes: list[list[str]] = []
    per_kind = max(1, budget_out // 3)
    for _ in range(per_kind):
        i, j = rng.sample(range(n), 2)
        a, b = marks[i], marks[j]
        if a is None or b is None or a == b:
            continue
        if categories[i] == categories[j] and len(set(categories)) > 1:
            continue
        # Neither entry may hold both words: that would be a question about it.
        if any({a, b} <= (index.entries[k].question_terms | index.answer_terms(k)) for k in (i, j)):
            continue
        out_probes.append([a, b])
    if foreign:
        for _ in range(2 * per_kind):
            i = rng.randrange(n)
            if marks[i] is None:
                continue
            words = [marks[i], rng.choice(foreign)]
            rng.shuffle(words)
            out_probes.append(words)
    for seq in out_probes:
        f = features(index, seq)
        if f is not None:
            rows_out.append((f[0], f[1], f[2]))

    if debug is not None:
        debug["in"] = rows_in
        debug["out"] = rows_out
        debug["out_probes"] = out_probes
    if len(rows_in) < 10 or len(rows_out) < 10:
        return None
    return _fit(rows_in, rows_out, bounds, max_wrong, max_out_answered)


def _grid(lo: float, hi: float, step: float) -> list[float]:
    count = round((hi - lo) / step)
    return [round(lo + step * k, 4) for k in range(count + 1)]


def _fit(
    rows_in: list[tuple[float, float, float, bool]],
    rows_out: list[tuple[float, float, float]],
    bounds: Bounds,
    max_wrong: float,
    max_out_answered: float,
) -> Thresholds:
    best: tuple | None = None
    n_in, n_out = len(rows_in), len(rows_out)
    # Nothing meets the targets: the most conservative thresholds the bounds allow.
    chosen = Thresholds(bounds.answer[1], bounds.max_ratio[0], bounds.max_topic_gap[0], n_in, n_out)
    for a, r, g in itertools.product(
        _grid(*bounds.answer, 0.02),
        _grid(*bounds.max_ratio, 0.05),
        _grid(*bounds.max_topic_gap, 0.05),
    ):
        ok = wrong = 0
        for top, ratio, gap, right in rows_in:
            if top >= a and ratio <= r and gap <= g:
                if right:
                    ok += 1
                else:
                    wrong += 1
        if wrong > max_wrong * n_in:
            continue
        out = sum(1 for top, ratio, gap in rows_out if top >= a and ratio <= r and gap <= g)
        if out > max_out_answered * n_out:
            continue
        # Most in-scope probes answered right; among ties the most conservative thresholds.
        key = (ok, -wrong, -out, a, -r, -g)
        if best is None or key > best:
            best = key
            chosen = Thresholds(a, r, g, n_in, n_out)
    return chosen


def main() -> None:
    from faq_fit import NAMES, features, load, tune_decision

    from handlers.faq.evaluation import combine, run_cases
    from handlers.faq.matcher import MatcherSettings
    from handlers.faq.matching.lexicon import NARRATIVE_WORDS

    def _foreign_topic(idx: FaqIndex, w: str) -> bool:
        return w not in NARRATIVE_WORDS and not idx.relatives(w) and is_noun_like(w)

    def pct(n: int, d: int) -> str:
        return f"{100.0 * n / d:5.1f}%"

    def line(label: str, c: dict[str, int]) -> str:
        i, o = c["in_scope"], c["out_of_scope"]
        return (
            f"{label:<28} answered right {pct(c['answered_correct'], i)}  "
            f"+clarified {pct(c['answered_correct'] + c['clarified_with_expected'], i)}  "
            f"wrong {pct(c['answered_wrong'], i)}  out-of-scope answered "
            f"{pct(c['out_of_scope_answered'], o)}"
        )

    defaults = MatcherSettings()
    reports = {"defaults": [], "self-calibrated": []}
    for name in NAMES:
        m, cases = load(name, defaults)
        t = time.perf_counter()
        debug: dict = {}
        fitted = calibrate(
            m.faq, m._index, _make_index(defaults), m._weights, _foreign_topic, debug=debug
        )
        took = time.perf_counter() - t
        print(
            f"== {name}: {len(debug.get('in', []))} in-scope probes "
            f"({sum(r[3] for r in debug.get('in', []))} ranked right), "
            f"{len(debug.get('out', []))} out-of-scope probes, {took:.2f} s"
        )
        print(f"   fitted: {fitted}")
        d_in, d_out = debug.get("in", []), debug.get("out", [])
        a, r, g = (
            defaults.answer_threshold,
            defaults.answer_max_ratio,
            defaults.max_unexplained_topic,
        )
        p_ok = sum(1 for t, ra, ga, ok in d_in if t >= a and ra <= r and ga <= g and ok)
        p_wrong = sum(1 for t, ra, ga, ok in d_in if t >= a and ra <= r and ga <= g and not ok)
        p_out = sum(1 for t, ra, ga in d_out if t >= a and ra <= r and ga <= g)
        print(
            f"   probes at the default thresholds: answered right {pct(p_ok, len(d_in))}, "
            f"wrong {pct(p_wrong, len(d_in))}, out-of-scope answered {pct(p_out, len(d_out))}"
        )
        reports["defaults"].append(run_cases(m, cases))
        if fitted is None:
            cal = defaults
        else:
            cal = MatcherSettings(
                answer_threshold=fitted.answer,
                answer_max_ratio=fitted.max_ratio,
                max_unexplained_topic=fitted.max_topic_gap,
            )
        mc, _ = load(name, cal)
        reports["self-calibrated"].append(run_cases(mc, cases))
        for label, reps in reports.items():
            print("   " + line(label, reps[-1].counts()))
        _p, t_oracle = tune_decision(features(name, defaults), 0.0)
        print(f"   oracle (in-sample, best thresholds on this file's dev cases): {t_oracle}")
    print("== combined")
    for label, reps in reports.items():
        print("   " + line(label, combine(reps).counts()))


def _make_index(settings):  # type: ignore[no-untyped-def]
    def make(faq: Faq) -> FaqIndex:
        return FaqIndex(
            faq,
            prefix_min=settings.prefix_min,
            prefix_similarity=settings.prefix_similarity,
            typo_cutoff=settings.typo_cutoff,
            typo_similarity=settings.typo_similarity,
            fields=settings.field_weights(),
        )

    return make


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    main()
