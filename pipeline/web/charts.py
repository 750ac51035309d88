"""Small bar charts drawn on the server as inline SVG (no JavaScript, no CDN)."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 560, 140, 24


def bars(series: list[tuple[str, float]], title: str, color: str = "#2f6fb3") -> str:
    """An SVG bar chart of (day, value) pairs, with the title, the peak value and the first/last day."""
    n = max(len(series), 1)
    top = max((v for _, v in series), default=0)
    peak = top or 1  # an all-zero chart keeps a flat baseline
    step = (WIDTH - 2 * PAD) / n
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT + 30}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{PAD}" y="14" class="chart-title">{escape(title)}</text>',
        f'<text x="{WIDTH - PAD}" y="14" text-anchor="end" class="chart-peak">max {top:g}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}" stroke="#999"/>',
    ]
    for i, (day, value) in enumerate(series):
        h = (HEIGHT - 24) * value / peak
        x = PAD + i * step + 1
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - h:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{color}"><title>{escape(day)}: {value:g}</title></rect>'
        )
    if series:
        parts.append(f'<text x="{PAD}" y="{HEIGHT + 16}" class="chart-axis">{escape(series[0][0])}</text>')
        parts.append(
            f'<text x="{WIDTH - PAD}" y="{HEIGHT + 16}" text-anchor="end" class="chart-axis">'
            f"{escape(series[-1][0])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
