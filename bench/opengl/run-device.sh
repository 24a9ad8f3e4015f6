#!/usr/bin/env bash
# The OpenGL run on the GPU machine, from the repository root, after bench/opengl/pack-device.sh:
# GL tests first, then the benchmark (5 repetitions); results under $OUT. Carry [".gl", ".glrun"].
set -u
source .gl/env.sh
export LD_LIBRARY_PATH=$PWD/.glrun${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
R=.glrun
{ date -u; cat $R/commit.txt; nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current,memory.total --format=csv; nproc; } > "$OUT/machine.txt" 2>&1
{
  for t in unibuf_opengl_tests unibuf_opengl_behaviour_tests; do
    echo "== $t"; timeout 90 $R/$t --gtest_color=no; echo "rc=$?"
  done
} > "$OUT/tests.txt" 2>&1
# The pool benchmarks (issue 5) are left out: this run is about uploads (issue 4).
timeout 270 $R/unibuf-bench-opengl --benchmark_filter='^(upload|frame|latency|fence)' \
  --benchmark_repetitions=5 --benchmark_min_time=0.1 \
  --benchmark_out="$OUT/gl.json" --benchmark_out_format=json > "$OUT/bench.txt" 2>&1
echo "bench rc=$?" >> "$OUT/bench.txt"
cat "$OUT/machine.txt"; grep -h "^==\|rc=\|PASSED\|FAILED\|SKIPPED\|context:" "$OUT/tests.txt"; grep -E "median" "$OUT/bench.txt" | grep -E "^frame" | cut -c1-150; tail -2 "$OUT/bench.txt"
