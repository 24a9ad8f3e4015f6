// Vulkan backend benchmarks (Google Benchmark, JSON with --benchmark_out=FILE --benchmark_out_format=json).
//
// small_update/<path>/<bytes>     host writes a buffer that a dispatch then reads, until the dispatch's fence:
//                                 zero_copy (write-combined device_mapped memory), staged_2submits (staging
//                                 copy submit, then dispatch submit), staged_1submit (copy + dispatch in
//                                 one submission), staged_1submit_wc (a staging buffer the host does not
//                                 read), staged_1submit_nt (the memcpy with streaming stores), staged_xfer
//                                 (the copy on the transfer queue, the dispatch on the compute queue waiting
//                                 for it); counters memcpy_us, submit_us, wait_us: medians of each phase.
//                                 producer_<queue>/<bytes>/<T>threads: the host write by T producer writers
// small_update_spin/...           the same with wait_strategy::spin
// staged_parts/<part>/<bytes>     the staged update's parts alone: memcpy (into the staging memory; the label
//                                 names its type), copy/<queue> (upload submit + wait), dispatch (+ wait),
//                                 copy_dirty (the copy of staging memory the host has just written),
//                                 copy_dispatch (copy + dispatch in one submission, no memcpy)
// copy_engine/<variant>/<MiB>     host memory -> device memory, one submission of 8 MiB copies, + wait: the
//                                 copy queue's rate alone; <queue> compute, transfer, both (copy_queue::both),
//                                 compute_cached_src, compute_one_copy, compute_32MiB_copies
// round_trip_4KiB/<wait>          basic_buffer write 4 KiB -> dispatch -> read 4 KiB, p50/p99 per wait strategy
// wait_floor/<wait>               a 4-byte device copy and its wait: the submit + wait latency alone
//                                 (transfer_spin: on the transfer queue)
// producer/<path>/<MiB>/<threads> unibuf::producer's writer threads fill a buffer until the device can
//                                 use it (bytes/s): direct, staged, device, host, automatic (see below)
// producer_chunk/staged/...       the staged path with other chunk sizes
// producer_queue/<queue>/<path>/... the producer with its staging copies forced onto one queue (or both)
//
// Environment: UNIBUF_BENCH_QUICK=1 small sizes (CI smoke run on lavapipe); UNIBUF_BENCH_VALIDATION=1
// validation + sync validation on, exit code 1 on any message; UNIBUF_BENCH_MAX_THREADS caps writers.
#include <unibuf/vulkan.hpp>
#include <unibuf/ops/saxpy/saxpy.spv.hpp>
#include <unibuf/unibuf.hpp>

#include <benchmark/benchmark.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <chrono>
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

// Runs the benchmark body with copy-only submissions on `q`, then restores the default.
struct copy_queue_scope {
    explicit copy_queue_scope(copy_queue q) { dev().set_copy_queue(q, 0); }
    ~copy_queue_scope() { dev().set_copy_queue(backend::options{}.copies, backend::options{}.transfer_min_bytes); }
    copy_queue_scope(const copy_queue_scope&) = delete;
    copy_queue_scope& operator=(const copy_queue_scope&) = delete;
};

