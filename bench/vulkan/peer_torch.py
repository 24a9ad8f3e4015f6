#!/usr/bin/env python3
"""PyTorch peer of bench/vulkan/vulkan_bench.cpp: the same transfers the CUDA way, JSON out.

  small_update/<bytes>          pinned host tensor written, copy_ to the GPU, y += a*x on the GPU,
                                synchronize (compare: small_update/* of the Vulkan bench); also
                                p50 of each phase timed in the step (write_us, submit_us, sync_us)
  small_parts/<part>/<bytes>    the update's parts alone (compare: staged_parts/*): write (pinned
                                copy_ from a CPU tensor), h2d (copy_ + synchronize), add (+ synchronize)
  h2d/<dir>/<bytes>             a pinned copy alone, H2D or D2H: p50 of copy + synchronize, and the
                                GPU time between two CUDA events around the copy (compare: copy_engine/*,
                                and the producer's 0.85 x H2D target)
  round_trip_4KiB               pinned write 4 KiB -> copy_ -> kernel -> copy_ back -> synchronize,
                                p50/p99 (compare: round_trip_4KiB/*)
  producer/<MiB>/<threads>      pinned tensor written by the CPU (torch intra-op threads), then
                                .to('cuda', non_blocking=True) + synchronize, bytes/s (compare: producer/*)

Usage: peer_torch.py [--out FILE] [--quick] [--only small_update,small_parts,h2d,round_trip,producer]. Without CUDA it runs on the CPU (no pinning) so the
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

        phases = ([], [], [])

        def step():
            t0 = time.perf_counter()
            x_pin.copy_(src)                      # the host writes the pinned buffer
            t1 = time.perf_counter()
            x.copy_(x_pin, non_blocking=True)     # H2D
            y.add_(x, alpha=0.5)                  # the kernel reads it
            t2 = time.perf_counter()
            self.sync()
            t3 = time.perf_counter()
            for lst, a, b in zip(phases, (t0, t1, t2), (t1, t2, t3)):
                lst.append((b - a) * 1e6)

        us = self.timed(step, 200 if self.quick else 5000, 20 if self.quick else 200)
        write_us, submit_us, sync_us = (sorted(v) for v in phases)
        return {"name": f"small_update/{nbytes // KiB}KiB", "bytes": nbytes, "p50_us": percentile(us, 0.5),
                "p99_us": percentile(us, 0.99), "mean_us": statistics.fmean(us),
                "bytes_per_second": nbytes / (statistics.fmean(us) * 1e-6),
                "write_us": percentile(write_us, 0.5), "submit_us": percentile(submit_us, 0.5),
                "sync_us": percentile(sync_us, 0.5), "intra_op_threads": torch.get_num_threads()}

    def small_parts(self, nbytes):
        n = nbytes // 4
        src = torch.ones(n)
        x_pin = self.host(n)
        x_pin.copy_(src)
        x = torch.empty(n, device=self.dev)
        y = torch.zeros(n, device=self.dev)
        iters, warm = (200, 20) if self.quick else (3000, 200)
        parts = {
            "write": lambda: x_pin.copy_(src),
            "h2d": lambda: (x.copy_(x_pin, non_blocking=True), self.sync()),
            "add": lambda: (y.add_(x, alpha=0.5), self.sync()),
        }
        out = []
        for part, fn in parts.items():
            us = self.timed(fn, iters, warm)
            out.append({"name": f"small_parts/{part}/{nbytes // KiB}KiB", "bytes": nbytes,
                        "p50_us": percentile(us, 0.5), "p99_us": percentile(us, 0.99), "min_us": us[0]})
        return out

    def h2d(self, nbytes, direction):
        n = nbytes // 4
        pin = self.host(n)
        pin.fill_(1.0)
        gpu = torch.empty(n, device=self.dev)
        if direction == "h2d":
            def copy():
                gpu.copy_(pin, non_blocking=True)
        else:
            def copy():
                pin.copy_(gpu, non_blocking=True)
        reps = 20 if self.quick else max(20, min(2000, int(16 * GiB / nbytes)))
        us = self.timed(lambda: (copy(), self.sync()), reps, 3)
        ev_us = []
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            for _ in range(reps):
                start.record()
                copy()
                end.record()
                end.synchronize()
                ev_us.append(start.elapsed_time(end) * 1e3)
            ev_us.sort()
        med = percentile(us, 0.5)
        res = {"name": f"h2d/{direction}/{nbytes // MiB}MiB" if nbytes >= MiB else f"h2d/{direction}/{nbytes // KiB}KiB",
               "bytes": nbytes, "p50_us": med, "bytes_per_second": nbytes / (med * 1e-6)}
        if ev_us:
            res["gpu_p50_us"] = percentile(ev_us, 0.5)
            res["gpu_bytes_per_second"] = nbytes / (percentile(ev_us, 0.5) * 1e-6)
        return res

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
    known = ["small_update", "small_parts", "h2d", "round_trip", "producer"]
    ap.add_argument("--only", default=",".join(known), help="comma-separated parts to run (default: all)")
    ap.add_argument("--producer-mib", default="", help="producer sizes in MiB, comma-separated (default: all)")
    ap.add_argument("--producer-threads", default="", help="producer thread counts, comma-separated (default: all)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    unknown = parts - set(known)
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; known: {', '.join(known)}")
    p = Peer(args.quick)
    results = []
    if "small_update" in parts:
        for nbytes in (4 * KiB, 64 * KiB, 1 * MiB):
            results.append(p.small_update(nbytes))
    if "small_parts" in parts:
        for nbytes in (4 * KiB, 64 * KiB, 1 * MiB):
            results.extend(p.small_parts(nbytes))
    if "h2d" in parts:
        for nbytes in ([1 * MiB, 16 * MiB] if args.quick else [1 * MiB, 64 * MiB, 256 * MiB, 1 * GiB]):
            for direction in ("h2d", "d2h"):
                results.append(p.h2d(nbytes, direction))
    if "round_trip" in parts:
        results.append(p.round_trip())
    sizes = [16 * MiB] if args.quick else [4 * MiB, 16 * MiB, 32 * MiB, 64 * MiB, 256 * MiB, 1 * GiB]
    threads = [1, 2] if args.quick else [1, 4, 8, 16]
    if args.producer_mib:
        sizes = [int(m) * MiB for m in args.producer_mib.split(",")]
    if args.producer_threads:
        threads = [int(t) for t in args.producer_threads.split(",")]
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
