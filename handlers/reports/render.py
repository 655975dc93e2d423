"""Printing report rows as an aligned table, CSV or JSON (``--format``)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from typing import Any


def _width(text: str) -> int:
    return sum(0 if unicodedata.combining(c) else 1 for c in text)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(nothing)"
    cols = list(columns or rows[0].keys())
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(_width(c), *(_width(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True))

    out = [line(cols), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(s.rstrip() for s in out)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    buffer = io.StringIO()
    cols = list(columns or (rows[0].keys() if rows else []))
    writer = csv.DictWriter(buffer, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue().rstrip("\n")


def to_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
