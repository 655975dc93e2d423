"""Urgent messages: danger to a life or to health right now. They get the emergency numbers
at once and a ticket due in minutes, whatever else is going on in the conversation.

Why lemmas and phrases rather than substrings: citizens write "ударился головой", "ударилась
головой", "головой ударился", and a substring list either misses the forms or fires on the
wrong word ("травма" inside "травматолог"). Each rule is a short phrase whose words are
compared by dictionary form (the same pymorphy3 analysis the FAQ matcher uses), in any order,
within a few words of each other. A rule may name words that cancel it ("оружие" is no
danger in "справка на оружие").

Rule syntax (the same for the defaults and for an institution's ``urgent: {add: [...]}``):

- words separated by spaces must all occur close together, in any order, any form:
  ``ударился головой``;
- ``a|b|c`` is one word with alternatives: ``пропал ребёнок|сын|дочь``;
- ``-слово`` cancels the rule when that word occurs anywhere in the message:
  ``оружие -справка -лицензия``;
- ``=слово`` is that very form, not its lemma: ``=дома нет`` ("дома" as "at home", not a
  form of "дом").

The first word of a phrase right after "не" or "про" does not count: it is denied or it is
a topic ("не горят фонари", "пахнет канализацией, не газом", "там про убийство"); a phrase
that needs the negation names it: ``не дышать``.

Calm phrases ("год назад", "справка", "курсы", "сочинение") put danger in the past, on paper
or in a lesson. They are tight (their words next to each other) and they quieten only their
own sentence: a parent who asks about school meals "уже месяц" and then writes that a child
fell out of a window must still get the numbers. The danger phrases then run over the
sentences that are left, so a phrase may still span two short sentences ("Сын упал.
Ударился головой.").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from handlers.faq.matching.morph import fold, lemma, lemma_options
from handlers.faq.matching.text import tokenize

#: the word a number from 180 to 300 stands for: a blood pressure reading that calls for an
#: ambulance (other numbers carry no word; rules name this one next to "давление")
HIGH_READING = "<180-300>"
#: who may be in danger: a rule about a person needs one of these near its verb
_PEOPLE = (
    "ребенок|сын|дочь|дочка|сынок|мальчик|девочка|ученик|ученица|школьник|школьница"
    "|подросток|малыш|внук|внучка|брат|сестра|муж|жена|мама|мать|папа|отец|бабушка|дедушка"
    "|человек|друг|подруга|одноклассник|учитель|учительница|я|мы|он|она|они|нас|меня|его|ее"
    "|девушка|женщина|мужчина|парень|старик|старушка|пенсионер|пожилой|младенец|пассажир"
)
_OTHERS = _PEOPLE.replace("|я|мы|", "|")
#: people named by a noun: "у меня пропал паспорт" is about a paper, "пропал сын" is not
_NAMED = _PEOPLE.replace("|я|мы|он|она|они|нас|меня|его|ее", "")
_BODY = "голова|рука|нога|палец|нос|ключица|кость|ребро|позвоночник|шея|спина|челюсть|зуб"
#: who is unwell, in the dative ("ребенку плохо", "ему плохо"): the very forms, not lemmas
_UNWELL = "|".join(
    "=" + w
    for w in (
        "ему ей мне нам им ребенку сыну дочке дочери сынку малышу мальчику девочке ученику"
        " ученице учителю учительнице маме матери папе отцу мужу жене бабушке дедушке внуку"
        " внучке брату сестре другу подруге человеку мужчине женщине девушке парню старику"
        " пенсионерке пенсионеру пациенту пассажиру водителю младенцу"
    ).split()
)
#: things that go missing too: "у сына пропали сапоги" is no missing child
_THINGS = (
    " -куртка -сапог -вещь -обувь -деньги -паспорт -документ -рюкзак -портфель -сменка -карта"
    " -карточка -снилс -полис -интернет"
)
_PAPERS = "-справка -медкомиссия -лицензия -разрешение -медосмотр -комиссия -осмотр -хранение"

#: the default rules; ``urgent: {remove: [...]}`` takes one out by its text here, with or
#: without its cancelling ``-words``
DEFAULT_RULES: tuple[str, ...] = (
    # injuries
    "травма -справка",
    "травмироваться",
    "травмировать",
    "перелом -рентген -снимок -направление -гипс -реабилитация -срастись",
    f"сломать|сломаться {_BODY}",
    "вывернуть|вывернутый|неестественно нога|рука|палец|сторона|колено|стопа",
    "глаз попасть|повредить|выбить|вытечь|кровь|ожог",
    f"прищемить|придавить {_BODY}",
    "кровить",
    "кровавый|кровь рвота|понос|моча|кал|стул|кашель|кашлять",
    "сотрясение",
    "ударить|удариться|стукнуться голова",
    "упасть голова|лестница|высота|окно|крыша|качели|турник|сильно|рельсы|колодец|обрыв"
    f"|балкон|этаж|стремянка|забор|{_BODY}",
    "разбить голова|лицо|нос|губа|бровь",
    "ожог",
    "обжечься",
    "обжечь",
    "взрывпакет|петарда|фейерверк взорваться|рука|глаз|лицо|ожог|обжечь|ранить|оторвать",
    "оторвать палец|рука|кисть|нога",
    "облить|облиться бензин|керосин|растворитель|себя",
    "ошпарить|ошпариться",
    "кипяток",
    "удар тепловой|солнечный",
    "обморожение",
    "переохлаждение",
    "ртуть",
    "удар ток",
    "ударить ток",
    "розетка палец|ударить|ток",
    "вывих",
    "рана",
    "ранить",
    "порезаться",
    "поранить|пораниться",
    f"порезать|распороть|осколок {_BODY}|лицо|глаз|кровь",
    "порез",
    "кровотечение",
    "кровь много|рвота|кашлять|идти|течь|хлестать|литься|остановить|останавливаться|весь|лужа"
    f"|сильно|лицо|глаз|ухо|рот|{_BODY} -иногда -периодически",
    "истекать",
    "укусить собака|змея|клещ",
    "покусать",
    "ужалить",
    "проглотить",
    "подавиться",
    "поперхнуться",
    "застрять горло|горле",
    "передозировка",
    "передоз",
    "наглотаться",
    "накуриться|нанюхаться|надышаться",
    "жидкость|вещество|порошок выпить|пить|нюхать|вдохнуть|проглотить|съесть",
    "шататься -зуб",
    "засунуть|застрять нос|ухо|глаз|горло",
    "опрокинуть|вылить|пролить кастрюля|чайник|горячий|кипяток|себя",
    "кислород|ивл|концентратор свет|электричество|отключить|нет|лежачий",
    "бред температура|жар",
    "бредить",
    "кислота|щелочь|уксус|химия|отбеливатель|хлорка|бензин выпить|глотнуть|попасть|проглотить",
    "лекарство|средство выпить|проглотить|наглотаться",
    "таблетка выпить|съесть|много|наглотаться",
    "выпасть окно|балкон",
    "провалиться|упасть люк|яма|колодец|лед|шахта|погреб|котлован|траншея|канава|прорубь"
    "|полынья|болото|трясина",
    "достать не можем|могу",
    "авария автобус|машина|автомобиль|люди|пострадать|кровь|ребенок|кювет",
    "кювет",
    "лед треснуть|трещать|проломиться|ломаться",
    "выйти|гулять|играть|кататься лед река|пруд|озеро|водохранилище",
    "залезть|полезть|забраться трансформатор|трансформаторный|подстанция|лэп|опора|высоковольтный"
    "|крыша|вагон|электричка",
    "лифт оборваться|упасть|рухнуть|падать",
    "дтп",
    "сбить машина|автомобиль|автобус|мотоцикл|грузовик|велосипедист|велосипед|самокат|электросамокат",
    "пострадать " + _OTHERS,
    # trapped, crushed or cut off: a person who cannot get out by themselves
    "зажать|придавить " + _OTHERS + "|водитель|пассажир|люди|кто-то",
    "выбраться|вылезти не мочь|можем|может|могут|получаться",
    "выйти не дом|квартира|подъезд|подвал|здание|комната",
    "перевернуться машина|автомобиль|автобус|лодка|катер",
    "наехать|задавить машина|автобус|грузовик|трактор|" + _OTHERS,
    "вода пояс|грудь|шея|горло",
    "унести|смыть|сносить течение|волна|вода",
    "сорваться высота|скала|обрыв|крыша|балкон|стройка",
    "крениться|накрениться",
    "обвалиться|обвал -снежный -рынок -курс",
    "замерзать|замерзнуть|коченеть младенец|грудной|пожилой|бабушка|дедушка|улица|насмерть",
    # life-threatening states
    "сознание",
    "не реагировать",
    "не двигаться",
    "без движение лежать|" + _OTHERS,
    "лежать мужчина|человек|женщина|старик|пожилой|бабушка|дедушка улица|земля|снег|остановка|дорога|тротуар|обочина|кровь",
    "половой орган",
    "эксгибиционист",
    "обнажаться|оголяться|раздеваться перед ребенок|дети|девочка|школьник",
    "не вставать -учет -биржа -очередь",
    "стать плохо",
    # being unwell takes the dative: "ребенку плохо"; "сын плохо читает" is a complaint
    "плохо " + _UNWELL + " -чувствовать -выговаривать -логопед -речевой",
    "перекосить",
    "инсульт",
    "инфаркт",
    "парализовать|паралич",
    "не приходить|прийти себя",
    "припадок",
    "сердце схватить",
    "роды -партнерский -подготовка -курс -платный -контракт -школа",
    "шприц|игла|иголка съесть|уколоться|найти|площадка|песочница|валяться|разбросать",
    "опухнуть|распухнуть|отечь|отекать весь|после|аллергия|пятно",
    "аллергия отек|отекать|опухнуть|задыхаться|реакция",
    "обмякнуть|обмякать",
    "дурно",
    "осесть пол|земля",
    "трясти|швырять|таскать " + _NAMED,
    "=одна|=один жить не отвечать|открывать|выходить",
    "выгнать|выставить мороз|улица|холод",
    "кома впасть|диабетический|гипогликемический|искусственный|реанимация",
    "гипогликемия",
    "онеметь|онемение",
    "отняться|отниматься",
    "перестать говорить|дышать|реагировать|отвечать",
    "невнятный речь",
    "путаться|заплетаться слово|речь|язык",
    "заговариваться",
    "сильнейший|невыносимый|нестерпимый|адский боль",
    "младенец|грудной|новорожденный температура|вялый|холодный|посинеть|судорога|рвота|дышать",
    "аллергический реакция|шок",
    "анафилаксия",
    "встать|пошевелиться|шевелиться|наступить не -учет -биржа -очередь",
    "скорая не ехать|приехать|приезжать|дозвониться",
    "синий губа",
    "синеватый|синюшный|синеть",
    "шевеление не|нет|перестать|пропасть",
    "темнеть глаз",
    # a gas water heater and a headache or vomiting: carbon monoxide
    "колонка|угарный|угар голова|тошнить|рвота|рвать|плохо|сознание",
    "не просыпаться|проснуться",
    "захлебнуться",
    "аппендицит",
    "рожать",
    "схватка",
    "отойти вода",
    "бешенство -вакцина -вакцинация -прививка -прививать -привить -ветеринар",
    "сердце остановиться|прихватить|колоть|болеть",
    "остановка сердце|дыхание",
    "давление подняться|упасть|скакнуть",
    "температура не сбиваться|спадать",
    "резкий|острый боль",
    "бешеный",
    "давить грудь",
    "боль грудь",
    # "сильно болит грудь" at a polyclinic; a nursing mother's breast is no emergency here
    "болеть|жечь|жать|сжимать|сдавливать грудь|грудина -кормление -кормить -молоко -лактация"
    " -маммолог -маммография -мастит -мастопатия -узи",
    # a blood pressure a citizen writes as figures: 180 and over is a crisis ("давление 200
    # на 110", "АД 190/100", "верхнее 185")
    f"давление|ад|верхний {HIGH_READING} -кабинет -рубль -день",
    "хрипеть",
    "опухнуть|распухнуть|отечь|отекать|отек лицо|горло|губа|язык|глаз",
    "сыпь не|температура",
    "запасть глаз",
    "обезвоживание",
    "сахар не|высокий|низкий|упасть|зашкаливать",
    "обморок",
    "не дышать",
    "задыхаться|задыхаеться",
    "дышать трудно|тяжело",
    "судорога",
    "конвульсия",
    "пена рот",
    "холодный пот",
    "болеть|боль|давить|жечь|жать|сжимать грудина",
    "вдохнуть|вздохнуть не",
    "кость горло",
    "отстать группа|экскурсия",
    "колоть|уколоться вена|шприц|наркотик",
    "наркотик|спайс употребить|колоть|нюхать|плохо|передоз|передозировка",
    "приступ",
    "посинеть",
    "умирать -скука -смех",
    "отек квинке",
    "анафилактический",
    "скорая вызвать|приехать|ехать|увезти|забрать -телефон -номер -станция",
    "реанимация -посещение -передача",
    "тонуть",
    "утонуть",
    "провалиться лед",
    # poisoning
    "отравление",
    "отравиться",
    "отравить",
    "рвота ребенок|дети|много|несколько|класс|после",
    "рвать ребенок|дети|несколько|всех",
    "рвота|тошнить|рвать упасть|удариться|ударить|температура|боль",
    "гриб|ягода|батарейка|магнит съесть|наесться|проглотить|тошнить|рвать|рвота",
    # violence and threats
    "драка -психолог",
    "избить",
    "избиение",
    "избивать",
    "педофил",
    "развратный|непристойный",
    "неизвестный|чужой|незнакомый|какой мужчина|дядя|женщина вести|увести|тащить|забрать|посадить",
    "сбить " + _NAMED + "|коляска|пешеход -температура -цена",
    "незнакомый|незнакомец увести|увезти|забрать|посадить|уводить|уйти|уехать|сесть|пойти",
    "драться сейчас|прямо|толпа",
    "искать ребенок|сын|дочь|мальчик|девочка|бабушка|дедушка|мама|отец|муж" + _THINGS,
    "деменция|альцгеймер уйти|пропасть|потеряться",
    "агрессивный мужчина|человек|посетитель|пациент|подросток",
    "чп",
    "душить",
    "схватить|сдавить|сжать|сжимать горло|шея",
    "столкнуть",
    "маньяк",
    "неадекватный",
    "кидаться",
    "бросаться|броситься прохожий|люди|дети|нож|" + _OTHERS,
    "броситься поезд|машина|электричка",
    "кидать|бросать|бросить|швырять камень|кирпич|бутылка|петарда",
    "распылить|брызнуть баллончик|газ|перцовый|глаз|лицо",
    "баллончик перцовый|газовый|кашлять|глаз|задыхаться",
    "преследовать ",
    "заложник",
    "скулшутинг|шутинг|стрелок",
    "подозрительный предмет|пакет|сумка|человек|коробка",
    "бить " + _PEOPLE + " -бокс -спарринг -тренировка -единоборство -каратэ",
    "напасть",
    "ворваться",
    "нападение",
    "угроза жизнь|здоровье|убийство|расправа|насилие|получать|поступать|присылать|писать",
    "угрожать " + _PEOPLE + "|убить|нож|расправа|убийство|пистолет|оружие",
    "убить -время -скука",
    "убийство",
    "ударить " + _PEOPLE,
    "угрожать -двойка -оценка -незачет -неаттестация -закрытие -штраф -отключение -снос -выселение -отчисление -исключение -ремонт -банкротство -паводок -наводнение",
    "грозиться -двойка -оценка -отчислить -исключить -штраф -выселить -уволить",
    "вымогать|шантажировать",
    "пьяный водитель|руль|нож|драться|агрессивный",
    "нож " + _PEOPLE + "|угрожать|прийти|принести|пронести|достать|ударить|ранить|порезать"
    "|взять|схватить|размахивать|кидаться -фрукт -резка",
    "ножевой",
    "пырнуть|зарезать|заколоть|перестрелять|застрелить|пристрелить|поубивать|перерезать",
    "кран упасть|рухнуть|обрушиться",
    "завал|обломки " + _OTHERS + "|люди",
    "топор|бита|арматура|мачете|кастет|травмат "
    + _OTHERS
    + "|мужик|мужчина|парень|ходить|бегать|размахивать|угрожать|напасть|кидаться",
    "сила затащить|увести|увезти|посадить|тащить|запихнуть",
    "затащить|запихнуть " + _OTHERS + " машина|подъезд|кусты|гараж|подвал",
    "оружие " + _PAPERS,
    "пистолет " + _PAPERS,
    "ружье " + _PAPERS,
    "стрелять",
    "стрельба -секция -тир -спортивный -соревнование",
    "выстрел",
    "теракт",
    "взрыв",
    "взорвать",
    "граната",
    "взрывчатка",
    "заминировать",
    "минирование",
    "эвакуировать|эвакуация",
    "замыкание",
    "сосулька|глыба|наледь|снег упасть|рухнуть|сорваться|свалиться|придавить|ударить|" + _OTHERS,
    "люк открытый",
    "бомба",
    "насилие",
    "изнасиловать",
    "изнасилование",
    "домогаться",
    "домогательство",
    "приставать " + _PEOPLE,
    "похитить",
    "похищение",
    # missing people
    "пропасть " + _NAMED + _THINGS,
    "не вернуться домой|школа|секция|прогулка|лес|река|рыбалка|охота",
    "уйти|уехать|пойти не вернуться",
    "заблудиться лес|болото|тайга|поле|" + _OTHERS,
    "не открывать дверь телефон|звонок|отвечать|день|сутки",
    "держать|запереть " + _OTHERS + " подвал|гараж|туалет|кладовка|взаперти|сила",
    "не прийти домой",
    "не прийти из школа|сад|секция",
    "=дома нет его|ее|ребенок|сын|дочь",
    "прощальный записка|письмо|сообщение|пост|видео",
    "последний письмо|записка",
    "никто не нужный",
    "прощаться|попрощаться навсегда|все|больше|написать|сообщение",
    "кричать помощь",
    "льдина",
    "сорвать крыша|кровля",
    "обрушиться",
    "обрушение",
    "рухнуть",
    "найти не " + _PEOPLE + "|можем|могу",
    "потеряться " + _NAMED + _THINGS,
    "не появляться дом|дома|школа|день|сутки|ночь",
    "не ночевать",
    "убежать|сбежать|уйти из дом",
    "не выходить связь",
    # self-harm
    "суицид",
    "хотеть умереть -скука -смех",
    "селфхарм|самоповреждение",
    "группа смерть",
    "самоубийство",
    "покончить",
    "повеситься",
    "выброситься",
    "вскрыть вена",
    "прыгнуть крыша|окно|мост",
    "не хотеть жить",
    "убить себя",
    "наложить рука",
    "резать|порезать|вскрыть себя|вена",
    "резать|резаться|царапать рука|руки|запястье|бедро",
    "выпрыгнуть",
    "спрыгнуть крыша|окно|мост",
    "выпилиться|самоубиться|роскомнадзорнуться",
    "жить не хотеться|хочется|незачем",
    "надоесть жить",
    "уйти из жизнь",
    "счет свести жизнь",
    "край|перила крыша|мост|окно|балкон",
    "сидеть|стоять|залезть крыша|подоконник|парапет|перила " + _OTHERS,
    # fire, smoke, gas
    "пожар",
    "гореть -вечный -дедлайн -отчет -сдача -свет -лампа -лампочка -индикатор -срок -путевка -экран -светофор -глаз",
    "возгорание",
    "загореться",
    "хлопок газ|взрыв",
    "дерево упасть|рухнуть|повалить|падать -спилить -сухой -аварийный -убрать -вывезти",
    "искрить",
    "гарь",
    "горелый|паленый|палёный пахнуть|запах|вонять",
    "пламя",
    "огонь -вечный -утренник -костюм -праздник -сценка -спектакль",
    "дым -экология -выброс -курить -сигарета -сигаретный -кальян -вейп -шашлык -мангал",
    "задымление",
    "газ запах|пахнуть|утечка|отравиться|угарный|травиться|течь|свистеть|шипеть -датчик -счетчик -компенсация",
    "газовый|газопровод баллон|труба|шланг|плита|лопнуть|свистеть|свист|шипеть|течь|взорваться"
    "|утечка|запах|пахнуть|прорвать|повредить|порвать",
    "угарный",
    "провод оборвать|обрыв|оголенный|искрить",
    "застрять лифт",
)

#: phrases that put a message's danger in the past, in a lesson or on paper ("перелом был
#: год назад, нужна справка", "курсы первой помощи"): a message with one is not urgent
CALM_RULES: tuple[str, ...] = (
    "справка",
    "год|месяц|неделя|полгода назад",
    "уже год|месяц|неделя",
    "уже разобраться",
    "решение комиссия",
    "все здоровый",
    "переболеть",
    "учебный",
    "курс",
    "обж",
    "презентация",
    "план|порядок|схема|тренировка эвакуация",
    "фильм|кино|сериал|книга|видеоигра|мультфильм",
    "компьютерный игра",
    "обжаловать",
    "оказание",
    "профилактика",
    "страхование",
    "дело закрыть",
    "выплата|пособие|компенсация|льгота|инвалидность|страховой|страховка",
    "оформить",
    "памятка|инструкция|лекция|учения",
    "правда ли",
    "это правда",
    "записать|записаться|запись прием|врач",
    "направление",
    # the danger is a topic of homework, a book, a drawing or a lesson of defence
    "сочинение|литература|роман|повесть|произведение|стихотворение|библиотека|реферат|доклад",
    "эссе|викторина|конкурс|выставка|рисунок",
    "обзр|нвп|тир|пневматика|пневматический|страйкбол|пейнтбол|лазертаг",
    # an old injury, a past season, a question of law or a complaint about a service
    "старый|давний|застарелый травма|перелом|рана|ушиб|вывих|шрам|ожог",
    "прошлый|позапрошлый",
    "законно|законный|незаконно|закон",
    "жалоба|пожаловаться|запретить",
    "режим готовность|чс",
    # life after an illness: rehabilitation, disability, a ticket to a doctor
    "после|перенести инсульт|инфаркт|травма|операция|перелом|смерть|развод",
    "инвалидность|лфк|реабилитация|талон",
    "инвалид группа|справка|пенсия|льгота|пособие|выплата|парковка|путевка|такси|коляска",
    "без запись",
    "можно ли",
    # what nearly happened or might: "чуть не упал", "дети могут пораниться, почините"
    "чуть не",
    "мочь пораниться|упасть|травмироваться|покалечиться|провалиться|отравиться|убиться",
    "=почините|=отремонтируйте|=починить|=отремонтировать|=спилить|=спилите",
    "сдать|сдавать|брать|взять|забор кровь",
    # papers, prices and check-ups: the danger is a case to be documented or paid for
    "протокол|копия|выписка|квитанция",
    "оплатить|оплата|платно|платный|стоимость|лечение",
    "сколько стоить",
    "анализ|обследование|диспансеризация",
    "шутка|шутить",
    "слух|новость|статья|сми",
)

#: words closer than this (in tokens, counting from the first to the last) make one phrase
WINDOW_EXTRA = 4
#: calm phrases are tighter: "уже месяц" is a duration, "уже ... 4 месяца" (an age) is not
CALM_WINDOW_EXTRA = 1
#: where a sentence ends: . ! ? ; … followed by a space, or a line break ("39.8" is no end)
_SENTENCE_END = re.compile(r"(?<=[.!?;…])\s+|\n+")
#: long messages are analysed in pieces of about this many characters (tokenize clips
#: a long text to its head and tail; urgency in the middle of a story must not be lost)
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Rule:
    """One phrase: every slot must be met by some token; ``unless`` cancels it."""

    source: str
    slots: tuple[frozenset[str], ...]
    unless: frozenset[str]
    extra: int = WINDOW_EXTRA

    @property
    def deniers(self) -> frozenset[str]:
        """Words that void the phrase's head word right after them, unless it names them."""
        return _DENIERS.difference(*self.slots)

    def matches(self, options: Sequence[frozenset[str]], present: frozenset[str]) -> bool:
        if self.unless & present or not all(slot & present for slot in self.slots):
            return False  # the cheap test first: most rules share no word with a message
        first = self.slots[0]
        span = len(self.slots) + self.extra
        for start, opts in enumerate(options):
            if not first & opts:
                continue
            if start and options[start - 1] & self.deniers:
                continue  # "не горят фонари", "сочинение про убийство": denied or a topic
            window = options[max(0, start - span) : start + span + 1]
            if all(any(slot & o for o in window) for slot in self.slots[1:]):
                return True
        return False


