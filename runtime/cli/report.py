"""``priemnaya report unanswered|stats``: what to add to the FAQ, and how things go.

They read the database the config names, each institution's data from its storage cell
(runtime/cells.py; a running bot may keep running: SQLite in WAL mode lets a reader in), and print ``--format table`` (default), ``csv`` or ``json``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from handlers.config import LoadedConfig
from handlers.reports import render
from handlers.reports.overview import Overview, build_overview
from handlers.reports.page import render_page
from handlers.reports.stats import all_stats
from handlers.reports.unanswered import (
    DEFAULT_THRESHOLD,
    UnansweredReport,
    build_report,
    unanswered_questions,
)
from runtime.cells import open_cells
from runtime.cli.common import (
    add_config_argument,
    database_or_report,
    duration_argument,
    load_institution,
    load_or_report,
    pick_institution,
)

KIND_NAMES = {"escalate": "escalated", "clarify": "clarified", "not_helpful": "not helpful"}


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="reports: unanswered questions, statistics")
    commands = report.add_subparsers(dest="report_command", metavar="REPORT", required=True)

    un = commands.add_parser(
        "unanswered",
        help="questions the FAQ did not answer, grouped by similarity",
        description="Escalated, clarified and 'не помогло' questions grouped into clusters "
        "of similar questions, largest first, each with examples and the nearest FAQ entry: "
        "what to add to the FAQ next.",
    )
    _common(un)
    un.add_argument("--institution", "-i", help="institution id (default: the first)")
    un.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"how alike questions of one cluster must be, 0..1 (default {DEFAULT_THRESHOLD})",
    )
    un.add_argument("--limit", type=int, default=20, help="clusters to show (default 20)")
    un.set_defaults(func=run_unanswered)

    st = commands.add_parser("stats", help="per institution: questions, answers, tickets, SLA")
    _common(st)
    st.add_argument("--institution", "-i", help="only this institution")
    st.set_defaults(func=run_stats)

    page = commands.add_parser(
        "html",
        help="one self-contained page with charts (opens without network)",
        description="Questions per day (answered, clarified, escalated), first response "
        "against the deadline, the top clusters of unanswered questions with examples, and "
        "the FAQ entries marked 'Не помогло', for one institution or all of them.",
    )
    add_config_argument(page)
    page.add_argument("--since", default="30d", type=duration_argument, help="default 30d")
    page.add_argument("--institution", "-i", help="only this institution (default: all)")
    page.add_argument("-o", "--output", required=True, metavar="FILE", help="e.g. report.html")
    page.set_defaults(func=run_html)


def _common(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--since",
        default="30d",
        type=duration_argument,
        help="period to cover, e.g. 7d, 30d, 30 дней (default 30d)",
    )
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _since(period: timedelta) -> datetime:
    return datetime.now(UTC) - period


def run_unanswered(args: argparse.Namespace) -> int:
    found = load_institution(args)
    if isinstance(found, int):
        return found
    loaded, inst_id = found
    if database_or_report(loaded) is None:
        return 1
    report = asyncio.run(_unanswered(loaded, inst_id, _since(args.since), args.threshold))
    print(format_unanswered(report, args.format, args.limit))
    return 0


async def _unanswered(
    loaded: LoadedConfig, inst_id: str, since: datetime, threshold: float
) -> UnansweredReport:
    inst = loaded.config.institutions[inst_id]
    matcher = loaded.faq_shelf.matcher(loaded.faqs[inst_id], inst.matching)
    async with open_cells(loaded, [inst_id]) as cells:
        questions = await unanswered_questions(cells.of[inst_id], inst_id, since)
    return await asyncio.to_thread(
        build_report, inst_id, since, questions, matcher, threshold=threshold
    )


def format_unanswered(report: UnansweredReport, fmt: str, limit: int) -> str:
    clusters = report.clusters[:limit]
    if fmt == "json":
        data = report.as_dict()
        data["clusters"] = data["clusters"][:limit]
        return render.to_json(data)
    if fmt == "csv":
        rows = [
            {
                "cluster": n,
                "questions": c.size,
                "escalated": c.kinds.get("escalate", 0),
                "clarified": c.kinds.get("clarify", 0),
                "not_helpful": c.kinds.get("not_helpful", 0),
                "terms": " ".join(t for t in c.terms if not t.startswith("~")),
                "nearest_entry": c.nearest_entry or "",
                "nearest_score": "" if c.nearest_score is None else c.nearest_score,
                "examples": " | ".join(c.examples),
            }
            for n, c in enumerate(clusters, 1)
        ]
        return render.to_csv(rows)
    lines = [
        f"{report.institution}: {report.questions} unanswered question(s) since "
        f"{report.since:%Y-%m-%d}, {len(report.clusters)} cluster(s)"
    ]
    for n, c in enumerate(clusters, 1):
        kinds = ", ".join(f"{KIND_NAMES[k]} {v}" for k, v in c.kinds.items())
        terms = ", ".join(t for t in c.terms if not t.startswith("~"))
        lines.append("")
        lines.append(f"{n:>2}. {c.size} question(s) ({kinds}) — {terms}")
        if c.nearest_entry:
            lines.append(
                f"    nearest entry: {c.nearest_entry} ({c.nearest_score:.2f}) «{c.nearest_title}»"
            )
        else:
            lines.append("    nearest entry: none shares a word")
        lines.extend(f"    «{example}»" for example in c.examples)
    if len(report.clusters) > limit:
        lines.append(f"\n… {len(report.clusters) - limit} more (--limit)")
    return "\n".join(lines)


def _config_and_institutions(args: argparse.Namespace) -> tuple[LoadedConfig, list[str]] | int:
    """The config and the institutions asked for (one, or all), or the exit code after
    saying what is wrong."""
    loaded = load_or_report(args.config)
    if loaded is None:
        return 1
    ids = list(loaded.config.institutions)
    if args.institution is not None:
        if pick_institution(loaded, args.institution) is None:
            return 2
        ids = [args.institution]
    if database_or_report(loaded) is None:
        return 1
    return loaded, ids


def run_stats(args: argparse.Namespace) -> int:
    found = _config_and_institutions(args)
    if isinstance(found, int):
        return found
    loaded, ids = found
    stats = asyncio.run(_stats(loaded, ids, _since(args.since)))
    if args.format == "json":
        print(render.to_json([s.as_dict() for s in stats]))
    elif args.format == "csv":
        print(render.to_csv([s.row() for s in stats]))
    else:
        print(
            f"since {_since(args.since):%Y-%m-%d}; first response is wall-clock time",
            file=sys.stderr,
        )
        print(render.table([s.row() for s in stats]))
    return 0


async def _stats(loaded: LoadedConfig, ids: list[str], since: datetime) -> list:
    """Each institution's numbers from its cell, in the order asked for."""
    async with open_cells(loaded, ids) as cells:
        return [(await all_stats(cells.of[i], [i], since))[0] for i in ids]


