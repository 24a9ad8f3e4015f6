// Vulkan backend benchmarks (Google Benchmark, JSON with --benchmark_out=FILE --benchmark_out_format=json).
//
// small_update/<path>/<bytes>     host writes a buffer that a dispatch then reads, until the dispatch's fence:
//                                 zero_copy (write-combined device_mapped memory), staged_2submits (staging
//                                 copy submit, then dispatch submit) and staged_1submit (copy + dispatch in
//                                 one submission)
// round_trip_4KiB/<wait>          basic_buffer write 4 KiB -> dispatch -> read 4 KiB, p50/p99 per wait strategy
// wait_floor/<wait>               a 4-byte device copy and its wait: the submit + wait latency alone
// producer/<path>/<MiB>/<threads> unibuf::producer's writer threads fill a buffer until the device can
//                                 use it (bytes/s): direct, staged, device, host, automatic (see below)
// producer_chunk/staged/...       the staged path with other chunk sizes
//
// Environment: UNIBUF_BENCH_QUICK=1 small sizes (CI smoke run on lavapipe); UNIBUF_BENCH_VALIDATION=1
// validation + sync validation on, exit code 1 on any message; UNIBUF_BENCH_MAX_THREADS caps writers.
#include <unibuf/vulkan.hpp>
#include <unibuf/ops/saxpy/saxpy.spv.hpp>
#include <unibuf/unibuf.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../common/percentiles.hpp"
#include "../pool/pool_bench.hpp"

