// Vulkan backend benchmarks (Google Benchmark, JSON with --benchmark_out=FILE --benchmark_out_format=json).
//
// small_update/<path>/<bytes>     host writes a buffer that a dispatch then reads, until the dispatch's fence:
//                                 zero_copy (write-combined device_mapped memory), staged_2submits (staging
//                                 copy submit, then dispatch submit) and staged_1submit (copy + dispatch in
//                                 one submission)
// round_trip_4KiB/<wait>          basic_buffer write 4 KiB -> dispatch -> read 4 KiB, p50/p99 per wait strategy
// wait_floor/<wait>               a 4-byte device copy and its wait: the submit + wait latency alone
// producer/<path>/<MiB>/<threads> CPU writer threads fill a buffer until the device can use it (bytes/s):
//                                 device_mapped, host, staged_pipelined (4 MiB chunks uploaded as they are
//                                 written) and automatic (upload_buffer)
//
// Environment: UNIBUF_BENCH_QUICK=1 small sizes (CI smoke run on lavapipe); UNIBUF_BENCH_VALIDATION=1
// validation + sync validation on, exit code 1 on any message; UNIBUF_BENCH_MAX_THREADS caps writers.
#include <unibuf/backend/vulkan/vulkan_backend.hpp>
#include <unibuf/kernels/saxpy.spv.hpp>
#include <unibuf/unibuf.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
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

/// A fixed set of writer threads that run one job at a time (no thread start in the timed loop).
class writer_pool {
public:
    explicit writer_pool(unsigned n) {
        for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this, i] { loop(i); });
    }
    ~writer_pool() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    /// Runs job(i) on threads 0..n-1 and returns when all finished.
    void run(unsigned n, const std::function<void(unsigned)>& job) {
        std::unique_lock lk(m_);
        job_ = &job;
        active_ = n;
        pending_ = n;
        ++generation_;
        cv_.notify_all();
        done_cv_.wait(lk, [&] { return pending_ == 0; });
        job_ = nullptr;
    }
    [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()); }

private:
    void loop(unsigned i) {
        std::uint64_t seen = 0;
        for (;;) {
            const std::function<void(unsigned)>* job = nullptr;
            {
                std::unique_lock lk(m_);
                cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
                if (stop_) return;
                seen = generation_;
                if (i >= active_) continue;
                job = job_;
            }
            (*job)(i);
            {
                std::lock_guard lk(m_);
                if (--pending_ == 0) done_cv_.notify_all();
            }
        }
    }
    std::mutex m_;
    std::condition_variable cv_, done_cv_;
    const std::function<void(unsigned)>* job_ = nullptr;
    unsigned active_ = 0, pending_ = 0;
    std::uint64_t generation_ = 0;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

writer_pool& pool(unsigned n) {
    static std::unique_ptr<writer_pool> p;
    if (!p || p->size() < n) {
        p.reset();
        p = std::make_unique<writer_pool>(std::max(n, 16u));
    }
    return *p;
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
                    (void)b.flush(x, 0, bytes);  // no-op on coherent memory
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
            (void)unibuf::dispatch(b, saxpy(), {n / 64, 1, 1}, push_constants(p), bind(x, usage::read),
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

enum class producer_path { device_mapped, host, staged_pipelined, automatic };

void producer(benchmark::State& state, producer_path path, std::uint64_t bytes, unsigned threads) {
    try {
        auto& b = dev();
        constexpr std::uint64_t chunk = 4 * MiB;
        constexpr std::uint64_t src_bytes = 1 * MiB;  // per-thread source, cache-resident: measures the stores
        backend::allocation a;
        switch (path) {
            case producer_path::device_mapped: a = b.allocate(raw(bytes, placement_kind::device_mapped, false, true)); break;
            case producer_path::host: a = b.allocate(raw(bytes, placement_kind::host, false, true)); break;
            case producer_path::staged_pipelined: a = b.allocate(raw(bytes, placement_kind::device, false, false)); break;
            case producer_path::automatic: a = b.allocate(raw(bytes, placement_kind::automatic, false, true)); break;
        }
        std::vector<std::vector<std::byte>> src(threads, std::vector<std::byte>(src_bytes, std::byte{0x5a}));
        std::memset(a.host_data(), 0, bytes);  // first touch outside the timed loop: a kept buffer is reused
        auto& wp = pool(threads);
        const std::uint64_t chunks = (bytes + chunk - 1) / chunk;
        for (auto _ : state) {
            std::atomic<std::uint64_t> next{0};
            std::atomic<std::uint64_t> last_fence{0};
            std::mutex err_m;
            std::string err;
            const std::function<void(unsigned)> job = [&](unsigned t) {
                try {
                for (;;) {
                    const std::uint64_t c = next.fetch_add(1, std::memory_order_relaxed);
                    if (c >= chunks) return;
                    const std::uint64_t off = c * chunk;
                    const std::uint64_t len = std::min(chunk, bytes - off);
                    for (std::uint64_t o = 0; o < len; o += src_bytes)
                        std::memcpy(a.host_data() + off + o, src[t].data(), std::min(src_bytes, len - o));
                    if (path == producer_path::staged_pipelined) {
                        // Upload this chunk now: the copy engine works while the writers go on.
                        const auto f = b.flush(a, off, len);
                        std::uint64_t cur = last_fence.load(std::memory_order_relaxed);
                        while (f.value > cur && !last_fence.compare_exchange_weak(cur, f.value)) {
                        }
                    }
                }
                } catch (const std::exception& e) {
                    std::lock_guard lk(err_m);
                    err = e.what();
                }
            };
            wp.run(threads, job);
            if (!err.empty()) throw std::runtime_error(err);
            backend::fence f{last_fence.load()};
            if (path != producer_path::staged_pipelined) f = b.flush(a, 0, bytes);  // staging copy if automatic staged
            if (!b.wait(f, default_wait_timeout)) throw std::runtime_error("wait timed out");
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
        state.counters["threads"] = threads;
        state.SetLabel(a.report().zero_copy ? "zero-copy type " + std::to_string(a.memory_type())
                                            : "staged " + std::to_string(a.memory_type()) + "<-" +
                                                  std::to_string(a.staging_memory_type()));
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
    std::vector<std::uint64_t> sizes = {64 * MiB, 256 * MiB, 1 * GiB};
    std::vector<unsigned> threads = {1, 4, 16};
    if (quick) {
        sizes = {16 * MiB};
        threads = {1, 2};
    }
    const auto& caps = dev().context().capabilities();
    const struct {
        producer_path p;
        const char* n;
    } paths[] = {{producer_path::device_mapped, "device_mapped"},
                 {producer_path::host, "host"},
                 {producer_path::staged_pipelined, "staged_pipelined"},
                 {producer_path::automatic, "automatic"}};
    for (const auto& p : paths)
        for (auto bytes : sizes) {
            if (bytes > caps.max_allocation_size) continue;
            for (unsigned t : threads) {
                if (t > max_threads) continue;
                const std::string nm = std::string("producer/") + p.n + "/" + std::to_string(bytes / MiB) + "MiB/" +
                                       std::to_string(t) + "threads";
                benchmark::RegisterBenchmark(nm.c_str(), producer, p.p, bytes, t)->UseRealTime()->Unit(benchmark::kMillisecond);
            }
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
