"""Reports for the admin: unanswered questions grouped into what to add to the FAQ next,
and per-institution statistics."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from handlers.config import load_config
from handlers.reports.stats import MISSING, institution_stats
from runtime.app import App
from runtime.cli import main
from storage import Storage

#: the local app's ManualClock starts in 2026-09; the CLI counts back from the real now
LONG = "36500d"
DATA = Path(__file__).parent / "fixtures" / "unanswered" / "school_paraphrases.yaml"


def paraphrases() -> dict[str, list[str]]:
    topics = yaml.safe_load(DATA.read_text(encoding="utf-8"))["topics"]
    assert len(topics) == 6 and all(len(q) == 10 for q in topics.values())
    return topics


async def store_questions(config: Path, questions: list[tuple[str, str]]) -> None:
    """Questions as the bot logs them: (text, outcome), asked a day ago by different people."""
    when = datetime.now(UTC) - timedelta(days=1)
    storage = await Storage.open(load_config(config).database_path, lambda: when)
    try:
        for n, (text, outcome) in enumerate(questions):
            await storage.log.add(
                institution="school-17",
                platform="telegram",
                chat_id=str(1000 + n),
                user_id=str(1000 + n),
                direction="in",
                text=text,
                now=when,
                outcome=outcome,
            )
    finally:
        await storage.close()


def run_cli(args: list[str], capsys) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


async def test_sixty_escalated_paraphrases_of_six_topics_make_about_six_clusters(
    example_config: Path, capsys
):
    topics = paraphrases()
    topic_of = {q: t for t, qs in topics.items() for q in qs}
    await store_questions(example_config, [(q, "escalate") for q in topic_of])

    out = await asyncio.to_thread(
        run_cli,
        ["report", "unanswered", "-c", str(example_config), "-i", "school-17", "--format", "json"],
        capsys,
    )
    report = json.loads(out)
    assert report["questions"] == 60
    clusters = report["clusters"]
    groups = [c for c in clusters if c["size"] >= 3]
    assert 5 <= len(groups) <= 7, [c["examples"][0] for c in clusters]
    assert len(clusters) <= 10
    majorities = set()
    for cluster in groups:
        counts = Counter(topic_of[q] for q in cluster["examples"])
        assert len(counts) == 1 or counts.most_common(1)[0][1] >= 2, cluster
        assert cluster["kinds"] == {"escalate": cluster["size"]}
    # each topic is the main subject of its own cluster, and the clusters hold most questions
    for cluster in groups:
        members = [q for q in topic_of if q in cluster["examples"]]
        majorities.add(Counter(topic_of[q] for q in members).most_common(1)[0][0])
    assert majorities == set(topics)
    assert sum(c["size"] for c in groups) >= 50
    # the terms name the topic and the report points at the nearest existing entry (or none)
    assert any("автобус" in c["terms"] for c in groups)
    assert all("nearest_entry" in c for c in groups)


async def test_the_table_shows_counts_examples_and_the_nearest_entry(example_config: Path, capsys):
    topics = paraphrases()
    await store_questions(
        example_config,
        [(q, "escalate") for q in topics["school-bus"]]
        + [(q, "clarify") for q in topics["phones"][:3]],
    )
    table = await asyncio.to_thread(
        run_cli, ["report", "unanswered", "-c", str(example_config)], capsys
    )
    assert "13 unanswered question(s)" in table
    assert "10 question(s) (escalated 10) — автобус" in table
    assert "(clarified 3) — телефон" in table
    assert "    nearest entry: " in table
    assert any(f"«{q}»" in table for q in topics["school-bus"])
    csv_out = await asyncio.to_thread(
        run_cli, ["report", "unanswered", "-c", str(example_config), "--format", "csv"], capsys
    )
    header, first = csv_out.splitlines()[:2]
    assert header.startswith("cluster,questions,escalated,clarified,not_helpful,terms")
    assert first.startswith("1,10,10,0,0,")


async def test_not_helpful_answers_are_reported(local_app: App, example_config: Path, capsys):
    local = local_app.local_platform("school-17")
    await local.user_says("100", "Как записать ребенка в первый класс?")
    await local_app.settle()
    await local.press("100", local.last("100").id, "Нет, связаться")
    await local_app.settle()
    out = await asyncio.to_thread(
        run_cli,
        ["report", "unanswered", "-c", str(example_config), "--format", "json", "--since", LONG],
        capsys,
    )
    clusters = json.loads(out)["clusters"]
    assert clusters[0]["kinds"] == {"not_helpful": 1}
    assert clusters[0]["examples"] == ["Как записать ребенка в первый класс?"]
    assert clusters[0]["nearest_entry"] == "first-grade-enrollment"


async def test_stats_count_answers_clarifications_and_escalations(
    local_app: App, example_config: Path, capsys
):
    local = local_app.local_platform("school-17")
    for text in ("Как записать ребенка в первый класс?", "Как оплатить питание?", "абвгд ёжз"):
        await local.user_says("100", text)
        await local_app.settle()
    out = await asyncio.to_thread(
        run_cli,
        ["report", "stats", "-c", str(example_config), "--format", "json", "--since", LONG],
        capsys,
    )
    stats = {s["institution"]: s for s in json.loads(out)}
    school = stats["school-17"]
    assert school["questions"] == 3
    assert school["answered"] == 2
    assert school["escalated"] == 1
    assert stats["polyclinic-3"]["questions"] == 0
    table = await asyncio.to_thread(
        run_cli, ["report", "stats", "-c", str(example_config), "--since", LONG], capsys
    )
    assert "school-17" in table and "67%" in table


async def test_stats_show_a_dash_for_tables_that_do_not_exist(local_app: App):
    since = datetime.now(UTC) - timedelta(days=30)
    stats = await institution_stats(local_app.storage, "school-17", since, tables=set())  # type: ignore[arg-type]
    row = stats.row()
    assert row["tickets"] == row["sla_breaches"] == row["subscribers"] == MISSING
    assert row["first_response_median"] == MISSING
