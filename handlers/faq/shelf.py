"""FAQ files parsed, checked and indexed once per distinct content, shared read-only.

A region serves hundreds of institutions from a handful of FAQ files (every school of a
district answers from the same one). Parsing an FAQ and building its matcher index is
tens of milliseconds and hundreds of kilobytes, so doing it per institution made start,
``check`` and reload grow with the number of institutions instead of the number of files.

The shelf keys everything by the file's content hash (:func:`~handlers.faq.model.content_digest`):
a changed file has a new hash and is parsed anew, so hot reload sees every edit. A file
with the same content at another path is parsed once too; its problems still name its own
path. Matchers are keyed by the hash and the matcher settings (an institution may tune
its thresholds). Everything on the shelf is immutable after it is built, so institutions
and threads share it without locks; answer templates are still rendered per institution.

One shelf belongs to one loaded config. A reload takes :meth:`FaqShelf.successor`, which
reuses what is unchanged, and :meth:`FaqShelf.prune` then lets go of what the new
config no longer uses.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from bots.core.yamlfile import Problem, ProblemsError, read_text
from handlers.faq.checks import synonym_problems
from handlers.faq.decision import DecisionModel
from handlers.faq.matcher import FaqMatcher, MatcherSettings
from handlers.faq.model import LoadedFaq, content_digest, load_faq

log = logging.getLogger(__name__)

#: what loading one file gave: the FAQ and its problems (the synonym checks), or None and
#: the problems that stopped it
_Loaded = tuple[LoadedFaq | None, list[Problem]]


class FaqShelf:
    """Loaded FAQs and their matchers, one per distinct content (and path, for messages)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, Path], _Loaded] = {}
        self._by_digest: dict[str, tuple[Path, _Loaded]] = {}
        self._matchers: dict[tuple[str, MatcherSettings, Path | None, Path | None], FaqMatcher] = {}
        self._used: set[object] = set()

    def load(self, path: Path) -> tuple[LoadedFaq | None, list[Problem]]:
        """(the FAQ or None, its problems: the synonym checks, or what stopped loading).

        A missing or unreadable file raises ProblemsError (it has no content to share)."""
        text = read_text(path)
        digest = content_digest(text)
        key = (digest, path)
        self._used.add(key)
        found = self._loaded.get(key)
        if found is None:
            found = self._loaded[key] = self._parse(path, text, digest)
            self._by_digest.setdefault(digest, (path, found))
        return found

    def matcher(
        self,
        loaded: LoadedFaq,
        settings: MatcherSettings | None = None,
        *,
        vectors_dir: Path | None = None,
        decision_path: Path | None = None,
        background: bool | None = None,
    ) -> FaqMatcher:
        """The matcher of this FAQ content with these settings, built on first use; its
        semantic vectors (cached under ``vectors_dir``) and its decision model (the shipped
        one, or ``decision_path``'s) are shared with it."""
        settings = settings or MatcherSettings()
        key = (loaded.digest, settings, vectors_dir, decision_path)
        self._used.add(key)
        matcher = self._matchers.get(key)
        if matcher is None:
            model = None if decision_path is None else DecisionModel.load(decision_path)
            matcher = self._matchers[key] = FaqMatcher.build(
                loaded.faq, settings, vectors_dir=vectors_dir, model=model, background=background
            )
            elsewhere = matcher.decision_fitted_elsewhere() if decision_path else None
            if elsewhere:
                log.warning("%s: %s", decision_path, elsewhere)
        return matcher

    def successor(self) -> FaqShelf:
        """A shelf for the next load of the config that reuses this one's unchanged FAQs."""
        shelf = FaqShelf()
        shelf._loaded = dict(self._loaded)
        shelf._by_digest = dict(self._by_digest)
        shelf._matchers = dict(self._matchers)
        return shelf

    def prune(self) -> None:
        """Forget what was not asked for since this shelf was made (old versions of files)."""
        self._loaded = {k: v for k, v in self._loaded.items() if k in self._used}
        self._by_digest = {d: (p, v) for (d, p), v in self._loaded.items()}
        self._matchers = {k: v for k, v in self._matchers.items() if k in self._used}

    def _parse(self, path: Path, text: str, digest: str) -> _Loaded:
        same = self._by_digest.get(digest)
        if same is None:
            try:
                loaded = load_faq(path, text)
            except ProblemsError as exc:
                return None, exc.problems
            return loaded, synonym_problems(loaded)
        # the same content under another path: share the parsed FAQ, re-point the messages
        other, (faq, problems) = same
        moved = [replace(p, file=str(path)) if p.file == str(other) else p for p in problems]
        if faq is None:
            return None, moved
        document = replace(faq.document, path=path)
        return faq.model_copy(update={"document": document}), moved
