#!/usr/bin/env python3
"""The soak chart of bench/RESULTS.md as an SVG, with no plotting library: frames per second,
resident memory (RSS) and device memory in use over time, from the CSV `unibuf-soak --csv` writes.

Usage: bench/device/soak_svg.py SOAK.csv OUT.svg [TITLE]
"""
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402

PANELS = [("fps", "fps", lambda r: float(r["fps"]), "#1f77b4"),
          ("RSS MiB", "rss", lambda r: int(r["rss_bytes"]) / 2**20, "#d62728"),
          ("device MiB (unibuf's accounting)", "device", lambda r: int(r["device_bytes"]) / 2**20, "#2ca02c"),
          ("pool fragmentation", "frag", lambda r: float(r["fragmentation"]), "#9467bd")]


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        sys.exit(2)
    rows = list(csv.DictReader(open(sys.argv[1])))
    if not rows:
        sys.exit("soak_svg: no samples in " + sys.argv[1])
    title = sys.argv[3] if len(sys.argv) == 4 else "unibuf-soak"
    t = [float(r["seconds"]) for r in rows]
    w, panel_h, left, right, top = 760, 120, 70, 20, 40
    h = top + len(PANELS) * (panel_h + 30) + 30
    out = svg.begin(w, h, title)
    plot_w = w - left - right
    t_max = max(t) or 1.0
    for i, (label, _, get, colour) in enumerate(PANELS):
        y0 = top + i * (panel_h + 30)
        v = [get(r) for r in rows]
        lo, hi = 0.0, max(v) * 1.15 or 1.0
        out.append(f'<text x="{left}" y="{y0 - 6}" font-size="12">{label} (max {max(v):.2f}, last {v[-1]:.2f})</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#999"/>')
        for k in (0, 0.5, 1):
            val = lo + (hi - lo) * k
            y = y0 + panel_h - panel_h * k
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{val:.3g}</text>')
        pts = " ".join(f"{left + plot_w * ti / t_max:.1f},{y0 + panel_h - panel_h * (vi - lo) / (hi - lo):.1f}"
                       for ti, vi in zip(t, v))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    y_axis = top + len(PANELS) * (panel_h + 30) - 14
    for k in range(0, 6):
        x = left + plot_w * k / 5
        out.append(f'<text x="{x:.1f}" y="{y_axis}" text-anchor="middle" font-size="10">{t_max * k / 5:.0f} s</text>')
    svg.write(out, sys.argv[2], "soak_svg")


if __name__ == "__main__":
    main()
