"""FAQ files are parsed and indexed once per distinct content, whatever the number of
institutions naming them, and a problem in a shared file is still reported at its place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from handlers.faq.shelf import FaqShelf
from runtime.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHOOL = ROOT / "examples" / "faq" / "school.yaml"


def test_the_same_content_at_two_paths_is_parsed_once_and_named_by_each_path(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    shutil.copy(SCHOOL, a)
    shutil.copy(SCHOOL, b)
    shelf = FaqShelf()
    first, _ = shelf.load(a)
    second, _ = shelf.load(b)
    assert first is not None and second is not None
    assert first.faq is second.faq
    assert second.document.path == b
    assert shelf.matcher(first) is shelf.matcher(second)


def test_a_broken_copy_is_reported_at_each_path(tmp_path: Path) -> None:
    text = SCHOOL.read_text(encoding="utf-8").replace("  - id: ", "  - id: bad id ", 1)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(text, encoding="utf-8")
    b.write_text(text, encoding="utf-8")
    shelf = FaqShelf()
    (none_a, problems_a), (none_b, problems_b) = shelf.load(a), shelf.load(b)
    assert none_a is None and none_b is None
    assert problems_a and {p.file for p in problems_a} == {str(a)}
    assert {p.file for p in problems_b} == {str(b)}
    assert [p.line for p in problems_a] == [p.line for p in problems_b]


def test_an_edited_file_is_parsed_again_and_prune_forgets_the_old_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "faq.yaml"
    shutil.copy(SCHOOL, path)
    shelf = FaqShelf()
    old, _ = shelf.load(path)
    assert old is not None
    old_matcher = shelf.matcher(old)

    path.write_text(path.read_text(encoding="utf-8").replace("директор", "завуч"), "utf-8")
    next_shelf = shelf.successor()
    new, _ = next_shelf.load(path)
    assert new is not None and new.digest != old.digest
    assert next_shelf.matcher(new) is not old_matcher
    next_shelf.prune()
    assert next_shelf.successor().load(path)[0] is new
    # the old version is gone from the new shelf: loading it again parses it again
    path.write_text(SCHOOL.read_text(encoding="utf-8"), "utf-8")
    again, _ = next_shelf.load(path)
    assert again is not None and again is not old and again.digest == old.digest


def test_check_lists_a_problem_of_a_shared_faq_once(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = example_config.read_text(encoding="utf-8")
    example_config.write_text(
        text.replace("faq: examples/faq/polyclinic.yaml", "faq: examples/faq/school.yaml"),
        encoding="utf-8",
    )
    faq = example_config.parent / "examples" / "faq" / "school.yaml"
    faq.write_text(
        faq.read_text(encoding="utf-8").replace("  - id: ", "  - id: bad id ", 1), "utf-8"
    )
    assert main(["check", "-c", str(example_config)]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(str(faq))]
    assert len(lines) == 1, out
