"""Analysis of the FAQ matcher on the dev files: ranking and confidence, in-sample and held-out.

`.venv/bin/python bench/faq_fit.py COMMAND`:
- `figures` (default): the eval figures with the default settings, per file and combined,
  for the dev FAQs, the check FAQs (used to choose among settings) and the unseen ones;
- `rank`: every in-scope case whose expected entry is not ranked first, with the top scores;
- `tune-rank`: coordinate descent of the ranking knobs on one file, measured on the other,
  both ways, then on both (top-1, then mean reciprocal rank);
- `joint`: coordinate search of the ranking knobs for what the decision can make of them
  (dev answered right at the bars, then the check FAQs); how the defaults were found;
- `tune-decision`: a grid over the decision knobs (thresholds, runner-up ratio, topic gap) that
  meets the wrong-answer bars with 1 point of slack, tuned on one file and measured on the
  other, both ways, then on both.
Not a test; prints figures only.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.faq.evaluation import combine, load_cases, run_cases
from handlers.faq.matcher import FaqMatcher, MatcherSettings
from handlers.faq.matching.scoring import score_entries
from handlers.faq.model import load_faq

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
DATA = FIXTURES / "faq-dev"
NAMES = ("school", "polyclinic")
# Institutions of other kinds, written blind to the matcher: the settings are chosen on the
# dev files, and these say how a choice carries to an FAQ it was not fitted on.
CHECK = FIXTURES / "faq-check"
CHECK_NAMES = ("kindergarten", "mfc")
# More institution kinds, also written blind, on which no setting was chosen: what a new
# institution can expect from the defaults before it adds synonyms or cases of its own.
UNSEEN = FIXTURES / "faq-unseen"
UNSEEN_NAMES = ("administration", "employment", "social", "college")


def load(name: str, settings: MatcherSettings | None = None):
    folder = CHECK if name in CHECK_NAMES else UNSEEN if name in UNSEEN_NAMES else DATA
    matcher = FaqMatcher.build(load_faq(folder / f"{name}.yaml").faq, settings)
    cases = load_cases(folder / f"{name}.cases.yaml").cases
    return matcher, cases


def ranking(name: str, settings: MatcherSettings | None = None, show: bool = True) -> int:
    m, cases = load(name, settings)
    right = 0
    for c in cases:
        if c.expect is None:
            continue
        terms = m._index.terms(c.q)
        scores = score_entries(m._index, terms, m._weights) if terms else []
        ids = [m._index.entries[s.index].entry_id for s in scores]
        if ids[:1] == [c.expect]:
            right += 1
            continue
        if show:
            rank = ids.index(c.expect) + 1 if c.expect in ids else None
            tops = ", ".join(f"{ids[k]}={scores[k].score:.2f}" for k in range(min(3, len(ids))))
            exp = f"{scores[rank - 1].score:.2f}" if rank else "-"
            print(f"[{name}] rank {rank} ({exp}) {c.q!r}\n    terms: {' '.join(terms)}\n    {tops}")
    return right


def figures(settings: MatcherSettings | None = None) -> None:
    for group in (NAMES, CHECK_NAMES, UNSEEN_NAMES):
        reports = []
        for name in group:
            m, cases = load(name, settings)
            r = run_cases(m, cases)
            reports.append(r)
            print(f"== {name}\n{r.summary()}")
        print(f"== total of {', '.join(group)}\n{combine(reports).summary()}")


def rank_stats(name: str, settings: MatcherSettings) -> tuple[int, float]:
    """Top-1 right and mean reciprocal rank of the expected entry, on in-scope cases."""
    m, cases = load(name, settings)
    top1 = 0
    mrr = 0.0
    for c in cases:
        if c.expect is None:
            continue
        seq = m._index.terms(c.q)
        scores = score_entries(m._index, seq, m._weights, limit=0) if seq else []
        ids = [m._index.entries[s.index].entry_id for s in scores]
        if c.expect in ids:
            r = ids.index(c.expect) + 1
            top1 += r == 1
            mrr += 1.0 / r
    return top1, mrr


GRID: dict[str, list[float]] = {
    "non_topic_word_weight": [1.0, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3],
    "answer_document_share": [0.25, 0.5, 0.6, 0.7, 0.8, 1.0],
    "answer_field_weight": [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9],
    "category_field_weight": [0.0, 0.15, 0.2, 0.3, 0.4],
    "query_coverage_share": [0.7, 0.8, 0.85, 0.9, 0.95],
    "bigram_bonus": [0.0, 0.05, 0.1, 0.12, 0.15, 0.18, 0.2],
    "narrative_word_weight": [0.2, 0.3, 0.35, 0.4, 0.5],
    "unknown_word_weight": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "prefix_similarity": [0.5, 0.6, 0.7, 0.8],
}


def descend(names: tuple[str, ...], base: dict[str, float], rounds: int = 2) -> dict[str, float]:
    """Coordinate descent of the ranking (top-1, then MRR) on the named files."""
    best = dict(base)

    def value(params: dict[str, float]) -> tuple[int, float]:
        s = MatcherSettings(**params)
        stats = [rank_stats(n, s) for n in names]
        return sum(t for t, _ in stats), round(sum(r for _, r in stats), 3)

    current = value(best)
    for _ in range(rounds):
        changed = False
        for key, options in GRID.items():
            for v in options:
                trial = {**best, key: v}
                got = value(trial)
                if got > current:
                    best, current, changed = trial, got, True
        if not changed:
            break
    print(f"tuned on {names}: {current} with {best}")
    return best


def heldout_ranking() -> None:
    for train, test in (("school", "polyclinic"), ("polyclinic", "school")):
        params = descend((train,), {})
        s = MatcherSettings(**params)
        print(
            f"  held-out {test}: {rank_stats(test, s)}; default {rank_stats(test, MatcherSettings())}"
        )
    params = descend(NAMES, {})


def features(name: str, settings: MatcherSettings) -> list[dict]:
    """Per case: what the decision rule looks at (scores, the topic gap, a complaint)."""
    m, cases = load(name, settings)
    rows = []
    for c in cases:
        r = m.match(c.q)
        seq = m._index.terms(c.q)
        scores = score_entries(m._index, seq, m._weights) if seq else []
        gap = m.topic_gap(c.q, scores[0]) if scores else 0.0
        rows.append(
            {
                "expect": c.expect,
                "ids": [m._index.entries[s.index].entry_id for s in scores[:3]],
                "scores": [s.score for s in scores[:3]],
                "gap": gap,
                "hard": r.decision.value in ("smalltalk",) or r.reason in ("complaint",),
            }
        )
    return rows


def decide(row: dict, p: dict) -> tuple[str, list[str]]:
    sc, ids = row["scores"], row["ids"]
    if not sc or sc[0] < p["clarify_threshold"] or row["hard"]:
        return "escalate", ids
    top, second = sc[0], (sc[1] if len(sc) > 1 else 0.0)
    if top >= p["answer_threshold"] and second <= p["answer_max_ratio"] * top:
        if row["gap"] <= p["max_unexplained_topic"]:
            return "answer", ids
    offered = [i for i, s in zip(ids, sc, strict=False) if s >= p["clarify_relative"] * top]
    return "clarify", offered if len(offered) >= 2 else ids[:2]


def tally(rows: list[dict], p: dict) -> dict[str, int]:
    t = dict(ins=0, oos=0, ok=0, wrong=0, offered=0, oos_ans=0)
    for row in rows:
        d, ids = decide(row, p)
        if row["expect"] is None:
            t["oos"] += 1
            t["oos_ans"] += d == "answer"
        else:
            t["ins"] += 1
            if d == "answer":
                t["ok" if ids[0] == row["expect"] else "wrong"] += 1
            elif d == "clarify" and row["expect"] in ids:
                t["offered"] += 1
    return t


def meets(t: dict[str, int], slack: float = 0.0, offer_slack: float | None = None) -> bool:
    """The issue's bars, each tightened by ``slack`` (the 92% one by ``offer_slack``)."""
    offer_slack = slack if offer_slack is None else offer_slack
    return (
        t["wrong"] <= (0.03 - slack) * t["ins"]
        and t["oos_ans"] <= (0.10 - slack) * t["oos"]
        and t["ok"] + t["offered"] >= (0.92 + offer_slack) * t["ins"]
    )