def run_html(args: argparse.Namespace) -> int:
    found = _config_and_institutions(args)
    if isinstance(found, int):
        return found
    loaded, ids = found
    now = datetime.now(UTC)
    overviews = asyncio.run(_overviews(loaded, ids, now - args.since, now))
    text = render_page(overviews, now.astimezone(loaded.zone(ids[0])))
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        print(f"cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{args.output}: {len(ids)} institution(s), open it in a browser", file=sys.stderr)
    return 0


async def _overviews(
    loaded: LoadedConfig, ids: list[str], since: datetime, until: datetime
) -> list[Overview]:
    async with open_cells(loaded, ids) as cells:
        result = []
        for inst_id in ids:
            storage = cells.of[inst_id]
            inst = loaded.config.institutions[inst_id]
            faq = loaded.faqs[inst_id].faq
            overview = await build_overview(
                storage,
                institution=inst_id,
                name=inst.name,
                faq=faq,
                zone=loaded.zone(inst_id),
                first_response=inst.staff.first_response,
                since=since,
                until=until,
            )
            questions = await unanswered_questions(storage, inst_id, since)
            matcher = loaded.faq_shelf.matcher(loaded.faqs[inst_id], inst.matching)
            overview.unanswered = await asyncio.to_thread(
                build_report, inst_id, since, questions, matcher
            )
            result.append(overview)
        return result
