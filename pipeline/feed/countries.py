"""Country of origin as Satu's dictionary spells it: the Russian name, from common spellings.

Torgsoft's country field is free text: sellers type "Kazakhstan", "Қазақстан", "KZ", "Китай (КНР)".
Satu's product card reads the country from a dictionary of Russian names (the names real Satu/Prom feeds
carry: «Китай», «Южная Корея», «Япония», «Украина»). `country_name` maps the spellings below (Russian
variants, Kazakh, English, Ukrainian, ISO 3166 alpha-2/alpha-3 codes) to that name; anything else passes
through unchanged and is reported as unknown, so the seller can fix the value at the source.
Pure data and one pure function: no I/O.
"""

from __future__ import annotations

import functools
import re

# Satu's name → the other spellings (Russian variants, Kazakh, English, Ukrainian, ISO codes). Keys are
# compared after `_normal` (case, ё/е, dots, apostrophes, spaces and brackets do not matter).
COUNTRIES: dict[str, tuple[str, ...]] = {
    "Казахстан": (
        "Республика Казахстан",
        "РК",
        "Қазақстан",
        "Қазақстан Республикасы",
        "Kazakhstan",
        "Kazakstan",
        "Republic of Kazakhstan",
        "KZ",
        "KAZ",
    ),
    "Китай": (
        "КНР",
        "Китайская Народная Республика",
        "Қытай",
        "ҚХР",
        "China",
        "PRC",
        "People's Republic of China",
        "CN",
        "CHN",
    ),
    "Турция": ("Түркия", "Turkey", "Türkiye", "Turkiye", "Туреччина", "TR", "TUR"),
    "Россия": (
        "Российская Федерация",
        "РФ",
        "Ресей",
        "Ресей Федерациясы",
        "Russia",
        "Russian Federation",
        "Росія",
        "RU",
        "RUS",
    ),
    "Узбекистан": ("Өзбекстан", "Uzbekistan", "UZ", "UZB"),
    "Кыргызстан": (
        "Киргизия",
        "Киргизстан",
        "Қырғызстан",
        "Кыргызская Республика",
        "Kyrgyzstan",
        "Kyrgyz Republic",
        "Kirgizstan",
        "Киргизстан",
        "KG",
        "KGZ",
    ),
    "Таджикистан": ("Тәжікстан", "Tajikistan", "Таджикістан", "TJ", "TJK"),
    "Туркменистан": ("Түрікменстан", "Turkmenistan", "Туркменістан", "TM", "TKM"),
    "Азербайджан": ("Әзербайжан", "Azerbaijan", "Азербайджан", "AZ", "AZE"),
    "Армения": ("Armenia", "Вірменія", "AM", "ARM"),
    "Грузия": ("Georgia", "Грузія", "Сакартвело", "GE", "GEO"),
    "Беларусь": ("Белоруссия", "Республика Беларусь", "Belarus", "Білорусь", "BY", "BLR"),
    "Украина": ("Ukraine", "Україна", "UA", "UKR"),
    "Молдова": ("Молдавия", "Moldova", "MD", "MDA"),
    "Германия": ("ФРГ", "Germany", "Deutschland", "Німеччина", "DE", "DEU"),
    "Италия": ("Italy", "Italia", "Італія", "IT", "ITA"),
    "Польша": ("Poland", "Polska", "Польща", "PL", "POL"),
    "Франция": ("France", "Франція", "FR", "FRA"),
    "Испания": ("Spain", "España", "Espana", "Іспанія", "ES", "ESP"),
    "Португалия": ("Portugal", "Португалія", "PT", "PRT"),
    "Великобритания": (
        "Англия",
        "Соединённое Королевство",
        "Ұлыбритания",
        "United Kingdom",
        "UK",
        "Great Britain",
        "Britain",
        "England",
        "Велика Британія",
        "GB",
        "GBR",
    ),
    "США": (
        "Соединённые Штаты",
        "Соединённые Штаты Америки",
        "Америка",
        "АҚШ",
        "USA",
        "US",
        "United States",
        "United States of America",
        "Сполучені Штати Америки",
        "USA",
        "U S A",
    ),
    "Канада": ("Canada", "CA", "CAN"),
    "Мексика": ("Mexico", "MX", "MEX"),
    "Бразилия": ("Brazil", "Brasil", "Бразилія", "BR", "BRA"),
    "Южная Корея": (
        "Корея",
        "Республика Корея",
        "Корея, Республика",
        "Оңтүстік Корея",
        "Korea",
        "South Korea",
        "Republic of Korea",
        "Korea, Republic of",
        "Південна Корея",
        "KR",
        "KOR",
    ),
    "Япония": ("Жапония", "Japan", "Японія", "JP", "JPN"),
    "Вьетнам": ("Вьетнам", "Vietnam", "Viet Nam", "В'єтнам", "VN", "VNM"),
    "Индия": ("Үндістан", "India", "Індія", "IN", "IND"),
    "Индонезия": ("Indonesia", "Індонезія", "ID", "IDN"),
    "Таиланд": ("Тайланд", "Thailand", "Таїланд", "TH", "THA"),
    "Малайзия": ("Malaysia", "Малайзія", "MY", "MYS"),
    "Тайвань": ("Taiwan", "Тайвань", "TW", "TWN"),
    "Гонконг": ("Hong Kong", "Гонконг", "HK", "HKG"),
    "Сингапур": ("Singapore", "SG", "SGP"),
    "Филиппины": ("Philippines", "Філіппіни", "PH", "PHL"),
    "Бангладеш": ("Bangladesh", "BD", "BGD"),
    "Пакистан": ("Пәкістан", "Pakistan", "PK", "PAK"),
    "Иран": ("Iran", "Іран", "IR", "IRN"),
    "Объединённые Арабские Эмираты": (
        "ОАЭ",
        "БАӘ",
        "UAE",
        "United Arab Emirates",
        "Emirates",
        "ОАЕ",
        "AE",
        "ARE",
    ),
    "Саудовская Аравия": ("Сауд Арабиясы", "Saudi Arabia", "SA", "SAU"),
    "Израиль": ("Israel", "Ізраїль", "IL", "ISR"),
    "Египет": ("Мысыр", "Egypt", "Єгипет", "EG", "EGY"),
    "Монголия": ("Моңғолия", "Mongolia", "Монголія", "MN", "MNG"),
    "Чехия": ("Чешская Республика", "Czech Republic", "Czechia", "Чехія", "CZ", "CZE"),
    "Словакия": ("Slovakia", "Словаччина", "SK", "SVK"),
    "Венгрия": ("Hungary", "Угорщина", "HU", "HUN"),
    "Румыния": ("Romania", "Румунія", "RO", "ROU"),
    "Болгария": ("Bulgaria", "Болгарія", "BG", "BGR"),
    "Сербия": ("Serbia", "Сербія", "RS", "SRB"),
    "Нидерланды": ("Голландия", "Netherlands", "The Netherlands", "Holland", "Нідерланди", "NL", "NLD"),
    "Бельгия": ("Belgium", "Бельгія", "BE", "BEL"),
    "Австрия": ("Austria", "Австрія", "AT", "AUT"),
    "Швейцария": ("Switzerland", "Швейцарія", "CH", "CHE"),
    "Швеция": ("Sweden", "Швеція", "SE", "SWE"),
    "Финляндия": ("Finland", "Фінляндія", "FI", "FIN"),
    "Норвегия": ("Norway", "Норвегія", "NO", "NOR"),
    "Дания": ("Denmark", "Данія", "DK", "DNK"),
    "Греция": ("Грекия", "Greece", "Греція", "GR", "GRC"),
    "Литва": ("Lithuania", "LT", "LTU"),
    "Латвия": ("Latvia", "Латвія", "LV", "LVA"),
    "Эстония": ("Estonia", "Естонія", "EE", "EST"),
    "Австралия": ("Аустралия", "Australia", "Австралія", "AU", "AUS"),
}

_APOSTROPHES = re.compile("[\u2019\u02bc\u2018`´]")
_NOISE = re.compile(r"[.()\[\]\"«»]")


def _normal(text: str) -> str:
    """Case, ё/е, apostrophe forms, dots, brackets, quotes and spacing do not matter."""
    t = _APOSTROPHES.sub("'", text.casefold().replace("ё", "е"))
    t = _NOISE.sub(" ", t).replace(",", " ")
    return " ".join(t.split())


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for name, spellings in COUNTRIES.items():
        for spelling in (name, *spellings):
            key = _normal(spelling)
            if table.setdefault(key, name) != name:  # a spelling may not name two countries
                raise ValueError(f"country spelling {spelling!r} names {table[key]} and {name}")
    return table


_LOOKUP = _table()


@functools.lru_cache(maxsize=1024)
def country_name(value: str) -> tuple[str, bool]:
    """(Satu's Russian name, True) for a known spelling; (the value unchanged, False) otherwise.

    An empty value is ("", True): nothing to write, nothing to report."""
    text = value.strip()
    if not text:
        return "", True
    name = _LOOKUP.get(_normal(text))
    return (name, True) if name is not None else (text, False)
