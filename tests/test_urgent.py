"""Urgency: danger to life and health found by dictionary forms and phrases, not substrings.

The labelled set (tests/fixtures/urgent.cases.yaml) was written by a person; bench/urgency.py
prints precision and recall on it. These tests pin what must never regress: the issue's own
messages in several word forms, the traps that a substring list falls into, an
institution's ``urgent:`` additions and removals, and the emergency numbers reaching a
citizen at once even inside an open ticket, with the ticket due in minutes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bots.core.clock import ManualClock
from bots.core.model import ChatKind, User
from bots.core.yamlfile import ProblemsError
from bots.local import LocalMessage
from handlers.config import load_config
from handlers.urgency import DEFAULT_RULES, detector, is_urgent
from runtime.app import App

CASES = Path(__file__).parent / "fixtures" / "urgent.cases.yaml"
STAFF_CHAT = "-1001234567890"
CITIZEN = "500"
# Monday 30 November 2026, 10:00 in Moscow
MONDAY_MORNING = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "Ребенок упал на перемене и сильно ударился головой, что делать?",
        "дочка ударилась головой о батарею",
        "головой ударился сын на физкультуре",
        "у ребёнка идёт кровь из носа и не останавливается",
        "кажется у него перелом руки",
        "сын сломал руку на перемене",
        "учитель без сознания лежит в коридоре",
        "в раздевалке драка, старшеклассники избили мальчика",
        "мальчику угрожают ножом за гаражами",
        "сын не вернулся домой из школы, телефон молчит",
        "пропала дочь, ушла утром в школу",
        "дочь пишет, что хочет покончить с собой",
        "в школе пожар, дым на втором этаже!",
        "в подвале сильно пахнет газом",
        "после обеда в столовой у детей отравление",
    ],
)
def test_danger_is_urgent_in_its_word_forms(text: str) -> None:
    assert is_urgent(text), detector().matching_rule(text)


@pytest.mark.parametrize(
    "text",
    [
        "Травматолог на приёме сегодня?",
        "как записаться к травматологу",
        "Когда возложение цветов к Вечному огню?",
        "вечный огонь на площади почему не горит",
        "правда ли, что школе угрожает закрытие?",
        "в новостях писали про угрозу паводка, занятия будут?",
        "нужна справка на оружие, какие врачи",
        "где сдать кровь на анализ",
        "как оплатить газ через госуслуги",
        "перелом был год назад, нужна справка для бассейна",
        "когда учебная эвакуация при пожаре",
        "курсы первой помощи при кровотечении для родителей",
        "пропал интернет в электронном дневнике",
        "мой сын подрался на перемене, прошу разобраться",
    ],
)
def test_traps_are_not_urgent(text: str) -> None:
    assert not is_urgent(text), detector().matching_rule(text)


@pytest.mark.parametrize(
    "text",
    [
        # families added after the first held-out measurement: people trapped or carried off
        "машина перевернулась, водитель зажат и не может выбраться",
        "затопило улицу, вода в домах по пояс",
        "дом кренится, жильцы внутри",
        "девушку силой затащили в машину",
        "мужик с топором ходит по коридору",
        "одноклассники пишут ей иди выпились",
        "подросток сидит на краю крыши",
        "папа путается в словах, сильнейшая головная боль",
        "грудной ребенок холодный и вялый",
        "сын съел гриб в лесу, теперь тошнит",
        "дочь режет руки, заперлась в ванной",
        "мальчик засунул горошину в нос",
        "дети играли на заброшке, один упал в шахту лифта",
        "у дедушки отнялась рука",
        "сына сбил велосипедист",
        "сын второй день не появляется дома",
        "ему очень плохо, не может идти",
        "мужчина в поликлинике кричит что всех перестреляет",
        "в классе мальчик потерял сознание, ему сдавили шею в игре",
        # a calm phrase quietens its own sentence only
        "Пишу уже месяц про котлеты. Сейчас сын выпал из окна и лежит не двигается!",
        "Хочу записаться к неврологу, есть направление. У папы перекосило лицо.",
    ],
)
def test_new_families_are_urgent(text: str) -> None:
    assert is_urgent(text), text


@pytest.mark.parametrize(
    "text",
    [
        # "не" before the phrase's head denies it, "про" makes it a topic
        "не горят фонари на улице Мира",
        "в подвале запах канализации, не газ, просто воняет",
        "там про убийство, к уроку надо",
        # a form, not a lemma: "дома" at home, not a house
        "построили дом на участке, а адреса у него нет",
        # "кому" is not a "кома"
        "кому положено льготное питание",
        # things go missing, people do not
        "у сына в раздевалке пропали новые сапоги",
        "потерялась карточка снилс у ребенка",
        # complaints, lessons, papers, prices, check-ups, old injuries, life after an illness
        "учительница плохо объясняет математику",
        "сын плохо говорит, нужен логопед",
        "сын плохо читает, нужен репетитор",
        "в садике сломалась горка, дети могут пораниться, почините",
        "почему кровь из пальца берут в коридоре",
        "классный руководитель угрожает двойкой за поведение",
        "я хочу умереть от скуки на этих собраниях",
        "можно ли ребенку принести нож для фруктов в лагерь",
        "соседи курят в подъезде, дым идет в квартиру",
        "скорая долго едет в поселок, хотим подать жалобу",
        "законно ли стрелять из пневматики в тире",
        "сочинение про самоубийство Катерины",
        "выставка рисунков «Огонь — друг и враг»",
        "как записаться к хирургу, старая травма колена беспокоит",
        "сколько стоит лечение перелома платно",
        "где сдать анализ на отравление свинцом",
        "можно ли получить копию протокола о ДТП",
        "папа лежачий после инсульта, нужен врач на дом",
        "могу встать на учет в центр занятости?",
        "сухое дерево вот-вот упадет, кто спилит",
        "мы переехали, как перевести ребенка в другую школу",
        "прошлой осенью был пожар в подъезде, когда ремонт",
        "какой порядок эвакуации из здания администрации",
        "вакцинация от бешенства для собаки где",
    ],
)
def test_new_traps_are_not_urgent(text: str) -> None:
    assert not is_urgent(text), detector().matching_rule(text)


@pytest.mark.parametrize(
    ("text", "urgent"),
    [
        ("у мамы сильно болит грудь", True),
        ("жмёт за грудиной уже полчаса", True),
        ("у мамы давление 200 на 110 и сильно болит голова, таблетки не помогают", True),
        ("АД 190/100 голова раскалывается", True),
        ("верхнее 185, что делать", True),
        ("болит грудь при кормлении, к какому врачу записаться", False),
        ("давление 140/90 держится неделю, как записаться к кардиологу", False),
        ("давление 170 на 100 по утрам, нужен терапевт", False),
        ("справка 180/2023 о давлении готова?", False),
    ],
)
def test_chest_pain_and_a_crisis_reading_of_blood_pressure_are_urgent(
    text: str, urgent: bool
) -> None:
    """Found while trying the demo as a citizen: «сильно болит грудь» and «давление 200 на
    110» got a list of FAQ entries. A reading counts from 180 (a hypertensive crisis);
    a nursing mother's breast and an ordinary high reading are for an appointment."""
    assert is_urgent(text) is urgent, detector().matching_rule(text)


