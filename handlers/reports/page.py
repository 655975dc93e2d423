"""``priemnaya report html``: one self-contained page with pictures, for the people who
would rather look than read a table.

Everything is inline (CSS, SVG charts; no script, no font, no image file, no link to fetch),
so the file opens offline, can be mailed or attached to a ticket, and shows the same
everywhere. Every value from the database (questions are citizens' words) is escaped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from handlers.reports.overview import Day, Overview

MONTHS = ["янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"]

QUESTION_SERIES = [
    ("answered", "ответ из FAQ", "#2e7d32"),
    ("clarified", "уточнение («Возможно, вы имели в виду»)", "#f9a825"),
    ("escalated", "передано сотрудникам", "#c62828"),
]
SLA_SERIES = [
    ("in_time", "ответ в срок", "#2e7d32"),
    ("late", "ответ с опозданием", "#ef6c00"),
    ("overdue", "срок прошёл, ответа нет", "#b71c1c"),
    ("waiting", "ждёт ответа, срок не прошёл", "#90a4ae"),
]

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d2630; background: #f5f7fa; margin: 0; }
main { max-width: 900px; margin: 0 auto; padding: 24px; }
section.institution { background: #fff; border-radius: 10px; padding: 20px 24px;
                      margin-bottom: 28px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 20px; margin: 0 0 4px; }
h3 { font-size: 16px; margin: 22px 0 8px; }
.muted { color: #5f6b7a; font-size: 13px; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0; }
.figure { background: #eef2f6; border-radius: 8px; padding: 8px 12px; min-width: 120px; }
.figure b { display: block; font-size: 20px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 13px; margin: 4px 0; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
            margin-right: 5px; vertical-align: -1px; }
svg.chart { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
td, th { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e3e8ee; }
td.n, th.n { text-align: right; white-space: nowrap; }
ol.clusters li { margin-bottom: 10px; } ol.clusters q { color: #37474f; }
"""


def render_page(overviews: list[Overview], generated: datetime) -> str:
    """The whole HTML document for one or several institutions."""
    sections = "\n".join(_section(o) for o in overviews)
    title = "Приёмная: отчёт" + (f" — {overviews[0].name}" if len(overviews) == 1 else "")
    return (
        '<!DOCTYPE html>\n<html lang="ru">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="muted">Составлен {generated:%d.%m.%Y %H:%M}. '
        "Страница не загружает ничего из сети: её можно переслать или открыть без интернета.</p>\n"
        f"{sections}\n</main>\n</body>\n</html>\n"
    )


def _section(o: Overview) -> str:
    questions = o.total("questions")
    tickets = sum(o.total(name) for name, _, _ in SLA_SERIES)
    answered_tickets = o.total("in_time") + o.total("late")

    def share(n: int, of: int) -> str:
        return f"{100 * n / of:.0f}%" if of else "—"

    figures = [
        ("вопросов", str(questions)),
        ("ответ из FAQ", share(o.total("answered"), questions)),
        ("уточнено", share(o.total("clarified"), questions)),
        ("сотрудникам", share(o.total("escalated"), questions)),
        ("обращений", str(tickets)),
        ("первый ответ в срок", share(o.total("in_time"), answered_tickets)),
        ("первый ответ, медиана", duration(o.first_response_median)),
        ("90% ответов быстрее", duration(o.first_response_p90)),
    ]
    boxes = "".join(
        f'<div class="figure"><b>{escape(value)}</b>{escape(label)}</div>'
        for label, value in figures
    )
    period = f"{_day(o.since)} — {_day(o.until)}"
    return (
        f'<section class="institution" id="{escape(o.institution)}">\n'
        f"<h2>{escape(o.name)}</h2>\n"
        f'<p class="muted">{escape(o.institution)} · {escape(period)}</p>\n'
        f'<div class="figures">{boxes}</div>\n'
        "<h3>Вопросы по дням</h3>\n"
        + _legend(QUESTION_SERIES)
        + bar_chart(o.days, QUESTION_SERIES, "Вопросы граждан по дням")
        + "<h3>Первый ответ сотрудников и срок</h3>\n"
        f'<p class="muted">Срок первого ответа по настройке: {escape(duration(o.first_response))}'
        " рабочего времени (staff.first_response). Обращения — по дню, когда их открыли.</p>\n"
        + _legend(SLA_SERIES)
        + bar_chart(o.days, SLA_SERIES, "Обращения по дням и срок первого ответа")
        + _clusters(o)
        + _not_helpful(o)
        + "</section>"
    )


