#!/usr/bin/env python3
"""Plots conv2d time per shape (us per convolution): unibuf Vulkan, unibuf OpenGL, cuDNN fp32, cuDNN TF32.

usage: plot_results.py <unibuf conv2d.json> <peer torch.json> <out.svg>
Reads the *_median aggregates of unibuf_conv2d_bench's JSON (us_per_conv) and the peer's fp32_us /
tf32_us. Writes an SVG bar chart (no plotting library needed) and prints the table with the
ratios the issue's targets use (Vulkan/cuDNN fp32, OpenGL/Vulkan, geometric mean).
"""
import json
import math
import sys


def unibuf_times(path):
    out = {}
    for b in json.load(open(path))["benchmarks"]:
        name = b["name"]
        if b.get("aggregate_name", "median") != "median" or "/vulkan_tile/" in name or "us_per_conv" not in b:
            continue
        parts = name.split("/")  # conv2d/<api>/<shape>/...
        out[(parts[1], parts[2])] = b["us_per_conv"]
    return out


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    ub = unibuf_times(sys.argv[1])
    peer = json.load(open(sys.argv[2]))
    rows = []
    for s in peer["shapes"]:
        n = s["name"]
        rows.append((n, ub.get(("vulkan", n)), ub.get(("opengl", n)), s["fp32_us"], s["tf32_us"]))
    series = [("unibuf Vulkan", "#1f77b4"), ("unibuf OpenGL", "#2ca02c"), ("cuDNN fp32", "#d62728"), ("cuDNN TF32", "#ff9896")]
    width, height, left, bottom, top = 980, 440, 70, 120, 40
    vmax = max(v for r in rows for v in r[1:] if v is not None)
    group = (width - left - 20) / len(rows)
    bar = group / (len(series) + 1)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="20" font-size="14">conv2d, us per convolution (lower is better), {peer.get("device", "")}</text>']
    plot_h = height - bottom - top
    for t in range(0, 6):
        v = vmax * t / 5
        y = top + plot_h - plot_h * t / 5
        svg.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for i, r in enumerate(rows):
        x0 = left + i * group + bar / 2
        for j, (label, color) in enumerate(series):
            v = r[1 + j]
            if v is None:
                continue
            h = plot_h * v / vmax
            svg.append(f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar * 0.9:.1f}" height="{h:.1f}" fill="{color}"><title>{label} {v:.1f} us</title></rect>')
        cx = x0 + bar * len(series) / 2
        svg.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" text-anchor="end" transform="rotate(-30 {cx:.1f} {top + plot_h + 14})">{r[0]}</text>')
    for j, (label, color) in enumerate(series):
        svg.append(f'<rect x="{left + 10 + j * 150}" y="{height - 22}" width="12" height="12" fill="{color}"/>')
        svg.append(f'<text x="{left + 26 + j * 150}" y="{height - 12}">{label}</text>')
    svg.append("</svg>")
    open(sys.argv[3], "w").write("\n".join(svg) + "\n")
    logs = []
    print(f"{'shape':28s} {'vulkan':>8s} {'opengl':>8s} {'fp32':>8s} {'tf32':>8s} {'vk/fp32':>8s} {'gl/vk':>6s}")
    for n, vk, gl, f, t in rows:
        ratio = vk / f if vk else float("nan")
        if vk:
            logs.append(math.log(ratio))
        print(f"{n:28s} {vk or float('nan'):8.1f} {gl or float('nan'):8.1f} {f:8.1f} {t:8.1f} {ratio:8.3f} "
              f"{(gl / vk) if (gl and vk) else float('nan'):6.2f}")
    if logs:
        print(f"geometric mean vulkan/cudnn fp32: {math.exp(sum(logs) / len(logs)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