def test_every_labelled_trap_of_the_development_set_is_not_urgent() -> None:
    """The whole labelled set is now the development set: each of its traps stays quiet
    (the held-out set, tests/fixtures/urgent.holdout.yaml, is measured by bench/urgency.py,
    never asserted, so that nobody tunes on it)."""
    cases = yaml.safe_load(CASES.read_text(encoding="utf-8"))["cases"]
    traps = [c for c in cases if c.get("trap") and not c["urgent"]]
    assert len(traps) >= 40
    assert [c["text"] for c in traps if is_urgent(c["text"])] == []


def test_the_labelled_set_has_enough_of_both_kinds() -> None:
    cases = yaml.safe_load(CASES.read_text(encoding="utf-8"))["cases"]
    assert sum(1 for c in cases if c["urgent"]) >= 80
    assert sum(1 for c in cases if not c["urgent"]) >= 80


def test_an_institution_adds_and_removes_phrases() -> None:
    assert not is_urgent("в спортзале прорвало трубу")
    assert is_urgent("В спортзале прорвало трубу", add=["прорвать труба"])
    assert is_urgent("трубу прорвало", add=["прорвало трубу"])
    assert is_urgent("у подъезда драка")
    assert not is_urgent("у подъезда драка", remove=["драка"])
    assert "драка -психолог" in DEFAULT_RULES