#: "не" denies the word after it, "про" makes it a topic ("сочинение про самоубийство")
_DENIERS = frozenset({"не", "про"})


def _lemma(word: str) -> str:
    return lemma(fold(word)) if word else word


_HIGH_READING_ONLY = frozenset({HIGH_READING})


def _forms(word: str) -> frozenset[str]:
    """``=дома`` is that form only (not "дом"); a plain word is its lemma and itself."""
    if word == HIGH_READING:
        return _HIGH_READING_ONLY
    if word.startswith("="):
        return frozenset({fold(word[1:])})
    return frozenset({_lemma(word), fold(word)})


def parse_rule(text: str, extra: int = WINDOW_EXTRA) -> Rule:
    """``"ударился головой -справка"`` -> a Rule over dictionary forms."""
    slots: list[frozenset[str]] = []
    unless: set[str] = set()
    for part in text.split():
        if part.startswith("-") and len(part) > 1:
            unless.update(_lemma(w) for w in part[1:].split("|") if w)
            continue
        words = [w for w in part.split("|") if w.lstrip("=")]
        if words:
            # a form written in the rule matches itself as well as its lemma: "горим" is
            # a word of its own for pymorphy3, but citizens write exactly that form
            slots.append(frozenset().union(*(_forms(w) for w in words)))
    if not slots:
        raise ValueError(f"an urgent phrase needs at least one word: {text!r}")
    return Rule(text, tuple(slots), frozenset(unless), extra)


