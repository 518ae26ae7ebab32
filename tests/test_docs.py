"""The documentation speaks to users: every file it links to or names exists, and no
internal work notes ship with it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # markdown links to relative targets
NAMED = re.compile(r"`((?:examples|docs|benchmarks|tests)/[\w./-]+\.(?:py|md|png|toml))`")


def _targets(doc: Path) -> set[str]:
    text = doc.read_text(encoding="utf-8")
    found = {m for m in LINK.findall(text) if not m.startswith(("http:", "https:", "mailto:"))}
    return found | set(NAMED.findall(text))


def test_every_file_the_docs_link_to_or_name_exists():
    missing = [f"{doc.name}: {t}" for doc in DOCS for t in _targets(doc)
               if not ((doc.parent / t).exists() or (ROOT / t).exists())]
    assert not missing, missing


def test_no_internal_work_notes_in_the_docs():
    assert not (ROOT / "docs" / "HELPERS.md").exists()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert "/work/" not in text and "helper brief" not in text.lower(), doc.name
