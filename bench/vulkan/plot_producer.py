#!/usr/bin/env python3
"""Plot of the producer crossover: GB/s against size for each writer-thread count, direct stores
into the BAR, pipelined staging, unibuf's automatic choice and the PyTorch peer of the same run.
Usage: plot_producer.py vk.json torch.json out.png   (needs matplotlib: /usr/bin/python3 on Debian)"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

vk = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2]))
series = {}  # (path, threads) -> {MiB: GB/s}
for b in vk["benchmarks"]:
    m = re.match(r"producer/(\w+)/(\d+)MiB/(\d+)threads", b.get("run_name", ""))
    if m and b.get("aggregate_name") == "median":
        series.setdefault((m[1], int(m[3])), {})[int(m[2])] = b["bytes_per_second"] / 1e9
for r in torch["results"]:
    m = re.match(r"producer/(\d+)MiB/(\d+)threads", r["name"])
    if m:
        series.setdefault(("PyTorch", int(m[2])), {})[int(m[1])] = r["bytes_per_second"] / 1e9
threads = sorted({t for (_, t) in series})
fig, axes = plt.subplots(1, len(threads), figsize=(4 * len(threads), 3.6), sharey=True)
styles = {"direct": ("direct stores into the BAR", "o-"), "staged": ("pipelined staging", "s-"),
          "automatic": ("unibuf automatic", "D-"),
          "automatic_all": ("automatic, every writer woken", "x:"), "PyTorch": ("PyTorch pinned + copy_", "k^--")}
for ax, t in zip(axes, threads):
    for path, (label, fmt) in styles.items():
        pts = sorted(series.get((path, t), {}).items())
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], fmt, label=label, lw=2 if path == "automatic" else 1)
    ax.set_xscale("log", base=2)
    ax.set_title(f"{t} writer thread{'s' if t > 1 else ''}")
    ax.set_xlabel("buffer size (MiB)")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("producer -> GPU (GB/s, median)")
axes[0].legend(fontsize=7)
fig.suptitle(f"{vk['context'].get('vulkan_device', '')}: producer throughput (automatic: staged from 48 MiB and 4 writers)", fontsize=10)
fig.tight_layout()
fig.savefig(sys.argv[3], dpi=110)
print("wrote", sys.argv[3])