#: "190/100": two readings, which the tokenizer would join into one number
_READINGS = re.compile(r"(?<=\d)\s*[/\\]\s*(?=\d)")


def _token_options(text: str) -> list[frozenset[str]]:
    text = _READINGS.sub(" ", text)
    pieces = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    return [
        options
        for piece in pieces
        for tok in tokenize(piece)
        if (options := _options(tok)) is not None
    ]


@lru_cache(maxsize=65536)
def _options(token: str) -> frozenset[str] | None:
    """A token and its dictionary forms; None for a number, which no rule names. Cached
    like the forms themselves (handlers/faq/matching/morph.py): citizens reuse the same
    few thousand words, and building the set for every word of every message was a third
    of the detector's time."""
    if token.isdecimal():  # what r"\d+" matches: Unicode decimal digits (category Nd)
        return _HIGH_READING_ONLY if 180 <= int(token) <= 300 else None
    return frozenset({token, *lemma_options(token)})


class _Rules:
    """Rules in their order, found by their first slot's words: a rule can only match a
    message holding one of them, so a message is tested against the few rules that share
    a word with it rather than all of them (several hundred; most of an update's CPU in
    the detector went to rules sharing no word with the message)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        by_word: dict[str, list[int]] = {}
        for number, rule in enumerate(self.rules):
            for word in rule.slots[0]:
                by_word.setdefault(word, []).append(number)
        self._by_word = by_word

    def candidates(self, present: frozenset[str]) -> list[Rule]:
        """The rules whose first slot meets ``present``, in their order."""
        numbers: set[int] = set()
        for word in present:
            found = self._by_word.get(word)
            if found is not None:
                numbers.update(found)
        return [self.rules[n] for n in sorted(numbers)]


class UrgencyDetector:
    """The rules of one institution: the defaults, minus its removals, plus its additions."""

    def __init__(self, rules: Iterable[str], calm: Iterable[str] = CALM_RULES) -> None:
        self._rules = _Rules(parse_rule(r) for r in rules)
        self._calm = _Rules(parse_rule(r, CALM_WINDOW_EXTRA) for r in calm)
        self.rules = self._rules.rules
        self.calm = self._calm.rules

    def _is_calm(self, options: Sequence[frozenset[str]]) -> bool:
        present = frozenset().union(*options)
        return any(rule.matches(options, present) for rule in self._calm.candidates(present))

    def matching_rule(self, text: str) -> str | None:
        """The first rule the message meets (for explanations), or None."""
        options: list[frozenset[str]] = []
        for sentence in _SENTENCE_END.split(text):
            words = _token_options(sentence)
            if words and not self._is_calm(words):
                options.extend(words)
        if not options:
            return None
        present = frozenset().union(*options)
        for rule in self._rules.candidates(present):
            if rule.matches(options, present):
                return rule.source
        return None

    def is_urgent(self, text: str) -> bool:
        return self.matching_rule(text) is not None


def _words(rule: str) -> str:
    """A rule without its cancelling words: how ``remove`` may name it ("драка")."""
    return " ".join(p for p in rule.split() if not p.startswith("-"))


def _removed(rule: str, remove: Iterable[str]) -> bool:
    return any(r.strip() in (rule, _words(rule)) for r in remove)


def unknown_removals(remove: Iterable[str]) -> list[str]:
    """Phrases an institution asks to remove that are not default rules (config errors)."""
    return [r for r in remove if not any(_removed(d, [r]) for d in DEFAULT_RULES)]


@lru_cache(maxsize=64)
def detector(add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> UrgencyDetector:
    """The detector for an institution's ``urgent:`` settings (built once per setting)."""
    return UrgencyDetector([*(r for r in DEFAULT_RULES if not _removed(r, remove)), *add])


def is_urgent(text: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> bool:
    return detector(tuple(add), tuple(remove)).is_urgent(text)
