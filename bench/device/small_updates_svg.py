#!/usr/bin/env python3
"""The small-update chart of bench/RESULTS.md as an SVG, with no plotting library (the development
machine has no matplotlib): time per update at 4 KiB, 64 KiB and 1 MiB for unibuf's zero-copy and
staged paths and PyTorch's pinned copy, from a run's `vulkan` suite.

Usage: bench/device/small_updates_svg.py RESULTS OUT.svg
  RESULTS  a run's results.tar.gz (or the folder it was unpacked into) holding the `vulkan` suite
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402
from summarize import load_dir, medians, peer, us  # noqa: E402

SERIES = [("zero-copy", "small_update/zero_copy/{}", "#1f77b4"),
          ("staged, 2 submits", "small_update/staged_2submits/{}", "#ff7f0e"),
          ("staged, 1 submit", "small_update/staged_1submit/{}", "#2ca02c"),
          ("PyTorch pinned copy_ + H2D", None, "#7f7f7f")]
SIZES = ["4KiB", "64KiB", "1024KiB"]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    d = load_dir(sys.argv[1])
    m, p = medians(d, "vulkan"), peer(d, "vulkan")
    values = []
    for label, pattern, colour in SERIES:
        row = []
        for s in SIZES:
            if pattern is None:
                row.append(p.get(f"small_update/{s}", {}).get("p50_us"))
            else:
                b = m.get(pattern.format(s))
                row.append(us(b) if b else None)
        values.append((label, colour, row))
    top = max(v for _, _, row in values for v in row if v) * 1.15
    w, h, left, bottom, plot_h = 720, 360, 60, 60, 250
    group_w = (w - left - 20) / len(SIZES)
    bar_w = group_w / (len(SERIES) + 1)
    out = svg.begin(w, h, "Small buffer update on the H200: host writes N bytes, a dispatch reads them, wait "
                          "(µs, lower is better)", title_y=20)
    y0 = h - bottom
    for i in range(6):  # y grid
        v = top * i / 5
        y = y0 - plot_h * i / 5
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 20}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for g, s in enumerate(SIZES):
        x0 = left + g * group_w + bar_w / 2
        for k, (_, colour, row) in enumerate(values):
            v = row[g]
            if v is None:
                continue
            bh = plot_h * v / top
            x = x0 + k * bar_w
            out.append(f'<rect x="{x:.1f}" y="{y0 - bh:.1f}" width="{bar_w * 0.9:.1f}" height="{bh:.1f}" fill="{colour}"/>')
            out.append(f'<text x="{x + bar_w * 0.45:.1f}" y="{y0 - bh - 3:.1f}" text-anchor="middle" font-size="10">{v:.0f}</text>')
        out.append(f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{y0 + 18}" text-anchor="middle">{s.replace("1024KiB", "1 MiB").replace("KiB", " KiB")}</text>')
    svg.legend(out, [(label, colour) for label, colour, _ in values], left, 165, h - 24)
    svg.write(out, sys.argv[2], "small_updates_svg.py")

if __name__ == "__main__":
    main()
