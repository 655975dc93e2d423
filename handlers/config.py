"""The configuration file: pydantic models for the shape in docs/ARCHITECTURE.md, and the
loader that turns any problem into ``file:line: message``.

Secrets (tokens) are never written in the file: it says ``${TG_SCHOOL17}`` and the value
comes from the environment. Relative paths (FAQ files, template folders, the database)
are relative to the config file, so a config works from any current directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)

from bots.core.adapters import AccountSpec
from bots.core.schema import Strict
from bots.core.yamlfile import (
    Problem,
    ProblemsError,
    YamlDocument,
    is_unresolved,
    load_yaml,
    validate,
)
from bots.platforms import NAMES, PLATFORMS
from handlers.faq.matcher import MatcherSettings
from handlers.faq.model import LoadedFaq
from handlers.faq.shelf import FaqShelf
from handlers.urgency import parse_rule, unknown_removals

InstitutionId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
_DURATION = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*([^\W\d_]+)\.?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: unit words as people write them, English and Russian, by the prefix they start with
#: (longest first: "мин" is minutes, "м" alone too; "мес" is not a unit here)
_UNIT_WORDS: list[tuple[str, str]] = [
    ("sec", "s"), ("min", "m"), ("hour", "h"), ("day", "d"), ("week", "w"),
    ("сек", "s"), ("мин", "m"), ("час", "h"), ("дн", "d"), ("ден", "d"), ("сут", "d"),
    ("нед", "w"),
    ("s", "s"), ("m", "m"), ("h", "h"), ("d", "d"), ("w", "w"),
    ("с", "s"), ("м", "m"), ("ч", "h"), ("д", "d"), ("н", "w"),
]  # fmt: skip


def _unit(word: str) -> str | None:
    word = word.lower()
    if word.startswith("мес"):
        return None
    for prefix, unit in _UNIT_WORDS:
        if word.startswith(prefix) and (len(prefix) > 1 or len(word) == 1):
            return unit
    return None


_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def parse_duration(value: Any) -> timedelta:
    """'90s', '15m', '8h', '2d', '1w', Russian '30 дней', '2 ч', '15 мин', '1 неделя' (a
    space is optional), or a number of seconds. Admins here write Russian units naturally."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    unit = _unit(match.group(2)) if match else None
    if match is None or unit is None:
        raise ValueError(
            f"{value!r} is not a duration; write e.g. 30m, 8h, 2d or 30 мин, 8 ч, 2 дня"
        )
    return timedelta(seconds=float(match.group(1).replace(",", ".")) * _UNITS[unit])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
IdText = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class StorageConfig(Strict):
    #: SQLite file; relative to the config file
    path: str = "data/priemnaya.sqlite3"
    #: where SQLite's statements run: "thread" (aiosqlite's, off the event loop, one hop
    #: per unit of work) or "loop" (the event loop's own thread: no hops, but a stalling
    #: disk stalls every bot); see storage/aio.py
    sqlite: Literal["thread", "loop"] = "thread"
    #: PostgreSQL instead of SQLite, for several worker processes (runtime/workers.py):
    #: postgresql://user:password@host:5432/db, given as "${VAR}" since it may hold a password
    url: SecretStr | None = None
    #: SQLite only: how many files (cells) the institutions' data is spread over, each
    #: with its own writer thread, so one institution's crawling writes hold up only its
    #: cell's institutions (runtime/cells.py). Fixed once data is written: a file records
    #: its cell and the count, and a start with another count is refused
    cells: int = Field(1, ge=1, le=64)

    @model_validator(mode="after")
    def _cells_are_sqlite(self) -> StorageConfig:
        if self.cells > 1 and self.url is not None:
            raise ValueError(
                "storage.cells is for SQLite files; PostgreSQL (storage.url) needs none:"
                " remove storage.cells"
            )
        return self

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or is_unresolved(value.get_secret_value()):
            return value
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("storage.url must be a postgresql:// URL")
        return value


