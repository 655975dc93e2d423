"""Grouping up to a few thousand short texts by meaning, in time near-linear in practice.

The unanswered-questions report (handlers/reports/unanswered.py) turns each question into a
unit-length TF-IDF vector and groups them here:

1. first-order similarity: the cosine of two questions' vectors. It is computed a block of
   rows at a time from the vectors' postings (numpy does the arithmetic; Python loops only
   over the terms), and each question keeps its ``neighbours`` most similar others;
2. second-order similarity: the cosine of two questions' rows of that neighbour graph.
   Two paraphrases that share no word ("где стол находок?", "сын забыл сменку, никто не
   находил?") are still alike when they resemble the same others;
3. average linkage (two groups merge while their questions are, on average, at least
   ``threshold`` similar; pairs with nothing in common count 0), by the nearest-neighbour
   chain algorithm over the dense second-order matrix: O(n²) arithmetic, O(n) Python steps.
   Average linkage does not chain unrelated questions through one shared word the way
   single linkage would, and needs no number of clusters given in advance.

Questions that are alike in a big batch (a thousand parents asking about the school bus)
made the previous all-pairs version cubic: 12 s for 500 questions, 154 s for 1,000. With
at most ``neighbours`` + 1 questions nothing is cut, so small batches group exactly as
before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

#: how many most-similar others each question keeps for the second-order similarity
NEIGHBOURS = 50
#: rows of the first-order similarity computed at once (a block is BLOCK x n floats)
BLOCK = 256

Floats = npt.NDArray[np.float32]


def cluster_vectors(
    vectors: Sequence[Mapping[str, float]], threshold: float, neighbours: int = NEIGHBOURS
) -> list[list[int]]:
    """Clusters of the vectors' indices, largest first (ties: the earliest question first).

    Questions with the same vector (the same words, however written) are one row with their
    count as its weight: they would merge first anyway (their rows are identical), and a
    question asked a hundred times does not fill everyone's neighbours with its copies."""
    if not vectors:
        return []
    nodes: dict[tuple[tuple[str, float], ...], list[int]] = {}
    for i, vec in enumerate(vectors):
        nodes.setdefault(tuple(sorted(vec.items())), []).append(i)
    copies = list(nodes.values())
    unique = [vectors[c[0]] for c in copies]
    counts = [len(c) for c in copies]
    rows = _neighbour_rows(unique, neighbours)
    groups = average_linkage(_second_order(rows, counts), threshold, counts)
    clusters = [sorted(i for node in group for i in copies[node]) for group in groups]
    return sorted(clusters, key=lambda c: (-len(c), c[0]))


def _neighbour_rows(
    vectors: Sequence[Mapping[str, float]], neighbours: int
) -> list[dict[int, float]]:
    """Each question's cosine to itself (1) and its most similar others, made symmetric
    (a pair is kept when either question keeps it)."""
    n = len(vectors)
    docs: dict[str, list[int]] = {}
    weights: dict[str, list[float]] = {}
    for i, vec in enumerate(vectors):
        for term, w in vec.items():
            docs.setdefault(term, []).append(i)
            weights.setdefault(term, []).append(w)
    postings = {
        t: (np.array(d, dtype=np.intp), np.array(weights[t], dtype=np.float32))
        for t, d in docs.items()
    }
    rows: list[dict[int, float]] = [{i: 1.0} for i in range(n)]
    keep = min(neighbours, n - 1)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        block = np.zeros((stop - start, n), dtype=np.float32)
        terms = {t for vec in vectors[start:stop] for t in vec}
        for term in terms:
            ids, ws = postings[term]
            lo, hi = np.searchsorted(ids, (start, stop))
            block[np.ix_(ids[lo:hi] - start, ids)] += np.outer(ws[lo:hi], ws)
        local = np.arange(stop - start)
        block[local, local + start] = 0.0  # itself is not its own neighbour
        for r in range(stop - start):
            i = start + r
            row = block[r]
            cols = np.flatnonzero(row > 0.0)  # most questions share nothing with this one
            if cols.size > keep:
                cols = cols[np.argpartition(row[cols], cols.size - keep)[-keep:]]
            for j, s in zip(cols.tolist(), row[cols].tolist(), strict=True):
                rows[i][j] = s
                rows[j][i] = s
    return rows


def _second_order(rows: list[dict[int, float]], counts: Sequence[int]) -> Floats:
    """The cosine of every two rows (dense n x n, the diagonal left at 0), a column
    counting as many times as its vector was asked."""
    n = len(rows)
    columns: dict[int, tuple[list[int], list[float]]] = {}
    for i, row in enumerate(rows):
        norm = float(np.sqrt(sum(counts[k] * w * w for k, w in row.items())))
        for k, w in row.items():
            ids, ws = columns.setdefault(k, ([], []))
            ids.append(i)
            ws.append(w / norm)
    similar = np.zeros((n, n), dtype=np.float32)
    for k, (ids, ws) in columns.items():
        idx = np.array(ids, dtype=np.intp)
        column = np.array(ws, dtype=np.float32)
        similar[np.ix_(idx, idx)] += counts[k] * np.outer(column, column)
    np.fill_diagonal(similar, 0.0)
    return similar


def average_linkage(
    similar: Floats, threshold: float, sizes: Sequence[int] | None = None
) -> list[list[int]]:
    """Average-linkage clusters of a symmetric similarity matrix (consumed), merging while
    the best average similarity is at least ``threshold``; largest first.

    The nearest-neighbour chain finds the same merges as always merging the globally most
    similar pair (average linkage is reducible: a merged group is never more similar to a
    third than the closer of its parts), one row operation per step. A group whose most
    similar other is below the threshold is final, and so is the chain that led to it."""
    n = similar.shape[0]
    m = similar
    np.fill_diagonal(m, -np.inf)
    size = np.ones(n, dtype=np.float32)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    alive = set(range(n))
    done: list[list[int]] = []
    chain: list[int] = []
    first = 0  # the lowest index that may be alive: groups only ever leave
    while alive:
        if not chain:
            while first not in alive:
                first += 1
            chain.append(first)
        a = chain[-1]
        row = m[a]
        b = int(np.argmax(row))
        best = float(row[b])
        if len(chain) > 1 and float(row[chain[-2]]) >= best:
            b = chain[-2]  # ties go back down the chain, so it always ends
        if best < threshold or b not in alive:
            for c in chain:  # every link of the chain is weaker still: all final
                done.append(members.pop(c))
                alive.discard(c)
                m[c, :] = -np.inf
                m[:, c] = -np.inf
            chain.clear()
            continue
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            merged = (size[a] * m[a] + size[b] * m[b]) / (size[a] + size[b])
            size[a] += size[b]
            m[a, :] = merged
            m[:, a] = merged
            m[b, :] = -np.inf
            m[:, b] = -np.inf
            m[a, a] = -np.inf
            members[a] = members[a] + members.pop(b)
            alive.discard(b)
        else:
            chain.append(b)
    return sorted((sorted(c) for c in done), key=lambda c: (-len(c), c[0]))
