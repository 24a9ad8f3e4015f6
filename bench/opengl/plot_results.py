#!/usr/bin/env python3
"""Plots unibuf-bench-opengl JSON: upload throughput per size, persistent vs glBufferSubData.

Left: one upload per iteration (upload/*, fences per upload or per 16), as before. Right: frames of
K uploads (frame/*, frame_dispatch/*): unibuf's upload_stream vs glBufferSubData, GB/s of whole frames.

usage: plot_results.py <bench.json> <out.png> [<medians.json>]
Reads the *_median aggregates (run with --benchmark_repetitions>1); optionally writes them alone.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def medians(path):
    data = json.load(open(path))
    rows = [b for b in data["benchmarks"] if b.get("aggregate_name") == "median"]
    return data["context"], rows


def series(rows, prefix, batch=None):
    out = []
    for b in rows:
        name = b["run_name"]
        if not name.startswith(prefix + "/"):
            continue
        parts = dict(p.split(":", 1) for p in name.split("/") if ":" in p)
        if batch is not None and parts.get("batch") != str(batch):
            continue
        size = int(parts["bytes"])
        out.append((size, b["bytes_per_second"] / 1e9))
    return sorted(out)


def decorate(axis, xlabel, ylabel, title):
    axis.set_xscale("log", base=2)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)


def main():
    ctx, rows = medians(sys.argv[1])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 5.5))
    for prefix, batch, style in [
        ("upload/persistent", 1, "o-"),
        ("upload/buffer_sub_data", 1, "s-"),
        ("upload/persistent", 16, "o--"),
        ("upload/buffer_sub_data", 16, "s--"),
        ("upload/persistent_parallel", None, "^-"),
    ]:
        pts = series(rows, prefix, batch)
        if pts:
            label = prefix.split("/")[1] + (f", {batch} per fence" if batch else ", 1 per fence")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    decorate(ax, "bytes per upload", "GB/s (median of repetitions)", "one upload per iteration (fence per 1 / 16 uploads)")

    for prefix, style, label in [
        ("frame/stream", "o-", "upload_stream (fence per segment)"),
        ("frame/buffer_sub_data", "s-", "glBufferSubData"),
        ("frame_dispatch/stream", "o--", "upload_stream + dispatch per upload"),
        ("frame_dispatch/buffer_sub_data", "s--", "glBufferSubData + dispatch per upload"),
    ]:
        pts = series(rows, prefix)
        if pts:
            bx.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    decorate(bx, "bytes per upload (frame of K = clamp(16 MiB / B, 1, 1024) uploads, one fence + wait)",
             "GB/s of the whole frame (median of repetitions)", "frames of uploads: upload_stream vs glBufferSubData")
    fig.suptitle("unibuf OpenGL streaming upload: " + ctx.get("gl_renderer", "?") + ", " + ctx.get("gl_version", ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    if len(sys.argv) > 3:
        json.dump({"context": ctx, "benchmarks": rows}, open(sys.argv[3], "w"), indent=1)


if __name__ == "__main__":
    main()
