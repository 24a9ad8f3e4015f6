#!/usr/bin/env bash
# Packs one Release tree of everything the GPU machine runs into .devrun/ (ignored by git):
# stripped test binaries, benchmarks and unibuf-info, libbenchmark, the Vulkan validation layer
# with a manifest that points at it, the fixture tables, the peer scripts and the commit.
# Called by `./dev device-pack`; then on the GPU machine: `bash bench/device/run.sh [suite...]`.
# Also the Vulkan/EGL/GL loader packages (.devrun/loaders), which the GPU machine lacks.
# Usage: bench/device/pack.sh [build-dir]   (default build-release, made by the release preset)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
build=${1:-build-release}
exclude=$(git rev-parse --git-path info/exclude)  # also right in a git worktree, where .git is a file
mkdir -p "$(dirname "$exclude")"
grep -qx '/.devrun/' "$exclude" 2>/dev/null || echo '/.devrun/' >> "$exclude"
rm -rf .devrun && mkdir -p .devrun/bin .devrun/lib .devrun/layer
missing=()
for b in test/vulkan/unibuf_vulkan_tests test/vulkan/unibuf_vulkan_behaviour_tests \
         test/vulkan/unibuf_vulkan_selection_tests test/opengl/unibuf_opengl_tests \
         test/opengl/unibuf_opengl_behaviour_tests test/opengl/unibuf_opengl_user_loader_tests \
         bench/vulkan/unibuf_vulkan_bench bench/opengl/unibuf-bench-opengl bench/pool/unibuf-bench-pool \
         example/vulkan/unibuf-info test/conv2d/unibuf_conv2d_vulkan_tests test/conv2d/unibuf_conv2d_opengl_tests \
         bench/conv2d/unibuf_conv2d_bench bench/async/unibuf_pipeline_bench \
         test/async/unibuf_async_vulkan_tests test/async/unibuf_async_opengl_tests example/unibuf-pipeline-demo \
         example/unibuf-soak; do
  if [ -x "$build/$b" ]; then
    cp "$build/$b" .devrun/bin/ && strip ".devrun/bin/$(basename "$b")"
  else
    missing+=("$b")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "pack.sh: not built in $build: ${missing[*]}" >&2
  exit 1
fi
cp -L /usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian .devrun/lib/
cp /usr/lib/x86_64-linux-gnu/libVkLayer_khronos_validation.so .devrun/layer/
strip .devrun/layer/libVkLayer_khronos_validation.so
sed 's#"library_path": "[^"]*"#"library_path": "./libVkLayer_khronos_validation.so"#' \
  /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json > .devrun/layer/VkLayer_khronos_validation.json
# The GPU machine has the NVIDIA driver but no Vulkan/EGL/GL loaders: take Debian's along.
mkdir -p .devrun/loaders /tmp/unibuf-amd64-lists/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/unibuf-amd64-lists'
[ -n "$(ls /tmp/unibuf-amd64-lists/*Packages* 2>/dev/null)" ] || apt-get $o update > /dev/null
(cd .devrun/loaders && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>&1 \
  | grep -v 'Download is performed unsandboxed' || true)
{ git rev-parse HEAD; git status --short --untracked-files=no; } > .devrun/commit.txt
du -sh .devrun
echo "on the GPU machine, carry [\".devrun\"] and run: bash bench/device/run.sh [suite...]"