class ServerConfig(Strict):
    """One HTTP server for webhooks, /healthz and /metrics."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: public https URL that reaches this server (behind a reverse proxy), for webhooks
    public_url: str | None = None


def _known_platform(value: str) -> str:
    if value not in NAMES:
        raise ValueError(
            f"Input should be {', '.join(repr(n) for n in NAMES[:-1])} or {NAMES[-1]!r}"
        )
    return value


#: a messenger's name as the config writes it: one of the platform table's (bots/platforms.py)
PlatformName = Annotated[str, AfterValidator(_known_platform)]


class ChatAddress(Strict):
    platform: PlatformName
    id: IdText
    #: Telegram forum supergroup: one topic per ticket
    topics: bool = False


class StaffMember(Strict):
    platform: PlatformName
    id: IdText
    name: str
    supervisor: bool = False


class StaffConfig(Strict):
    chat: ChatAddress | None = None
    members: list[StaffMember] = []
    #: first response deadline, counted in working hours
    first_response: Duration = timedelta(hours=8)
    #: remind staff this long before the deadline
    remind_before: Duration = timedelta(hours=1)
    #: an answered ticket closes itself after this quiet period
    auto_close: Duration = timedelta(days=3)
    #: a reply to the staff answer (or "Не помогло" under it) reopens a ticket closed at
    #: most this long ago; later, the citizen's message opens a new ticket
    reopen_window: Duration = timedelta(days=2)
    #: an urgent ticket's first-response deadline, in clock time (not working hours)
    urgent_response: Duration = timedelta(minutes=30)


class UrgentConfig(Strict):
    """Changes to the default urgency phrases (handlers/urgency.py)."""

    #: phrases that also mean danger here ("застрял в лифте"); see urgent.py for the syntax
    add: list[str] = []
    #: default phrases that do not mean danger here, as written in the defaults (their
    #: cancelling -words may be left out)
    remove: list[str] = []

    @field_validator("add")
    @classmethod
    def _phrases(cls, value: list[str]) -> list[str]:
        for phrase in value:
            parse_rule(phrase)
        return value

    @field_validator("remove")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = unknown_removals(value)
        if unknown:
            raise ValueError(f"not a default urgent phrase: {unknown[0]!r}")
        return value


class AnnouncementConfig(Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    cron: str | None = None
    at: datetime | None = None
    every: Duration | None = None
    text: str | None = None
    template: str | None = None
    data: dict[str, Any] = {}
    to: Literal["subscribers"] | list[ChatAddress | Literal["subscribers"]] = "subscribers"
    topics: list[str] = []
    #: a missed occurrence younger than this is sent late after a restart
    grace: Duration = timedelta(hours=1)
    quiet_hours: str | None = "22:00-08:00"

    @model_validator(mode="after")
    def _one_schedule_one_body(self) -> AnnouncementConfig:
        schedules = [x for x in (self.cron, self.at, self.every) if x is not None]
        if len(schedules) != 1:
            raise ValueError("an announcement needs exactly one of 'cron', 'at' or 'every'")
        if (self.text is None) == (self.template is None):
            raise ValueError("an announcement needs exactly one of 'text' or 'template'")
        if self.cron is not None:
            try:
                CronTrigger.from_crontab(self.cron)
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r}: {exc}") from None
        return self


def _parse_hours(value: str) -> tuple[time, time]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
    if not match:
        raise ValueError(f"{value!r}: write hours as 08:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if not (0 <= h1 <= 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
        raise ValueError(f"{value!r}: not a time range")
    start = time(h1 % 24, m1)
    end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
    return start, end


def _parse_days(value: str) -> list[int]:
    days: list[int] = []
    for part in value.lower().split(","):
        part = part.strip()
        if "-" in part:
            a, b = (p.strip() for p in part.split("-", 1))
            if a not in _DAYS or b not in _DAYS:
                raise ValueError(f"{value!r}: days are mon, tue, wed, thu, fri, sat, sun")
            i, j = _DAYS.index(a), _DAYS.index(b)
            days.extend(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        elif part in _DAYS:
            days.append(_DAYS.index(part))
        else:
            raise ValueError(f"{value!r}: days are mon, tue, wed, thu, fri, sat, sun")
    return days


class WorkingHours:
    """Weekday -> list of (start, end), from ``{mon-fri: "08:00-17:00", sat: "09:00-13:00"}``."""

    def __init__(self, spec: dict[str, str]):
        self.spec = dict(spec)
        self.by_day: dict[int, list[tuple[time, time]]] = {d: [] for d in range(7)}
        for days, hours in spec.items():
            for part in str(hours).split(","):
                span = _parse_hours(part)
                for day in _parse_days(days):
                    self.by_day[day].append(span)
        for spans in self.by_day.values():
            spans.sort()


def _working_hours(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError('write working hours as {mon-fri: "08:00-17:00"}')
    spec = {str(k): str(v) for k, v in value.items()}
    WorkingHours(spec)  # raises on bad input
    return spec


class MatchingConfig(Strict):
    """Overrides of the matcher's thresholds; see handlers/faq/matcher.py for meanings."""

    model_config = ConfigDict(extra="allow", frozen=True)


