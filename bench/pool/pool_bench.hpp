// Pool and ring benchmarks written once over a backend environment, so that a GPU backend's
// bench file adds its comparison with one line each:
//
//   struct vulkan_bench_env { using backend = unibuf::vulkan_backend; static backend& get(); };
//   UNIBUF_POOL_BENCHMARKS(vulkan_bench_env, "vulkan");
//
// `Env` provides `using backend = ...; static backend& get();`.
//
// Every benchmark keeps a live set of `live_set` allocations and, per operation, releases the
// oldest and acquires a new one (a steady state with a non-trivial free list). Each benchmark
// iteration runs `ops_per_sample` operations and records their mean; the p50/p99 of those samples
// are reported as counters `p50_ns`/`p99_ns` (per operation = one acquire + one release), next to
// Google Benchmark's own mean. Run with --benchmark_repetitions=N for medians across runs.
#pragma once

#include <unibuf/transfer/block_allocator.hpp>
#include <unibuf/buffer/basic_buffer.hpp>
#include <unibuf/transfer/pool.hpp>
#include <unibuf/transfer/ring.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace unibuf_bench {

inline constexpr int ops_per_sample = 16;
inline constexpr std::size_t live_set = 32;

/// The live set: a fixed circular array, so the harness itself never allocates per operation.
template <class T>
class live_ring {
public:
    live_ring() : items_(live_set) {}
    /// Replaces the oldest item with `make()`'s result (the old one is destroyed first).
    template <class Make>
    T& replace(Make&& make) {
        auto& slot = items_[head_];
        head_ = (head_ + 1) % live_set;
        slot.reset();
        return slot.emplace(make());
    }

private:
    std::vector<std::optional<T>> items_;
    std::size_t head_ = 0;
};

/// Times `op` in samples of `ops_per_sample` calls; reports p50/p99 per call as counters.
template <class Op>
void sampled(benchmark::State& st, Op&& op) {
    using clock = std::chrono::steady_clock;
    std::vector<double> samples;
    samples.reserve(1 << 16);
    for (auto _ : st) {
        const auto t0 = clock::now();
        for (int i = 0; i < ops_per_sample; ++i) op();
        const auto t1 = clock::now();
        if (samples.size() < samples.capacity())
            samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / ops_per_sample);
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * ops_per_sample);
    if (samples.empty()) return;
    std::sort(samples.begin(), samples.end());
    st.counters["p50_ns"] = samples[samples.size() / 2];
    st.counters["p99_ns"] = samples[samples.size() * 99 / 100];
}

/// Pool acquire + release of one `basic_buffer` of `range(0)` bytes (`range(1)` != 0: sizes vary
/// between 64 bytes and `range(0)`), through the full buffer construction and destruction.
template <class Env, class Locking>
void bm_pool_acquire_release(benchmark::State& st) {
    using B = typename Env::backend;
    using pool_t = unibuf::basic_buffer_pool<B, Locking, unibuf::access::read_write>;
    const auto bytes = static_cast<std::size_t>(st.range(0));
    const bool vary = st.range(1) != 0;
    pool_t pool(Env::get(), unibuf::pool_config::with_bytes(4 * live_set * (bytes + 256)));
    live_ring<typename pool_t::template buffer<std::byte>> live;
    std::uint64_t x = 88172645463325252ull;
    auto size = [&] {
        if (!vary) return bytes;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        return static_cast<std::size_t>(64 + x % (bytes - 63));
    };
    auto one = [&] { return pool.template acquire<std::byte>(size()); };
    for (std::size_t i = 0; i < live_set; ++i) live.replace(one);
    sampled(st, [&] { benchmark::DoNotOptimize(live.replace(one).byte_offset()); });
    st.counters["backend_allocations"] = static_cast<double>(pool.stats().backend_allocations);
}

