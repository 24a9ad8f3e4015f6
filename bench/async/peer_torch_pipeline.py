#!/usr/bin/env python3
"""PyTorch peer of bench/async/pipeline_bench.cpp (issue 13, item 6): the same streaming pipeline the
CUDA way, in one process, JSON out.

Workloads (as the unibuf side): c3k16 (1080p, C3 -> K16, 3x3, padding 1, bias; output-bound) and
c16k3 (1080p, C16 -> K3; input-bound), fp32 with TF32 off (cudnn.allow_tf32 = False), cudnn.benchmark on.
Weights 0.01, bias 0.5 (as the unibuf side).

Each variant runs the frames round-robin over S CUDA streams (S = 2 and 3); each stream has its own
pinned input, device input, pinned output and event. Two threads of one process (torch's ops release
the GIL, so they overlap as the unibuf side's writers and consumer do):
  the producer, for frame k on stream s = k mod S: waits until the consumer has read frame k - S
     (that stream's buffers are free), writes frame k into the pinned input -- a moving ramp
     arange(7k, 7k + n) written by torch's CPU kernel, one write-only pass over torch's intra-op
     threads (the unibuf writers write ((i + 7k) mod 251) / 251, also one write-only pass) -- then,
     on the stream: non_blocking H2D, cuDNN conv2d, non_blocking D2H into the pinned output, event;
  the consumer, frames in order: waits for the frame's event, reads its result on the host (a sum
     over every float of the pinned output: torch's CPU reduction), frees the stream's buffers.

Per variant (name pipeline/<workload>/<S>streams):
  fps, in_GBps / out_GBps (bytes written by the CPU / read back, per second of the timed loop),
  p50_latency_ms / p99_latency_ms (frame written -> its result ready for the consumer: the event wait
  returned, i.e. the consumer starts reading; as the unibuf side's p50), cpu_ms_per_frame
  (time.process_time over the timed loop / frames: every thread of the process, including the CUDA
  driver's wait in event.synchronize), write_GBps (the CPU write rate: bytes written / seconds spent
  in the writes), and the PCIe bound measured in the same
  call on the variant's own buffers: h2d_GBps (a pinned H2D copy of one input frame) and d2h_GBps
  (a pinned D2H copy of one output frame), timed with CUDA events, median of --bound-reps;
  bound_fps = min(h2d_GBps / input bytes, d2h_GBps / output bytes) (the two directions overlap),
  bound_by says which, fraction_of_bound = fps / bound_fps. Before timing, the first frame's result
  read on the host is compared with conv2d recomputed from its input (check_rel_err).

Usage: peer_torch_pipeline.py [--out FILE] [--frames N] [--quick] [--workloads c3k16,c16k3]
                              [--streams 2,3] [--size HxW]
Without CUDA it runs on the CPU (no pinning, no streams, copies synchronous, no PCIe bound) with a
small frame (36x64 unless --size), so the script can be checked wherever PyTorch is installed; the
JSON says which device ran. Exit status 2 when PyTorch is missing or an argument is bad, 1 when a
result does not match its recomputation.
"""
import argparse
import contextlib
import json
import platform
import queue
import statistics
import sys
import threading
import time

WORKLOADS = {"c3k16": (3, 16), "c16k3": (16, 3)}
FULL_SIZE = (1080, 1920)
SMALL_SIZE = (36, 64)
WEIGHT, BIAS = 0.01, 0.5
CHECK_TOLERANCE = 1e-4
STALL_SECONDS = 60  # a frame not read within this is an error, never a hang


