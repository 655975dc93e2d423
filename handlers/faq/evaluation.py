"""Measuring a matcher on sample questions: ``priemnaya faq eval``.

A cases file lists questions citizens ask and the entry that should answer each, or null
when the FAQ does not cover it (the bot must then not answer). Counting follows what a
citizen experiences: an ANSWER is right or wrong; a CLARIFY that offers the right entry
still gets them there in one tap; SMALLTALK and ESCALATE are "not answered".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bots.core.yamlfile import load_yaml, validate
from handlers.faq.matcher import Decision, FaqMatcher, MatcherSettings, MatchResult
from handlers.faq.model import load_faq


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    q: str
    expect: str | None


class CasesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: the FAQ file, relative to the cases file; may be left out when the FAQ is given
    #: otherwise (``faq eval -c CONFIG -i ID CASES``)
    faq: str | None = None
    cases: list[EvalCase]


@dataclass(slots=True)
class Failure:
    """A case the matcher did not handle as expected."""

    q: str
    expected: str | None
    decision: str
    got: list[str]


COUNT_FIELDS = (
    "cases",
    "in_scope",
    "answered_correct",
    "answered_wrong",
    "clarified_with_expected",
    "escalated_in_scope",
    "out_of_scope",
    "out_of_scope_answered",
)


@dataclass(slots=True)
class EvalReport:
    cases: int = 0
    in_scope: int = 0
    answered_correct: int = 0
    answered_wrong: int = 0
    clarified_with_expected: int = 0
    escalated_in_scope: int = 0
    out_of_scope: int = 0
    out_of_scope_answered: int = 0
    failures: list[Failure] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    def to_json(self) -> str:
        """One JSON object: the integer counts, plus the failures."""
        data: dict[str, Any] = self.counts()
        data["failures"] = [asdict(f) for f in self.failures]
        return json.dumps(data, ensure_ascii=False)

    def summary(self) -> str:
        """The figures in Russian, for the admin who runs ``faq eval`` or ``faq fit``."""

        def pct(n: int, d: int) -> str:
            return f"{100.0 * n / d:.1f}%" if d else "-"

        i, o = self.in_scope, self.out_of_scope
        covered, uncovered = "вопросов с ответом", "вопросов без ответа"
        rows = [
            ("отвечено верно:", self.answered_correct, i, covered),
            (
                "верно или верная статья в выборе:",
                self.answered_correct + self.clarified_with_expected,
                i,
                covered,
            ),
            ("отвечено неверно:", self.answered_wrong, i, covered),
            ("передано сотрудникам, хотя ответ есть:", self.escalated_in_scope, i, covered),
            ("отвечено, хотя ответа нет:", self.out_of_scope_answered, o, uncovered),
        ]
        width = max(len(label) for label, *_ in rows)
        return "\n".join(
            [f"вопросов: {self.cases} (ответ в FAQ есть: {i}, нет: {o})"]
            + [f"{label:<{width}} {n:4d}  {pct(n, d)} {of}" for label, n, d, of in rows]
        )


def combine(reports: list[EvalReport]) -> EvalReport:
    """The sum of several reports (e.g. one per FAQ)."""
    total = EvalReport()
    for report in reports:
        for f in fields(EvalReport):
            if f.name == "failures":
                total.failures.extend(report.failures)
            else:
                setattr(total, f.name, getattr(total, f.name) + getattr(report, f.name))
    return total


def load_cases(cases_path: Path) -> CasesFile:
    return validate(CasesFile, load_yaml(cases_path))


def evaluate(
    faq_path: Path | str, cases_path: Path | str, settings: MatcherSettings | None = None
) -> EvalReport:
    """Run every case of ``cases_path`` against the FAQ at ``faq_path``.

    The cases file's own ``faq:`` key (relative to the cases file) is ignored here; use
    :func:`evaluate_cases_file` to follow it.
    """
    matcher = FaqMatcher.build(load_faq(Path(faq_path)).faq, settings, background=False)
    return run_cases(matcher, load_cases(Path(cases_path)).cases)


def evaluate_cases_file(
    cases_path: Path | str, settings: MatcherSettings | None = None
) -> EvalReport:
    """Evaluate a cases file against the FAQ its ``faq:`` key names (relative to it)."""
    cases_path = Path(cases_path)
    cases = load_cases(cases_path)
    if cases.faq is None:
        raise ValueError(f"{cases_path}: no 'faq:' key names the FAQ file")
    return evaluate(cases_path.parent / cases.faq, cases_path, settings)


def decide_all(matcher: FaqMatcher, texts: list[str]) -> list[MatchResult]:
    """``matcher.match`` of every text, the messages' vectors taken through the cache (the
    same cases are evaluated again and again)."""
    vectors = None
    if matcher.semantic is not None and matcher.semantic.vectors is not None:
        vectors = matcher.semantic.embed_queries(texts)
    results: list[MatchResult] = []
    for k, text in enumerate(texts):
        pending = matcher.begin(text)
        if isinstance(pending, MatchResult):
            results.append(pending)
            continue
        vector = vectors[k] if vectors is not None and matcher.needs_vector(pending) else None
        results.append(matcher.finish(pending, vector))
    return results


def run_cases(matcher: FaqMatcher, cases: list[EvalCase]) -> EvalReport:
    report = EvalReport()
    for case, result in zip(cases, decide_all(matcher, [c.q for c in cases]), strict=True):
        got = [c.entry_id for c in result.candidates]
        report.cases += 1
        answered = result.decision is Decision.ANSWER
        ok: bool
        if case.expect is None:
            report.out_of_scope += 1
            ok = not answered
            report.out_of_scope_answered += int(answered)
        else:
            report.in_scope += 1
            if answered:
                ok = got[:1] == [case.expect]
                report.answered_correct += int(ok)
                report.answered_wrong += int(not ok)
            elif result.decision is Decision.CLARIFY:
                ok = case.expect in got
                report.clarified_with_expected += int(ok)
            else:
                ok = False
                report.escalated_in_scope += 1
        if not ok or (case.expect is not None and not answered):
            report.failures.append(Failure(case.q, case.expect, result.decision.value, got))
    return report
