#!/usr/bin/env python3
"""PyTorch peer of bench/vulkan/vulkan_bench.cpp: the same transfers the CUDA way, JSON out.

  small_update/<bytes>          pinned host tensor written, copy_ to the GPU, y += a*x on the GPU,
                                synchronize (compare: small_update/* of the Vulkan bench)
  round_trip_4KiB               pinned write 4 KiB -> copy_ -> kernel -> copy_ back -> synchronize,
                                p50/p99 (compare: round_trip_4KiB/*)
  producer/<MiB>/<threads>      pinned tensor written by the CPU (torch intra-op threads), then
                                .to('cuda', non_blocking=True) + synchronize, bytes/s (compare: producer/*)

Usage: peer_torch.py [--out FILE] [--quick] [--only small_update,round_trip,producer]. Without CUDA it runs on the CPU (no pinning) so the
script itself can be checked anywhere PyTorch is installed; the JSON says which device ran.
"""
import argparse
import json
import platform
import statistics
import sys
import time

try:
    import torch
except ImportError as e:  # the peer needs PyTorch; say so plainly
    print(f"peer_torch.py: PyTorch is not installed ({e})", file=sys.stderr)
    sys.exit(2)

KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Peer:
    def __init__(self, quick):
        self.cuda = torch.cuda.is_available()
        self.dev = torch.device("cuda" if self.cuda else "cpu")
        self.quick = quick

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def host(self, n, dtype=torch.float32):
        t = torch.empty(n, dtype=dtype)
        return t.pin_memory() if self.cuda else t

    def timed(self, fn, iters, warmup):
        for _ in range(warmup):
            fn()
        self.sync()
        us = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            us.append((time.perf_counter() - t0) * 1e6)
        us.sort()
        return us

    def small_update(self, nbytes):
        n = nbytes // 4
        src = torch.ones(n)
        x_pin = self.host(n)
        x = torch.empty(n, device=self.dev)
        y = torch.zeros(n, device=self.dev)

        def step():
            x_pin.copy_(src)                      # the host writes the pinned buffer
            x.copy_(x_pin, non_blocking=True)     # H2D
            y.add_(x, alpha=0.5)                  # the kernel reads it
            self.sync()

        us = self.timed(step, 200 if self.quick else 5000, 20 if self.quick else 200)
        return {"name": f"small_update/{nbytes // KiB}KiB", "bytes": nbytes, "p50_us": percentile(us, 0.5),
                "p99_us": percentile(us, 0.99), "mean_us": statistics.fmean(us),
                "bytes_per_second": nbytes / (statistics.fmean(us) * 1e-6)}

    def round_trip(self):
        n = 4 * KiB // 4
        src = torch.ones(n)
        x_pin, y_pin = self.host(n), self.host(n)
        x = torch.empty(n, device=self.dev)
        y = torch.zeros(n, device=self.dev)

        def step():
            x_pin.copy_(src)
            x.copy_(x_pin, non_blocking=True)
            y.add_(x)
            y_pin.copy_(y, non_blocking=True)
            self.sync()

        us = self.timed(step, 200 if self.quick else 10000, 20 if self.quick else 500)
        return {"name": "round_trip_4KiB", "bytes": 4 * KiB, "p50_us": percentile(us, 0.5),
                "p99_us": percentile(us, 0.99), "min_us": us[0]}

    def producer(self, nbytes, threads):
        n = nbytes // 4
        torch.set_num_threads(threads)
        src = torch.full((n,), 1.5)
        pin = self.host(n)
        pin.copy_(src)                            # touch the pages once (as the Vulkan bench does)
        dst = torch.empty(n, device=self.dev)

        def step():
            pin.copy_(src)                        # CPU writes, torch intra-op threads
            dst.copy_(pin, non_blocking=True)     # == pin.to('cuda', non_blocking=True) into a kept tensor
            self.sync()

        reps = 3 if self.quick else max(5, int(8 * GiB / nbytes))
        us = self.timed(step, reps, 1)
        med = statistics.median(us)
        return {"name": f"producer/{nbytes // MiB}MiB/{threads}threads", "bytes": nbytes, "threads": threads,
                "p50_us": med, "bytes_per_second": nbytes / (med * 1e-6)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="-", help="JSON file ('-': stdout)")
    ap.add_argument("--quick", action="store_true", help="small repetitions and sizes (a smoke run)")
    ap.add_argument("--only", default="small_update,round_trip,producer",
                    help="comma-separated parts to run (default: all)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    unknown = parts - {"small_update", "round_trip", "producer"}
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; known: small_update, round_trip, producer")
    p = Peer(args.quick)
    results = []
    if "small_update" in parts:
        for nbytes in (4 * KiB, 64 * KiB, 1 * MiB):
            results.append(p.small_update(nbytes))
    if "round_trip" in parts:
        results.append(p.round_trip())
    sizes = [16 * MiB] if args.quick else [4 * MiB, 16 * MiB, 32 * MiB, 64 * MiB, 256 * MiB, 1 * GiB]
    threads = [1, 2] if args.quick else [1, 4, 8, 16]
    if "producer" in parts:
        for nbytes in sizes:
            for t in threads:
                results.append(p.producer(nbytes, t))
    out = {
        "context": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
            "cuda": torch.version.cuda if p.cuda else None,
            "device": torch.cuda.get_device_name(0) if p.cuda else f"cpu ({platform.processor() or platform.machine()})",
            "pinned": p.cuda,
            "quick": args.quick,
        },
        "results": results,
    }
    text = json.dumps(out, indent=2)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        print(f"peer_torch.py: {len(results)} results -> {args.out} ({out['context']['device']})")


if __name__ == "__main__":
    main()
