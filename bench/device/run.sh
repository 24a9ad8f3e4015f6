#!/usr/bin/env bash
# The one entry point on the GPU machine (see ../shared/DEVICE.md and README "Benchmarks"):
#   here:   ./dev device-pack                      (Release build, packed into .devrun/)
#   there:  bash bench/device/run.sh [suite...]                        carry [".devrun"]
# Suites (default: all, in this order):
#   tests     every GPU test binary (validation + synchronization validation on) and unibuf-info
#   vulkan    small updates, 4 KiB round trip, wait floor; PyTorch's small_update/round_trip peer
#   opengl    uploads, frames (persistent vs glBufferSubData), latency, fence round trip
#   pool      pool/ring benchmarks on Vulkan, OpenGL and the host backend
#   producer  writer-thread fills over size x writers; PyTorch's producer peer
#   stream    upload_stream frames on OpenGL (frame/stream vs frame/buffer_sub_data)
#   copy      the copy engine per queue, the staged update's parts alone, the producer per queue;
#             PyTorch's pinned H2D/D2H copies and the update's parts (not in the default list)
#   conv2d    conv2d on Vulkan and OpenGL over the eight shapes of issue 12; PyTorch's cuDNN peer
#             (bench/conv2d/peer_torch_conv2d.py) checks unibuf's outputs and times fp32 and TF32
#   pipeline  the issue-13 pipeline (CPU writers -> conv2d -> consumer) on Vulkan and OpenGL, one
#             repetition (UNIBUF_PIPELINE_REPS); PyTorch's 2/3-stream peer (bench/async/peer_torch_pipeline.py)
#             with its PCIe bound (not in the default list)
#   demo      the main demo (unibuf-pipeline-demo) at its GPU default, 1920x1080, on Vulkan and OpenGL
#             with validation; its log and the Vulkan run's PNG images come back (not in the default list)
#   soak      the issue-15 soak (unibuf-soak) on Vulkan for UNIBUF_SOAK_SECONDS (default 1200, the
#             issue's 20 minutes; warm-up UNIBUF_SOAK_WARMUP, default 120) at UNIBUF_SOAK_SIZE
#             (default 1280x720), without validation; soak.csv and soak.txt are written straight
#             into $OUT, so a run cut short still returns every interval it printed (not in the default list)
# Results: one folder ${OUT:-./out}/ with machine.txt (device, driver, CPU, date, commit),
# summary.txt and results.tar.gz (every suite's JSON and logs), so that at most three files come back.
set -uo pipefail
root=$(pwd)
OUT=${OUT:-$root/out}
mkdir -p "$OUT"
R=$root/.devrun
if [ ! -d "$R/bin" ]; then echo "run.sh: $R/bin missing: run ./dev device-pack first and carry .devrun" >&2; exit 2; fi
# The loaders packed by pack.sh, pointed at the NVIDIA driver's Vulkan ICD and EGL vendor files.
for f in "$R"/loaders/*.deb; do dpkg -x "$f" /; done; ldconfig
for d in /usr/local/nvidia/share /usr/share /etc; do
  [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$d/vulkan/icd.d/nvidia_icd.json" ] && export VK_DRIVER_FILES=$d/vulkan/icd.d/nvidia_icd.json
  [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$d/glvnd/egl_vendor.d/10_nvidia.json" ] && \
    export __EGL_VENDOR_LIBRARY_FILENAMES=$d/glvnd/egl_vendor.d/10_nvidia.json
done
export LD_LIBRARY_PATH=$R/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VK_LAYER_PATH=$R/layer
export UNIBUF_VULKAN_FIXTURES=$root/test/fixtures/vulkan-memory
export EGL_PLATFORM=${EGL_PLATFORM:-surfaceless}
reps=${UNIBUF_BENCH_REPS:-5}
work=$(mktemp -d)
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(tests vulkan opengl pool producer stream conv2d)
summary=$OUT/summary.txt
: > "$summary"
{
  date -u +%FT%TZ
  echo "commit: $(head -1 "$R/commit.txt")"; tail -n +2 "$R/commit.txt" | sed 's/^/  uncommitted: /'
  nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv 2>&1
  echo "cpus: $(nproc)"; free -g | head -2
  echo "vulkan driver: ${VK_DRIVER_FILES:-none found}; egl vendor: ${__EGL_VENDOR_LIBRARY_FILENAMES:-none found}"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
} > "$OUT/machine.txt"

note() { echo "$*" | tee -a "$summary"; }
bench() {  # bench <suite> <binary> <timeout> <filter>
  local s=$1 b=$2 t=$3 f=$4
  timeout "$t" "$R/bin/$b" --benchmark_filter="$f" --benchmark_repetitions="$reps" --benchmark_min_time=0.1 \
    --benchmark_out="$work/$s-$b.json" --benchmark_out_format=json > "$work/$s-$b.txt" 2>&1
  note "$s: $b rc=$?"
}
peer() {  # peer <suite> <parts>
  timeout 200 python3 "$root/bench/vulkan/peer_torch.py" --only "$2" --out "$work/$1-torch.json" > "$work/$1-torch.txt" 2>&1
  note "$1: peer_torch ($2) rc=$?"
}

for s in "${suites[@]}"; do
  case "$s" in
    tests)
      "$R/bin/unibuf-info" > "$work/tests-unibuf-info.txt" 2>&1; note "tests: unibuf-info rc=$?"
      for t in unibuf_vulkan_selection_tests unibuf_vulkan_tests unibuf_vulkan_behaviour_tests \
               unibuf_opengl_tests unibuf_opengl_behaviour_tests unibuf_opengl_user_loader_tests \
               unibuf_conv2d_vulkan_tests unibuf_conv2d_opengl_tests unibuf_async_vulkan_tests unibuf_async_opengl_tests; do
        timeout 150 "$R/bin/$t" --gtest_color=no > "$work/tests-$t.txt" 2>&1
        note "tests: $t rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$work/tests-$t.txt" | tr '\n' ' ')"
      done ;;
    vulkan)   bench vulkan unibuf_vulkan_bench 200 '^(small_update|round_trip_4KiB|wait_floor)'
              peer vulkan small_update,round_trip ;;
    opengl)   bench opengl unibuf-bench-opengl 280 '^(upload|frame|latency|fence)' ;;
    pool)     bench pool unibuf_vulkan_bench 150 '^(pool|fresh|ring)'
              bench pool unibuf-bench-opengl 100 '^(pool|fresh|ring)'
              bench pool unibuf-bench-pool 100 '.' ;;
    producer) bench producer unibuf_vulkan_bench 330 '^producer/'
              peer producer producer ;;
    copy)     bench copy unibuf_vulkan_bench 240 '^(copy_engine|staged_parts|producer_queue)/'
              peer copy small_parts,h2d ;;
    stream)   bench stream unibuf-bench-opengl 200 '^frame(_dispatch)?/' ;;
    conv2d)   mkdir -p "$work/conv2d-dump"
              UNIBUF_CONV2D_DUMP=$work/conv2d-dump bench conv2d unibuf_conv2d_bench 300 '^conv2d/'
              timeout 200 python3 "$root/bench/conv2d/peer_torch_conv2d.py" --dump "$work/conv2d-dump" \
                --out "$work/conv2d-torch.json" > "$work/conv2d-torch.txt" 2>&1
              note "conv2d: peer_torch_conv2d rc=$?"; cat "$work/conv2d-torch.txt" >> "$summary"
              rm -rf "$work/conv2d-dump" ;;
    pipeline) reps=${UNIBUF_PIPELINE_REPS:-1} bench pipeline unibuf_pipeline_bench 240 '^pipeline/'
              timeout 150 python3 "$root/bench/async/peer_torch_pipeline.py" --out "$work/pipeline-torch.json" \
                > "$work/pipeline-torch.txt" 2>&1
              note "pipeline: peer_torch_pipeline rc=$?"; cat "$work/pipeline-torch.txt" >> "$summary" ;;
    demo)     for b in vulkan opengl; do
                mkdir -p "$work/demo-$b"
                timeout 200 "$R/bin/unibuf-pipeline-demo" --backend "$b" --validate --out "$work/demo-$b" \
                  > "$work/demo-$b.txt" 2>&1
                note "demo: $b rc=$? $(tr '\r' '\n' < "$work/demo-$b.txt" | grep -E 'frames|verified' | tail -2 | tr '\n' ' ')"
              done
              cp "$work/demo-vulkan/pipeline-demo.png" "$OUT/" 2>/dev/null || true ;;
    soak)     secs=${UNIBUF_SOAK_SECONDS:-1200}
              timeout $((secs + 120)) "$R/bin/unibuf-soak" --backend vulkan --seconds "$secs" \
                --warmup "${UNIBUF_SOAK_WARMUP:-120}" --interval "${UNIBUF_SOAK_INTERVAL:-10}" \
                --size "${UNIBUF_SOAK_SIZE:-1280x720}" --csv "$OUT/soak.csv" > "$OUT/soak.txt" 2>&1
              note "soak: unibuf-soak $secs s rc=$? $(tail -1 "$OUT/soak.txt")" ;;
    *) note "unknown suite '$s' (known: tests vulkan opengl pool producer stream conv2d copy pipeline demo soak)" ;;
  esac
done
cp "$OUT/machine.txt" "$work/"
tar -C "$work" -czf "$OUT/results.tar.gz" .
rm -rf "$work"
cat "$OUT/machine.txt" "$summary"
