"""The features the product runs, in order: the one list the app is given.

Order matters twice: install hooks run in this order at start (and their stop hooks in
this order at stop), and staff message hooks are tried in this order (an announcement being
composed claims a staff member's message before a reply to a ticket card would). A new
feature is its folder under handlers/ exporting ``FEATURE`` plus one line here.
"""

from __future__ import annotations

from handlers import announcements, answers, escalation, places, privacy
from handlers.feature import Feature
from handlers.texts import CORE_TEMPLATES
from runtime import logs, ok_notice, outage, reload

FEATURES: tuple[Feature, ...] = (
    answers.FEATURE,
    announcements.FEATURE,
    escalation.FEATURE,
    privacy.FEATURE,
    places.FEATURE,
    logs.FEATURE,
    reload.FEATURE,
    Feature(name="outage", install=outage.install, templates=outage.TEMPLATES),
    Feature(
        name="ok_token_notice",
        install=ok_notice.install,
        templates={"ok_token_refused.j2": frozenset()},
    ),
)


def templates_of(features: tuple[Feature, ...]) -> dict[str, frozenset[str]]:
    """Every template the bot with these features renders, with the names each is given."""
    names = dict(CORE_TEMPLATES)
    for feature in features:
        names.update(feature.templates)
    return names


#: what ``priemnaya check`` and reload accept in a templates folder
TEMPLATES = templates_of(FEATURES)
