"""Hot reload: a changed config, FAQ or template goes live without a restart, and a broken
one never does.

A reload is triggered by a file change (watchfiles' ``awatch`` on the folders of the config,
the FAQs and the template overrides), by SIGHUP (``priemnaya reload`` sends it, finding the
process through the pid file written next to the database), or by calling :func:`reload`.

It validates everything first, exactly as ``priemnaya check`` does (the config, every FAQ,
every template), and builds the new institutions off the event loop. Only then is each
institution swapped in, one dict assignment each (``app.institutions[id] = new``): an
update being handled keeps the :class:`~handlers.institution.Institution` it started with,
so no message is dropped or answered half from the old FAQ and half from the new one.

A broken change keeps the old version live, logs every ``file:line: problem`` and posts them
to the staff chat of the institutions concerned (once per distinct set of problems, so an
editor saving a half-typed file does not flood the chat).

What a reload cannot change in a running process (accounts and tokens, the database, the
HTTP server, added or removed institutions) is logged as needing a restart; the rest is
applied. Features that derive state from the config (the announcement scheduler) append a
callable to the app's ``on_reload`` list; each is called with the app after a successful swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchfiles import awatch

from bots.core import metrics
from bots.core.yamlfile import Problem, ProblemsError
from bots.platforms import PLATFORMS
from handlers import texts as texts_module
from handlers.config import LoadedConfig, load_config
from handlers.feature import Feature, Host
from handlers.institution import Institution, build_institution
from handlers.notify import queue_message
from runtime import logs
from runtime.validation import template_problems
from storage.times import iso

log = logging.getLogger(__name__)


#: at most this many problems are listed in the staff chat (all of them go to the log)
STAFF_PROBLEMS = 15


@dataclass(slots=True)
class ReloadResult:
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    #: institutions now served from the new files
    swapped: list[str] = field(default_factory=list)
    #: what changed but needs a restart to take effect
    restart_needed: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WatchSet:
    """The folders to watch and the files in them that matter, as strings in both the
    configured and the resolved spelling (watch events name paths under the watched
    folders). The database, its -wal, -shm and -journal and the pid file are never
    relevant, even when they sit beside the config."""

    folders: frozenset[Path]
    files: frozenset[str]
    template_dirs: frozenset[str]
    ignored: frozenset[str]

    @classmethod
    def of(cls, loaded: LoadedConfig, database: Path) -> WatchSet:
        files: set[Path] = {loaded.path}
        template_dirs: set[Path] = set()
        for inst_id, inst in loaded.config.institutions.items():
            files.add(loaded.resolve(inst.faq))
            folder = loaded.templates_dir(inst_id)
            if folder is not None:
                template_dirs.add(folder)
        resolved_files = {f.resolve() for f in files}
        resolved_dirs = {d.resolve() for d in template_dirs}
        folders = {f.parent for f in resolved_files} | resolved_dirs
        db = database.resolve() if loaded.config.storage.url is None else None
        ignored: set[Path] = set()
        if db is not None:
            ignored = {db, pid_path(db)} | {
                db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal")
            }
        return cls(
            folders=frozenset(f for f in folders if f.is_dir()),
            files=frozenset(map(str, (files | resolved_files) - ignored)),
            template_dirs=frozenset(map(str, template_dirs | resolved_dirs)),
            ignored=frozenset(map(str, ignored)),
        )

    def relevant(self, path: str | Path) -> bool:
        """A config, FAQ or template override: yes; the database or anything else: no."""
        text = str(path)
        if text in self.ignored:
            return False
        if text in self.files:
            return True
        return text.endswith(".j2") and os.path.dirname(text) in self.template_dirs


def pid_path(database: str | Path) -> Path:
    """Where ``run`` writes its pid: next to the database (data/priemnaya.pid)."""
    return Path(database).with_suffix(".pid")


def _prepare(
    old: LoadedConfig,
    local: bool,
    templates: Mapping[str, frozenset[str]],
    narrow: Callable[[LoadedConfig], LoadedConfig],
) -> tuple[LoadedConfig, dict[str, Institution]]:
    """Load, check and build everything (runs in a worker thread). Raises ProblemsError.

    FAQ files whose content did not change keep their parsed form and matchers (the old
    config's FAQ shelf); live institutions keep theirs whatever happens here."""
    # the template environment is cached per folder list and never re-reads a file it has
    # compiled; a reload needs fresh environments (live institutions keep their own)
    texts_module._environment.cache_clear()
    whole = load_config(old.path, shelf=old.faq_shelf.successor())
    loaded = narrow(whole)  # one storage cell's institutions (runtime/cells.py)
    problems = template_problems(loaded, templates)
    if problems:
        raise ProblemsError(problems)
    override = "local" if local else None
    built: dict[str, Institution] = {}
    for inst_id in loaded.config.institutions:
        try:
            built[inst_id] = build_institution(loaded, inst_id, staff_platform_override=override)
        except Exception as exc:  # a config that passes the checks but cannot be built
            file = str(loaded.path)
            line = loaded.line_of("institutions", inst_id)
            raise ProblemsError([Problem(file, line, f"{inst_id}: {exc}")]) from exc
    whole.faq_shelf.prune()
    return loaded, built


def _restart_needed(old: LoadedConfig, new: LoadedConfig) -> list[str]:
    notes = []
    a, b = old.config, new.config
    if a.storage != b.storage:
        notes.append("storage.path")
    if a.server != b.server:
        notes.append("server")
    for inst_id in sorted(set(a.institutions) ^ set(b.institutions)):
        verb = "added" if inst_id in b.institutions else "removed"
        notes.append(f"institution {inst_id} {verb}")
    for inst_id in sorted(set(a.institutions) & set(b.institutions)):
        old_inst, new_inst = a.institutions[inst_id], b.institutions[inst_id]
        for kind in PLATFORMS:
            if old_inst.account(kind) != new_inst.account(kind):
                notes.append(f"institutions.{inst_id}.{kind}")
    return notes


class Reloader:
    """One per app: serialises reloads and remembers what was last reported to staff."""

    def __init__(self, app: Host) -> None:
        self.app = app
        self._lock = asyncio.Lock()
        self._reported: str | None = None
        self._counter = 0
        #: completed reloads; tests and the watcher's users wait on it
        self.generation = 0
        self.changed = asyncio.Condition()
        self._watch_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        #: the config the watch set was computed for, and that set
        self._watch: tuple[LoadedConfig, WatchSet] | None = None

    async def reload(self, reason: str = "requested") -> ReloadResult:
        async with self._lock:
            result = await self._reload(reason)
        async with self.changed:
            self.generation += 1
            self.changed.notify_all()
        return result

    async def _reload(self, reason: str) -> ReloadResult:
        app = self.app
        old = app.loaded
        try:
            loaded, built = await asyncio.to_thread(
                _prepare, old, app.local, app.templates, app.narrow
            )
        except ProblemsError as exc:
            await self._rejected(exc.problems, reason)
            return ReloadResult(False, exc.problems)
        except Exception as exc:  # unreadable file, permissions...
            problem = Problem(str(old.path), None, f"reload failed: {exc}")
            await self._rejected([problem], reason)
            return ReloadResult(False, [problem])
        notes = _restart_needed(old, loaded)
        swapped = []
        for inst_id, institution in built.items():
            if inst_id in app.institutions:
                app.institutions[inst_id] = institution  # atomic: one reference swap
                swapped.append(inst_id)
        app.loaded = loaded
        self._reported = None
        logs.add_secrets(logs.config_secrets(loaded.config))
        metrics.RELOADS.inc(result="ok")
        log.warning("reloaded (%s): %s", reason, ", ".join(swapped) or "no institution changed")
        for warning in loaded.warnings:
            log.warning("%s", warning)
        if notes:
            log.warning("changed but needs a restart to take effect: %s", "; ".join(notes))
        for hook in list(app.on_reload):
            try:
                result = hook(app)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("reload hook %r failed", hook)
        return ReloadResult(True, [], swapped, notes)

    async def _rejected(self, problems: list[Problem], reason: str) -> None:
        metrics.RELOADS.inc(result="failed")
        log.error(
            "reload (%s) rejected, the previous version stays live; %d problem(s):",
            reason,
            len(problems),
        )
        for problem in problems:
            log.error("%s", logs.redact(str(problem)))
        digest = hashlib.sha256("\n".join(map(str, problems)).encode()).hexdigest()[:16]
        if digest == self._reported:
            return
        self._reported = digest
        try:
            await self._tell_staff(problems, digest)
        except Exception:
            log.exception("could not post the reload problems to the staff chats")

    def _owners(self, problem: Problem) -> set[str] | None:
        """Institutions a problem's file belongs to; None when it concerns all."""
        loaded = self.app.loaded
        try:
            path = Path(problem.file).resolve()
        except (OSError, ValueError):
            return None
        owners = set()
        for inst_id, inst in loaded.config.institutions.items():
            if loaded.resolve(inst.faq).resolve() == path:
                owners.add(inst_id)
            folder = loaded.templates_dir(inst_id)
            if folder is not None and folder.resolve() in path.parents:
                owners.add(inst_id)
        return owners or None

    async def _tell_staff(self, problems: list[Problem], digest: str) -> None:
        app = self.app
        storage = app.storage
        if storage is None:
            return
        per_institution: dict[str, list[str]] = {}
        for problem in problems:
            owners = self._owners(problem)
            for inst_id in owners if owners is not None else app.institutions:
                per_institution.setdefault(inst_id, []).append(logs.redact(str(problem)))
        now = app.clock.now()
        queued = False
        for inst_id, lines in per_institution.items():
            institution = app.institutions.get(inst_id)
            if institution is None or institution.staff_chat is None:
                continue
            text = institution.texts.render(
                "reload_failed",
                now=institution.local_time(now),
                problems=lines[:STAFF_PROBLEMS],
                more=max(0, len(lines) - STAFF_PROBLEMS),
            )
            self._counter += 1
            async with storage.transaction():
                await queue_message(
                    storage,
                    inst_id,
                    institution.staff_chat,
                    text,
                    dedup_key=f"reload:{inst_id}:{iso(now)}:{digest}:{self._counter}",
                    now=now,
                )
            queued = True
        if queued and app.sender is not None:
            app.sender.wake()

    # -- watching ------------------------------------------------------------------------
    def watch_set(self) -> WatchSet:
        """What to watch for the config now live, computed once per config (a watch event
        is checked against it in a set lookup: the database's -wal beside the config
        changes on every write)."""
        loaded = self.app.loaded
        if self._watch is None or self._watch[0] is not loaded:
            # every institution's files, not only this cell's: one watcher serves the cells
            self._watch = (loaded, WatchSet.of(loaded.whole, _database(self.app)))
        return self._watch[1]

    def relevant(self, path: str | Path) -> bool:
        return self.watch_set().relevant(path)

    async def on_changes(self, changes: Iterable[tuple[Any, str]]) -> ReloadResult | None:
        """Handle one batch of watch events: reload when a file that matters changed."""
        paths = sorted({path for _, path in changes if self.relevant(path)})
        if not paths:
            return None
        names = ", ".join(Path(p).name for p in paths[:5])
        result = await self.reload(f"changed: {names}")
        for peer in _peers(self):  # the other storage cells of this process (one watcher)
            await peer.reload(f"changed: {names}")
        return result

    async def watch(self) -> None:
        """Watch the files until :meth:`stop_watching`; re-aims after a reload that moved them."""

        while not self._stop.is_set():
            aimed = self.watch_set().folders
            try:
                async for changes in awatch(
                    *aimed,
                    stop_event=self._stop,
                    recursive=False,
                    watch_filter=lambda _change, path: self.relevant(path),
                    debounce=400,
                ):
                    await self.on_changes(changes)
                    if self.watch_set().folders != aimed:
                        break  # the config now names other folders
            except Exception:
                log.exception("file watcher failed; hot reload on file change is off")
                return

    def start_watching(self) -> None:
        self._stop.clear()
        self._watch_task = asyncio.create_task(self.watch(), name="reload-watcher")

    async def stop_watching(self) -> None:
        self._stop.set()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task
            self._watch_task = None


_reloaders: weakref.WeakKeyDictionary[Any, Reloader] = weakref.WeakKeyDictionary()


def reloader(app: Host) -> Reloader:
    found = _reloaders.get(app)
    if found is None:
        found = _reloaders[app] = Reloader(app)
    return found


async def reload(app: Host, reason: str = "requested") -> ReloadResult:
    """Validate and swap in the files as they are now; see the module docstring."""
    return await reloader(app).reload(reason)


def _database(app: Host) -> Path:
    return Path(app.database or app.loaded.database_path)


def install(app: Host) -> None:
    """Host feature: a real run watches its files, reloads on SIGHUP and writes a pid file.
    The local platform (shell, tests) reloads only when asked (:func:`reload`)."""
    if app.local:
        return
    r = reloader(app)

    async def on_start(_: Host) -> None:
        if not _peers(r):  # a region's cells share the first one's watcher
            r.start_watching()
        _on_sighup.add(r)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _sighup)
        try:
            pid_path(_database(app)).write_text(f"{os.getpid()}\n")
        except OSError as exc:
            log.warning("cannot write the pid file (priemnaya reload will not find us): %s", exc)

    async def on_stop(_: Host) -> None:
        await r.stop_watching()
        _on_sighup.discard(r)
        if not _on_sighup:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        path = pid_path(_database(app))
        with contextlib.suppress(OSError, ValueError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()

    app.on_start.append(on_start)
    app.on_stop.append(on_stop)


_background: set[asyncio.Task[Any]] = set()
#: the started apps' reloaders: one process runs one app per storage cell
#: (runtime/region.py), and a SIGHUP reloads every one; so does a changed file, seen by
#: the first cell's watcher alone (each watcher woke on every write to the databases
#: beside the config: with four, ~1.4 ms of CPU per update in bench/scale.py)
_on_sighup: set[Reloader] = set()


def _peers(r: Reloader) -> list[Reloader]:
    """The other started reloaders of the same config file (a region's other cells)."""
    return [o for o in _on_sighup if o is not r and o.app.loaded.path == r.app.loaded.path]


def _sighup() -> None:
    log.warning("SIGHUP: reloading")
    for r in list(_on_sighup):
        task = asyncio.get_running_loop().create_task(r.reload("SIGHUP"))
        _background.add(task)
        task.add_done_callback(_background.discard)


FEATURE = Feature(
    name="reload",
    templates={"reload_failed.j2": frozenset({"problems", "more"})},
    install=install,
)
