"""The FAQ file format (see docs/ARCHITECTURE.md and DESIGN.md) and its loader.

An FAQ is written by an institution's admin: entries with an id, a category, the ways the
admin phrases the question, a Jinja2 answer and optional buttons, plus the FAQ's own
synonyms. Loading checks everything that does not need the template engine; answer
templates are compiled by :mod:`handlers.texts` when the institution is assembled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from bots.core.yamlfile import (
    Problem,
    ProblemsError,
    YamlDocument,
    load_yaml,
    read_text,
    validate,
)

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
EntryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")]


class FaqButton(BaseModel):
    """A button under an answer: a link, or a follow-up entry of the same FAQ."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    text: NonEmpty
    url: str | None = None
    entry: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> FaqButton:
        if (self.url is None) == (self.entry is None):
            raise ValueError("a button needs exactly one of 'url' or 'entry'")
        if self.url is not None and not self.url.startswith(("https://", "http://", "tel:")):
            raise ValueError("a button url must start with https://, http:// or tel:")
        return self


class FaqEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: EntryId
    #: the topic button on /start; entries without one are shown under labels.other_topics
    category: str = ""
    questions: list[NonEmpty] = Field(min_length=1)
    answer: NonEmpty
    buttons: list[FaqButton] = []

    @property
    def title(self) -> str:
        """The first phrasing, used as the entry's label on buttons."""
        return self.questions[0]


class Faq(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    synonyms: dict[NonEmpty, list[NonEmpty]] = {}
    entries: list[FaqEntry] = []

    def entry(self, entry_id: str) -> FaqEntry | None:
        return self._by_id().get(entry_id)

    def _by_id(self) -> dict[str, FaqEntry]:
        cached: dict[str, FaqEntry] | None = self.__dict__.get("_by_id_cache")
        if cached is None:
            cached = {e.id: e for e in self.entries}
            object.__setattr__(self, "_by_id_cache", cached)  # frozen model, derived cache
        return cached

    @property
    def categories(self) -> list[str]:
        """Categories in the order they first appear in the file."""
        return list(dict.fromkeys(e.category for e in self.entries))


class LoadedFaq(BaseModel):
    """An FAQ with where it came from, so later checks (templates) can name file:line."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    faq: Faq
    document: YamlDocument
    #: the file's content hash: FAQs with the same digest are parsed and indexed once
    #: (handlers/faq/shelf.py)
    digest: str

    def line_of_entry(self, index: int, key: str = "answer") -> int | None:
        """The line where the entry's ``key`` value begins (its text, for a block scalar)."""
        return self.document.content_line_of(("entries", index, key))


def load_faq(path: Path, text: str | None = None) -> LoadedFaq:
    """Load and validate an FAQ file; raises ProblemsError listing every problem with its line.

    ``text`` is the file's content when the caller has read it already."""
    if text is None:
        text = read_text(path)
    doc = load_yaml(path, text=text)
    faq = validate(Faq, doc)
    problems = _semantic_problems(faq, doc)
    if problems:
        raise ProblemsError(problems)
    return LoadedFaq(faq=faq, document=doc, digest=content_digest(text))


def content_digest(text: str) -> str:
    """The hash by which identical FAQ files are recognised, whatever their path."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _semantic_problems(faq: Faq, doc: YamlDocument) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(faq.entries):
        if entry.id in seen:
            problems.append(
                doc.problem(
                    ("entries", i, "id"),
                    f"duplicate entry id {entry.id!r} (first at entry #{seen[entry.id] + 1})",
                )
            )
        seen.setdefault(entry.id, i)
    for i, entry in enumerate(faq.entries):
        for j, button in enumerate(entry.buttons):
            if button.entry is not None and button.entry not in seen:
                problems.append(
                    doc.problem(
                        ("entries", i, "buttons", j, "entry"),
                        f"button points to entry {button.entry!r}, which this FAQ does not have",
                    )
                )
    for term, variants in faq.synonyms.items():
        if not variants:
            problems.append(doc.problem(("synonyms", term), f"synonym {term!r} has no variants"))
    return problems
