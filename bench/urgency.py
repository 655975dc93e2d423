"""Precision and recall of the urgency detector (handlers/urgency.py) on the
labelled messages in tests/fixtures/urgent.cases.yaml (written by a person, not by us).

The default phrases were tuned on the cases with an even index only; the odd half was never
looked at while tuning, so its figures say how the rules fare on messages they were not
fitted to. The whole set is printed too, and its traps (messages labelled ``trap: true``:
"травматолог", "вечный огонь", ...) separately.

    .venv/bin/python bench/urgency.py               # figures
    .venv/bin/python bench/urgency.py --misses      # also the tuning half's mistakes
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

CASES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "urgent.cases.yaml"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="?", type=Path, default=CASES)
    parser.add_argument("--misses", action="store_true", help="list the even half's mistakes")
    args = parser.parse_args()
    cases = load(args.cases)
    detect = detector()
    even, odd, whole, traps = Tally(), Tally(), Tally(), Tally()
    misses: list[str] = []
    started = time.perf_counter()
    for index, case in enumerate(cases):
        expected = bool(case["urgent"])
        rule = detect.matching_rule(str(case["text"]))
        got = rule is not None
        (even if index % 2 == 0 else odd).add(expected, got)
        whole.add(expected, got)
        if case.get("trap"):
            traps.add(expected, got)
        if index % 2 == 0 and expected != got:
            what = "missed" if expected else f"false alarm ({rule})"
            misses.append(f"  [{index}] {what}: {case['text']}")
    elapsed = time.perf_counter() - started
    print(f"{len(cases)} labelled messages from {args.cases.name}")
    print(even.line("even half (tuned on)"))
    print(odd.line("odd half (held out)"))
    print(whole.line("all"))
    print(f"{'traps (not urgent)':<22} {traps.fp + traps.tn:>3}  false alarms {traps.fp}")
    print(f"{elapsed / max(1, len(cases)) * 1000:.2f} ms a message")
    if args.misses:
        print("\n".join(misses) or "  no mistakes in the even half")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