class InstitutionConfig(Strict):
    name: str
    address: str = ""
    phone: str = ""
    email: str = ""
    site: str = ""
    hours: str = ""
    working_hours: Annotated[dict[str, str], BeforeValidator(_working_hours)] = {
        "mon-fri": "09:00-18:00"
    }
    holidays: list[date] = []
    timezone: str | None = None
    faq: str
    templates: str | None = None
    staff: StaffConfig = StaffConfig()
    announcements: list[AnnouncementConfig] = []
    # Matcher knobs (thresholds...): unknown keys and values out of range are config errors.
    matching: MatcherSettings = MatcherSettings()
    urgent: UrgentConfig = UrgentConfig()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            _zone(value)
        return value

    def account(self, platform: str) -> Any:
        """The account section for ``platform`` (a model from bots/<platform>/account.py),
        or None; the fields themselves are added from the platform table below."""
        return getattr(self, platform, None)

    def platforms(self) -> list[str]:
        return [p for p in PLATFORMS if self.account(p) is not None]

    def template_context(self) -> dict[str, Any]:
        """What answer templates see as ``institution``: contacts, never tokens."""
        return {
            "name": self.name,
            "address": self.address,
            "phone": self.phone,
            "email": self.email,
            "site": self.site,
            "hours": self.hours,
        }


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; write e.g. Europe/Moscow") from None