/// A batch: begin, two acquires, end, release (the pipeline's steady state).
template <class Env>
void bm_pool_batch(benchmark::State& st) {
    using B = typename Env::backend;
    using pool_t = unibuf::buffer_pool<B, unibuf::access::read_write>;
    const auto bytes = static_cast<std::size_t>(st.range(0));
    pool_t pool(Env::get(), unibuf::pool_config::for_batches(4, {unibuf::buffer_shape::of<std::byte>(bytes),
                                                                 unibuf::buffer_shape::of<std::byte>(bytes / 4)}));
    using buf = typename pool_t::template buffer<std::byte>;
    std::vector<std::optional<std::pair<buf, buf>>> live(3);  // 3 batches in flight, a 4th begins
    std::size_t head = 0;
    auto one = [&] {
        auto& slot = live[head];
        head = (head + 1) % live.size();
        slot.reset();
        auto b = pool.begin_batch();
        slot.emplace(b.template acquire<std::byte>(bytes), b.template acquire<std::byte>(bytes / 4));
        return slot->first.byte_offset();
    };
    for (int i = 0; i < 3; ++i) (void)one();
    sampled(st, [&] { benchmark::DoNotOptimize(one()); });
}

/// A fresh backend allocation of the same size per operation (what the pool avoids).
template <class Env>
void bm_fresh_backend_allocation(benchmark::State& st) {
    using B = typename Env::backend;
    using buf = unibuf::basic_buffer<std::byte, B, unibuf::access::read_write>;
    const auto bytes = static_cast<std::size_t>(st.range(0));
    live_ring<buf> live;
    auto one = [&] { return buf(Env::get(), bytes); };
    for (std::size_t i = 0; i < live_set; ++i) live.replace(one);
    sampled(st, [&] { benchmark::DoNotOptimize(live.replace(one).byte_offset()); });
}

/// One item through a ring of 3 pool-backed slots on one thread: claim, publish, read, release.
template <class Env>
void bm_ring_cycle(benchmark::State& st) {
    using B = typename Env::backend;
    using pool_t = unibuf::buffer_pool<B, unibuf::access::read_write>;
    pool_t pool(Env::get(), unibuf::pool_config::with_bytes(64 << 10));
    using buf = typename pool_t::template buffer<float>;
    unibuf::ring<buf, 3> r(Env::get(), [&](std::size_t) { return pool.template acquire<float>(256); });
    sampled(st, [&] {
        auto w = r.claim();
        w.publish();
        auto rd = r.read();
        benchmark::DoNotOptimize(rd.sequence());
    });
}

/// Registers the backend-generic benchmarks for `Env` under `name` (sizes 256 B, 4 KiB, 64 KiB;
/// second argument 1: sizes vary).
template <class Env>
void register_pool_benchmarks(const std::string& name) {
    auto sizes = [](benchmark::internal::Benchmark* b, std::vector<std::int64_t> bytes) {
        for (auto n : bytes)
            for (std::int64_t vary : {0, 1}) b->Args({n, vary});
    };
    sizes(benchmark::RegisterBenchmark(("pool_acquire_release<" + name + ">").c_str(),
                                       bm_pool_acquire_release<Env, unibuf::pool_locking::unlocked>),
          {256, 4096, 65536});
    sizes(benchmark::RegisterBenchmark(("locked_pool_acquire_release<" + name + ">").c_str(),
                                       bm_pool_acquire_release<Env, unibuf::pool_locking::mutex>),
          {4096});
    benchmark::RegisterBenchmark(("pool_batch<" + name + ">").c_str(), bm_pool_batch<Env>)->Arg(4096);
    benchmark::RegisterBenchmark(("fresh_backend_allocation<" + name + ">").c_str(), bm_fresh_backend_allocation<Env>)
        ->Arg(256)
        ->Arg(4096)
        ->Arg(65536);
    benchmark::RegisterBenchmark(("ring_cycle<" + name + ">").c_str(), bm_ring_cycle<Env>);
}

} // namespace unibuf_bench

/// Registers the pool benchmarks for environment `Env` at start-up, e.g.
/// `UNIBUF_POOL_BENCHMARKS(vulkan_bench_env, "vulkan");`
#define UNIBUF_POOL_BENCHMARKS(Env, name)                                                                 \
    namespace {                                                                                          \
    [[maybe_unused]] const bool unibuf_pool_benchmarks_registered_##Env =                                \
        (unibuf_bench::register_pool_benchmarks<Env>(name), true);                                       \
    }
