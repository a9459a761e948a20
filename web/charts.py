"""Server-rendered SVG charts: readable without JavaScript, with text alternatives.

Every chart is an <svg role="img"> with a <title> and a <desc> that states the numbers;
pages also show the same numbers as a table. All text is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

BAR_HEIGHT = 22
GAP = 8
LABEL_WIDTH = 170
CHART_WIDTH = 520
PALETTE = ("#b42318", "#e0752d", "#8a8f98", "#3b82c4", "#1f5fa8", "#6b7280")


def bar_chart(
    items: Sequence[tuple[str, int]], *, title: str, colors: Sequence[str] = PALETTE
) -> Markup:
    """A horizontal bar chart of labelled counts."""
    total = sum(count for _, count in items) or 1
    top = max((count for _, count in items), default=0) or 1
    width = CHART_WIDTH - LABEL_WIDTH - 60
    height = len(items) * (BAR_HEIGHT + GAP) + GAP
    description = "; ".join(f"{label}: {count}" for label, count in items) or "no data"
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {CHART_WIDTH} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" aria-labelledby="t d">',
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>",
    ]
    for i, (label, count) in enumerate(items):
        y = GAP + i * (BAR_HEIGHT + GAP)
        bar = round(width * count / top)
        color = colors[i % len(colors)]
        share = round(100 * count / total)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end" '
            f'class="chart-label">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{bar}" height="{BAR_HEIGHT}" rx="3" '
            f'fill="{color}"></rect>'
            f'<text x="{LABEL_WIDTH + bar + 6}" y="{y + 15}" class="chart-value">'
            f"{count} ({share}%)</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)
