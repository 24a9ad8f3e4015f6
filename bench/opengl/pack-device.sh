#!/usr/bin/env bash
# Packs the Release OpenGL tests and benchmark (stripped) into .glrun/ (ignored by git) for one device
# run of bench/opengl/run-device.sh. Usage: bench/opengl/pack-device.sh [build-dir]
#   build first: cmake --preset release && cmake --build --preset release \
#                  --target unibuf-bench-opengl unibuf_opengl_tests unibuf_opengl_behaviour_tests
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
build=${1:-build-release}
grep -qx '/.glrun/' .git/info/exclude 2>/dev/null || echo '/.glrun/' >> .git/info/exclude
rm -rf .glrun && mkdir -p .glrun
for b in test/opengl/unibuf_opengl_tests test/opengl/unibuf_opengl_behaviour_tests bench/opengl/unibuf-bench-opengl; do
  cp "$build/$b" .glrun/ && strip ".glrun/$(basename "$b")"
done
cp -L /usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian .glrun/
cp bench/opengl/run-device.sh .glrun/
git rev-parse HEAD > .glrun/commit.txt
git status --short >> .glrun/commit.txt
du -sh .glrun
