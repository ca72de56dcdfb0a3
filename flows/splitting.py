"""Long texts become several messages, cut at the widest boundary that fits: nothing is ever cut off.

Telegram counts a message's length in UTF-16 code units (4,096 at most), so an emoji counts as two.
A cut falls after a blank line, else after a line, a sentence or a word; only a word longer than a
whole message is cut inside, and then between two grapheme clusters (never inside an emoji).
"""

from __future__ import annotations

import regex

MESSAGE_LIMIT = 4096

# Whitespace where a text may break; not the no-break spaces babel puts inside amounts and dates.
_SPACE = r"[^\S\xa0\u2007\u202f]"
_INLINE_SPACE = r"[^\S\n\xa0\u2007\u202f]"
# Widest first: a blank line, a line end, a sentence end, any space. A cut is made at a match's end,
# so the whitespace stays at the end of a part (Telegram drops it) and the next part starts with text.
_BOUNDARIES = (
    regex.compile(rf"\n{_INLINE_SPACE}*\n{_SPACE}*"),
    regex.compile(rf"\n{_SPACE}*"),
    regex.compile(rf"[.!?…。！？؟][\"'”’»)\]]*{_SPACE}+"),
    regex.compile(rf"{_SPACE}+"),
)
_GRAPHEME = regex.compile(r"\X")
# A wider boundary is taken only when it leaves at least this share of a full part, so a short heading
# followed by a long block does not become a message of its own.
_MIN_FILL = 4


def utf16_len(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (a character outside the BMP counts twice)."""
    if text.isascii():
        return len(text)
    # Two bytes per unit; surrogatepass counts a lone surrogate as the one unit it is.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Parts of at most ``limit`` UTF-16 units that join back to ``text`` exactly (one part if it fits)."""
    if limit < 2:
        raise ValueError("limit must leave room for a character outside the BMP")
    parts: list[str] = []
    pos = 0
    while utf16_len(text[pos:]) > limit:
        cut = _cut(text, pos, _window_end(text, pos, limit))
        parts.append(text[pos:cut])
        pos = cut
    parts.append(text[pos:])
    return parts


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word to fit ``limit`` UTF-16 units, with "…"; only for a button label or a
    toast, which cannot be split. Longer content is split with ``split_text`` instead."""
    if utf16_len(text) <= limit:
        return text
    return split_text(text, limit - 1)[0].rstrip() + "…"


def _window_end(text: str, pos: int, limit: int) -> int:
    """The end of the longest slice from ``pos`` that fits ``limit`` units."""
    used = 0
    for i in range(pos, len(text)):
        used += 2 if ord(text[i]) > 0xFFFF else 1
        if used > limit:
            return i
    return len(text)


def _cut(text: str, pos: int, end: int) -> int:
    """Where the part from ``pos`` ends: the widest boundary in ``text[pos:end]`` that fills enough."""
    window = text[pos:end]
    latest = 0
    for pattern in _BOUNDARIES:
        cut = max((m.end() for m in pattern.finditer(window)), default=0)
        if cut * _MIN_FILL >= len(window):
            return pos + cut
        latest = max(latest, cut)
    if latest:
        return pos + latest
    # One word longer than a message: cut between grapheme clusters, or inside a giant one if need be.
    boundary = pos
    for cluster in _GRAPHEME.finditer(text, pos):
        if cluster.end() > end:
            break
        boundary = cluster.end()
    return boundary if boundary > pos else end
