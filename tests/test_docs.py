"""The docs stay in step with the code: every settings key has its row in docs/settings.md, and every
page the README links to exists."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.settings import describe

ROOT = Path(__file__).resolve().parent.parent


def _sections(text: str) -> dict[str, str]:
    """The text of each `## [section]` of docs/settings.md."""
    parts = re.split(r"^## \[(\w+)\]\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_setting_has_a_row_in_its_section_of_the_settings_page():
    sections = _sections((ROOT / "docs" / "settings.md").read_text(encoding="utf-8"))
    missing = [
        f"[{name}] {key}"
        for name, keys in describe().items()
        for key in keys
        if f"| `{key}` |" not in sections.get(name, "")
    ]
    assert not missing, f"docs/settings.md has no row for: {', '.join(missing)}"


def test_every_page_the_readme_and_docs_link_to_exists():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, "links to missing files: " + "; ".join(broken)


def test_every_documented_command_uses_the_projects_python():
    """Issue 15: the README showed `python run.py …`, which with the system Python runs part-way and
    fails with `No module named 'fdb'`. Every command in the docs names the venv's Python (or the
    `torgsoft-satu` console script)."""
    bare = re.compile(r"(?<![/\\\w.])python3?(?:\.exe)? +run\.py")
    found = [
        f"{page.relative_to(ROOT)}:{n}: {line.strip()}"
        for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line)
    ]
    assert found == [], found
