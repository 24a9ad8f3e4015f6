#!/usr/bin/env python3
"""The conv2d chart of bench/RESULTS.md as an SVG, with no plotting library: GPU time per
convolution for each of the eight shapes, unibuf (Vulkan fp32, OpenGL fp32, Vulkan tensor cores)
next to cuDNN (fp32 and TF32) measured in the same call, from a run's `conv2d` suite.

Usage: bench/device/conv2d_svg.py RESULTS OUT.svg
  RESULTS  a run's results.tar.gz (or the folder it was unpacked into) holding the `conv2d` suite
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402
from summarize import load_dir, medians, us  # noqa: E402

SERIES = [("unibuf Vulkan fp32", "conv2d/vulkan/", "#1f77b4"),
          ("unibuf OpenGL fp32", "conv2d/opengl/", "#aec7e8"),
          ("unibuf Vulkan tensor cores", "conv2d/vulkan_tc/", "#2ca02c"),
          ("cuDNN fp32", "fp32_us", "#7f7f7f"),
          ("cuDNN TF32", "tf32_us", "#c7c7c7")]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    d = load_dir(sys.argv[1])
    m = medians(d, "conv2d")
    torch = json.load(open(os.path.join(d, "conv2d-torch.json")))
    shapes = [s["name"] for s in torch["shapes"]]
    peer = {s["name"]: s for s in torch["shapes"]}

    def value(key, shape):
        if key.startswith("conv2d/"):
            hits = [b for n, b in m.items() if n.startswith(key + shape + "/") or n == key + shape]
            return us(hits[0]) if hits else None
        return peer[shape].get(key)

    rows = [(label, colour, [value(key, s) for s in shapes]) for label, key, colour in SERIES]
    top = max(v for _, _, r in rows for v in r if v) * 1.12
    bar, gap = 9, 14
    group = bar * len(SERIES) + gap
    left, right, top_m = 210, 40, 60
    w = 900
    h = top_m + group * len(shapes) + 50
    plot_w = w - left - right
    out = svg.begin(w, h, "conv2d on the H200: GPU time per convolution (µs, shorter is faster)")
    svg.legend(out, [(label, colour) for label, colour, _ in rows], 20, 175, 32)
    for k in range(0, int(top) + 1, 100):
        x = left + plot_w * k / top
        out.append(f'<line x1="{x:.1f}" y1="{top_m - 4}" x2="{x:.1f}" y2="{h - 40}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{h - 26}" text-anchor="middle" font-size="10">{k}</text>')
    for i, s in enumerate(shapes):
        y0 = top_m + i * group
        n, c, hw, k, r, st = re.match(r"(\d+)x(\d+)x(\d+x\d+)_k(\d+)_r(\d+)_s(\d+)", s).groups()
        out.append(f'<text x="{left - 8}" y="{y0 + group / 2}" text-anchor="end" font-size="11">'
                   f'N{n} C{c} {hw.replace("x", "×")} K{k} {r}×{r} s{st}</text>')
        for j, (label, colour, vals) in enumerate(rows):
            v = vals[i]
            if v is None:
                continue
            y = y0 + j * bar
            out.append(f'<rect x="{left}" y="{y}" width="{plot_w * v / top:.1f}" height="{bar - 1}" fill="{colour}">'
                       f'<title>{label}: {v:.1f} µs</title></rect>')
            out.append(f'<text x="{left + plot_w * v / top + 3:.1f}" y="{y + bar - 2}" font-size="8">{v:.0f}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{h - 8}" text-anchor="middle">µs per convolution '
               f'(unibuf: median; cuDNN: cudaEvents, same call)</text>')
    svg.write(out, sys.argv[2], "conv2d_svg")


if __name__ == "__main__":
    main()