def test_config_rejects_removing_an_unknown_phrase(example_config: Path) -> None:
    text = example_config.read_text(encoding="utf-8")
    example_config.write_text(
        text.replace(
            "    faq: examples/faq/school.yaml",
            "    faq: examples/faq/school.yaml\n    urgent: {remove: [драки]}",
            1,
        ),
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as error:
        load_config(example_config)
    assert "драки" in str(error.value)


# -- in the app ------------------------------------------------------------------------------
@pytest.fixture
async def app(example_config: Path, clock: ManualClock) -> AsyncIterator[App]:
    clock.set(MONDAY_MORNING)
    running = App(load_config(example_config), clock=clock, local=True)
    await running.start()
    running.local_platform("school-17").open_chat(STAFF_CHAT, ChatKind.GROUP)
    try:
        yield running
    finally:
        await running.stop()


async def says(app: App, text: str) -> list[LocalMessage]:
    local = app.local_platform("school-17")
    before = len(local.messages(CITIZEN))
    await local.user_says(CITIZEN, text, user=User(CITIZEN, "Мария", "Петрова"))
    await app.settle()
    return local.messages(CITIZEN)[before:]


async def test_an_injury_inside_an_open_ticket_gets_the_numbers_and_its_own_urgent_ticket(
    app: App, clock: ManualClock
) -> None:
    """A ticket about a fight waits for staff; the parent then writes about an injury. The
    numbers come at once, and the injury is a ticket of its own, urgent and due in 30
    minutes of clock time, not after 8 working hours."""
    await says(app, "мой сын подрался на перемене, прошу разобраться")
    said = await says(app, "Ребенок упал на перемене и сильно ударился головой, что делать?")
    text = "\n".join(m.text for m in said)
    assert "112" in text and "103" in text
    assert "срочное" in text and "№ 2" in text
    assert app.storage is not None
    urgent = await app.storage.tickets.by_number("school-17", 2)
    assert urgent is not None and urgent.urgent and urgent.reason == "urgent"
    assert urgent.due_at == clock.now() + timedelta(minutes=30)
    first = await app.storage.tickets.by_number("school-17", 1)
    assert first is not None and not first.urgent
    staff = app.local_platform("school-17").messages(STAFF_CHAT)
    assert any("СРОЧНО" in m.text and "ударился головой" in m.text for m in staff)


async def test_an_urgent_ticket_is_reminded_halfway_and_breached_after_its_minutes(
    app: App, clock: ManualClock
) -> None:
    """Due in 30 minutes: no reminder at once, a reminder after 15, the breach notice
    naming the supervisor after 30."""
    from handlers.escalation.timers import tick

    await says(app, "в школе пожар, дым на втором этаже!")
    assert app.storage is not None
    staff = app.local_platform("school-17")

    async def notices(marker: str) -> int:
        assert app.storage is not None
        await tick(app.storage, app.institutions, clock.now())
        await app.settle()
        return sum(marker in m.text for m in staff.messages(STAFF_CHAT))

    assert await notices("⏰") == 0
    clock.advance(timedelta(minutes=16))
    assert await notices("⏰") == 1
    clock.advance(timedelta(minutes=15))
    assert await notices("истёк") == 1
