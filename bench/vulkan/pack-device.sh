#!/usr/bin/env bash
# Packs what the GPU machine needs into .vkrun/ (ignored by git, carried by the device run):
# stripped Release binaries of the Vulkan tests/bench/unibuf-info, libbenchmark, and the
# validation layer with a manifest that points at it (the GPU machine has no Vulkan SDK).
# Usage: bench/vulkan/pack-device.sh [build-dir]   (default build-vk-release)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
build=${1:-build-vk-release}
grep -qx '/.vkrun/' .git/info/exclude 2>/dev/null || echo '/.vkrun/' >> .git/info/exclude
rm -rf .vkrun && mkdir -p .vkrun/lib .vkrun/layer
for b in test/vulkan/unibuf_vulkan_tests test/vulkan/unibuf_vulkan_behaviour_tests \
         test/vulkan/unibuf_vulkan_selection_tests bench/vulkan/unibuf_vulkan_bench example/vulkan/unibuf-info; do
  cp "$build/$b" .vkrun/ && strip ".vkrun/$(basename "$b")"
done
cp -L /usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian .vkrun/lib/
layer=/usr/lib/x86_64-linux-gnu/libVkLayer_khronos_validation.so
cp "$layer" .vkrun/layer/ && strip .vkrun/layer/libVkLayer_khronos_validation.so
sed 's#"library_path": "[^"]*"#"library_path": "./libVkLayer_khronos_validation.so"#' \
  /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json > .vkrun/layer/VkLayer_khronos_validation.json
du -sh .vkrun
