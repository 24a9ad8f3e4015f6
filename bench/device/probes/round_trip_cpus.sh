#!/usr/bin/env bash
# On the GPU machine (after ./dev device-pack here; carry [".devrun"]):
#   bash bench/device/probes/round_trip_cpus.sh [rounds] [cpu...]     (default: 2 rounds, CPUs 2 13 14)
# The 4 KiB round trip and the submit-and-signal floor with the process pinned to each CPU in turn
# (taskset) and unpinned, PyTorch's round trip pinned the same way next to each; also which CPUs
# service the GPU's interrupts (/proc/interrupts) and the per-CPU time counters. Writes
# ${OUT:-./out}/round_trip_cpus.txt. Shows whether a slow round trip follows the CPU the thread runs on.
set -uo pipefail
R=$PWD/.devrun
for f in "$R"/loaders/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export LD_LIBRARY_PATH=$R/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
O=${OUT:-./out}; mkdir -p "$O"; L=$O/round_trip_cpus.txt
rounds=${1:-2}; shift || true
cpus=("$@"); [ ${#cpus[@]} -eq 0 ] && cpus=(2 13 14)
B=$R/bin/unibuf_vulkan_bench
{
  date -u; head -1 "$R/commit.txt"
  grep -E 'CPU|MSI' /proc/interrupts | cut -c1-220
  for i in $(grep -E 'MSI' /proc/interrupts | cut -d: -f1); do echo "irq $i affinity $(cat /proc/irq/$i/smp_affinity_list)"; done
  grep -E '^cpu[0-9]+ ' /proc/stat
} > "$L" 2>&1
unibuf() {  # label, prefix command
  $2 "$B" --benchmark_filter='^(round_trip_4KiB/(spin|block)|wait_floor/spin)/' --benchmark_min_time=0.2 \
    --benchmark_format=json > /tmp/rt.json 2>/dev/null
  echo "$1 $(python3 -c "import json;d=json.load(open('/tmp/rt.json'));print(' '.join('%s=%.1f'%(b['name'].split('/real')[0],b.get('p50_us',-1)) for b in d['benchmarks']))")" >> "$L"
}
torch() {
  $2 python3 bench/vulkan/peer_torch.py --only round_trip --out /tmp/rt-torch.json > /dev/null 2>&1
  echo "$1 torch round_trip_4KiB=$(python3 -c "import json;print(round(json.load(open('/tmp/rt-torch.json'))['results'][0]['p50_us'],1))")" >> "$L"
}
for r in $(seq "$rounds"); do
  for c in "${cpus[@]}"; do unibuf "r$r cpu$c" "taskset -c $c"; torch "r$r cpu$c" "taskset -c $c"; done
  unibuf "r$r unpinned" ""; torch "r$r unpinned" ""
done
{ echo "after:"; grep -E '^cpu[0-9]+ ' /proc/stat; } >> "$L"
cat "$L"