def _legend(series: list[tuple[str, str, str]]) -> str:
    items = "".join(
        f'<span><i style="background:{color}"></i>{escape(label)}</span>'
        for _, label, color in series
    )
    return f'<div class="legend">{items}</div>\n'


def bar_chart(days: list[Day], series: list[tuple[str, str, str]], title: str) -> str:
    """A stacked bar per day, as inline SVG with a tooltip (``<title>``) on each bar."""
    width, height, left, bottom, top = 860, 220, 36, 24, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(int(getattr(d, name)) for name, _, _ in series) for d in days]
    peak = _nice(max(totals, default=0))
    slot = plot_w / max(1, len(days))
    bar = max(2.0, slot * 0.72)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1) if peak else (0,):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dde3ea"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5f6b7a">{peak * fraction:g}</text>'
        )
    label_every = max(1, round(len(days) / 15))
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        tip = [f"{day.day.day} {MONTHS[day.day.month - 1]}"]
        for name, label, color in series:
            value = int(getattr(day, name))
            tip.append(f"{label}: {value}")
            if value and peak:
                h = plot_h * value / peak
                y -= h
                parts.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                    f'height="{h:.1f}" fill="{color}"><title>{escape(", ".join(tip))}</title></rect>'
                )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 8}" font-size="11" '
                f'text-anchor="middle" fill="#5f6b7a">{day.day.day}.{day.day.month:02d}</text>'
            )
    if not any(totals):
        parts.append(
            f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle" font-size="14"'
            ' fill="#5f6b7a">за этот период ничего нет</text>'
        )
    parts.append("</svg>\n")
    return "".join(parts)


def _clusters(o: Overview) -> str:
    head = "<h3>Что спрашивают, а в FAQ ответа нет</h3>\n"
    report = o.unanswered
    if report is None or not report.clusters:
        return head + '<p class="muted">Неотвеченных вопросов за период нет.</p>\n'
    items = []
    for cluster in report.clusters[:10]:
        terms = ", ".join(t for t in cluster.terms if not t.startswith("~"))
        near = (
            f"ближе всего статья <code>{escape(cluster.nearest_entry)}</code> "
            f"«{escape(cluster.nearest_title or '')}»"
            if cluster.nearest_entry
            else "ни одна статья FAQ не подходит"
        )
        examples = "<br>".join(f"<q>{escape(e)}</q>" for e in cluster.examples)
        items.append(f"<li><b>{cluster.size}</b> — {escape(terms)}; {near}<br>{examples}</li>")
    return (
        head + '<p class="muted">Похожие вопросы, которые бот передал сотрудникам, только уточнил '
        "или чей ответ «не помог», — сверху самые частые. Добавьте статью или вариант вопроса."
        "</p>\n" + f'<ol class="clusters">{"".join(items)}</ol>\n'
    )


def _not_helpful(o: Overview) -> str:
    head = "<h3>Статьи FAQ, ответ которых «Не помог»</h3>\n"
    if not o.not_helpful:
        return head + '<p class="muted">Таких отметок за период нет.</p>\n'
    rows = "".join(
        f"<tr><td><code>{escape(n.entry_id)}</code></td><td>{escape(n.title)}</td>"
        f'<td class="n">{n.not_helpful}</td><td class="n">{n.helpful}</td></tr>'
        for n in o.not_helpful
    )
    return (
        head + '<table class="not-helpful"><tr><th>статья</th><th>вопрос</th>'
        '<th class="n">не помогло</th><th class="n">помогло</th></tr>' + rows + "</table>\n"
    )


def duration(value: timedelta | None) -> str:
    """'15 мин', '2 ч 05 мин', '1 дн 3 ч'; '—' when unknown."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} дн {hours} ч"
    return f"{hours} ч {mins:02d} мин" if hours else f"{mins} мин"


def _day(moment: datetime) -> str:
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def _nice(value: int) -> int:
    """A round, even top for the y axis (its middle line is a whole number too):
    0 -> 0, 1 -> 2, 3 -> 4, 7 -> 8, 23 -> 30, 130 -> 150."""
    if value <= 4:
        return value + value % 2
    for step in (2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000):
        if value <= step * 4:
            return -(-value // step) * step
    return value
