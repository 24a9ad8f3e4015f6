#!/usr/bin/env bash
# Runs on the GPU machine (see ../shared/DEVICE.md), from the repository root, after
# bench/vulkan/pack-device.sh here: the Vulkan tests (validation + sync validation, carried
# layer), unibuf-info, the benchmarks into $OUT/vk.json and the PyTorch peer into $OUT/torch.json.
# Six files come back (the device tool returns at most eight).
#   device run: bash bench/vulkan/run-device.sh      carry: [".gl", ".vkrun"]
set -u
source bench/vulkan/device-env.sh
log=$OUT/tests.txt
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv 2>&1
  echo "cpus: $(nproc)"; free -g | head -2
} > "$log" 2>&1
.vkrun/unibuf-info > "$OUT/info.txt" 2>&1; echo "unibuf-info rc=$?" >> "$OUT/info.txt"
for t in selection_tests tests behaviour_tests; do
  echo "==== unibuf_vulkan_$t" >> "$log"
  timeout 150 .vkrun/unibuf_vulkan_$t --gtest_color=no >> "$log" 2>&1
  echo "unibuf_vulkan_$t rc=$?" | tee -a "$log"
done
timeout 220 .vkrun/unibuf_vulkan_bench --benchmark_min_time=0.2 --benchmark_out="$OUT/vk.json" \
  --benchmark_out_format=json > "$OUT/vk.txt" 2>&1
echo "bench rc=$?" | tee -a "$log"
timeout 150 python3 bench/vulkan/peer_torch.py --out "$OUT/torch.json" > "$OUT/torch.txt" 2>&1
echo "peer rc=$?" | tee -a "$log"
grep -E "PASSED|FAILED|rc=" "$log"