class Config(Strict):
    storage: StorageConfig = StorageConfig()
    timezone: str = "Europe/Moscow"
    server: ServerConfig | None = None
    #: keep citizens' messages this long
    retention: Duration = timedelta(days=180)
    #: on SIGTERM, stop within this long (keep it under the service manager's stop timeout);
    #: messages not sent by then stay queued for the next start
    shutdown_timeout: Duration = timedelta(seconds=10)
    institutions: dict[InstitutionId, InstitutionConfig] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("shutdown_timeout")
    @classmethod
    def _shutdown_range(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(minutes=5):
            raise ValueError("shutdown_timeout must be between 1s and 5m")
        return value


#: the institution section as validated: the fields above plus one optional account section
#: per platform of the table (``telegram: TelegramAccount | None`` ...)
_InstitutionWithAccounts = create_model(
    "InstitutionConfig",
    __base__=InstitutionConfig,
    **{kind.name: (kind.account | None, None) for kind in PLATFORMS.values()},  # type: ignore[call-overload]
)

#: the whole file as validated (institutions with their accounts)
_ValidatedConfig = create_model(
    "Config",
    __base__=Config,
    institutions=(dict[InstitutionId, _InstitutionWithAccounts], Field(min_length=1)),  # type: ignore[valid-type]
)


class LoadedConfig:
    """A validated config with its base folder, resolved paths and loaded FAQs."""

    def __init__(
        self, path: Path, document: YamlDocument, config: Config, shelf: FaqShelf | None = None
    ):
        self.path = path
        self.base = path.parent
        self.document = document
        self.config = config
        self.faqs: dict[str, LoadedFaq] = {}
        #: the FAQs and matchers, one per distinct FAQ content, shared by the institutions
        self.faq_shelf = shelf or FaqShelf()
        #: problems that do not stop the local demo but would stop a real run
        self.warnings: list[Problem] = []
        #: the config as loaded, when this is one storage cell's part of it (:meth:`only`)
        self.whole: LoadedConfig = self

    def only(self, institutions: Iterable[str]) -> LoadedConfig:
        """This config with only ``institutions`` (in their order here): what one storage
        cell's app runs (runtime/cells.py). FAQs, warnings and the file stay shared."""
        keep = set(institutions)
        config = self.config.model_copy(
            update={
                "institutions": {k: v for k, v in self.config.institutions.items() if k in keep}
            }
        )
        narrowed = LoadedConfig(self.path, self.document, config, self.faq_shelf)
        narrowed.faqs = {k: v for k, v in self.faqs.items() if k in keep}
        narrowed.warnings = list(self.warnings)
        narrowed.whole = self.whole
        return narrowed

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else (self.base / p)

    def zone(self, institution_id: str) -> ZoneInfo:
        inst = self.config.institutions[institution_id]
        return _zone(inst.timezone or self.config.timezone)

    def working_hours(self, institution_id: str) -> WorkingHours:
        return WorkingHours(self.config.institutions[institution_id].working_hours)

    @property
    def database_path(self) -> Path:
        return self.resolve(self.config.storage.path)

    @property
    def database_target(self) -> str:
        """What Storage.open takes: the PostgreSQL URL when configured, else the SQLite file."""
        url = self.config.storage.url
        return url.get_secret_value() if url is not None else str(self.database_path)

    def accounts(self, platform: str) -> list[AccountSpec]:
        """Every institution's account on ``platform`` (what its adapter group is built of)."""
        return [
            AccountSpec(inst_id, inst.account(platform))
            for inst_id, inst in self.config.institutions.items()
            if inst.account(platform) is not None
        ]

    def templates_dir(self, institution_id: str) -> Path | None:
        folder = self.config.institutions[institution_id].templates
        return self.resolve(folder) if folder else None

    def line_of(self, *loc: str | int) -> int | None:
        return self.document.line_of(loc)


def load_config(
    path: str | Path, *, offline: bool = False, shelf: FaqShelf | None = None
) -> LoadedConfig:
    """Load the config and every FAQ it names; ProblemsError lists every problem found.

    An environment variable that is not set is one problem among the others, so one run of
    ``check`` shows them all. ``offline=True`` (shell, faq ask, report...: nothing talks to
    a messenger) tolerates unset variables: the value keeps its ``${VAR}`` text. Each FAQ
    file is loaded once however many institutions name it (``shelf``: a reload passes the
    running config's successor, so unchanged FAQs are not parsed again). A problem of a
    shared file is listed once."""
    config_path = Path(path)
    shelf = shelf or FaqShelf()
    doc = load_yaml(config_path, expand_env=True)
    env_problems = [] if offline else list(doc.unresolved)
    try:
        config = validate(_ValidatedConfig, doc)
    except ProblemsError as exc:
        # the FAQs are still checked, so one run shows every problem, not the config's first
        problems = sorted([*env_problems, *exc.problems], key=_by_line)
        raw = doc.data.get("institutions") if isinstance(doc.data, dict) else None
        for inst_id, inst in (raw if isinstance(raw, dict) else {}).items():
            if isinstance(inst, dict) and isinstance(inst.get("faq"), str) and inst["faq"]:
                _load_faq(shelf, doc, config_path.parent, str(inst_id), inst["faq"], problems)
        raise ProblemsError(_once(problems)) from None
    loaded = LoadedConfig(config_path, doc, config, shelf)
    problems = env_problems
    for inst_id, inst in config.institutions.items():
        faq = _load_faq(shelf, doc, loaded.base, inst_id, inst.faq, problems)
        if faq is not None:
            loaded.faqs[inst_id] = faq
        folder = loaded.templates_dir(inst_id)
        if folder is not None and not folder.is_dir():
            problems.append(
                doc.problem(
                    ("institutions", inst_id, "templates"), f"template folder not found: {folder}"
                )
            )
        loaded.warnings.extend(_staff_warnings(doc, inst_id, inst))
        problems.extend(_staff_problems(doc, inst_id, inst))
        for kind in PLATFORMS.values():  # each platform's own rules (bots/<name>/)
            if kind.config_problems is not None:
                problems.extend(kind.config_problems(doc, config, inst_id, inst))
    problems.extend(_shared_staff_chat_problems(doc, config))
    problems.extend(_deep_link_problems(doc, config))
    if problems:
        raise ProblemsError(_once(problems))
    return loaded


def _load_faq(
    shelf: FaqShelf,
    doc: YamlDocument,
    base: Path,
    inst_id: str,
    relative: str,
    problems: list[Problem],
) -> LoadedFaq | None:
    """The institution's FAQ, or None after adding its problems to ``problems``."""
    faq_path = Path(relative) if Path(relative).is_absolute() else base / relative
    try:
        loaded, found = shelf.load(faq_path)
    except ProblemsError as exc:
        for p in exc.problems:
            if p.message == "file not found" and p.file == str(faq_path):
                p = doc.problem(("institutions", inst_id, "faq"), f"FAQ file not found: {faq_path}")
            problems.append(p)
        return None
    problems.extend(found)
    return loaded


def _once(problems: list[Problem]) -> list[Problem]:
    """Each problem once: an FAQ file shared by many institutions is one file to fix."""
    return list(dict.fromkeys(problems))


def _by_line(problem: Problem) -> tuple[str, int]:
    return problem.file, problem.line or 0


def _staff_warnings(doc: YamlDocument, inst_id: str, inst: InstitutionConfig) -> list[Problem]:
    chat = inst.staff.chat
    if chat is not None and chat.platform != "local" and inst.account(chat.platform) is None:
        return [
            doc.problem(
                ("institutions", inst_id, "staff", "chat", "platform"),
                f"the staff chat is on {chat.platform}, but the institution has no "
                f"{chat.platform} account: tickets cannot reach staff until one is configured",
            )
        ]
    return []


def _staff_problems(doc: YamlDocument, inst_id: str, inst: InstitutionConfig) -> list[Problem]:
    problems = []
    chat = inst.staff.chat
    if chat is not None and not inst.staff.members:
        problems.append(
            doc.problem(
                ("institutions", inst_id, "staff"),
                "a staff chat without members: list who may answer under staff.members",
            )
        )
    return problems


#: platforms whose chat ids are global (the same id is the same chat whatever the bot)
_GLOBAL_CHAT_IDS = frozenset({"telegram"})
#: what Telegram accepts as a deep-link ``start`` parameter
_DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _shared_staff_chat_problems(doc: YamlDocument, config: _ValidatedConfig) -> list[Problem]:
    """Two institutions with the same staff chat would see each other's tickets (and a
    shared bot could not tell whose a staff reply is): an error. The same chat is the same
    id on a platform with global ids, or on the same account (a shared bot)."""
    problems = []
    seen: dict[tuple[str, str], list[str]] = {}
    for inst_id, inst in config.institutions.items():
        chat = inst.staff.chat
        if chat is None or chat.platform == "local":
            continue
        key = (chat.platform, str(chat.id))
        for other in seen.get(key, []):
            other_account = config.institutions[other].account(chat.platform)
            if chat.platform in _GLOBAL_CHAT_IDS or other_account == inst.account(chat.platform):
                problems.append(
                    doc.problem(
                        ("institutions", inst_id, "staff", "chat", "id"),
                        f"the staff chat is also {other!r}'s: each institution needs its own "
                        "staff chat, or staff would see the other's tickets",
                    )
                )
                break
        seen.setdefault(key, []).append(inst_id)
    return problems


def _deep_link_problems(doc: YamlDocument, config: _ValidatedConfig) -> list[Problem]:
    """Institutions sharing a Telegram or MAX bot are chosen by <link>?start=<id>: the id
    must be what Telegram accepts there (Latin letters, digits, _ and -, at most 64)."""
    problems = []
    institutions = config.institutions
    for inst_id, inst in institutions.items():
        if _DEEP_LINK.fullmatch(inst_id):
            continue
        for platform in ("telegram", "max"):
            account = inst.account(platform)
            if account is None or not any(
                o != inst_id and i.account(platform) == account for o, i in institutions.items()
            ):
                continue
            problems.append(
                doc.problem(
                    ("institutions", inst_id),
                    f"{inst_id!r} shares its {platform} bot, so its id is the deep link's start "
                    "parameter: use Latin letters, digits, _ and - (at most 64)",
                )
            )
            break
    return problems
