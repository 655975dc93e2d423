"""Benchmark of ``priemnaya check`` on a region: N institutions sharing one FAQ file.

Writes a config with N institutions (default 1,000) that all name the school FAQ of
examples/faq, in a temporary folder, and times ``check`` on it in this process (the
first run includes loading pymorphy3's dictionaries). Prints figures only; run with
`.venv/bin/python bench/check_many.py [N ...]`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.cli.check import check_config

ROOT = Path(__file__).resolve().parent.parent
FAQ = ROOT / "examples" / "faq" / "school.yaml"


def write_config(folder: Path, count: int) -> Path:
    """A config of ``count`` schools, each with its own staff chat, all on one FAQ file."""
    shutil.copy(FAQ, folder / "faq.yaml")
    lines = ["storage: {path: data/priemnaya.sqlite3}", "timezone: Europe/Moscow", "institutions:"]
    for i in range(count):
        lines += [
            f"  school-{i}:",
            f"    name: МБОУ «Средняя школа № {i}»",
            f"    address: г. Курск, ул. Примерная, {i}",
            "    phone: +7 (4712) 00-00-00",
            "    hours: пн–пт 8:00–17:00",
            '    working_hours: {mon-fri: "08:00-17:00"}',
            "    faq: faq.yaml",
            "    staff:",
            f"      chat: {{platform: telegram, id: -100{1000000 + i}}}",
            "      members:",
            f"        - {{platform: telegram, id: {10000 + i}, name: Иванова А. П.}}",
        ]
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or [1000]
    with tempfile.TemporaryDirectory() as tmp:
        warm = write_config(Path(tmp), 1)
        t = time.perf_counter()
        check_config(str(warm))
        print(f"check, 1 institution, first in process: {time.perf_counter() - t:.2f} s")
        for count in counts:
            path = write_config(Path(tmp), count)
            t = time.perf_counter()
            problems, _ = check_config(str(path))
            took = time.perf_counter() - t
            if problems:
                raise SystemExit(f"unexpected problems: {problems[:3]}")
            print(f"check, {count} institutions sharing one FAQ: {took:.2f} s")


if __name__ == "__main__":
    main()
