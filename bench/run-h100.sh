#!/usr/bin/env bash
# Runs on the GPU machine from the repository root (after bench/pack-h100.sh here):
# the pool/ring behaviour suites on Vulkan and OpenGL, the pool benchmarks on every backend
# (pool vs fresh backend allocation), the Vulkan small-update/producer benchmarks repeated, and
# the PyTorch peer, all in one run.   device run: bash bench/run-h100.sh   carry: [".gl", ".devrun"]
set -u
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
source .gl/env.sh
export LD_LIBRARY_PATH=$PWD/.devrun/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VK_LAYER_PATH=$PWD/.devrun/layer
R=.devrun
log=$OUT/tests.txt
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; } > "$log" 2>&1
for t in unibuf_vulkan_behaviour_tests unibuf_opengl_behaviour_tests; do
  echo "==== $t (PoolRing suites)" >> "$log"
  timeout 120 $R/$t --gtest_color=no --gtest_filter='*PoolRing*' >> "$log" 2>&1; echo "$t rc=$?" | tee -a "$log"
done
timeout 150 $R/unibuf_vulkan_bench --benchmark_filter='small_update|pool|fresh|ring|producer/(automatic|device_mapped)/64MiB' \
  --benchmark_repetitions=5 --benchmark_min_time=0.1 --benchmark_out="$OUT/vk.json" --benchmark_out_format=json > "$OUT/vk.txt" 2>&1
echo "vk bench rc=$?" | tee -a "$log"
timeout 60 $R/unibuf-bench-opengl --benchmark_filter='pool|fresh|ring' --benchmark_repetitions=3 \
  --benchmark_out="$OUT/gl.json" --benchmark_out_format=json > "$OUT/gl.txt" 2>&1
echo "gl bench rc=$?" | tee -a "$log"
timeout 60 $R/unibuf-bench-pool --benchmark_repetitions=3 --benchmark_out="$OUT/host.json" --benchmark_out_format=json > /dev/null 2>&1
echo "pool bench rc=$?" | tee -a "$log"
timeout 120 python3 bench/vulkan/peer_torch.py --out "$OUT/torch.json" > "$OUT/torch.txt" 2>&1
echo "peer rc=$?" | tee -a "$log"
grep -E "PASSED|FAILED|rc=" "$log"
