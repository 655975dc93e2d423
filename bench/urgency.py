"""Precision and recall of the urgency detector (handlers/urgency.py) on two labelled
sets written by people, not by us:

- tests/fixtures/urgent.cases.yaml, the development set: the default phrases were studied
  and tuned on all of it, so its figures say little about new messages;
- tests/fixtures/urgent.holdout.yaml, the held-out set: written by someone else and first
  read after the phrases were frozen and committed. Its figures are the ones to expect
  from messages the rules were not fitted to; nobody tunes on it (tests never assert it).
- tests/fixtures/urgent.fresh.yaml, 160 messages of eight institution kinds written in
  stop 41 by a helper who never saw the rules, measured first with the rules of then
  (precision 94.4%, recall 83.8%) and then tuned on: it is a second development set now,
  and its first figures are what the held-out set's say of new messages.

Each set's traps (``trap: true``: "травматолог", "вечный огонь", ...) are counted apart:
a trap that fires is a false alarm a substring list would also raise.

    .venv/bin/python bench/urgency.py               # figures
    .venv/bin/python bench/urgency.py --misses      # also each set's mistakes
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.urgency import detector

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SETS = (
    ("development", FIXTURES / "urgent.cases.yaml"),
    ("held out", FIXTURES / "urgent.holdout.yaml"),
    ("fresh", FIXTURES / "urgent.fresh.yaml"),
)


@dataclass(slots=True)
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, expected: bool, got: bool) -> None:
        if expected and got:
            self.tp += 1
        elif got:
            self.fp += 1
        elif expected:
            self.fn += 1
        else:
            self.tn += 1

    def line(self, name: str) -> str:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return (
            f"{name:<22} urgent {self.tp + self.fn:>3}  not urgent {self.fp + self.tn:>3}  "
            f"precision {precision:6.1%}  recall {recall:6.1%}  "
            f"(missed {self.fn}, false alarms {self.fp})"
        )


def load(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["cases"])


def measure(name: str, path: Path, show_misses: bool) -> None:
    """Print one set's figures (and, when asked, its mistakes with the rule that fired)."""
    if not path.exists():
        print(f"{name}: {path.name} is not there")
        return
    cases = load(path)
    detect = detector()
    whole, traps = Tally(), Tally()
    misses: list[str] = []
    started = time.perf_counter()
    for index, case in enumerate(cases):
        expected = bool(case["urgent"])
        rule = detect.matching_rule(str(case["text"]))
        got = rule is not None
        whole.add(expected, got)
        if case.get("trap"):
            traps.add(expected, got)
        if expected != got:
            what = "missed" if expected else f"false alarm ({rule})"
            misses.append(f"  [{index}] {what}: {case['text']}")
    elapsed = time.perf_counter() - started
    print(f"{name}: {len(cases)} labelled messages from {path.name}")
    print(whole.line(f"  {name}"))
    print(f"  {'traps (not urgent)':<20} {traps.fp + traps.tn:>3}  false alarms {traps.fp}")
    print(f"  {elapsed / max(1, len(cases)) * 1000:.2f} ms a message")
    if show_misses:
        print("\n".join(misses) or "  no mistakes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list each set's mistakes")
    args = parser.parse_args()
    for name, path in SETS:
        measure(name, path, args.misses)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
