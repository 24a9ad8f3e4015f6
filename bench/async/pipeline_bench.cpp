// The coroutine pipeline (issue 13) end to end: T writer threads write every frame (a moving
// pattern) into input slots, the GPU stage runs conv2d (3x3, padding 1, bias) into output slots,
// one consumer reads every float of every result, in frame order. Workloads of the issue:
//   c3k16: 1080p, C3 -> K16 (output-bound: 133 MB out per frame)
//   c16k3: 1080p, C16 -> K3 (input-bound: 133 MB written by the CPU per frame)
// Arguments of each benchmark: slots (2..8), writer threads, the input path (in: 0 automatic, as
// the pipeline decides; 1 direct: writers store into the upload_buffer slot (BAR/zero-copy); 2
// staged: writers store into system memory, a copy moves the frame into the slot; 3 sysmem: the
// slot itself is placement::host system memory the conv2d reads over the bus), the output path
// (out: 0 automatic; 1 direct: conv2d writes the readback_buffer slot, host-cached memory; 2
// copied: conv2d writes device memory, a copy moves it into the slot), inflight (0: the rings
// alone; n: pipeline_config::max_in_flight), xfer (1: copy-only submissions on the transfer
// queue), read (0: the consumer does not read the result: isolates host memory traffic).
// Also pipeline_bound/vulkan/*: the bare copy rates (device -> host, host -> device, one frame of
// each workload, 20 copies) and conv2d alone into device / host memory, as the PCIe bound of the
// same call.
//
// Counters: fps, GB/s each way (bytes written by the writers / read back), p50 latency (a frame's
// fill finished -> its consumer call started, ms), CPU time per frame (process CPU time / frames,
// ms), overlap efficiency (the busiest stage's busy fraction), frames dropped (always 0: blocking).
// The label names the slot memory decisions.
//
// Environment: UNIBUF_BENCH_QUICK=1 (CI smoke: 64x36 frames, 3 frames per run, a few arguments),
// UNIBUF_PIPELINE_ARGS="s,w,in,out,inflight,xfer,read;..." (these arguments instead of the sweep),
// UNIBUF_BENCH_VALIDATION=1 (Vulkan validation on), UNIBUF_PIPELINE_FRAMES (frames per run;
// default 60).
#include <unibuf/async/gl/context_loop.hpp>
#include <unibuf/async/pipeline.hpp>
#include <unibuf/async/vulkan/fence_waiter.hpp>
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/transfer/writer_team.hpp>
#include <unibuf/opengl.hpp>
#include <unibuf/vulkan.hpp>

#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace {
using namespace unibuf;
using clock_type = std::chrono::steady_clock;

bool env_flag(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' && *v != '0';
}
bool quick() { return env_flag("UNIBUF_BENCH_QUICK"); }
std::uint64_t frames_per_run() {
    if (quick()) return 3;
    const char* v = std::getenv("UNIBUF_PIPELINE_FRAMES");
    return v != nullptr ? std::max<std::uint64_t>(1, std::strtoull(v, nullptr, 10)) : 60;
}

struct workload {
    const char* name;
    std::uint32_t c, k;
};
constexpr workload workloads[] = {{"c3k16", 3, 16}, {"c16k3", 16, 3}};

