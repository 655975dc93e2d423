"""One institution as the handlers see it: its config, FAQ, matcher and texts.

The app builds one per institution at start and swaps in a new one on reload, so a handler
that started with the old version finishes with it; nothing here is mutated after build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bots.core.model import ChatRef
from handlers.config import InstitutionConfig, LoadedConfig, WorkingHours
from handlers.faq.matcher import FaqMatcher
from handlers.faq.model import Faq
from handlers.texts import Texts


@dataclass(frozen=True, slots=True)
class Institution:
    id: str
    config: InstitutionConfig
    faq: Faq
    matcher: FaqMatcher
    texts: Texts
    zone: ZoneInfo
    working_hours: WorkingHours
    #: the staff chat, or None when the institution has none
    staff_chat: ChatRef | None
    #: (platform, user id) of every staff member
    staff_ids: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def local_time(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def is_staff_chat(self, chat: ChatRef) -> bool:
        return (
            self.staff_chat is not None
            and chat.platform == self.staff_chat.platform
            and chat.chat_id == self.staff_chat.chat_id
        )

    def is_staff_member(self, platform: str, user_id: str) -> bool:
        return (platform, user_id) in self.staff_ids


def build_institution(
    loaded: LoadedConfig, institution_id: str, *, staff_platform_override: str | None = None
) -> Institution:
    """Assemble an institution from a loaded config (FAQs are already loaded there, and
    their matchers are built once per distinct FAQ on the config's shelf).

    ``staff_platform_override`` puts the staff chat and staff on another platform: the shell
    plays every platform locally."""
    config = loaded.config.institutions[institution_id]
    faq = loaded.faqs[institution_id]
    settings = config.matching
    decision_path = None
    if settings.decision_file is not None:
        decision_path = loaded.resolve(settings.decision_file)
    staff_chat = None
    if config.staff.chat is not None:
        staff_chat = ChatRef(
            staff_platform_override or config.staff.chat.platform, config.staff.chat.id
        )
    staff_ids = frozenset(
        (staff_platform_override or m.platform, m.id) for m in config.staff.members
    )
    return Institution(
        id=institution_id,
        config=config,
        faq=faq.faq,
        # shared by every institution with the same FAQ content and matcher settings
        matcher=loaded.faq_shelf.matcher(
            faq,
            settings,
            vectors_dir=loaded.database_path.parent / "vectors",
            decision_path=decision_path,
        ),
        texts=Texts(loaded.templates_dir(institution_id), institution=config.template_context()),
        zone=loaded.zone(institution_id),
        working_hours=loaded.working_hours(institution_id),
        staff_chat=staff_chat,
        staff_ids=staff_ids,
    )