def percentile(sorted_values, q):
    """The q-quantile (0..1) of an ascending list (nearest rank, as the other peers)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def parse_size(text):
    """'HxW' -> (h, w), both positive."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"size '{text}' is not HxW (e.g. 1080x1920)")
    h, w = int(parts[0]), int(parts[1])
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size '{text}' has a zero side")
    return h, w


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not >= 1")
    return v


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="JSON file ('-': stdout instead of the table)")
    ap.add_argument("--frames", type=positive_int, default=None, help="timed frames per variant (default 120; --quick: 6)")
    ap.add_argument("--warmup", type=positive_int, default=None,
                    help="untimed frames per variant before the timed ones (default 3 x streams; --quick: streams)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 36x64 frames, few frames and copy repetitions")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default: all): " + ", ".join(WORKLOADS))
    ap.add_argument("--streams", default="2,3", help="comma-separated stream counts (default 2,3)")
    ap.add_argument("--size", type=parse_size, default=None,
                    help="frame HxW (default 1080x1920 on CUDA; 36x64 with --quick or without CUDA)")
    ap.add_argument("--bound-reps", type=positive_int, default=None, help="pinned copies timed for the PCIe bound (default 10; --quick: 3)")
    ap.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args(argv)
    wl = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in wl if w not in WORKLOADS]
    if unknown or not wl:
        ap.error(f"unknown workload(s) {unknown or args.workloads!r}; known: {', '.join(WORKLOADS)}")
    args.workloads = wl
    try:
        args.streams = [positive_int(s) for s in args.streams.split(",") if s]
    except argparse.ArgumentTypeError as e:
        ap.error(f"--streams: {e}")
    if not args.streams:
        ap.error("--streams names no stream count")
    if args.frames is None:
        args.frames = 6 if args.quick else 120
    if args.bound_reps is None:
        args.bound_reps = 3 if args.quick else 10
    return args


def variant_name(workload, streams):
    return f"pipeline/{workload}/{streams}streams"


def pcie_bound(bytes_in, bytes_out, h2d_bps, d2h_bps):
    """(bound fps, which direction bounds it) from the copy rates (bytes/s); H2D and D2H overlap."""
    fps_in = h2d_bps / bytes_in if h2d_bps else None
    fps_out = d2h_bps / bytes_out if d2h_bps else None
    if fps_in is None or fps_out is None:
        return None, None
    return (fps_in, "h2d") if fps_in <= fps_out else (fps_out, "d2h")


def summarize(workload, streams, c, k, h, w, frames, seconds, cpu_seconds, write_seconds, latencies_s,
              h2d_bps, d2h_bps, check_rel_err, checksum):
    """One result dict from the raw measurements of a variant."""
    bytes_in, bytes_out = 4 * c * h * w, 4 * k * h * w
    lat = sorted(latencies_s)
    fps = frames / seconds if seconds > 0 else 0.0
    bound_fps, bound_by = pcie_bound(bytes_in, bytes_out, h2d_bps, d2h_bps)
    return {
        "name": variant_name(workload, streams), "workload": workload, "streams": streams,
        "c": c, "k": k, "height": h, "width": w, "frames": frames,
        "bytes_in_per_frame": bytes_in, "bytes_out_per_frame": bytes_out, "seconds": seconds,
        "fps": fps,
        "in_GBps": bytes_in * frames / seconds * 1e-9 if seconds > 0 else 0.0,
        "out_GBps": bytes_out * frames / seconds * 1e-9 if seconds > 0 else 0.0,
        "p50_latency_ms": percentile(lat, 0.5) * 1e3, "p99_latency_ms": percentile(lat, 0.99) * 1e3,
        "cpu_ms_per_frame": cpu_seconds / frames * 1e3 if frames else 0.0,
        "write_GBps": bytes_in * frames / write_seconds * 1e-9 if write_seconds > 0 else 0.0,
        "write_ms_per_frame": write_seconds / frames * 1e3 if frames else 0.0,
        "h2d_GBps": h2d_bps * 1e-9 if h2d_bps else None,
        "d2h_GBps": d2h_bps * 1e-9 if d2h_bps else None,
        "bound_fps": bound_fps, "bound_by": bound_by,
        "fraction_of_bound": fps / bound_fps if bound_fps else None,
        "check_rel_err": check_rel_err, "checksum": checksum,
    }


def table(results):
    """The human-readable table of the results."""
    def f(v, spec):
        return format(v, spec) if v is not None else "-"
    head = (f"{'variant':<28} {'fps':>8} {'in GB/s':>8} {'out GB/s':>8} {'p50 ms':>8} {'cpu ms/f':>8} "
            f"{'write GB/s':>10} {'H2D GB/s':>8} {'D2H GB/s':>8} {'bound fps':>10} {'of bound':>8}")
    lines = [head, "-" * len(head)]
    for r in results:
        bound = f"{f(r['bound_fps'], '.1f')} {r['bound_by'] or ''}".strip()
        lines.append(f"{r['name']:<28} {r['fps']:>8.1f} {r['in_GBps']:>8.2f} {r['out_GBps']:>8.2f} "
                     f"{r['p50_latency_ms']:>8.2f} {r['cpu_ms_per_frame']:>8.2f} {r['write_GBps']:>10.2f} "
                     f"{f(r['h2d_GBps'], '.2f'):>8} {f(r['d2h_GBps'], '.2f'):>8} {bound:>10} "
                     f"{f(r['fraction_of_bound'], '.3f'):>8}")
    return "\n".join(lines)