namespace {

using namespace unibuf;
using backend = vulkan_backend;
constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

struct saxpy_params {
    float a;
    std::uint32_t n;
};

bool env_flag(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' && *v != '0';
}

backend& dev() {
    static backend b = [] {
        vulkan_context_options o;
        o.validation = env_flag("UNIBUF_BENCH_VALIDATION");
        return backend(vulkan_context(o));
    }();
    return b;
}
vulkan_kernel& saxpy() {
    static vulkan_kernel k(dev(), kernels::saxpy_spv, 2, sizeof(saxpy_params));
    return k;
}

memory_request raw(std::uint64_t bytes, placement_kind p, bool host_read, bool wc) {
    memory_request r;
    r.size_bytes = bytes;
    r.placement = p;
    r.host_read = host_read;
    r.host_write = true;
    r.write_combined = wc;
    r.sync = sync_kind::fenced;
    return r;
}

void fail(benchmark::State& state, const std::exception& e) { state.SkipWithError(e.what()); }

// ---- small buffer update ---------------------------------------------------------------------

enum class update_path { zero_copy, staged_2submits, staged_1submit };

void small_update(benchmark::State& state, update_path path, std::uint64_t bytes) {
    try {
        auto& b = dev();
        const bool staged = path != update_path::zero_copy;
        auto x = b.allocate(staged ? raw(bytes, placement_kind::device, true, false)
                                   : raw(bytes, placement_kind::device_mapped, false, true));
        auto y = b.allocate(raw(bytes, placement_kind::device, true, false));
        std::vector<float> src(bytes / sizeof(float), 1.0f);
        const auto n = static_cast<std::uint32_t>(bytes / sizeof(float));
        const saxpy_params p{0.5f, n};
        const bound_range<backend> ranges[] = {{&x, 0, bytes, usage::read}, {&y, 0, bytes, usage::read_write}};
        const dispatch_size groups{(n + 63) / 64, 1, 1};
        for (auto _ : state) {
            std::memcpy(x.host_data(), src.data(), bytes);
            backend::fence f;
            switch (path) {
                case update_path::zero_copy: {
                    b.flush(x, 0, bytes);  // no-op on coherent memory
                    f = b.dispatch(saxpy(), groups, ranges, push_constants(p), {});
                    break;
                }
                case update_path::staged_2submits: {
                    const backend::fence up = b.flush(x, 0, bytes);  // copy submit
                    f = b.dispatch(saxpy(), groups, ranges, push_constants(p), std::span(&up, 1));  // dispatch submit
                    break;
                }
                case update_path::staged_1submit: {
                    auto batch = b.begin();
                    batch.upload(x, 0, bytes);
                    batch.dispatch(saxpy(), groups, ranges, push_constants(p));
                    f = batch.submit();
                    break;
                }
            }
            if (!b.wait(f, default_wait_timeout)) throw std::runtime_error("wait timed out");
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
        state.counters["bytes"] = static_cast<double>(bytes);
        state.SetLabel(x.report().zero_copy ? "zero-copy type " + std::to_string(x.memory_type())
                                            : "staged " + std::to_string(x.memory_type()) + "<-" +
                                                  std::to_string(x.staging_memory_type()));
    } catch (const std::exception& e) {
        fail(state, e);
    }
}

// ---- latency ---------------------------------------------------------------------------------

using unibuf_bench::set_percentiles;

void round_trip_4k(benchmark::State& state, wait_strategy w) {
    try {
        auto& b = dev();
        b.set_wait_strategy(w);
        constexpr std::size_t n = 4 * KiB / sizeof(float);
        upload_buffer<float, backend> x(b, n);
        basic_buffer<float, backend, access::read_write, placement::automatic, sync::fenced> y(b, n);
        y.fill(0.0f);
        std::vector<float> src(n, 1.0f), dst(n);
        const saxpy_params p{1.0f, static_cast<std::uint32_t>(n)};
        std::vector<double> us;
        us.reserve(1 << 16);
        for (auto _ : state) {
            const auto t0 = std::chrono::steady_clock::now();
            x.write(src);
            unibuf::dispatch(b, saxpy(), {n / 64, 1, 1}, push_constants(p), bind(x, usage::read),
                                   bind(y, usage::read_write));
            y.read(dst);
            us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
            benchmark::DoNotOptimize(dst.data());
        }
        set_percentiles(state, us);
        state.SetLabel(std::string("x: ") + (x.report().zero_copy ? "zero-copy" : "staged") +
                       ", y: " + (y.report().zero_copy ? "zero-copy" : "staged"));
        b.set_wait_strategy(wait_strategy::spin_then_block);
    } catch (const std::exception& e) {
        fail(state, e);
    }
}

void wait_floor(benchmark::State& state, wait_strategy w) {
    try {
        auto& b = dev();
        b.set_wait_strategy(w);
        auto a = b.allocate(raw(256, placement_kind::host, true, false));
        std::vector<double> us;
        us.reserve(1 << 16);
        for (auto _ : state) {
            const auto t0 = std::chrono::steady_clock::now();
            auto f = b.copy(a, 0, a, 128, 4);
            if (!b.wait(f, default_wait_timeout)) throw std::runtime_error("wait timed out");
            us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
        set_percentiles(state, us);
        b.set_wait_strategy(wait_strategy::spin_then_block);
    } catch (const std::exception& e) {
        fail(state, e);
    }
}

// ---- producer -> GPU throughput ---------------------------------------------------------------
//
// unibuf::producer with T writer threads fills a buffer until the device can use it (its fence
// waited inside the timing). Each writer call copies a cache-resident source into its grain, so
// the stores are what is measured. Paths:
//   direct    upload_buffer (write-only, write-combined, automatic: the BAR on the H100), the
//             writers store into the mapping (forced direct)
//   staged    the same buffer, the writers store into the producer's system-memory ring and each
//             8 MiB chunk is copied into the BAR memory as it completes (complete chunks batched into
//             one submission; forced)
//   device    device_buffer-like placement::device memory, filled through its own staging buffer
//   host      placement::host (system memory): the writes are the whole upload (the device reads
//             the memory over PCIe on every use, so it is not comparable with the others)
//   automatic upload_buffer, the backend's plan (vulkan::producer_thresholds)

// automatic_all: automatic with every team thread taking part (min_grains_per_writer = 1), the
// behaviour before fills sized their writers: the side-by-side check of that change.
enum class producer_path { direct, staged, device, host, automatic, automatic_all };

template <class Buf>
void run_producer(benchmark::State& state, Buf& buf, unsigned threads, producer_path path, std::size_t chunk_bytes) {
    produce_options o;
    const bool forced = path == producer_path::direct || path == producer_path::staged;
    if (path == producer_path::direct) o.force = produce_path::direct;
    if (path == producer_path::staged) o.force = produce_path::staged_pipelined;
    o.chunk_bytes = chunk_bytes;
    if (path == producer_path::automatic_all) o.min_grains_per_writer = 1;
    producer<backend> prod(dev(), threads, o);
    const std::vector<std::byte> src(o.grain_bytes, std::byte{0x5a});  // one grain, cache-resident
    const auto job = [&](write_only_view<std::byte> out, std::size_t) { out.assign(std::span(src).first(out.size())); };
    auto r = prod.fill(buf, job);  // warm-up: first touch of the ring and the buffer, outside the timing
    if (!dev().wait(r.fence, default_wait_timeout)) throw std::runtime_error("wait timed out");
    for (auto _ : state) {
        r = prod.fill(buf, job);
        if (!dev().wait(r.fence, default_wait_timeout)) throw std::runtime_error("wait timed out");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size_bytes()));
    state.counters["threads"] = threads;
    state.counters["writers"] = r.threads;
    state.counters["copies"] = static_cast<double>(r.copies);
    state.counters["slot_waits"] = static_cast<double>(r.slot_waits);
    state.counters["submissions"] = static_cast<double>(r.submissions);
    state.SetLabel(std::string(to_string(r.path)) + ", type " + std::to_string(buf.allocation().memory_type()) +
                   (buf.report().zero_copy ? "" : "<-" + std::to_string(buf.allocation().staging_memory_type())) +
                   (forced ? "" : " | " + r.reason));
}

void producer_bench(benchmark::State& state, producer_path path, std::uint64_t bytes, unsigned threads,
                    std::size_t chunk_bytes) {
    try {
        const std::size_t n = bytes;
        switch (path) {
            case producer_path::direct:
            case producer_path::staged:
            case producer_path::automatic:
            case producer_path::automatic_all: {
                upload_buffer<std::byte, backend> buf(dev(), n);
                run_producer(state, buf, threads, path, chunk_bytes);
                break;
            }
            case producer_path::device: {
                basic_buffer<std::byte, backend, access::write_only, placement::device, sync::fenced> buf(dev(), n);
                run_producer(state, buf, threads, path, chunk_bytes);
                break;
            }
            case producer_path::host: {
                basic_buffer<std::byte, backend, access::write_only, coherence::write_combined, placement::host, sync::fenced>
                    buf(dev(), n);
                run_producer(state, buf, threads, path, chunk_bytes);
                break;
            }
        }
    } catch (const std::exception& e) {
        fail(state, e);
    }
}

const char* name(wait_strategy w) { return to_string(w).data(); }

} // namespace

// The pool against fresh vulkan allocations of the same size (issue 5), from bench/pool/.
namespace {
struct vk_pool_env {
    using backend = vulkan_backend;
    static backend& get() { return dev(); }
};
} // namespace
UNIBUF_POOL_BENCHMARKS(vk_pool_env, "vulkan")

int main(int argc, char** argv) {
    const bool quick = env_flag("UNIBUF_BENCH_QUICK");
    unsigned max_threads = std::max(1u, std::thread::hardware_concurrency());
    if (const char* t = std::getenv("UNIBUF_BENCH_MAX_THREADS")) max_threads = std::max(1, std::atoi(t));
    try {
        const auto& caps = dev().context().capabilities();
        benchmark::AddCustomContext("vulkan_device", caps.device_name);
        benchmark::AddCustomContext("vulkan_driver", caps.driver_name + " " + caps.driver_info);
        benchmark::AddCustomContext("vulkan_fences", dev().uses_timeline() ? "timeline semaphore" : "VkFence");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unibuf vulkan bench: %s\n", e.what());
        return 1;
    }

    for (std::uint64_t bytes : {4 * KiB, 64 * KiB, 1 * MiB}) {
        const std::string s = std::to_string(bytes / KiB) + "KiB";
        benchmark::RegisterBenchmark(("small_update/zero_copy/" + s).c_str(), small_update, update_path::zero_copy, bytes)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update/staged_2submits/" + s).c_str(), small_update,
                                     update_path::staged_2submits, bytes)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update/staged_1submit/" + s).c_str(), small_update,
                                     update_path::staged_1submit, bytes)
            ->UseRealTime();
    }
    for (wait_strategy w : {wait_strategy::block, wait_strategy::spin, wait_strategy::spin_then_block}) {
        benchmark::RegisterBenchmark((std::string("round_trip_4KiB/") + name(w)).c_str(), round_trip_4k, w)->UseRealTime();
        benchmark::RegisterBenchmark((std::string("wait_floor/") + name(w)).c_str(), wait_floor, w)->UseRealTime();
    }
    // Producer throughput: the crossover of direct stores and pipelined staging over size and
    // writer threads (the plot of bench/RESULTS.md), then chunk sizes of the staged path.
    // 24 and 48 MiB and 2 writers bracket the staged path's thresholds (vulkan::producer_thresholds).
    std::vector<std::uint64_t> sizes = {4 * MiB, 16 * MiB, 24 * MiB, 32 * MiB, 48 * MiB, 64 * MiB, 256 * MiB, 1 * GiB};
    std::vector<unsigned> threads = {1, 2, 4, 8, 16};
    if (quick) {
        sizes = {16 * MiB};
        threads = {1, 2};
    }
    const auto& caps = dev().context().capabilities();
    constexpr std::size_t default_chunk = produce_options{}.chunk_bytes;
    const struct {
        producer_path p;
        const char* n;
    } paths[] = {{producer_path::direct, "direct"},
                 {producer_path::staged, "staged"},
                 {producer_path::device, "device"},
                 {producer_path::host, "host"},
                 {producer_path::automatic, "automatic"},
                 {producer_path::automatic_all, "automatic_all"}};
    for (const auto& p : paths)
        for (auto bytes : sizes) {
            if (bytes > caps.max_allocation_size) continue;
            for (unsigned t : threads) {
                if (t > max_threads) continue;
                const std::string nm = std::string("producer/") + p.n + "/" + std::to_string(bytes / MiB) + "MiB/" +
                                       std::to_string(t) + "threads";
                benchmark::RegisterBenchmark(nm.c_str(), producer_bench, p.p, bytes, t, default_chunk)
                    ->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
            }
        }
    if (!quick)
        for (std::size_t chunk : {2 * MiB, 4 * MiB, 16 * MiB, 32 * MiB})
            for (auto bytes : {64 * MiB, 256 * MiB}) {
                const unsigned t = std::min(16u, max_threads);
                const std::string nm = "producer_chunk/staged/" + std::to_string(bytes / MiB) + "MiB/" +
                                       std::to_string(t) + "threads/chunk:" + std::to_string(chunk / KiB) + "KiB";
                benchmark::RegisterBenchmark(nm.c_str(), producer_bench, producer_path::staged, bytes, t, chunk)
                    ->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
            }

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    int messages = 0;
    for (const auto& m : dev().context().take_messages()) {
        std::fprintf(stderr, "validation: [%s] %s\n", m.id_name.c_str(), m.text.c_str());
        ++messages;
    }
    return messages == 0 ? 0 : 1;
}
