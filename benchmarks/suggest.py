"""Benchmark: `categories suggest` matching a shop's sections against a Satu-sized category list.

A deterministic list of 5800 portal categories (three levels, names drawn from a vocabulary of
Russian category words, as Satu's ~5800 are) and a shop tree of `--sections` sections (names from
the same words, inflected differently, some repeated under several parents, as shop trees repeat
"Аксессуары"). Two measurements in one run, both CPU time in this process:
- `suggest`: `pipeline.feed.suggest.suggest` — normalising, the two first passes, rescoring with paths;
- `baseline`: one bare `rapidfuzz.process.extractOne` per section name over the raw leaf names (WRatio,
  no normalising, no paths) — the least a fuzzy matcher does.
Prints one JSON line.

    .venv/bin/python benchmarks/suggest.py [--sections 1000] [--categories 5800]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

from pipeline.feed.portal_list import PortalEntry  # noqa: E402
from pipeline.feed.suggest import suggest  # noqa: E402
from pipeline.model import Category  # noqa: E402

_NOUNS = (
    "кресла столы стулья шкафы диваны кровати матрасы полки комоды тумбы люстры светильники лампы "
    "бра торшеры куртки пальто платья юбки брюки рубашки футболки свитеры шарфы перчатки ботинки "
    "кроссовки туфли сапоги сандалии смартфоны планшеты ноутбуки наушники колонки кабели зарядки "
    "чехлы телевизоры мониторы клавиатуры мыши принтеры кастрюли сковородки тарелки чашки ложки "
    "ножи ковры шторы подушки одеяла полотенца велосипеды самокаты мячи палатки рюкзаки удочки "
    "игрушки коляски автокресла книги сумки часы очки кольца серьги браслеты инструменты дрели "
    "пилы молотки отвертки краски обои плитка смесители раковины унитазы"
)
NOUNS = _NOUNS.split(" ")
_ADJECTIVES = (
    "офисные детские мужские женские садовые кухонные спортивные кожаные деревянные металлические "
    "пластиковые электрические беспроводные игровые зимние летние домашние туристические "
    "профессиональные бытовые"
)
ADJECTIVES = _ADJECTIVES.split(" ")
_TOPS = (
    "Мебель|Освещение|Одежда|Обувь|Электроника|Компьютеры|Дом и сад|Посуда|Текстиль|Спорт и отдых|"
    "Детские товары|Книги|Аксессуары|Украшения|Инструменты|Строительство|Сантехника|Авто- и мототовары"
)
TOPS = _TOPS.split("|")


def portal_list(n: int, rng: random.Random) -> list[PortalEntry]:
    entries = []
    for i in range(n):
        noun = rng.choice(NOUNS).capitalize()
        leaf = noun if rng.random() < 0.3 else f"{noun} {rng.choice(ADJECTIVES)}"
        if rng.random() < 0.1:
            leaf += ", общее"
        middle = f"{rng.choice(NOUNS).capitalize()} и {rng.choice(NOUNS)}"
        entries.append(PortalEntry(100_000 + i, leaf, (rng.choice(TOPS), middle)))
    return entries


def shop_tree(n: int, rng: random.Random) -> list[Category]:
    sections = [Category(i + 1, None, top) for i, top in enumerate(TOPS[:8])]
    while len(sections) < n:
        parent = rng.choice(sections).id
        noun = rng.choice(NOUNS)
        # the shop's own wording: a repeated generic name, the adjective first, a singular, the plain noun
        roll = rng.random()
        if roll < 0.1:
            name = "Аксессуары"
        elif roll < 0.4:
            name = f"{rng.choice(ADJECTIVES).capitalize()} {noun}"
        elif roll < 0.5 and noun[-1] in "ыи":
            name = noun.capitalize()[:-1] + "а"  # "Куртка" for "куртки"
        else:
            name = noun.capitalize()
        sections.append(Category(len(sections) + 1, parent, name))
    return sections


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", type=int, default=1000)
    ap.add_argument("--categories", type=int, default=5800)
    args = ap.parse_args()
    rng = random.Random(14)
    entries, sections = portal_list(args.categories, rng), shop_tree(args.sections, rng)

    started = cpu()
    leaves = [e.name for e in entries]
    for s in sections:
        process.extractOne(s.name, leaves, scorer=fuzz.WRatio)
    baseline = cpu() - started

    started = cpu()
    rows = suggest(sections, entries, {})
    took = cpu() - started
    matched = sum(r.portal_id is not None for r in rows)
    print(
        json.dumps(
            {
                "benchmark": "suggest",
                "categories": len(entries),
                "sections": len(sections),
                "suggest_cpu_s": round(took, 2),
                "baseline_cpu_s": round(baseline, 2),
                "ratio": round(took / baseline, 2) if baseline else None,
                "per_section_ms": round(took / len(sections) * 1000, 2),
                "matched": matched,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