DECISION_GRID = {
    "answer_threshold": [0.2 + 0.02 * i for i in range(16)],
    "answer_max_ratio": [0.5 + 0.05 * i for i in range(10)],
    "max_unexplained_topic": [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5],
    "clarify_threshold": [0.1, 0.15, 0.2],
    "clarify_relative": [0.4, 0.5, 0.6],
}


def tune_decision(rows: list[dict], slack: float = 0.0) -> tuple[dict, dict]:
    import itertools as it

    best, best_t = None, None
    keys = list(DECISION_GRID)
    for values in it.product(*DECISION_GRID.values()):
        p = dict(zip(keys, values, strict=True))
        t = tally(rows, p)
        if not meets(t, slack):
            continue
        # Most answered right; among ties the most conservative (highest threshold, ratio).
        key = (t["ok"], -t["wrong"], -t["oos_ans"], p["answer_threshold"], -p["answer_max_ratio"])
        if best is None or key > best:
            best, best_t = key, (p, t)
    return best_t if best_t else ({}, {})


def heldout_decision(settings: MatcherSettings | None = None, slack: float = 0.01) -> None:
    settings = settings or MatcherSettings()
    rows = {n: features(n, settings) for n in NAMES}
    for train, test in (("school", "polyclinic"), ("polyclinic", "school")):
        p, t = tune_decision(rows[train], slack)
        print(f"tuned on {train}: {t} with {p}")
        print(f"  held-out {test}: {tally(rows[test], p)}")
    p, t = tune_decision(rows["school"] + rows["polyclinic"], slack)
    print(f"tuned on both: {t} with {p}")
    default = {k: getattr(settings, k) for k in DECISION_GRID}
    for n in NAMES:
        print(f"  default on {n}: {tally(rows[n], default)}")


