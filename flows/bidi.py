"""Unicode bidi isolation for text people wrote, so a right-to-left title or message keeps its own
direction inside a left-to-right card (and the card's labels keep theirs)."""

from __future__ import annotations

import unicodedata

FSI, PDI = "\u2068", "\u2069"  # FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE
_RTL = frozenset({"R", "AL"})


def has_rtl(text: str) -> bool:
    """Whether ``text`` holds a right-to-left letter (Arabic, Hebrew, Syriac, Thaana …)."""
    return any(unicodedata.bidirectional(c) in _RTL for c in text)


def isolate(text: str) -> str:
    """``text`` with each line between FSI and PDI when it holds right-to-left letters; otherwise as is.

    Per line, because a newline ends a bidi paragraph and with it every open isolate. Latin text in a
    Dutch card needs no isolation, and searching a card for it keeps working.
    """
    if not has_rtl(text):
        return text
    return "\n".join(f"{FSI}{line}{PDI}" if line else line for line in text.split("\n"))
