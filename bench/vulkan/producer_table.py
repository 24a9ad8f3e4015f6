#!/usr/bin/env python3
"""Producer table of one device run: medians of unibuf_vulkan_bench's producer/* against the
PyTorch peer's producer/* of the same run. Usage: producer_table.py vk.json torch.json"""
import json
import re
import sys

vk = json.load(open(sys.argv[1]))
peer = {r["name"]: r["bytes_per_second"] / 1e9 for r in json.load(open(sys.argv[2]))["results"]
        if r["name"].startswith("producer")}
med, extra = {}, {}
for b in vk["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    m = re.match(r"producer/(\w+)/(\d+)MiB/(\d+)threads", b["run_name"])
    if m:
        med.setdefault((int(m[2]), int(m[3])), {})[m[1]] = (b["bytes_per_second"] / 1e9, b.get("direct_chunks", 0))
    elif b["run_name"].startswith("producer_chunk"):
        extra[b["run_name"]] = b["bytes_per_second"] / 1e9
paths = ["direct", "staged", "device", "host", "automatic"]
print("| size | threads | PyTorch | " + " | ".join(paths) + " | automatic / PyTorch |")
print("|---|---|---|" + "---|" * len(paths) + "---|")
for (size, threads) in sorted(med):
    r = med[(size, threads)]
    p = peer.get(f"producer/{size}MiB/{threads}threads", float("nan"))
    cells = []
    for k in paths:
        v = r.get(k)
        cells.append("" if v is None else f"{v[0]:.1f}" + (f" ({v[1]:.0f} direct)" if k == "staged" and v[1] else ""))
    auto = r.get("automatic", (float("nan"), 0))[0]
    print(f"| {size} MiB | {threads} | {p:.1f} | " + " | ".join(cells) + f" | **{auto / p:.2f}x** |")
for k, v in sorted(extra.items()):
    print(f"- {k}: {v:.1f} GB/s")
