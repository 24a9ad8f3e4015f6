"""Plots pool acquire+release against a fresh backend allocation (p50, log scale) from the
H100 run in this folder: python3 plot.py vk.json gl.json pool-vs-fresh.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def medians(path):
    out = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") == "median" and "p50_ns" in b:
            out[b["run_name"]] = b["p50_ns"]
    return out


vk, gl, png = sys.argv[1], sys.argv[2], sys.argv[3]
fig, ax = plt.subplots(figsize=(8, 4.5))
sizes = [256, 4096, 65536]
width = 0.2
for i, (name, data) in enumerate([("vulkan", medians(vk)), ("opengl", medians(gl))]):
    pool = [data[f"pool_acquire_release<{name}>/{s}/0"] for s in sizes]
    fresh = [data[f"fresh_backend_allocation<{name}>/{s}"] for s in sizes]
    xs = [j + (2 * i) * width for j in range(len(sizes))]
    ax.bar(xs, pool, width, label=f"{name}: pool acquire+release")
    ax.bar([x + width for x in xs], fresh, width, label=f"{name}: fresh allocation (+bind+map)")
ax.set_yscale("log")
ax.set_xticks([j + 1.5 * width for j in range(len(sizes))])
ax.set_xticklabels([f"{s} B" for s in sizes])
ax.set_ylabel("p50 per acquire+release (ns, log)")
ax.set_title("unibuf pool vs fresh backend allocation, NVIDIA H100 (median of repetitions)")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(png, dpi=110)
