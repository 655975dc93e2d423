"""What the render budget (handlers/render_budget.py) costs and how soon it stops a runaway.

For each shipped template (rendered with check's sample values) and an FAQ answer: the
time of one render with the budget and without it (the trace function is what costs), and
the steps it takes; then how long the nested ``range(100000)`` loops run before the budget
stops them.

    .venv/bin/python -m bench.render_budget
    .venv/bin/python -m bench.render_budget --repeat 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime
from typing import Any

from handlers import render_budget
from handlers.render_check import Sample
from handlers.texts import COMMON_NAMES, RenderFailed, Texts
from runtime.features import TEMPLATES

INSTITUTION = {
    "name": "МБОУ «Средняя школа № 17»",
    "address": "г. Курск, ул. Примерная, 1",
    "phone": "+7 (4712) 00-00-00",
    "site": "https://school17.example",
    "hours": "пн–пт 8:00–17:00",
    "email": "school17@example.ru",
}
ANSWER = "Приём заявлений в 1 класс идёт с 1 апреля ({{ institution.address }}), {{ user }}."
NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"


def timed(work: Any, repeat: int) -> float:
    """Median milliseconds of ``work()``."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    texts = Texts(None, institution=INSTITUTION)
    now = datetime.now().astimezone()
    rows = []
    for name, names in sorted(TEMPLATES.items()):
        context = {n: Sample() for n in names - COMMON_NAMES}
        template = texts.env.get_template(name)

        def plain(template: Any = template, context: dict[str, Any] = context) -> None:
            try:
                template.render(institution=INSTITUTION, user="Анна", now=now, **context)
            except Exception:  # a sample that does not fit (check ignores those too)
                pass

        def budgeted(plain: Any = plain) -> None:
            with render_budget.budget():
                plain()

        with render_budget.budget():
            plain()
            steps = render_budget._current.budget.steps
        rows.append((name, timed(plain, args.repeat), timed(budgeted, args.repeat), steps))
    rows.sort(key=lambda r: -r[3])
    print(f"{'template':28} {'plain ms':>9} {'budget ms':>10} {'steps':>7}")
    for name, plain_ms, budget_ms, steps in rows[:8]:
        print(f"{name:28} {plain_ms:9.3f} {budget_ms:10.3f} {steps:7d}")
    total_plain = sum(r[1] for r in rows)
    total_budget = sum(r[2] for r in rows)
    print(f"all {len(rows)} templates: {total_plain:.2f} ms plain, {total_budget:.2f} ms budgeted")
    answer_ms = timed(lambda: texts.answer("a", ANSWER, user="Анна", now=now), args.repeat)
    print(f"an FAQ answer: {answer_ms:.3f} ms")
    started = time.perf_counter()
    try:
        texts.answer("nested", NESTED)
    except RenderFailed as exc:
        print(
            f"nested range(100000) loops stopped after {time.perf_counter() - started:.3f} s: {exc}"
        )


if __name__ == "__main__":
    main()