class Slot:
    """One stream's buffers: pinned input (flat, written by the CPU), device input, pinned output."""

    def __init__(self, torch, dev, cuda, c, k, h, w):
        self.shape_in = (1, c, h, w)
        self.pin_in = torch.empty(c * h * w, dtype=torch.float32, pin_memory=cuda)
        self.dev_in = torch.empty(self.shape_in, dtype=torch.float32, device=dev)
        self.pin_out = torch.empty((1, k, h, w), dtype=torch.float32, pin_memory=cuda)
        self.stream = torch.cuda.Stream() if cuda else None
        self.event = torch.cuda.Event() if cuda else None
        self.frame = None       # the frame in flight on this slot, None when none
        self.written = 0.0      # perf_counter when that frame's write finished


class PipelinePeer:
    def __init__(self, torch, args):
        self.torch = torch
        self.F = torch.nn.functional
        self.cuda = torch.cuda.is_available()
        self.dev = torch.device("cuda" if self.cuda else "cpu")
        self.args = args
        if args.size is not None:
            self.size = args.size
        else:
            self.size = SMALL_SIZE if (args.quick or not self.cuda) else FULL_SIZE
        self.warmup = args.warmup

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def stream_ctx(self, slot):
        return self.torch.cuda.stream(slot.stream) if self.cuda else contextlib.nullcontext()

    def copy_rate(self, dst, src, reps):
        """Bytes/s of dst.copy_(src, non_blocking=True) on a side stream, CUDA events, median of reps."""
        t = self.torch
        s = t.cuda.Stream()
        s.wait_stream(t.cuda.current_stream())
        secs = []
        with t.cuda.stream(s):
            for i in range(reps + 1):  # the first copy is not timed
                start, end = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
                start.record(s)
                dst.copy_(src, non_blocking=True)
                end.record(s)
                end.synchronize()
                if i:
                    secs.append(start.elapsed_time(end) * 1e-3)
        return dst.numel() * dst.element_size() / statistics.median(secs)

    def run_variant(self, workload, streams):
        t, F = self.torch, self.F
        c, k = WORKLOADS[workload]
        h, w = self.size
        weight = t.full((k, c, 3, 3), WEIGHT, dtype=t.float32, device=self.dev)
        bias = t.full((k,), BIAS, dtype=t.float32, device=self.dev)
        slots = [Slot(t, self.dev, self.cuda, c, k, h, w) for _ in range(streams)]
        for s in slots:  # touch every page once before anything is timed
            s.pin_in.zero_()
            s.pin_out.zero_()
        self.sync()

        h2d_bps = d2h_bps = None
        if self.cuda:
            h2d_bps = self.copy_rate(slots[0].dev_in.view(-1), slots[0].pin_in, self.args.bound_reps)
            probe_out = t.empty(slots[0].pin_out.shape, dtype=t.float32, device=self.dev)
            probe_out.zero_()
            d2h_bps = self.copy_rate(slots[0].pin_out, probe_out, self.args.bound_reps)
            del probe_out
            self.sync()

        n = c * h * w
        state = {"write_s": 0.0, "lat": [], "checksum": 0.0}

        def produce(slot, frame):
            t0 = time.perf_counter()
            shift = 7 * frame
            t.arange(shift, shift + n, dtype=t.float32, out=slot.pin_in)  # the CPU writes the pinned input (moving ramp)
            t1 = time.perf_counter()
            state["write_s"] += t1 - t0
            slot.written = t1
            slot.frame = frame
            with self.stream_ctx(slot):
                slot.dev_in.copy_(slot.pin_in.view(slot.shape_in), non_blocking=True)
                out = F.conv2d(slot.dev_in, weight, bias, padding=1)
                slot.pin_out.copy_(out, non_blocking=True)
                if self.cuda:
                    slot.event.record(slot.stream)

        def consume(slot):
            if self.cuda:
                slot.event.synchronize()
            ready = time.perf_counter()
            state["lat"].append(ready - slot.written)
            state["checksum"] = slot.pin_out.sum().item()  # the consumer reads every float of the result
            slot.frame = None

        def run(first, count):
            """Frames first .. first+count-1: this thread writes and submits them, a consumer thread
            reads the results in frame order; a slot is written again only after its result was read."""
            free = [threading.Semaphore(1) for _ in slots]
            submitted = queue.Queue()
            failed = []

            def consumer():
                try:
                    for expected in range(first, first + count):
                        i = submitted.get()
                        if i is None:
                            return  # the producer stopped early (it reports why)
                        if slots[i].frame != expected:
                            raise RuntimeError(f"frame {slots[i].frame} came to the consumer, {expected} expected")
                        consume(slots[i])
                        free[i].release()
                except BaseException as e:  # handed to the producer, which raises it
                    failed.append(e)

            th = threading.Thread(target=consumer, name="consumer", daemon=True)
            th.start()
            try:
                for frame in range(first, first + count):
                    i = frame % streams
                    deadline = time.monotonic() + STALL_SECONDS
                    while not free[i].acquire(timeout=0.5):  # frame - streams read?
                        if failed:
                            raise failed[0]
                        if time.monotonic() > deadline or not th.is_alive():
                            raise RuntimeError(f"frame {frame}: stream {i}'s previous frame was not read within "
                                               f"{STALL_SECONDS} s (consumer alive: {th.is_alive()})")
                    produce(slots[i], frame)
                    submitted.put(i)
            except BaseException:
                submitted.put(None)
                th.join(STALL_SECONDS)
                raise
            th.join(STALL_SECONDS)
            if failed:
                raise failed[0]
            if th.is_alive():
                raise RuntimeError(f"the consumer did not read the last frames within {STALL_SECONDS} s")

        # Frame 0 alone: cuDNN picks its algorithm; its result is checked against a recomputation.
        warmup = self.warmup if self.warmup is not None else (streams if self.args.quick else 3 * streams)
        with t.inference_mode():
            slot0 = slots[0]
            run(0, 1)
            ref = F.conv2d(slot0.pin_in.view(slot0.shape_in).to(self.dev), weight, bias, padding=1).cpu()
            scale = ref.abs().max().item()
            err = (slot0.pin_out - ref).abs().max().item() / (scale if scale > 0 else 1.0)
            if not err <= CHECK_TOLERANCE:
                raise RuntimeError(f"{variant_name(workload, streams)}: the result read on the host differs from "
                                   f"conv2d recomputed from its input: max |diff| / max |ref| = {err:.3g} "
                                   f"(tolerance {CHECK_TOLERANCE})")
            run(1, warmup)  # warm-up: the allocator caches each stream's output, the threads spin up
            self.sync()
            state["write_s"], state["lat"] = 0.0, []

            frames = self.args.frames
            c0, w0 = time.process_time(), time.perf_counter()
            run(1 + warmup, frames)
            seconds = time.perf_counter() - w0
            cpu = time.process_time() - c0
        self.sync()
        return summarize(workload, streams, c, k, h, w, frames, seconds, cpu, state["write_s"], state["lat"],
                         h2d_bps, d2h_bps, err, state["checksum"])


