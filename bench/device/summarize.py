#!/usr/bin/env python3
"""Markdown tables of a GPU-machine run (bench/device/run.sh): the targets of bench/RESULTS.md with
their peers from the same call.

Usage: bench/device/summarize.py RESULTS [--all]
  RESULTS  the run's results.tar.gz or the folder it was unpacked into
  --all    also print every median row of every Google Benchmark JSON (name, time, GB/s, p50)

Google Benchmark rows are the medians over the run's repetitions (`*_median`); the PyTorch peers
report p50 over their iterations (small updates, round trip) or medians (producer, copies).
"""
import json
import math
import os
import re
import sys
import tarfile
import tempfile


def load_dir(path):
    if os.path.isdir(path):
        return path
    out = tempfile.mkdtemp(prefix="unibuf-results-")
    with tarfile.open(path) as t:
        t.extractall(out)
    return out


def medians(d, prefix):
    """{name without /real_time: row} over every JSON of the suite `prefix`, medians only."""
    rows = {}
    for f in sorted(os.listdir(d)):
        if not (f.startswith(prefix + "-") and f.endswith(".json")) or "torch" in f:
            continue
        try:
            data = json.load(open(os.path.join(d, f)))
        except (OSError, ValueError):
            continue
        for b in data.get("benchmarks", []):
            if b.get("aggregate_name") not in ("median", None) or b.get("error_occurred"):
                continue
            if b.get("run_type") == "iteration" and any(x.get("aggregate_name") for x in data["benchmarks"]):
                continue
            name = re.sub(r"(/(real|manual)_time)?(_median)?$", "", b["name"])
            rows[name] = b
    return rows


def peer(d, prefix):
    p = os.path.join(d, prefix + "-torch.json")
    if not os.path.exists(p):
        return {}
    return {r["name"]: r for r in json.load(open(p)).get("results", [])}


def us(b):
    """A Google Benchmark row's time per iteration in µs."""
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def gbs(b):
    return b.get("bytes_per_second", float("nan")) / 1e9


def f(x, nd=1):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def tests(d):
    rows = []
    for fn in sorted(os.listdir(d)):
        if fn.startswith("tests-") and fn.endswith(".txt"):
            text = open(os.path.join(d, fn), errors="replace").read()
            m = re.findall(r"^\[\s+(PASSED|FAILED|SKIPPED)\s+\] (\d+) test", text, re.M)
            rows.append([fn[6:-4], ", ".join(f"{k} {n}" for k, n in m) or "(no gtest summary)"])
    if rows:
        print("### Tests\n")
        table(["binary", "result"], rows)


def vulkan(d):
    m, p = medians(d, "vulkan"), peer(d, "vulkan")
    if not m:
        return
    print("### Vulkan: small updates (µs per update, medians; PyTorch p50)\n")
    rows = []
    for kib in (4, 64, 1024):
        s = f"{kib}KiB"
        t = p.get(f"small_update/{s}", {}).get("p50_us")
        z = m.get(f"small_update/zero_copy/{s}")
        s2 = m.get(f"small_update/staged_2submits/{s}")
        s1 = m.get(f"small_update/staged_1submit/{s}")
        pr = m.get(f"small_update/producer_compute/{s}")
        rows.append([s, f(us(z)) if z else "—", f(us(s2)) if s2 else "—", f(us(s1)) if s1 else "—",
                     f(us(pr)) if pr else "—", f(t), f(us(z) / t, 2) if z and t else "—",
                     f(us(s1) / t, 2) if s1 and t else "—", f(us(pr) / t, 2) if pr and t else "—",
                     f(us(s2) / us(z), 2) if z and s2 else "—"])
    table(["size", "zero-copy", "staged, 2 submits", "staged, 1 submit", "staged, producer", "PyTorch",
           "zero-copy / PyTorch", "staged 1 submit / PyTorch", "producer / PyTorch", "staged 2 submits / zero-copy"], rows)
    rows = []
    t = p.get("round_trip_4KiB", {}).get("p50_us")
    for w in ("block", "spin", "spin_then_block"):
        r, fl = m.get(f"round_trip_4KiB/{w}"), m.get(f"wait_floor/{w}")
        rows.append([w, f(r.get("p50_us")) if r else "—", f(fl.get("p50_us")) if fl else "—", f(t),
                     f(r["p50_us"] / t, 2) if r and t else "—"])
    print("### Vulkan: 4 KiB round trip (p50 µs)\n")
    table(["wait", "round trip", "wait floor", "PyTorch", "round trip / PyTorch"], rows)


def opengl(d):
    m = medians(d, "opengl") or medians(d, "stream")
    s = medians(d, "stream")
    m.update(s)
    if not m:
        return
    rows = []
    for k in sorted({int(x.split("bytes:")[1].split("/")[0]) for x in m if x.startswith("frame/stream/bytes:")}):
        a, b = m.get(f"frame/stream/bytes:{k}"), m.get(f"frame/buffer_sub_data/bytes:{k}")
        if a and b:
            rows.append([f"{k // 1024} KiB", f(gbs(a), 2), f(gbs(b), 2), f(gbs(a) / gbs(b), 2)])
    if rows:
        print("### OpenGL: upload stream vs glBufferSubData (frames, GB/s, medians)\n")
        table(["upload", "stream", "glBufferSubData", "ratio"], rows)
    lat = [[n, f(us(m[n]))] for n in ("latency/persistent", "latency/traditional", "fence_round_trip") if n in m]
    if lat:
        print("### OpenGL: latency (µs, medians)\n")
        table(["benchmark", "µs"], lat)