// Median of per-iteration samples (sorts them).
double median(std::vector<double>& v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double us_since(std::chrono::steady_clock::time_point t0, std::chrono::steady_clock::time_point t1) {
    return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

std::string memory_label(std::uint32_t type) {
    const auto& t = dev().context().capabilities().memory.types;
    return "type " + std::to_string(type) + " " +
           (type < t.size() ? vulkan::describe_memory_flags(t[type].flags) : std::string("?"));
}

// ---- small buffer update ---------------------------------------------------------------------

enum class update_path { zero_copy, staged_2submits, staged_1submit, staged_xfer, staged_1submit_wc, staged_1submit_nt };

// memcpy with non-temporal (streaming) stores where the target has SSE2 and both sides are 16-byte
// aligned: the written lines leave the CPU caches, so a device read of them need not snoop dirty
// lines out of the caches.
void stream_copy(void* dst, const void* src, std::size_t n) {
#if defined(__SSE2__)
    if (reinterpret_cast<std::uintptr_t>(dst) % 16 == 0 && reinterpret_cast<std::uintptr_t>(src) % 16 == 0) {
        auto* d = static_cast<__m128i*>(dst);
        const auto* s = static_cast<const __m128i*>(src);
        const std::size_t blocks = n / 16;
        for (std::size_t i = 0; i < blocks; ++i) _mm_stream_si128(d + i, _mm_load_si128(s + i));
        _mm_sfence();
        std::memcpy(static_cast<std::byte*>(dst) + blocks * 16, static_cast<const std::byte*>(src) + blocks * 16, n % 16);
        return;
    }
#endif
    std::memcpy(dst, src, n);
}

void small_update(benchmark::State& state, update_path path, std::uint64_t bytes, wait_strategy w) {
    try {
        auto& b = dev();
        b.set_wait_strategy(w);
        std::optional<copy_queue_scope> queue;
        if (path == update_path::staged_xfer) {
            if (!b.has_transfer_queue()) {
                state.SkipWithError(("no transfer queue: " + b.copy_queue_report()).c_str());
                return;
            }
            queue.emplace(copy_queue::transfer);
        } else if (path != update_path::zero_copy) {
            queue.emplace(copy_queue::compute);
        }
        const bool staged = path != update_path::zero_copy;
        const bool wc = path == update_path::zero_copy || path == update_path::staged_1submit_wc;
        // staged_1submit_wc: a staging buffer the host does not read (the uncached kind where the
        // device has one; placement::device takes no coherence::write_combined, rule R6).
        auto x = b.allocate(staged ? raw(bytes, placement_kind::device, !wc, false)
                                   : raw(bytes, placement_kind::device_mapped, false, true));
        auto y = b.allocate(raw(bytes, placement_kind::device, true, false));
        std::vector<float> src(bytes / sizeof(float), 1.0f);
        const auto n = static_cast<std::uint32_t>(bytes / sizeof(float));
        const saxpy_params p{0.5f, n};
        const bound_range<backend> ranges[] = {{&x, 0, bytes, usage::read}, {&y, 0, bytes, usage::read_write}};
        const dispatch_size groups{(n + 63) / 64, 1, 1};
        std::vector<double> copy_us, submit_us, wait_us;
        for (auto _ : state) {
            const auto t0 = std::chrono::steady_clock::now();
            if (path == update_path::staged_1submit_nt) stream_copy(x.host_data(), src.data(), bytes);
            else std::memcpy(x.host_data(), src.data(), bytes);
            const auto t1 = std::chrono::steady_clock::now();
            backend::fence f;
            switch (path) {
                case update_path::zero_copy: {
                    b.flush(x, 0, bytes);  // no-op on coherent memory
                    f = b.dispatch(saxpy(), groups, ranges, push_constants(p), {});
                    break;
                }
                case update_path::staged_2submits:
                case update_path::staged_xfer: {
                    const backend::fence up = b.flush(x, 0, bytes);  // copy submit
                    f = b.dispatch(saxpy(), groups, ranges, push_constants(p), std::span(&up, 1));  // dispatch submit
                    break;
                }
                case update_path::staged_1submit:
                case update_path::staged_1submit_wc:
                case update_path::staged_1submit_nt: {
                    auto batch = b.begin();
                    batch.upload(x, 0, bytes);
                    batch.dispatch(saxpy(), groups, ranges, push_constants(p));
                    f = batch.submit();
                    break;
                }
            }
            const auto t2 = std::chrono::steady_clock::now();
            if (!b.wait(f, default_wait_timeout)) throw std::runtime_error("wait timed out");
            const auto t3 = std::chrono::steady_clock::now();
            copy_us.push_back(us_since(t0, t1));
            submit_us.push_back(us_since(t1, t2));
            wait_us.push_back(us_since(t2, t3));
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
        state.counters["bytes"] = static_cast<double>(bytes);
        state.counters["memcpy_us"] = median(copy_us);
        state.counters["submit_us"] = median(submit_us);
        state.counters["wait_us"] = median(wait_us);
        state.SetLabel(x.report().zero_copy ? "zero-copy type " + std::to_string(x.memory_type())
                                            : "staged " + std::to_string(x.memory_type()) + "<-" +
                                                  std::to_string(x.staging_memory_type()));
        b.set_wait_strategy(wait_strategy::spin_then_block);
    } catch (const std::exception& e) {
        dev().set_wait_strategy(wait_strategy::spin_then_block);
        fail(state, e);
    }
}

// The staged update written by a producer's writer threads (as PyTorch's copy_ uses its intra-op
// threads): `threads` writers fill placement::device memory through its staging buffer (one copy,
// on queue `q`), then the dispatch reads it; until the dispatch's fence.
void small_update_producer(benchmark::State& state, copy_queue q, std::uint64_t bytes, unsigned threads,
                           wait_strategy w) {
    try {
        auto& b = dev();
        if ((q == copy_queue::transfer || q == copy_queue::both) && !b.has_transfer_queue()) {
            state.SkipWithError(("no transfer queue: " + b.copy_queue_report()).c_str());
            return;
        }
        copy_queue_scope queue(q);
        b.set_wait_strategy(w);
        const std::size_t n = bytes / sizeof(float);
        basic_buffer<float, backend, access::write_only, placement::device, sync::fenced> x(b, n);
        basic_buffer<float, backend, access::read_write, placement::device, sync::fenced> y(b, n);
        produce_options o;
        o.grain_bytes = std::max<std::size_t>(4096, bytes / (4 * threads));
        o.min_grains_per_writer = 1;
        o.chunk_bytes = bytes;
        producer<backend> prod(b, threads, o);
        const std::vector<float> src(o.grain_bytes / sizeof(float), 1.0f);
        const auto job = [&](write_only_view<float> out, std::size_t) { out.assign(std::span(src).first(out.size())); };
        const saxpy_params p{0.5f, static_cast<std::uint32_t>(n)};
        const dispatch_size groups{static_cast<std::uint32_t>((n + 63) / 64), 1, 1};
        auto r = prod.fill(x, job);  // warm-up
        std::vector<double> fill_us, wait_us;
        for (auto _ : state) {
            const auto t0 = std::chrono::steady_clock::now();
            r = prod.fill(x, job);
            const auto f = unibuf::dispatch(b, saxpy(), groups, push_constants(p), bind(x, usage::read),
                                            bind(y, usage::read_write));
            const auto t1 = std::chrono::steady_clock::now();
            if (!b.wait(f, default_wait_timeout)) throw std::runtime_error("wait timed out");
            fill_us.push_back(us_since(t0, t1));
            wait_us.push_back(us_since(t1, std::chrono::steady_clock::now()));
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
        state.counters["fill_submit_us"] = median(fill_us);
        state.counters["wait_us"] = median(wait_us);
        state.counters["writers"] = r.threads;
        state.counters["copies"] = static_cast<double>(r.copies);
        state.SetLabel(std::string(to_string(r.path)) + " | " + b.copy_queue_report());
        b.set_wait_strategy(wait_strategy::spin_then_block);
    } catch (const std::exception& e) {
        dev().set_wait_strategy(wait_strategy::spin_then_block);
        fail(state, e);
    }
}

// The staged update's parts, each alone (same buffers as small_update's staged paths).
enum class staged_part { memcpy, copy_compute, copy_transfer, dispatch, copy_dirty, copy_dispatch };

void staged_parts(benchmark::State& state, staged_part part, std::uint64_t bytes) {
    try {
        auto& b = dev();
        if (part == staged_part::copy_transfer && !b.has_transfer_queue()) {
            state.SkipWithError(("no transfer queue: " + b.copy_queue_report()).c_str());
            return;
        }
        copy_queue_scope queue(part == staged_part::copy_transfer ? copy_queue::transfer : copy_queue::compute);
        auto x = b.allocate(raw(bytes, placement_kind::device, true, false));
        auto y = b.allocate(raw(bytes, placement_kind::device, true, false));
        std::vector<float> src(bytes / sizeof(float), 1.0f);
        std::memcpy(x.host_data(), src.data(), bytes);
        const auto n = static_cast<std::uint32_t>(bytes / sizeof(float));
        const saxpy_params p{0.5f, n};
        const bound_range<backend> ranges[] = {{&x, 0, bytes, usage::read}, {&y, 0, bytes, usage::read_write}};
        const dispatch_size groups{(n + 63) / 64, 1, 1};
        std::vector<double> submit_us, wait_us;
        for (auto _ : state) {
            if (part == staged_part::memcpy) {
                std::memcpy(x.host_data(), src.data(), bytes);
                benchmark::ClobberMemory();
                continue;
            }
            if (part == staged_part::copy_dirty) std::memcpy(x.host_data(), src.data(), bytes);  // untimed
            const auto t0 = std::chrono::steady_clock::now();
            backend::fence f;
            if (part == staged_part::dispatch) {
                f = b.dispatch(saxpy(), groups, ranges, push_constants(p), {});
            } else if (part == staged_part::copy_dispatch) {
                auto batch = b.begin();
                batch.upload(x, 0, bytes);
                batch.dispatch(saxpy(), groups, ranges, push_constants(p));
                f = batch.submit();
            } else {
                f = b.flush(x, 0, bytes);
            }
            const auto t1 = std::chrono::steady_clock::now();
            if (!b.wait(f, default_wait_timeout)) throw std::runtime_error("wait timed out");
            submit_us.push_back(us_since(t0, t1));
            wait_us.push_back(us_since(t1, std::chrono::steady_clock::now()));
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
        if (part != staged_part::memcpy) {
            state.counters["submit_us"] = median(submit_us);
            state.counters["wait_us"] = median(wait_us);
        }
        state.SetLabel("staging " + memory_label(x.staging_memory_type()) + " | " + b.copy_queue_report());
    } catch (const std::exception& e) {
        fail(state, e);
    }
}

// The copy queue's rate: host memory -> device memory in `chunk` copies, one submission, + wait;
// the source uncached (write-combined) system memory as the producer's ring, or cached.
void copy_engine(benchmark::State& state, copy_queue q, std::uint64_t bytes, bool cached_src, std::uint64_t chunk) {
    try {
        auto& b = dev();
        if ((q == copy_queue::transfer || q == copy_queue::both) && !b.has_transfer_queue()) {
            state.SkipWithError(("no transfer queue: " + b.copy_queue_report()).c_str());
            return;
        }
        copy_queue_scope queue(q);
        auto src = b.allocate(raw(bytes, placement_kind::host, cached_src, !cached_src));
        auto dst = b.allocate(raw(bytes, placement_kind::device, true, false));
        std::memset(src.host_data(), 0x5a, bytes);
        std::vector<double> submit_us;
        for (auto _ : state) {
            const auto t0 = std::chrono::steady_clock::now();
            auto batch = b.begin();
            for (std::uint64_t off = 0; off < bytes; off += chunk) batch.copy(src, off, dst, off, std::min(chunk, bytes - off));
            const auto f = batch.submit();
            submit_us.push_back(us_since(t0, std::chrono::steady_clock::now()));
            if (!b.wait(f, default_wait_timeout)) throw std::runtime_error("wait timed out");
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
        state.counters["submit_us"] = median(submit_us);
        state.SetLabel(memory_label(src.memory_type()) + " -> " + memory_label(dst.memory_type()) + " | " +
                       b.copy_queue_report());
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

void wait_floor(benchmark::State& state, wait_strategy w, copy_queue q) {
    try {
        auto& b = dev();
        if ((q == copy_queue::transfer || q == copy_queue::both) && !b.has_transfer_queue()) {
            state.SkipWithError(("no transfer queue: " + b.copy_queue_report()).c_str());
            return;
        }
        copy_queue_scope queue(q);
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
                    std::size_t chunk_bytes, std::optional<copy_queue> q) {
    try {
        if ((q == copy_queue::transfer || q == copy_queue::both) && !dev().has_transfer_queue()) {
            state.SkipWithError(("no transfer queue: " + dev().copy_queue_report()).c_str());
            return;
        }
        std::optional<copy_queue_scope> queue;
        if (q) queue.emplace(*q);
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
        benchmark::AddCustomContext("vulkan_copy_queue", dev().copy_queue_report());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unibuf vulkan bench: %s\n", e.what());
        return 1;
    }

    for (std::uint64_t bytes : {4 * KiB, 64 * KiB, 1 * MiB}) {
        const std::string s = std::to_string(bytes / KiB) + "KiB";
        constexpr auto stb = wait_strategy::spin_then_block;
        benchmark::RegisterBenchmark(("small_update/zero_copy/" + s).c_str(), small_update, update_path::zero_copy, bytes,
                                     stb)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update/staged_2submits/" + s).c_str(), small_update,
                                     update_path::staged_2submits, bytes, stb)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update/staged_1submit/" + s).c_str(), small_update,
                                     update_path::staged_1submit, bytes, stb)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update/staged_xfer/" + s).c_str(), small_update, update_path::staged_xfer,
                                     bytes, stb)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update/staged_1submit_wc/" + s).c_str(), small_update,
                                     update_path::staged_1submit_wc, bytes, stb)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update/staged_1submit_nt/" + s).c_str(), small_update,
                                     update_path::staged_1submit_nt, bytes, stb)
            ->UseRealTime();
        // The same with a spinning wait (the update's wait outlasts the default 50 us spin budget).
        benchmark::RegisterBenchmark(("small_update_spin/staged_1submit/" + s).c_str(), small_update,
                                     update_path::staged_1submit, bytes, wait_strategy::spin)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("small_update_spin/staged_xfer/" + s).c_str(), small_update,
                                     update_path::staged_xfer, bytes, wait_strategy::spin)
            ->UseRealTime();
        for (copy_queue q : {copy_queue::compute, copy_queue::transfer})
            for (unsigned t : {1u, 4u, 8u}) {
                if (t > max_threads) continue;
                for (wait_strategy w : {stb, wait_strategy::spin})
                    benchmark::RegisterBenchmark(((w == stb ? "small_update/producer_" : "small_update_spin/producer_") +
                                                  std::string(to_string(q)) + "/" + s + "/" + std::to_string(t) + "threads")
                                                     .c_str(),
                                                 small_update_producer, q, bytes, t, w)
                        ->UseRealTime();
            }
        const struct {
            staged_part p;
            const char* n;
        } parts[] = {{staged_part::memcpy, "memcpy"},
                     {staged_part::copy_compute, "copy/compute"},
                     {staged_part::copy_transfer, "copy/transfer"},
                     {staged_part::dispatch, "dispatch"},
                     {staged_part::copy_dirty, "copy_dirty"},
                     {staged_part::copy_dispatch, "copy_dispatch"}};
        for (const auto& part : parts)
            benchmark::RegisterBenchmark(("staged_parts/" + std::string(part.n) + "/" + s).c_str(), staged_parts, part.p,
                                         bytes)
                ->UseRealTime();
    }
    for (std::uint64_t bytes : {1 * MiB, 64 * MiB, 256 * MiB, 1 * GiB}) {
        if (quick && bytes > 1 * MiB) continue;
        const std::string mib = std::to_string(bytes / MiB) + "MiB";
        for (copy_queue q : {copy_queue::compute, copy_queue::transfer, copy_queue::both})
            benchmark::RegisterBenchmark(("copy_engine/" + std::string(to_string(q)) + "/" + mib).c_str(), copy_engine, q,
                                         bytes, false, 8 * MiB)
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("copy_engine/compute_cached_src/" + mib).c_str(), copy_engine, copy_queue::compute,
                                     bytes, true, 8 * MiB)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("copy_engine/compute_one_copy/" + mib).c_str(), copy_engine, copy_queue::compute,
                                     bytes, false, bytes)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("copy_engine/compute_32MiB_copies/" + mib).c_str(), copy_engine,
                                     copy_queue::compute, bytes, false, 32 * MiB)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    }
    for (wait_strategy w : {wait_strategy::block, wait_strategy::spin, wait_strategy::spin_then_block}) {
        benchmark::RegisterBenchmark((std::string("round_trip_4KiB/") + name(w)).c_str(), round_trip_4k, w)->UseRealTime();
        benchmark::RegisterBenchmark((std::string("wait_floor/") + name(w)).c_str(), wait_floor, w, copy_queue::compute)
            ->UseRealTime();
    }
    benchmark::RegisterBenchmark("wait_floor/transfer_spin", wait_floor, wait_strategy::spin, copy_queue::transfer)
        ->UseRealTime();
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
                benchmark::RegisterBenchmark(nm.c_str(), producer_bench, p.p, bytes, t, default_chunk, std::optional<copy_queue>{})
                    ->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
            }
        }
    // The producer's staging copies on each queue (the transfer queue's case for the 0.85 target).
    for (copy_queue q : {copy_queue::compute, copy_queue::transfer, copy_queue::both})
        for (const auto& p : {paths[1], paths[4]})
            for (auto bytes : quick ? std::vector<std::uint64_t>{16 * MiB} : std::vector<std::uint64_t>{256 * MiB, 1 * GiB})
                for (unsigned t : quick ? std::vector<unsigned>{2} : std::vector<unsigned>{8, 16}) {
                    if (t > max_threads || bytes > caps.max_allocation_size) continue;
                    const std::string nm = std::string("producer_queue/") + std::string(to_string(q)) + "/" + p.n + "/" +
                                           std::to_string(bytes / MiB) + "MiB/" + std::to_string(t) + "threads";
                    benchmark::RegisterBenchmark(nm.c_str(), producer_bench, p.p, bytes, t, default_chunk,
                                                 std::optional<copy_queue>(q))
                        ->UseRealTime()
                        ->Unit(benchmark::kMillisecond);
                }
    if (!quick)
        for (std::size_t chunk : {2 * MiB, 4 * MiB, 16 * MiB, 32 * MiB})
            for (auto bytes : {64 * MiB, 256 * MiB, 1 * GiB}) {
                const unsigned t = std::min(16u, max_threads);
                const std::string nm = "producer_chunk/staged/" + std::to_string(bytes / MiB) + "MiB/" +
                                       std::to_string(t) + "threads/chunk:" + std::to_string(chunk / KiB) + "KiB";
                benchmark::RegisterBenchmark(nm.c_str(), producer_bench, producer_path::staged, bytes, t, chunk, std::optional<copy_queue>{})
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