def load_torch():
    try:
        import torch
    except ImportError as e:  # the peer needs PyTorch; say so plainly
        print(f"peer_torch_pipeline.py: PyTorch is not installed ({e}); this peer runs where it is "
              "(the GPU machine has it)", file=sys.stderr)
        sys.exit(2)
    return torch


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch = load_torch()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    peer = PipelinePeer(torch, args)
    results = []
    try:
        for wl in args.workloads:
            for s in args.streams:
                results.append(peer.run_variant(wl, s))
    except RuntimeError as e:
        print(f"peer_torch_pipeline.py: {e}", file=sys.stderr)
        return 1
    out = {
        "context": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
            "cuda": torch.version.cuda if peer.cuda else None,
            "cudnn": torch.backends.cudnn.version() if peer.cuda else None,
            "device": torch.cuda.get_device_name(0) if peer.cuda else f"cpu ({platform.processor() or platform.machine()})",
            "pinned": peer.cuda,
            "quick": args.quick,
            "allow_tf32": False,
            "intra_op_threads": torch.get_num_threads(),
            "height": peer.size[0], "width": peer.size[1],
            "frames": args.frames,
        },
        "results": results,
    }
    text = json.dumps(out, indent=2)
    if args.out == "-":
        print(text)
        return 0
    print(f"peer_torch_pipeline.py: {out['context']['device']}, torch {out['context']['torch']}, "
          f"{peer.size[0]}x{peer.size[1]}, {args.frames} frames per variant, "
          f"{out['context']['intra_op_threads']} intra-op threads")
    print(table(results))
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        print(f"peer_torch_pipeline.py: {len(results)} results -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
