"""The latency chart: p99 against offered rate per system, log-log, as hand-written SVG."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

COLORS = {"direct": "#888888", "nginx": "#2ca02c", "tollgate-bare": "#1f77b4",
          "tollgate-features": "#d62728", "tollgate-features-anthropic": "#ff7f0e",
          "portkey": "#9467bd", "litellm": "#8c564b"}
W, H = 940, 500
LEFT, RIGHT, TOP, BOTTOM = 70, 330, 40, 60


def decades(lo: float, hi: float) -> list[float]:
    return [10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def write(path: Path, results: dict, labels: dict, limit_ms: float) -> None:
    series = {}
    for key, r in results.items():
        probes = (r.get("sustained") or {}).get("probes") or []
        pts = [(p["rate"], p["p99"]) for p in probes if p.get("p99")]
        if pts:
            series[key] = sorted(pts)
    xs = [x for pts in series.values() for x, _ in pts] or [1, 10]
    ys = [y for pts in series.values() for _, y in pts] + [limit_ms] or [1, 10]
    xt, yt = decades(min(xs), max(xs)), decades(min(ys), max(ys))
    x0, x1, y0, y1 = math.log10(xt[0]), math.log10(xt[-1]), math.log10(yt[0]), math.log10(yt[-1])
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return LEFT + (math.log10(x) - x0) / max(x1 - x0, 1e-9) * pw

    def py(y):
        return TOP + ph - (math.log10(y) - y0) / max(y1 - y0, 1e-9) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">p99 latency vs offered '
           f'rate (upstream 20 ms, open loop)</text>']
    for x in xt:
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{TOP + ph}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + ph + 18}" text-anchor="middle">'
                   f'{x:,.0f}</text>')
    for y in yt:
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{LEFT + pw}" y2="{py(y):.1f}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#444"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 18}" text-anchor="middle">offered rate '
               '(requests/s, log scale)</text>')
    out.append(f'<text transform="translate(18 {TOP + ph / 2}) rotate(-90)" '
               'text-anchor="middle">p99 latency (ms, log scale)</text>')
    out.append(f'<line x1="{LEFT}" y1="{py(limit_ms):.1f}" x2="{LEFT + pw}" '
               f'y2="{py(limit_ms):.1f}" stroke="#000" stroke-dasharray="6 4"/>')
    out.append(f'<text x="{LEFT + pw - 4}" y="{py(limit_ms) - 5:.1f}" text-anchor="end">'
               f'p99 limit {limit_ms:g} ms</text>')
    for i, (key, pts) in enumerate(series.items()):
        color = COLORS.get(key, "#17becf")
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>'
                for x, y in pts]
        ly = TOP + 10 + i * 20
        out.append(f'<line x1="{LEFT + pw + 15}" y1="{ly}" x2="{LEFT + pw + 35}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{LEFT + pw + 40}" y="{ly + 4}">'
                   f'{escape(labels.get(key, key))}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
