#!/usr/bin/env bash
# Packs the Release binaries of the pool/ring checks and benchmarks (all backends) into .devrun/
# (ignored by git) for one device run of bench/run-h100.sh. Usage: bench/pack-h100.sh [build-dir]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
build=${1:-build-release}
grep -qx '/.devrun/' .git/info/exclude 2>/dev/null || echo '/.devrun/' >> .git/info/exclude
rm -rf .devrun && mkdir -p .devrun/lib .devrun/layer
for b in test/vulkan/unibuf_vulkan_behaviour_tests test/opengl/unibuf_opengl_behaviour_tests \
         bench/vulkan/unibuf_vulkan_bench bench/opengl/unibuf-bench-opengl bench/pool/unibuf-bench-pool; do
  cp "$build/$b" .devrun/ && strip ".devrun/$(basename "$b")"
done
cp -L /usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian .devrun/lib/
cp /usr/lib/x86_64-linux-gnu/libVkLayer_khronos_validation.so .devrun/layer/ && strip .devrun/layer/*.so
sed 's#"library_path": "[^"]*"#"library_path": "./libVkLayer_khronos_validation.so"#' \
  /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json > .devrun/layer/VkLayer_khronos_validation.json
du -sh .devrun
