"""Small bar charts as server-rendered SVG (no JavaScript): one bar per minute."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

BAR = 8  # px per minute
HEIGHT = 70  # px of the tallest bar
AXIS = 14  # px under the bars for the time labels


def bar_chart(minutes: Sequence[datetime], series: Sequence[tuple[str, str, Sequence[int]]],
              title: str) -> SafeString:
    """Stacked bars: `series` is [(css class, label, one value per minute)], bottom first."""
    totals = [sum(values[i] for _, _, values in series) for i in range(len(minutes))]
    top = max(totals, default=0) or 1
    bars = []
    for i, minute in enumerate(minutes):
        y = HEIGHT
        label = timezone.localtime(minute).strftime("%H:%M")
        parts = [f"{name} {values[i]}" for _, name, values in series]
        for css, _, values in series:
            h = round(values[i] * HEIGHT / top)
            if h:
                y -= h
                bars.append(format_html('<rect class="{}" x="{}" y="{}" width="{}" height="{}">'
                                        "<title>{}: {}</title></rect>", css, i * BAR, y, BAR - 1,
                                        h, label, ", ".join(parts)))
    width = max(1, len(minutes)) * BAR
    ticks = [(i * BAR, timezone.localtime(m).strftime("%H:%M")) for i, m in enumerate(minutes)
             if i % 15 == 0]
    return format_html(
        '<svg class="eventjobs-chart" role="img" aria-label="{}" width="{}" height="{}" '
        'viewBox="0 0 {} {}" xmlns="http://www.w3.org/2000/svg">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-opacity="0.3"/>'
        '{}{}<text x="{}" y="10">max {}/min</text></svg>',
        title, width + 60, HEIGHT + AXIS, width + 60, HEIGHT + AXIS, HEIGHT, width, HEIGHT,
        format_html_join("", "{}", ((b,) for b in bars)),
        format_html_join("", '<text x="{}" y="{}">{}</text>',
                         ((x, HEIGHT + AXIS - 2, t) for x, t in ticks)),
        width + 4, max(totals, default=0))
