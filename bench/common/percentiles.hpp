// Latency percentiles of per-iteration samples, reported as Google Benchmark counters.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace unibuf_bench {

/// Sorts `us` (microseconds, one per iteration) and sets the counters p50_us, p99_us and min_us.
inline void set_percentiles(benchmark::State& state, std::vector<double>& us) {
    if (us.empty()) return;
    std::sort(us.begin(), us.end());
    auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))]; };
    state.counters["p50_us"] = at(0.50);
    state.counters["p99_us"] = at(0.99);
    state.counters["min_us"] = us.front();
}

} // namespace unibuf_bench
