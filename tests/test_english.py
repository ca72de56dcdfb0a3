"""The English catalog reads as English: no Dutch role names, words or resident commands leak into it."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from bot.i18n import DOMAIN, LOCALES_DIR

# Dutch that msgids use and English readers should not see; the staff's commands (/zaken, /toewijzen,
# ...) and the municipality's proper names stay as they are. Fix a hit in the English msgstr (rows for
# fill_po.py --lang=en --force; /work/i18n-words-en-make.py writes them from locales/messages.pot).
DUTCH = re.compile(
    r"initiatiefmakelaar|bewonersinitiatie|\bwijk(?:en)?\b|\bwethouder\b|\bdirectie\b"
    r"|/(?:nieuw|mijn|taal|mijngegevens|vergeetmij|hulp)\b",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(r"\{[^{}]*\}")  # {wijk} is a name in code, not a word the reader sees


def test_english_texts_have_no_dutch_words() -> None:
    with (LOCALES_DIR / "en" / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        catalog = read_po(fh, locale="en", domain=DOMAIN)
    leaks = []
    for message in catalog:
        forms = message.string if isinstance(message.string, tuple | list) else (message.string,)
        for form in forms:
            found = DUTCH.findall(PLACEHOLDER.sub("", form or ""))
            if found:
                leaks.append(f"{sorted(set(found))}: {form!r}")
    if leaks:
        listed = "\n".join(f"  - {leak}" for leak in leaks)
        pytest.fail(f"Dutch in the English catalog ({len(leaks)}):\n{listed}", pytrace=False)
