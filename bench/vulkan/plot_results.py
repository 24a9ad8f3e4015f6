#!/usr/bin/env python3
"""Plots bench/vulkan results: bandwidth and latency against size, unibuf (Vulkan) beside PyTorch.

Usage: plot_results.py VK_JSON TORCH_JSON OUT_PNG   (needs matplotlib; Debian: python3-matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MiB = 1024 * 1024


# Producer paths of the benchmark before unibuf::producer (run V's JSON), by today's names.
OLD_NAMES = (("producer/device_mapped/", "producer/direct/"), ("producer/staged_pipelined/", "producer/staged/"))


def current_name(name):
    for old, new in OLD_NAMES:
        name = name.replace(old, new)
    return name.replace("/real_time", "")


def load(vk_path, torch_path):
    vk = {current_name(b["name"]): b for b in json.load(open(vk_path))["benchmarks"]
          if b.get("run_type", "iteration") == "iteration"}
    th = {r["name"]: r for r in json.load(open(torch_path))["results"]}
    return vk, th


def decorate(axis, ticks, unit, ylabel, title):
    axis.set_xscale("log", base=2)
    axis.set_xticks(ticks, [f"{t} {unit}" for t in ticks])
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)


def main():
    vk, th = load(sys.argv[1], sys.argv[2])
    fig, (bw, lat) = plt.subplots(1, 2, figsize=(13, 5))
    sizes = [64, 256, 1024]
    for threads, style in ((1, "--"), (16, "-")):
        for path, colour in (("direct", "C0"), ("host", "C1"), ("staged", "C2"), ("automatic", "C3")):
            ys = [vk[f"producer/{path}/{s}MiB/{threads}threads"]["bytes_per_second"] / 1e9 for s in sizes]
            bw.plot(sizes, ys, style, color=colour, marker="o", label=f"unibuf {path}, {threads} thr")
        ys = [th[f"producer/{s}MiB/{threads}threads"]["bytes_per_second"] / 1e9 for s in sizes]
        bw.plot(sizes, ys, style, color="k", marker="s", label=f"PyTorch pinned + .to(cuda), {threads} thr")
    decorate(bw, sizes, "MiB", "GB/s (CPU writes until the GPU can use the data)", "producer -> GPU throughput")

    small = [4, 64, 1024]
    for path, colour in (("zero_copy", "C0"), ("staged_2submits", "C2"), ("staged_1submit", "C4")):
        ys = [vk[f"small_update/{path}/{s}KiB"]["real_time"] / 1e3 for s in small]  # ns -> us
        lat.plot(small, ys, "-", color=colour, marker="o", label=f"unibuf {path} (mean)")
    ys = [th[f"small_update/{s}KiB"]["mean_us"] for s in small]
    lat.plot(small, ys, "-", color="k", marker="s", label="PyTorch pinned copy_ + kernel (mean)")
    for w, m in (("block", "v"), ("spin", "^"), ("spin_then_block", "D")):
        lat.plot([4], [vk[f"round_trip_4KiB/{w}"]["p50_us"]], m, color="C5", label=f"unibuf round trip 4 KiB p50, {w}")
    lat.plot([4], [th["round_trip_4KiB"]["p50_us"]], "*", color="k", markersize=10, label="PyTorch round trip 4 KiB p50")
    decorate(lat, small, "KiB", "µs per update (write -> GPU kernel done)", "small-buffer update latency")
    fig.suptitle("unibuf Vulkan backend vs PyTorch on " + json.load(open(sys.argv[2]))["context"]["device"])
    fig.tight_layout()
    fig.savefig(sys.argv[3], dpi=110)
    print("wrote", sys.argv[3])


if __name__ == "__main__":
    main()
