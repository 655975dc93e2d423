"""The matcher measured on the dev FAQs, and the `faq eval` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from handlers.faq.evaluation import EvalReport, combine, evaluate, evaluate_cases_file
from runtime.cli.faq import register

DATA = Path(__file__).parent / "fixtures" / "faq-dev"
PAIRS = [(DATA / f"{n}.yaml", DATA / f"{n}.cases.yaml") for n in ("school", "polyclinic")]


@pytest.fixture(scope="module")
def reports() -> list[EvalReport]:
    return [evaluate(faq, cases) for faq, cases in PAIRS]


@pytest.fixture(scope="module")
def total(reports: list[EvalReport]) -> EvalReport:
    return combine(reports)


def test_counts_add_up(reports: list[EvalReport], total: EvalReport) -> None:
    for r in [*reports, total]:
        assert r.cases == r.in_scope + r.out_of_scope
        assert (
            r.answered_correct + r.answered_wrong + r.clarified_with_expected + r.escalated_in_scope
            <= r.in_scope
        )
    assert total.cases == sum(r.cases for r in reports)


def test_few_wrong_answers(total: EvalReport) -> None:
    assert total.answered_wrong <= 0.03 * total.in_scope


def test_uncovered_questions_are_rarely_answered(total: EvalReport) -> None:
    assert total.out_of_scope_answered <= 0.10 * total.out_of_scope


def test_right_entry_is_answered_or_offered(total: EvalReport) -> None:
    assert total.answered_correct + total.clarified_with_expected >= 0.92 * total.in_scope


def test_most_covered_questions_are_answered(total: EvalReport) -> None:
    """The dev bar of the matching issue. The decision is fitted on 32 institution kinds,
    these two among them, so this is in sample: 84.5% right at once through the map of three
    matrices (81.5% through two, 79% through one, 65% unmapped); with each of the two left
    out of the fitting (bench/faq_loko.py loko), 76.5%."""
    assert total.answered_correct >= 0.80 * total.in_scope


CHECK = Path(__file__).parent / "fixtures" / "faq-check"


def test_faqs_of_other_institution_kinds_get_few_wrong_answers() -> None:
    """FAQs of other institution kinds (a kindergarten, an MFC), written blind to the
    matcher; the defaults were fitted on the dev files and these only chose among settings
    that met the dev bars. A wrong answer from a state institution is the costliest
    mistake, so that bar must hold here too."""
    checks = [
        evaluate(CHECK / f"{n}.yaml", CHECK / f"{n}.cases.yaml") for n in ("kindergarten", "mfc")
    ]
    total = combine(checks)
    assert total.answered_wrong <= 0.03 * total.in_scope
    assert total.answered_correct + total.clarified_with_expected >= 0.85 * total.in_scope


def test_cases_file_names_its_faq(reports: list[EvalReport]) -> None:
    again = evaluate_cases_file(DATA / "school.cases.yaml")
    assert again.counts() == reports[0].counts()


def _cli(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="priemnaya")
    register(parser.add_subparsers())
    return parser.parse_args(args)


def test_cli_json_prints_one_object_with_the_counts(
    capsys: pytest.CaptureFixture[str], total: EvalReport
) -> None:
    files = [str(p) for pair in PAIRS for p in pair]
    args = _cli(["faq", "eval", *files, "--json"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == total.counts()
    assert all(isinstance(v, int) for v in data.values())


def test_cli_prints_failures_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    faq, cases = PAIRS[1]
    args = _cli(["faq", "eval", str(faq), str(cases)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "отвечено верно:" in out and "отвечено неверно:" in out
    assert "ожидалось:" in out and "получено:" in out


def test_cli_rejects_odd_number_of_files(capsys: pytest.CaptureFixture[str]) -> None:
    args = _cli(["faq", "eval", str(PAIRS[0][0])])
    assert args.func(args) == 2
