// Pool benchmarks on the host backend, with the allocation algorithm alone and the C++ runtime's
// allocators as peers:
//   - block_allocator (the TLSF algorithm, no buffer objects): target p50 <= 100 ns per acquire+release;
//   - buffer_pool / locked_buffer_pool / batches over the host backend (full basic_buffer objects);
//   - a fresh host-backend allocation of the same size (what the pool avoids);
//   - malloc/free and std::pmr::unsynchronized_pool_resource.
// All keep 32 allocations live and replace the oldest per operation (see pool_bench.hpp).
// Run: unibuf-bench-pool --benchmark_out=pool.json --benchmark_out_format=json --benchmark_repetitions=5
#include "pool_bench.hpp"

#include <unibuf/backend/host/host_backend.hpp>

#include <cstdlib>
#include <memory_resource>

namespace {

struct host_bench_env {
    using backend = unibuf::host_backend;
    static backend& get() {
        static backend b;
        return b;
    }
};

using unibuf_bench::live_set;
using unibuf_bench::sampled;

// range(0): bytes; range(1) != 0: sizes vary in [64, bytes].
struct size_source {
    std::size_t bytes;
    bool vary;
    std::uint64_t x = 88172645463325252ull;
    std::size_t operator()() {
        if (!vary) return bytes;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        return static_cast<std::size_t>(64 + x % (bytes - 63));
    }
};

void bm_block_allocator(benchmark::State& st) {
    size_source size{static_cast<std::size_t>(st.range(0)), st.range(1) != 0};
    unibuf::block_allocator a(4 * live_set * (size.bytes + 256), 64);
    std::vector<std::uint32_t> live(live_set);
    std::size_t head = 0;
    for (auto& id : live) id = a.allocate(size(), 64).range.id;
    sampled(st, [&] {
        a.release(live[head]);
        const auto r = a.allocate(size(), 64);
        live[head] = r.range.id;
        head = (head + 1) % live_set;
        benchmark::DoNotOptimize(r.range.offset);
    });
}

void bm_malloc(benchmark::State& st) {
    size_source size{static_cast<std::size_t>(st.range(0)), st.range(1) != 0};
    std::vector<void*> live(live_set);
    std::size_t head = 0;
    for (auto& p : live) p = std::malloc(size());
    sampled(st, [&] {
        std::free(live[head]);
        live[head] = std::malloc(size());
        benchmark::DoNotOptimize(live[head]);
        head = (head + 1) % live_set;
    });
    for (void* p : live) std::free(p);  // NOLINT: the live set's last allocations
}

void bm_pmr_unsynchronized_pool(benchmark::State& st) {
    size_source size{static_cast<std::size_t>(st.range(0)), st.range(1) != 0};
    std::pmr::unsynchronized_pool_resource res;
    std::vector<std::pair<void*, std::size_t>> live(live_set);
    std::size_t head = 0;
    for (auto& p : live) {
        p.second = size();
        p.first = res.allocate(p.second, 64);
    }
    sampled(st, [&] {
        auto& p = live[head];
        res.deallocate(p.first, p.second, 64);
        p.second = size();
        p.first = res.allocate(p.second, 64);
        benchmark::DoNotOptimize(p.first);
        head = (head + 1) % live_set;
    });
}

} // namespace

BENCHMARK(bm_block_allocator)->ArgsProduct({{256, 4096, 65536}, {0, 1}});
BENCHMARK(bm_malloc)->ArgsProduct({{256, 4096, 65536}, {0, 1}});
BENCHMARK(bm_pmr_unsynchronized_pool)->ArgsProduct({{256, 4096, 65536}, {0, 1}});
UNIBUF_POOL_BENCHMARKS(host_bench_env, "host")

BENCHMARK_MAIN();
