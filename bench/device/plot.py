#!/usr/bin/env python3
"""Plots of GPU-machine runs (bench/device/run.sh), for bench/RESULTS.md. Needs matplotlib (the GPU
machine has it; run it there after the suites, or anywhere matplotlib is installed).

Usage: bench/device/plot.py OUTDIR RESULTS...
  RESULTS  results.tar.gz files (or folders they were unpacked into); later ones win on equal names
Writes, where the runs hold the data:
  conv2d.png     time per convolution per shape: unibuf Vulkan and OpenGL against cuDNN fp32 and TF32
  pipeline.png   pipeline fps against slots and against writer threads, per backend and workload
  gl-stream.png  OpenGL upload stream vs glBufferSubData per upload size
  pool.png       pool acquire + release vs a fresh backend allocation (p50, log scale)
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import load_dir, medians, us, gbs  # noqa: E402


def merged(dirs, prefix):
    out = {}
    for d in dirs:
        out.update(medians(d, prefix))
    return out


def conv2d(plt, dirs, outdir):
    m = merged(dirs, "conv2d")
    torch = None
    for d in dirs:
        p = os.path.join(d, "conv2d-torch.json")
        if os.path.exists(p):
            torch = json.load(open(p))
    if not m or not torch:
        return
    shapes = [s["name"] for s in torch["shapes"]]
    series = {
        "unibuf Vulkan": [us(m[f"conv2d/vulkan/{s}"]) if f"conv2d/vulkan/{s}" in m else float("nan") for s in shapes],
        "unibuf OpenGL": [us(m[f"conv2d/opengl/{s}"]) if f"conv2d/opengl/{s}" in m else float("nan") for s in shapes],
        "cuDNN fp32": [s["fp32_us"] for s in torch["shapes"]],
        "cuDNN TF32": [s["tf32_us"] for s in torch["shapes"]],
    }
    fig, ax = plt.subplots(figsize=(11, 4.8))
    w = 0.2
    for i, (label, ys) in enumerate(series.items()):
        ax.bar([x + (i - 1.5) * w for x in range(len(shapes))], ys, w, label=label)
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels([s.replace("_", "\n") for s in shapes], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("µs per convolution (GPU time, lower is better)")
    ax.set_title("conv2d on the H200: unibuf vs cuDNN (N×C×H×W, K, R, stride)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "conv2d.png"), dpi=110)


def pipeline(plt, dirs, outdir):
    m = merged(dirs, "pipeline")
    if not m:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    pat = re.compile(r"pipeline/(\w+)/(\w+)/.*slots:(\d+)/writers:(\d+)/in_host:(\d)/out_copy:(\d)")
    pts = []
    for n, b in m.items():
        g = pat.match(n)
        if g:
            be, wl, s, t, ih, oc = g.groups()
            pts.append((be, wl, int(s), int(t), int(ih), int(oc), b.get("fps", float("nan"))))
    for ax, (xi, fixed, label) in zip(axes, ((2, (3, 8), "slots (8 writers)"), (3, (2, 4), "writer threads (4 slots)"))):
        for be in sorted({p[0] for p in pts}):
            for wl in sorted({p[1] for p in pts}):
                sel = sorted((p[xi], p[6]) for p in pts if p[0] == be and p[1] == wl and p[4] == 0 and p[5] == 0
                             and p[fixed[0]] == fixed[1])
                if sel:
                    ax.plot([x for x, _ in sel], [y for _, y in sel], marker="o", label=f"{be} {wl}")
        ax.set_xlabel(label)
        ax.set_ylabel("frames per second")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("unibuf pipeline, 1080p 3×3 fp32 conv2d, every frame written by the writers and read by the consumer")
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "pipeline.png"), dpi=110)


def gl_stream(plt, dirs, outdir):
    m = {}
    for prefix in ("opengl", "stream"):
        m.update(merged(dirs, prefix))
    sizes = sorted({int(x.split("bytes:")[1].split("/")[0]) for x in m if x.startswith("frame/stream/bytes:")})
    if not sizes:
        return
    a = [gbs(m[f"frame/stream/bytes:{k}"]) for k in sizes]
    b = [gbs(m[f"frame/buffer_sub_data/bytes:{k}"]) for k in sizes]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(sizes, a, marker="o", label="upload_stream (persistent mapping)")
    ax.plot(sizes, b, marker="o", label="glBufferSubData")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("upload size (bytes)")
    ax.set_ylabel("GB/s")
    ax.set_title("OpenGL uploads on the H200 (frames, medians of 5)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "gl-stream.png"), dpi=110)


def pool(plt, dirs, outdir):
    m = merged(dirs, "pool")
    rows = []
    for be in ("vulkan", "opengl", "host"):
        for size in (256, 4096, 65536):
            p = m.get(f"pool_acquire_release<{be}>/{size}/0")
            fr = m.get(f"fresh_backend_allocation<{be}>/{size}")
            if p and fr and "p50_ns" in p and "p50_ns" in fr:
                rows.append((f"{be}\n{size} B", p["p50_ns"], fr["p50_ns"]))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r[1] for r in rows], 0.4, label="pool acquire + release")
    ax.bar([i + 0.2 for i in x], [r[2] for r in rows], 0.4, label="fresh backend allocation")
    ax.set_xticks(list(x))
    ax.set_xticklabels([r[0] for r in rows], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ns (p50)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "pool.png"), dpi=110)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    dirs = [load_dir(p) for p in sys.argv[2:]]
    for part in (conv2d, pipeline, gl_stream, pool):
        try:
            part(plt, dirs, outdir)
        except Exception as e:  # one plot's missing data must not lose the others
            print(f"plot.py: {part.__name__}: {e}", file=sys.stderr)
    print("plot.py: wrote", sorted(os.listdir(outdir)))


if __name__ == "__main__":
    main()