ANSWER_GRID = {
    "answer_threshold": [0.2 + 0.02 * i for i in range(25)],
    "answer_max_ratio": [0.5 + 0.05 * i for i in range(11)],
    "max_unexplained_topic": [0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1.0],
}


def best_answering(rows: list[dict], slack: float, fixed: dict) -> tuple[dict, dict]:
    """The answer thresholds that answer most right while meeting the bars with ``slack``."""
    import itertools as it

    best, best_t = None, ({}, {})
    keys = list(ANSWER_GRID)
    for values in it.product(*ANSWER_GRID.values()):
        p = {**fixed, **dict(zip(keys, values, strict=True))}
        t = tally(rows, p)
        if meets(t, slack, 0.0) and (best is None or (t["ok"], -t["wrong"] - t["oos_ans"]) > best):
            best, best_t = (t["ok"], -t["wrong"] - t["oos_ans"]), (p, t)
    return best_t


def joint(rounds: int = 2) -> None:
    """Coordinate search of the ranking knobs for what the answer rule can make of them.

    For each setting of the knobs, the answer thresholds are picked on the dev files to
    answer the most right while keeping under the bars with some slack (2.5% wrong, 8.3% of
    uncovered questions answered). A setting is better if it answers more dev questions
    right, up to the bar (160 of 200: more than that only fits the dev files), then if the
    check files (other institution kinds) fare better at those thresholds: right answers,
    minus 3 per wrong answer and 1 per uncovered question answered. This is how the
    defaults of MatcherSettings were found."""
    base = MatcherSettings()
    fixed = {k: getattr(base, k) for k in ("clarify_threshold", "clarify_relative")}
    slack = 0.005  # 3% -> 2.5% wrong; 10% -> 9.5% (5 of 60) uncovered answered

    def value(params: dict[str, float]) -> tuple[tuple[int, int], dict]:
        s = base.model_copy(update=params)
        dev = [row for n in NAMES for row in features(n, s)]
        p, t = best_answering(dev, slack, fixed)
        if not p:
            return (-1, 0), {}
        check = {n: tally(features(n, s), p) for n in CHECK_NAMES}
        score = sum(c["ok"] - 3 * c["wrong"] - c["oos_ans"] for c in check.values())
        return (min(t["ok"], 160), score), {"thresholds": p, "dev": t, "check": check}

    best: dict[str, float] = {}
    current, info = value(best)
    print(f"current defaults: {current} {info}")
    for _ in range(rounds):
        changed = False
        for key, options in GRID.items():
            for v in options:
                trial = {**best, key: v}
                got, trial_info = value(trial)
                if got > current:
                    best, current, info, changed = trial, got, trial_info, True
                    print(f"{current} with {best}", flush=True)
        if not changed:
            break
    print(f"best: {current} with {best}\n{info}")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "figures"
    if cmd == "rank":
        print(f"top-1 right: {sum(ranking(n) for n in NAMES)}/200")
    elif cmd == "tune-decision":
        heldout_decision()
    elif cmd == "joint":
        joint()
    elif cmd == "tune-rank":
        heldout_ranking()
    else:
        figures()
