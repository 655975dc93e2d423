"""Two institutions, a school and a polyclinic, each with its own Telegram bot and staff
group: the config lines and the questions that the storage isolation tests
(tests/app/test_storage_cells.py, test_storage_stall_pg.py, tests/test_cli_cells.py) share."""

from __future__ import annotations

SCHOOL = "710001:school-token-abcdef"
CLINIC = "720002:clinic-token-abcdef"
SCHOOL_QUESTION = "Как записать ребенка в первый класс?"
SCHOOL_ANSWER = "Приём заявлений в 1 класс"
CLINIC_QUESTION = "как вызвать врача на дом"
CLINIC_ANSWER = "Вызвать врача на дом"


def institution_lines(
    inst: str, faq: str, telegram: str, staff_chat: int, member: int
) -> list[str]:
    """One institution of these two-institution configs:
    open around the clock, its FAQ from examples/faq, one staff member in a staff group."""
    return [
        f"  {inst}:",
        f"    name: {inst}",
        "    address: г. Курск",
        "    phone: +7 (4712) 00-00-00",
        '    working_hours: {mon-sun: "00:00-23:59"}',
        f"    faq: faq/{faq}.yaml",
        f"    telegram: {telegram}",
        "    staff:",
        f"      chat: {{platform: telegram, id: {staff_chat}}}",
        f"      members: [{{platform: telegram, id: {member}, name: Сотрудник}}]",
    ]
