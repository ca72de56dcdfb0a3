"""Bar charts as SVG drawn on the server with pygal, for pages that work without JavaScript.

A chart is a picture of a table that stands beside it on the page, so the SVG is one ``role="img"``
with a title and a label, no tooltips and no scripts. Its inline ``<style>`` carries the response's
CSP nonce, filled in per page; the drawing itself is cached, as the same figures come back often.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape

import pygal
from babel.numbers import format_decimal
from markupsafe import Markup
from pygal.style import Style

# Dark enough on white for text (≥ 4.5:1) and for bars (≥ 3:1); one colour per chart, as the bars'
# meaning is in their labels and values, never in their colour.
INK = "#1a1a1a"
MUTED = "#4a4a4a"
GUIDE = "#767676"
BAR = "#154273"
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif'

STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground=INK,
    foreground_strong=INK,
    foreground_subtle=GUIDE,
    opacity="1",
    opacity_hover="1",
    transition="none",
    colors=(BAR,),
    font_family=FONT,
    label_font_family=FONT,
    major_label_font_family=FONT,
    value_font_family=FONT,
    title_font_family=FONT,
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    title_font_size=15,
)

_NONCE = "__CSP_NONCE__"
_UNWANTED = re.compile(
    r'<script[^>]*>.*?</script>|<title>Pygal</title>|<!--.*?-->| style="opacity: 0"', re.DOTALL
)


@dataclass(frozen=True, slots=True)
class Chart:
    """A drawn chart; ``svg(nonce)`` gives the markup to put in a page served with that CSP nonce."""

    drawing: str

    def svg(self, nonce: str) -> Markup:
        return Markup(self.drawing.replace(_NONCE, escape(nonce, quote=True)))


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    horizontal: bool = False,
    value_title: str | None = None,
    language: str = "nl",
) -> Chart:
    """A one-series bar chart of ``values`` labelled ``labels``, with ``title`` as its accessible name;
    numbers are written as in ``language``."""
    return _draw(title, tuple(labels), tuple(values), horizontal, value_title, language)


@lru_cache(maxsize=256)
def _draw(
    title: str,
    labels: tuple[str, ...],
    values: tuple[float, ...],
    horizontal: bool,
    value_title: str | None,
    language: str,
) -> Chart:
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    many = len(labels) > 14
    height = max(220, 34 * len(labels) + 60) if horizontal else 340
    chart = kind(
        style=STYLE,
        width=720,
        height=height,
        js=[],
        disable_xml_declaration=True,
        show_legend=False,
        # No numbers on the bars: dark text on a dark bar fails the contrast, and the table beside
        # the chart holds every number anyway.
        print_values=False,
        tooltip_fancy_mode=False,
        x_label_rotation=0 if horizontal or len(labels) <= 8 else 40,
        show_minor_x_labels=not many or horizontal,
        x_labels_major_every=3 if many and not horizontal else None,
        truncate_label=-1,
        min_scale=1,
        max_scale=6,
        y_title=value_title if not horizontal else None,
        x_title=value_title if horizontal else None,
        margin=8,
        spacing=8,
        value_formatter=lambda value: format_decimal(value, "#,##0.#", locale=language),
        no_data_text="",
    )
    if horizontal:  # pygal draws the first bar at the bottom; the table beside starts at the top
        labels, values = labels[::-1], values[::-1]
    chart.x_labels = list(labels)
    if all(float(v).is_integer() for v in values):
        chart.y_labels = _whole_ticks(max(values, default=0))
    chart.add(title, list(values))
    svg = chart.render(is_unicode=True)
    # No scripts (pygal writes its config in one even without js), no style attributes (the CSP
    # allows neither; site.css hides the empty tooltip), no title of its own and no comments.
    svg = _UNWANTED.sub("", svg)
    svg = svg.replace("<style", f'<style nonce="{_NONCE}"')
    name = escape(title, quote=True)
    svg = svg.replace(
        "<svg ",
        f'<svg role="img" aria-label="{name}" focusable="false" ',
        1,
    )
    opening = svg.index(">") + 1
    svg = f"{svg[:opening]}<title>{escape(title)}</title>{svg[opening:]}"
    return Chart(svg)


def _whole_ticks(top: float) -> list[int]:
    """Axis ticks at whole numbers (counts and days have no halves): 0 to just over ``top`` in at most
    about six steps of 1, 2 or 5 times a power of ten."""
    step = 1
    while top / step > 6:
        for factor in (2, 2.5, 2):
            step = int(step * factor)
            if top / step <= 6:
                break
    if not top:
        return [0, 1]
    return list(range(0, math.ceil(top / step) * step + 1, step))


def clear_cache() -> None:
    """Forget the drawn charts (the benchmark times drawing them)."""
    _draw.cache_clear()