conv2d_desc desc_of(const workload& w) {
    conv2d_desc d;
    d.n = 1;
    d.c = w.c;
    d.k = w.k;
    d.h = quick() ? 36 : 1080;
    d.w = quick() ? 64 : 1920;
    d.r = d.s = 3;
    d.pad(1);
    d.bias = true;
    return d;
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// ---- backends -------------------------------------------------------------------------------------

struct vulkan_env {
    using backend = vulkan_backend;
    static vulkan_env& get() {
        static vulkan_env e;
        return e;
    }
    vulkan_backend gpu{make_context()};
    vulkan_fence_waiter waiter{gpu};
    thread_pool pool{4};
    vulkan_fence_waiter& notifier() { return waiter; }
    thread_pool& stage() { return pool; }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    static vulkan_context make_context() {
        vulkan_context_options o;
        o.validation = env_flag("UNIBUF_BENCH_VALIDATION");
        o.sync_validation = o.validation;
        return vulkan_context(o);
    }
};

struct gl_env {
    using backend = gl_backend;
    static gl_env& get() {
        static gl_env e;
        return e;
    }
    egl_context ctx{};
    gl_backend gpu{};
    gl_context_loop loop{gpu};
    thread_pool pool{4};
    gl_context_loop& notifier() { return loop; }
    gl_context_loop& stage() { return loop; }
    template <class T>
    T run(task<T> t) {
        return loop.run(std::move(t));  // the benchmark thread is the context thread
    }
};

// ---- one benchmark ---------------------------------------------------------------------------------

template <class B>
using host_input = basic_buffer<float, B, access::write_only, coherence::write_combined, placement::host, sync::fenced>;

struct variant {
    std::size_t writers = 8;
    input_path in = input_path::automatic;
    output_path out = output_path::automatic;
    std::size_t inflight = 0;
    bool xfer = false;
    bool read = true;
};

template <class Env, std::size_t S, class InBuf>
void run_pipeline(benchmark::State& state, const workload& wl, const variant& var) {
    const std::size_t writers = var.writers;
    using B = typename Env::backend;
    Env& env = Env::get();
    const conv2d_desc d = desc_of(wl);
    conv2d<B> conv(env.gpu, d);
    const conv2d_sizes counts = conv.sizes();
    device_buffer<float, B> weights(env.gpu, static_cast<std::size_t>(counts.weights));
    device_buffer<float, B> bias(env.gpu, static_cast<std::size_t>(counts.bias));
    weights.fill(0.01f);
    bias.fill(0.5f);
    if constexpr (std::is_same_v<B, vulkan_backend>)
        env.gpu.set_copy_queue(var.xfer && env.gpu.has_transfer_queue() ? copy_queue::transfer : copy_queue::compute);
    const std::uint64_t frames = frames_per_run();

    // Per-frame "written" time stamps (slots bound the frames in flight far below 256).
    std::array<std::atomic<std::int64_t>, 256> written{};
    std::vector<double> latencies;
    latencies.reserve(frames * 64);
    volatile float sink = 0;
    // The writers copy a precomputed pattern (value ((i + 7k) mod 251) / 251 at element i of frame k)
    // with write_only_view::assign, at memcpy speed like the peer's vectorized torch writes: a
    // modulo and a conversion per element made the writers, not the pipeline, the measured limit.
    constexpr std::size_t period = 251, pattern_rows = 64;
    std::vector<float> pattern(period * pattern_rows);
    for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<float>(i % period) * (1.0f / 251.0f);
    // The consumer reads every float on a small team (as the peer's multi-threaded torch sum does),
    // with independent partial sums: one float chain of 33M additions alone took ~30 ms per frame.
    // UNIBUF_PIPELINE_READERS (default 8: 16 was measured slower on the H200, the readers then
    // compete with the writers and the DMA for the cores and host memory).
    const char* rv = std::getenv("UNIBUF_PIPELINE_READERS");
    const unsigned readers = std::clamp<unsigned>(rv != nullptr ? static_cast<unsigned>(std::strtoul(rv, nullptr, 10)) : 8u, 1u, 64u);
    writer_team reader_team(std::max(1u, readers - 1));
    std::vector<double> partial(readers + 1, 0.0);  // one spare: a team of one thread runs sum_slice(out, 1) too
    const auto sum_slice = [&](std::span<const float> out, unsigned r) {
        const std::size_t per = (out.size() + readers - 1) / readers, b = std::min(out.size(), r * per),
                          e = std::min(out.size(), b + per);
        float acc[8] = {};
        std::size_t i = b;
        for (; i + 8 <= e; i += 8)
            for (std::size_t j = 0; j < 8; ++j) acc[j] += out[i + j];
        for (; i < e; ++i) acc[0] += out[i];
        double t = 0;
        for (float a : acc) t += a;
        partial[r] = t;
    };

    pipeline_config cfg;
    cfg.input_elements = static_cast<std::size_t>(counts.input);
    cfg.output_elements = static_cast<std::size_t>(counts.output);
    cfg.writers = writers;
    cfg.in_path = var.in;
    cfg.out_path = var.out;
    cfg.max_in_flight = var.inflight;
    using P = pipeline<B, S, InBuf>;
    P p(
        env.gpu, env.notifier(), env.stage(), env.pool, cfg,
        [&](write_only_view<float> v, std::uint64_t k) {
            const std::size_t shift = static_cast<std::size_t>(k * 7) % period;
            const std::size_t chunk = period * (pattern_rows - 1);
            for (std::size_t i = 0; i < v.size(); i += chunk) {
                const std::size_t n = std::min(chunk, v.size() - i);
                v.assign(std::span<const float>(pattern.data() + (i + shift) % period, n), i);
            }
            written[k % written.size()].store(clock_type::now().time_since_epoch().count(), std::memory_order_release);
        },
        [&](InBuf& in, typename P::output_ring::buffer_type& out, std::uint64_t) { return conv(in, weights, bias, out); },
        [&](InBuf& in, typename P::device_output& out, std::uint64_t) { return conv(in, weights, bias, out); },
        [&](std::span<const float> out, std::uint64_t k) {
            const auto now = clock_type::now().time_since_epoch().count();
            latencies.push_back(static_cast<double>(now - written[k % written.size()].load(std::memory_order_acquire)) * 1e-6);
            if (!var.read) return;
            reader_team.run([&](unsigned r) { sum_slice(out, r + 1); }, [&] { sum_slice(out, 0); }, readers - 1);
            double s = 0;
            for (double x : partial) s += x;  // the consumer read every float
            sink = sink + static_cast<float>(s);
        });

    std::uint64_t total = 0;
    double seconds = 0, cpu = 0, bytes_in = 0, bytes_out = 0, overlap = 0, gpu_busy = 0, writer_busy = 0, consumer_busy = 0;
    for (auto _ : state) {
        const double c0 = cpu_seconds();
        const pipeline_stats s = env.run(p.run(frames));
        cpu += cpu_seconds() - c0;
        total += s.frames_out;
        seconds += s.seconds;
        bytes_in += static_cast<double>(s.bytes_in);
        bytes_out += static_cast<double>(s.bytes_out);
        overlap += s.overlap_efficiency;
        gpu_busy += s.gpu_busy_seconds;
        writer_busy += s.writer_busy_seconds / static_cast<double>(writers);
        consumer_busy += s.consumer_busy_seconds;
        state.SetIterationTime(s.seconds);
    }
    std::nth_element(latencies.begin(), latencies.begin() + static_cast<std::ptrdiff_t>(latencies.size() / 2), latencies.end());
    state.counters["fps"] = seconds > 0 ? static_cast<double>(total) / seconds : 0;
    state.counters["in_GBps"] = seconds > 0 ? bytes_in / seconds * 1e-9 : 0;
    state.counters["out_GBps"] = seconds > 0 ? bytes_out / seconds * 1e-9 : 0;
    state.counters["p50_latency_ms"] = latencies.empty() ? 0 : latencies[latencies.size() / 2];
    state.counters["cpu_ms_per_frame"] = total > 0 ? cpu / static_cast<double>(total) * 1e3 : 0;
    state.counters["overlap"] = static_cast<double>(state.iterations()) > 0 ? overlap / static_cast<double>(state.iterations()) : 0;
    // Busy fractions of the wall time: the GPU stage (a frame submitted and not yet seen done),
    // a writer (inside fill, averaged over the writers), the consumer (inside consume).
    state.counters["gpu_busy"] = seconds > 0 ? gpu_busy / seconds : 0;
    state.counters["writer_busy"] = seconds > 0 ? writer_busy / seconds : 0;
    state.counters["consumer_busy"] = seconds > 0 ? consumer_busy / seconds : 0;
    state.counters["slots"] = static_cast<double>(S);
    state.counters["writers"] = static_cast<double>(writers);
    state.counters["in_staged"] = p.paths().input == input_path::staged ? 1 : 0;
    state.counters["out_copied"] = p.paths().output == output_path::copied ? 1 : 0;
    state.SetLabel(std::string("in ") + to_string(p.paths().input) + " (" + p.paths().input_reason + "; slot: " +
                   p.input_report().reason + ") | out " + to_string(p.paths().output) + " (" + p.paths().output_reason +
                   "; slot: " + p.output_report().reason + ")");
}

template <class Env, class InBuf>
void by_slots(benchmark::State& state, const workload& wl, const variant& var) {
    switch (state.range(0)) {
        case 2: run_pipeline<Env, 2, InBuf>(state, wl, var); break;
        case 3: run_pipeline<Env, 3, InBuf>(state, wl, var); break;
        case 4: run_pipeline<Env, 4, InBuf>(state, wl, var); break;
        case 6: run_pipeline<Env, 6, InBuf>(state, wl, var); break;
        case 8: run_pipeline<Env, 8, InBuf>(state, wl, var); break;
        default: state.SkipWithError("slots must be 2, 3, 4, 6 or 8");
    }
}

template <class Env>
void bench(benchmark::State& state, const workload* wl) {
    using B = typename Env::backend;
    variant var;
    var.writers = static_cast<std::size_t>(state.range(1));
    constexpr input_path ins[] = {input_path::automatic, input_path::direct, input_path::staged, input_path::direct};
    constexpr output_path outs[] = {output_path::automatic, output_path::direct, output_path::copied};
    const auto in = static_cast<std::size_t>(state.range(2)), out = static_cast<std::size_t>(state.range(3));
    if (in > 3 || out > 2) {
        state.SkipWithError("in must be 0..3, out 0..2");
        return;
    }
    var.in = ins[in];
    var.out = outs[out];
    var.inflight = static_cast<std::size_t>(state.range(4));
    var.xfer = state.range(5) != 0;
    var.read = state.range(6) != 0;
    if (in == 3) {
        by_slots<Env, host_input<B>>(state, *wl, var);
    } else {
        by_slots<Env, upload_buffer<float, B>>(state, *wl, var);
    }
}

void arguments(benchmark::internal::Benchmark* b) {
    b->ArgNames({"slots", "writers", "in", "out", "inflight", "xfer", "read"});
    if (const char* list = std::getenv("UNIBUF_PIPELINE_ARGS"); list != nullptr && *list != '\0') {
        // "s,w,in,out,inflight,xfer,read;..." (a device run's own selection)
        std::vector<std::int64_t> a;
        for (const char* c = list;; ++c) {
            if (*c >= '0' && *c <= '9') {
                if (a.empty() || c == list || c[-1] == ',' || c[-1] == ';') a.push_back(0);
                a.back() = a.back() * 10 + (*c - '0');
            }
            if (*c == ';' || *c == '\0') {
                if (a.size() == 7) b->Args(a);
                a.clear();
                if (*c == '\0') break;
            }
        }
    } else if (quick()) {
        b->Args({2, 1, 0, 0, 0, 0, 1})->Args({3, 2, 2, 2, 2, 1, 1})->Args({2, 2, 3, 1, 0, 0, 0});
    } else {
        for (int s : {2, 3, 4, 6, 8}) b->Args({s, 8, 0, 0, 0, 0, 1});   // fps against slots
        for (int t : {1, 2, 4, 8, 16}) b->Args({4, t, 0, 0, 0, 0, 1});  // fps against writers
        for (int i : {1, 2, 3})
            for (int o : {1, 2}) b->Args({4, 8, i, o, 0, 0, 1});        // each path
        b->Args({4, 8, 0, 0, 3, 0, 1});                                 // at most 3 frames in flight
        b->Args({4, 8, 0, 2, 0, 1, 1});                                 // copies on the transfer queue
        b->Args({4, 8, 0, 0, 0, 0, 0});                                 // the consumer does not read
    }
    b->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(quick() ? 1 : 3);
}

// The bare rates of the same call: one frame's copy device -> host (readback_buffer) and host
// (write-combined system memory) -> device, and conv2d alone writing device / host memory.
void bound(benchmark::State& state, const workload* wl) {
    vulkan_env& env = vulkan_env::get();
    env.gpu.set_copy_queue(copy_queue::compute);
    const conv2d_desc d = desc_of(*wl);
    conv2d<vulkan_backend> conv(env.gpu, d);
    const conv2d_sizes counts = conv.sizes();
    const auto n_in = static_cast<std::size_t>(counts.input), n_out = static_cast<std::size_t>(counts.output);
    basic_buffer<float, vulkan_backend, access::read_write, coherence::coherent, placement::device, sync::fenced> dev_in(env.gpu, n_in),
        dev_out(env.gpu, n_out);
    readback_buffer<float, vulkan_backend> host_out(env.gpu, n_out);
    host_input<vulkan_backend> host_in(env.gpu, n_in);
    device_buffer<float, vulkan_backend> weights(env.gpu, static_cast<std::size_t>(counts.weights));
    device_buffer<float, vulkan_backend> bias(env.gpu, static_cast<std::size_t>(counts.bias));
    weights.fill(0.01f);
    bias.fill(0.5f);
    constexpr int reps = 20;
    const auto timed = [&](auto&& op) {
        vulkan_backend::fence f{};
        (void)env.gpu.wait_idle();
        const auto t0 = clock_type::now();
        for (int i = 0; i < reps; ++i) f = op();
        (void)env.gpu.wait(f, std::chrono::seconds(30));
        return std::chrono::duration<double>(clock_type::now() - t0).count() / reps;
    };
    double d2h = 0, h2d = 0, conv_dev = 0, conv_host = 0;
    for (auto _ : state) {
        d2h = timed([&] { return host_out.copy_from(dev_out); });
        h2d = timed([&] { return dev_in.copy_from(host_in); });
        conv_dev = timed([&] { return conv(dev_in, weights, bias, dev_out); });
        conv_host = timed([&] { return conv(dev_in, weights, bias, host_out); });
        state.SetIterationTime(d2h + h2d + conv_dev + conv_host);
    }
    state.counters["d2h_GBps"] = static_cast<double>(n_out * sizeof(float)) / d2h * 1e-9;
    state.counters["h2d_GBps"] = static_cast<double>(n_in * sizeof(float)) / h2d * 1e-9;
    state.counters["conv_dev_ms"] = conv_dev * 1e3;
    state.counters["conv_host_ms"] = conv_host * 1e3;
    state.counters["conv_host_out_GBps"] = static_cast<double>(n_out * sizeof(float)) / conv_host * 1e-9;
    state.counters["bound_fps"] = 1.0 / std::max(d2h, h2d);
}

const int registered = [] {
    for (const workload& w : workloads) {
        benchmark::RegisterBenchmark((std::string("pipeline/vulkan/") + w.name).c_str(), bench<vulkan_env>, &w)->Apply(arguments);
        benchmark::RegisterBenchmark((std::string("pipeline/opengl/") + w.name).c_str(), bench<gl_env>, &w)->Apply(arguments);
        benchmark::RegisterBenchmark((std::string("pipeline_bound/vulkan/") + w.name).c_str(), bound, &w)
            ->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(quick() ? 1 : 3);
    }
    return 0;
}();

} // namespace

BENCHMARK_MAIN();
