#!/usr/bin/env bash
# Runs on the GPU machine (after bench/vulkan/pack-device.sh here): the Vulkan behaviour tests
# (producer suites included, validation on), the producer benchmarks (crossover of direct stores
# and pipelined staging over size and writer threads, 5 repetitions) and the PyTorch peer's
# producer in the same run.   device run: bash bench/vulkan/run-producer.sh   carry: [".gl", ".vkrun"]
set -u
source bench/vulkan/device-env.sh
log=$OUT/tests.txt
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; } > "$log" 2>&1
for t in selection_tests behaviour_tests; do
  echo "==== unibuf_vulkan_$t" >> "$log"
  timeout 120 .vkrun/unibuf_vulkan_$t --gtest_color=no --gtest_filter='*Produce*:*Producer*' >> "$log" 2>&1
  echo "unibuf_vulkan_$t rc=$?" | tee -a "$log"
done
timeout 330 .vkrun/unibuf_vulkan_bench --benchmark_filter="^producer/" --benchmark_repetitions=5 \
  --benchmark_min_time=0.1 --benchmark_out="$OUT/vk.json" --benchmark_out_format=json > "$OUT/vk.txt" 2>&1
echo "bench rc=$?" | tee -a "$log"
timeout 90 python3 bench/vulkan/peer_torch.py --out "$OUT/torch.json" > "$OUT/torch.txt" 2>&1
echo "peer rc=$?" | tee -a "$log"
grep -E "PASSED|FAILED|rc=" "$log"
