"""Small inline SVG histograms (no plotting library: a report is one self-contained page)."""

from __future__ import annotations

import math
from html import escape
from statistics import median

WIDTH, HEIGHT, BINS = 260, 90, 12
PLOT_TOP, PLOT_BOTTOM = 18, 70  # y of the tallest bar's top and of the axis


def _label(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def histogram(values: list[float], title: str, unit: str = "") -> str:
    """An SVG histogram of `values` with its title, median and range; a note when empty."""
    head = (f'<svg class="plot" role="img" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{escape(title)}</title>'
            f'<text x="4" y="12" class="plot-title">{escape(title)}</text>')
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return head + '<text x="4" y="45" class="plot-note">no data</text></svg>'
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    counts = [0] * BINS
    for value in finite:
        counts[min(BINS - 1, int((value - low) / span * BINS))] += 1
    bar_width = (WIDTH - 8) / BINS
    tallest = max(counts)
    bars = []
    for index, count in enumerate(counts):
        if not count:
            continue
        height = (PLOT_BOTTOM - PLOT_TOP) * count / tallest
        start = low + span * index / BINS
        bars.append(f'<rect class="bar" x="{4 + index * bar_width:.1f}" '
                    f'y="{PLOT_BOTTOM - height:.1f}" width="{bar_width - 1:.1f}" '
                    f'height="{height:.1f}"><title>{count} in [{escape(_label(start))}, '
                    f'{escape(_label(start + span / BINS))}){escape(unit)}</title></rect>')
    suffix = escape(unit)
    axis = (f'<line x1="4" y1="{PLOT_BOTTOM}" x2="{WIDTH - 4}" y2="{PLOT_BOTTOM}" class="axis"/>'
            f'<text x="4" y="{PLOT_BOTTOM + 14}" class="plot-note">{escape(_label(low))}{suffix}</text>'
            f'<text x="{WIDTH - 4}" y="{PLOT_BOTTOM + 14}" text-anchor="end" class="plot-note">'
            f'{escape(_label(high))}{suffix}</text>'
            f'<text x="{WIDTH - 4}" y="12" text-anchor="end" class="plot-note">'
            f'median {escape(_label(median(finite)))}{suffix}, n={len(finite)}</text>')
    return head + "".join(bars) + axis + "</svg>"