def pool(d):
    m = medians(d, "pool")
    rows = [[n, f(b.get("p50_ns"), 0), f(b.get("p99_ns"), 0)] for n, b in sorted(m.items()) if "p50_ns" in b]
    if rows:
        print("### Pool, ring, fresh allocation (ns per operation: p50, p99 of each run; medians of the runs)\n")
        table(["benchmark", "p50 ns", "p99 ns"], rows)


def producer(d):
    m, p = medians(d, "producer"), peer(d, "producer")
    if not m:
        return
    keys = sorted({(int(a), int(b)) for a, b in (re.match(r"producer/\w+/(\d+)MiB/(\d+)threads", n).groups()
                                                  for n in m if re.match(r"producer/\w+/(\d+)MiB/(\d+)threads", n))})
    rows = []
    for mib, t in keys:
        g = {k: m.get(f"producer/{k}/{mib}MiB/{t}threads") for k in ("automatic", "automatic_all", "direct", "staged")}
        tp = p.get(f"producer/{mib}MiB/{t}threads", {}).get("bytes_per_second")
        a = g["automatic"]
        rows.append([f"{mib} × {t}"] + [f(gbs(g[k])) if g[k] else "—" for k in g] +
                    [f(tp / 1e9) if tp else "—", f(gbs(a) / (tp / 1e9), 2) if a and tp else "—"])
    print("### Producer (GB/s, medians; PyTorch pinned write + H2D in the same call)\n")
    table(["MiB × writers", "automatic", "automatic_all", "direct", "staged", "PyTorch", "automatic / PyTorch"], rows)


def copy(d):
    m, p = medians(d, "copy"), peer(d, "copy")
    if not m and not p:
        return
    rows = [[n, f(gbs(b), 2) if "bytes_per_second" in b else "—", f(us(b))] for n, b in sorted(m.items())]
    rows += [[f"PyTorch {n}", f(r.get("bytes_per_second", float("nan")) / 1e9, 2), f(r.get("p50_us"))]
             for n, r in sorted(p.items())]
    print("### Copies and the staged update's parts\n")
    table(["benchmark", "GB/s", "µs"], rows)


def conv2d(d):
    m = medians(d, "conv2d")
    rows = [[n, f(us(b)), f(b.get("TFLOPs", b.get("tflops", float("nan"))), 2),
             f(b.get("GBps", b.get("gbps", float("nan"))), 0)] for n, b in sorted(m.items())]
    if rows:
        print("### conv2d (µs per convolution, medians)\n")
        table(["benchmark", "µs", "TFLOP/s", "GB/s"], rows)
    t = os.path.join(d, "conv2d-torch.txt")
    if os.path.exists(t):
        print("```\n" + open(t).read().strip() + "\n```\n")


def pipeline(d):
    m, p = medians(d, "pipeline"), peer(d, "pipeline")
    if not m and not p:
        return
    rows = [[n, f(b.get("fps")), f(b.get("in_GBps"), 2), f(b.get("out_GBps"), 2), f(b.get("p50_latency_ms"), 2),
             f(b.get("cpu_ms_per_frame"), 2), f(b.get("overlap"), 2)] for n, b in sorted(m.items())]
    rows += [[f"PyTorch {n}", f(r.get("fps")), f(r.get("in_GBps"), 2), f(r.get("out_GBps"), 2),
              f(r.get("p50_latency_ms"), 2), f(r.get("cpu_ms_per_frame"), 2),
              f"bound {f(r.get('bound_fps'))} fps ({r.get('bound_by')})"] for n, r in sorted(p.items())]
    print("### Pipeline (1080p 3x3 fp32; fps, GB/s in/out, p50 latency ms, CPU ms per frame)\n")
    table(["benchmark", "fps", "in GB/s", "out GB/s", "p50 ms", "CPU ms/frame", "overlap / bound"], rows)


def everything(d):
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".json") and "torch" not in fn:
            print(f"### {fn}\n")
            rows = [[n, f(us(b), 2), f(gbs(b), 2), f(b.get("p50_us"))] for n, b in sorted(medians(d, fn.split("-")[0]).items())]
            table(["name", "µs", "GB/s", "p50 µs"], rows)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    d = load_dir(sys.argv[1])
    mt = os.path.join(d, "machine.txt")
    if os.path.exists(mt):
        print("```\n" + open(mt).read().strip() + "\n```\n")
    for part in (tests, vulkan, opengl, pool, producer, copy, conv2d, pipeline):
        part(d)
    if "--all" in sys.argv[2:]:
        everything(d)


if __name__ == "__main__":
    main()
