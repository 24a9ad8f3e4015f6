# Sourced by the Vulkan run scripts on the GPU machine (repository root, after
# bench/vulkan/pack-device.sh): $root, $OUT (created), the carried loader, driver and validation
# layer (.gl/, .vkrun/) and the fixture tables for the selection tests.
root=$(pwd)
OUT=${OUT:-$root/out}
mkdir -p "$OUT"
source .gl/env.sh
export LD_LIBRARY_PATH=$root/.vkrun/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VK_LAYER_PATH=$root/.vkrun/layer
export UNIBUF_VULKAN_FIXTURES=$root/test/fixtures/vulkan-memory
