#!/usr/bin/env python3
"""PyTorch peer of bench/conv2d/conv2d_bench.cpp (issue 12): the same eight conv2d shapes
(N C HxW K R stride, padding R//2, bias), the same deterministic inputs, timed the same way.

GPU time per convolution: cudaEvents around M back-to-back F.conv2d calls, divided by M; the median
of `--reps` samples. Two modes: cuDNN fp32 (torch.backends.cudnn.allow_tf32 = False) and TF32
(allow_tf32 = True). cudnn.benchmark is on (cuDNN picks its fastest algorithm per shape).

When --dump names the folder the unibuf benchmark wrote its outputs to (UNIBUF_CONV2D_DUMP), each
of them (Vulkan fp32, Vulkan tensor cores, OpenGL) is compared with cuDNN fp32's output on the device: max |unibuf - cudnn| / max |cudnn|
(normalized) and the largest elementwise relative error where |cudnn| > 1e-3 * max |cudnn|.

Output: a table on stdout and JSON (--out).
"""
import argparse
import json
import math
import os
import sys

SHAPES = [(1, 3, 1080, 1920, 16, 3, 1), (1, 16, 1080, 1920, 16, 3, 1), (1, 64, 224, 224, 64, 3, 1),
          (8, 64, 56, 56, 64, 3, 1), (1, 32, 512, 512, 32, 3, 1), (1, 32, 512, 512, 32, 5, 2),
          (1, 128, 128, 128, 128, 3, 1), (32, 3, 224, 224, 64, 7, 2)]


def name_of(s):
    n, c, h, w, k, r, st = s
    return f"{n}x{c}x{h}x{w}_k{k}_r{r}_s{st}"


def values(torch, count, salt, scale, dev):
    # ((i + salt) * 2654435761 mod 2^32) / 2^32 - 0.5, times scale, in double, to float (as the C++ side).
    i = torch.arange(count, dtype=torch.int64, device=dev)
    h = ((i + salt) * 2654435761) % 4294967296
    return ((h.to(torch.float64) / 4294967296.0 - 0.5) * scale).to(torch.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=50, help="convolutions per timed sample")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--dump", default=os.environ.get("UNIBUF_CONV2D_DUMP", ""))
    ap.add_argument("--out", default="")
    ap.add_argument("--quick", action="store_true", help="shapes 3 and 6 only (as UNIBUF_BENCH_QUICK)")
    a = ap.parse_args()
    import torch
    import torch.nn.functional as F
    if not torch.cuda.is_available():
        print("peer_torch_conv2d: no CUDA device", file=sys.stderr)
        return 1
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    results = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
               "device": torch.cuda.get_device_name(0), "m": a.m, "reps": a.reps,
               "timing": "cudaEvents around M back-to-back convolutions / M, median of reps", "shapes": []}
    picked = [3, 6] if a.quick else range(len(SHAPES))
    print(f"{'shape':28s} {'cudnn fp32 us':>13s} {'tf32 us':>9s} {'TFLOP/s fp32':>12s} {'GB/s fp32':>10s}  check")
    for idx in picked:
        s = SHAPES[idx]
        n, c, h, w, k, r, st = s
        pad = r // 2
        x = values(torch, n * c * h * w, 0, 1.0, dev).view(n, c, h, w)
        wt = values(torch, k * c * r * r, 1000003, 2.0 / math.sqrt(c * r * r), dev).view(k, c, r, r)
        b = values(torch, k, 7777777, 1.0, dev)
        row = {"index": idx, "name": name_of(s)}
        for mode, tf32 in (("fp32", False), ("tf32", True)):
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            y = F.conv2d(x, wt, b, stride=st, padding=pad)
            for _ in range(3):
                F.conv2d(x, wt, b, stride=st, padding=pad)
            torch.cuda.synchronize()
            times = []
            for _ in range(a.reps):
                e0 = torch.cuda.Event(enable_timing=True)
                e1 = torch.cuda.Event(enable_timing=True)
                e0.record()
                for _ in range(a.m):
                    F.conv2d(x, wt, b, stride=st, padding=pad)
                e1.record()
                e1.synchronize()
                times.append(e0.elapsed_time(e1) * 1e3 / a.m)  # us per conv
            times.sort()
            row[f"{mode}_us"] = times[len(times) // 2]
            row[f"{mode}_us_all"] = times
            if mode == "fp32":
                ref = y
        oh, ow = ref.shape[2], ref.shape[3]
        flops = 2.0 * n * k * oh * ow * c * r * r
        nbytes = 4.0 * (x.numel() + wt.numel() + b.numel() + ref.numel())
        row["flops"] = flops
        row["min_bytes"] = nbytes
        row["fp32_tflops"] = flops / (row["fp32_us"] * 1e-6) * 1e-12
        row["fp32_gbs"] = nbytes / (row["fp32_us"] * 1e-6) * 1e-9
        checks = []
        refmax = ref.abs().max().item()
        for api in ("vulkan", "vulkan_tc", "opengl"):
            path = os.path.join(a.dump, f"{idx}-{api}.bin") if a.dump else ""
            if not path or not os.path.exists(path):
                continue
            import numpy as np
            got = torch.from_numpy(np.fromfile(path, dtype=np.float32)).to(dev)
            if got.numel() != ref.numel():
                row[f"{api}_check"] = f"size {got.numel()} != {ref.numel()}"
                checks.append(f"{api}: size mismatch")
                continue
            diff = (got.view_as(ref) - ref).abs()
            norm = diff.max().item() / refmax
            mask = ref.abs() > 1e-3 * refmax
            rel = (diff[mask] / ref.abs()[mask]).max().item() if mask.any() else 0.0
            row[f"{api}_max_rel_err_normalized"] = norm
            row[f"{api}_max_rel_err"] = rel
            checks.append(f"{api}: {norm:.2e} (elementwise {rel:.2e})")
        results["shapes"].append(row)
        print(f"{name_of(s):28s} {row['fp32_us']:13.1f} {row['tf32_us']:9.1f} {row['fp32_tflops']:12.2f} "
              f"{row['fp32_gbs']:10.1f}  {'; '.join(checks) if checks else 'no unibuf output to check'}", flush=True)
        del x, wt, b, y, ref
        torch.cuda.empty_cache()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
