#!/usr/bin/env python3
"""The pipeline's frames per second against the number of slots and of writer threads, as an SVG,
with no plotting library (the development machine has no matplotlib; `plot.py` draws the same with
matplotlib where it exists). Vulkan's two workloads as lines, PyTorch's better variant of each
workload from the same call as a dashed line.

Usage: bench/device/pipeline_svg.py RESULTS OUT.svg
  RESULTS  a run's results.tar.gz (or its folder) holding the `pipeline` suite and its peer
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402
from summarize import load_dir, medians, peer  # noqa: E402

PAT = re.compile(r"pipeline/vulkan/(\w+)/slots:(\d+)/writers:(\d+)/in_host:0/out_copy:0")
COLOURS = {"c3k16": "#1f77b4", "c16k3": "#d62728"}
LABELS = {"c3k16": "C3→K16 (133 MB out)", "c16k3": "C16→K3 (133 MB in)"}


def panel(out, x0, y0, w, h, title, xlabel, lines, refs, top):
    """Axes at (x0, y0) (top-left), size w x h; lines: {key: [(x, fps)]}; refs: {key: fps}."""
    xs = sorted({x for pts in lines.values() for x, _ in pts})
    if not xs:
        return
    px = lambda x: x0 + w * (xs.index(x) + 0.5) / len(xs)  # noqa: E731 (categorical axis)
    py = lambda v: y0 + h - h * v / top  # noqa: E731
    out.append(f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle">{title}</text>')
    for i in range(6):
        v = top * i / 5
        out.append(f'<line x1="{x0}" y1="{py(v):.1f}" x2="{x0 + w}" y2="{py(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{y0 + h + 16}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" text-anchor="middle">{xlabel}</text>')
    for key, v in refs.items():
        out.append(f'<line x1="{x0}" y1="{py(v):.1f}" x2="{x0 + w}" y2="{py(v):.1f}" stroke="{COLOURS[key]}" '
                   'stroke-dasharray="6,4"/>')
    for key, pts in lines.items():
        pts = sorted(pts)
        path = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[key]}" stroke-width="2"/>')
        for x, v in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{COLOURS[key]}"/>')


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    d = load_dir(sys.argv[1])
    m, p = medians(d, "pipeline"), peer(d, "pipeline")
    by_slots, by_writers = {}, {}
    for name, b in m.items():
        g = PAT.match(name)
        if not g:
            continue
        wl, slots, writers = g.group(1), int(g.group(2)), int(g.group(3))
        if writers == 8:
            by_slots.setdefault(wl, []).append((slots, b["fps"]))
        if slots == 4:
            by_writers.setdefault(wl, []).append((writers, b["fps"]))
    refs = {}
    for name, r in p.items():
        wl = name.split("/")[1]
        refs[wl] = max(refs.get(wl, 0), r.get("fps") or 0)
    top = max([v for pts in list(by_slots.values()) + list(by_writers.values()) for _, v in pts] +
              list(refs.values())) * 1.15
    w, h = 900, 400
    out = svg.begin(w, h, "unibuf pipeline on the H200 (Vulkan), 1080p 3×3 fp32 conv2d, fps (higher is better); "
                          "dashed: PyTorch's better variant, same call")
    panel(out, 70, 60, 360, 250, "against slots (8 writers)", "slots", by_slots, refs, top)
    panel(out, 520, 60, 360, 250, "against writer threads (4 slots)", "writer threads", by_writers, refs, top)
    svg.legend(out, [(LABELS[key], COLOURS[key]) for key in COLOURS], 220, 260, h - 22)
    svg.write(out, sys.argv[2], "pipeline_svg.py")

if __name__ == "__main__":
    main()
