// unibuf-soak: runs the pipeline, pool churn with random sizes and producer fills together for a
// given time and proves that nothing grows: once per interval it prints frames, fps, the process's
// resident memory (RSS), device memory in use (the backend's own accounting; on Vulkan also what
// VK_EXT_memory_budget says of heap 0 where the device has it), the churn pool's bytes in use and
// fragmentation, and the fills done. At the end it fails (status 1) when, after the warm-up,
//   - RSS rose more than --max-rss-growth MiB above its highest warm-up value,
//   - device memory rose more than --max-device-growth MiB above its highest warm-up value, or
//   - throughput fell: the median fps of the last third of the intervals after the warm-up is
//     below (1 - --max-fps-drop) x the median of the first third,
// or when any frame, pool buffer or fill read back wrong (every one is checked).
//
//   unibuf-soak [--backend host|vulkan] [--seconds T] [--interval S] [--warmup S] [--size WxH]
//               [--max-rss-growth MiB] [--max-device-growth MiB] [--max-fps-drop F]
//               [--csv FILE] [--validate]
//
// The pipeline runs rounds of 64 frames through one pipeline object (C3 -> K8 3x3 conv2d on
// Vulkan, a host kernel on the host backend), so a leak per run shows as growth too.
#include <unibuf/async/pipeline.hpp>
#include <unibuf/unibuf.hpp>
#if UNIBUF_SOAK_VULKAN
#include <unibuf/async/vulkan/fence_waiter.hpp>
#include <unibuf/ops/vulkan/conv2d.hpp>
#include <unibuf/vulkan.hpp>

#include "vulkan_validation.hpp"
#if defined(UNIBUF_EXAMPLE_KEEP_DRIVER_LOADED)
#include "../test/opengl/keep_libraries.hpp"
#endif
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace unibuf;

namespace {

struct options {
    std::string backend = "vulkan";
    double seconds = 120, interval = 5, warmup = 30;
    std::uint32_t w = 256, h = 192;
    double max_rss_growth_mib = 48, max_device_growth_mib = 1, max_fps_drop = 0.5;
    std::string csv;
    bool validate = false;
};

std::optional<options> parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--validate") {
            o.validate = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "unibuf-soak: %s needs a value (or is unknown)\n", argv[i]);
            return std::nullopt;
        }
        const std::string v = argv[++i];
        try {
            if (a == "--backend") o.backend = v;
            else if (a == "--seconds") o.seconds = std::stod(v);
            else if (a == "--interval") o.interval = std::stod(v);
            else if (a == "--warmup") o.warmup = std::stod(v);
            else if (a == "--max-rss-growth") o.max_rss_growth_mib = std::stod(v);
            else if (a == "--max-device-growth") o.max_device_growth_mib = std::stod(v);
            else if (a == "--max-fps-drop") o.max_fps_drop = std::stod(v);
            else if (a == "--csv") o.csv = v;
            else if (a == "--size") {
                const auto x = v.find('x');
                if (x == std::string::npos) throw std::invalid_argument(v);
                o.w = static_cast<std::uint32_t>(std::stoul(v.substr(0, x)));
                o.h = static_cast<std::uint32_t>(std::stoul(v.substr(x + 1)));
            } else {
                std::fprintf(stderr, "unibuf-soak: unknown argument %s\n", argv[i - 1]);
                return std::nullopt;
            }
        } catch (const std::exception&) {
            std::fprintf(stderr, "unibuf-soak: bad value '%s' for %s\n", v.c_str(), argv[i - 1]);
            return std::nullopt;
        }
    }
    if (o.seconds <= 0 || o.interval <= 0 || o.warmup < 0 || o.warmup + 3 * o.interval > o.seconds || o.w == 0 ||
        o.h == 0) {
        std::fprintf(stderr, "unibuf-soak: need seconds > warmup + 3 intervals and a non-empty size\n");
        return std::nullopt;
    }
    return o;
}

std::uint64_t rss_bytes() {
    std::ifstream f("/proc/self/statm");
    std::uint64_t pages = 0, resident = 0;
    f >> pages >> resident;
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

float pixel(std::size_t i, std::uint64_t k) { return static_cast<float>((i * 31 + k * 17) % 251) / 251.0f; }

// What the workers count; read by the sampler.
struct counters {
    std::atomic<std::uint64_t> frames{0}, pool_ops{0}, fills{0}, errors{0};
    std::atomic<bool> stop{false};
    std::string first_error;
    std::mutex m;
    void fail(const std::string& what) {
        std::lock_guard lk(m);
        if (first_error.empty()) first_error = what;
        errors.fetch_add(1);
        stop.store(true);
    }
};

struct sample {
    double t = 0;
    std::uint64_t frames = 0;
    double fps = 0;
    std::uint64_t rss = 0, device = 0, heap_available = 0, pool_in_use = 0, fills = 0, pool_ops = 0;
    double fragmentation = 0;
};

// Pool churn: random sizes, some kept alive, each buffer written and read back.
template <class B>
void churn(B& gpu, counters& c, buffer_pool<B, access::read_write>& pool) {
    std::mt19937_64 rng(20261129);
    std::vector<typename buffer_pool<B, access::read_write>::template buffer<float>> live;
    std::vector<float> v;
    while (!c.stop.load()) {
        const std::size_t n = 1 + static_cast<std::size_t>(rng() % (64 * 1024));
        std::error_code ec;
        auto b = pool.template try_acquire<float>(n, ec);
        if (!b) {  // full: free some and go on (the pool is sized so that this is rare)
            live.clear();
            continue;
        }
        v.assign(n, 0.0f);
        const float salt = static_cast<float>(rng() % 1000);
        v.front() = salt;
        v.back() = salt + 1;
        b->write(v);
        const auto got = b->to_vector();
        if ((n > 1 && got.front() != salt) || got.back() != salt + 1) c.fail("pool churn: a buffer of " + std::to_string(n) + " floats read back wrong");
        if (rng() % 3 == 0) live.push_back(std::move(*b));
        if (live.size() > 24) live.erase(live.begin() + static_cast<std::ptrdiff_t>(rng() % live.size()));
        c.pool_ops.fetch_add(1);
    }
    (void)gpu;
}

// Producer fills of a device buffer by 3 writer threads, every 8th one read back and checked.
template <class B>
void fills(B& gpu, counters& c) {
    producer<B> prod(gpu, 3);
    constexpr std::size_t n = 2 * 1024 * 1024;
    device_buffer<float, B> target(gpu, n);
    for (std::uint64_t round = 0; !c.stop.load(); ++round) {
        (void)prod.fill(target, [round](write_only_view<float> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = pixel(first + i, round);
        });
        if (round % 8 == 0) {
            const auto got = target.to_vector();
            for (std::size_t i = 0; i < n; i += 4099)
                if (got[i] != pixel(i, round)) {
                    c.fail("producer fill " + std::to_string(round) + ": element " + std::to_string(i) + " wrong");
                    break;
                }
        }
        c.fills.fetch_add(1);
    }
}

template <class Env>
int soak(Env& env, const options& o) {
    using B = typename Env::backend;
    counters c;
    buffer_pool<B, access::read_write> pool(env.gpu, pool_config::with_bytes(std::uint64_t{8} << 20));
    std::thread churner([&] {
        try {
            churn(env.gpu, c, pool);
        } catch (const std::exception& e) {
            c.fail(std::string("pool churn: ") + e.what());
        }
    });
    std::thread filler([&] {
        try {
            fills(env.gpu, c);
        } catch (const std::exception& e) {
            c.fail(std::string("producer: ") + e.what());
        }
    });

    std::vector<sample> samples;
    std::thread sampler([&] {
        const auto t0 = std::chrono::steady_clock::now();
        std::uint64_t last_frames = 0;
        double last_t = 0;
        std::FILE* csv = o.csv.empty() ? nullptr : std::fopen(o.csv.c_str(), "w");
        if (csv) std::fprintf(csv, "seconds,frames,fps,rss_bytes,device_bytes,heap0_available,pool_bytes,fragmentation,fills,pool_ops\n");
        std::printf("%8s %9s %8s %9s %11s %12s %11s %6s %7s %9s\n", "t s", "frames", "fps", "RSS MiB", "device MiB",
                    "heap0 avail", "pool MiB", "frag", "fills", "pool ops");
        for (int i = 1; !c.stop.load(); ++i) {
            const auto next = t0 + std::chrono::duration<double>(o.interval * i);
            while (!c.stop.load() && std::chrono::steady_clock::now() < next)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            if (c.stop.load()) break;
            sample s;
            s.t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            s.frames = c.frames.load();
            s.fps = static_cast<double>(s.frames - last_frames) / (s.t - last_t);
            last_frames = s.frames;
            last_t = s.t;
            s.rss = rss_bytes();
            s.device = env.device_bytes();
            s.heap_available = env.heap0_available();
            const pool_stats ps = pool.stats();
            s.pool_in_use = ps.bytes_in_use;
            s.fragmentation = ps.fragmentation;
            s.fills = c.fills.load();
            s.pool_ops = c.pool_ops.load();
            samples.push_back(s);
            std::printf("%8.1f %9llu %8.1f %9.1f %11.2f %12s %11.2f %6.3f %7llu %9llu\n", s.t,
                        static_cast<unsigned long long>(s.frames), s.fps, static_cast<double>(s.rss) / 1048576.0,
                        static_cast<double>(s.device) / 1048576.0,
                        s.heap_available == 0 ? "-" : std::to_string(s.heap_available >> 20).append(" MiB").c_str(),
                        static_cast<double>(s.pool_in_use) / 1048576.0, s.fragmentation,
                        static_cast<unsigned long long>(s.fills), static_cast<unsigned long long>(s.pool_ops));
            std::fflush(stdout);
            if (csv) {
                std::fprintf(csv, "%.3f,%llu,%.3f,%llu,%llu,%llu,%llu,%.4f,%llu,%llu\n", s.t,
                             static_cast<unsigned long long>(s.frames), s.fps, static_cast<unsigned long long>(s.rss),
                             static_cast<unsigned long long>(s.device), static_cast<unsigned long long>(s.heap_available),
                             static_cast<unsigned long long>(s.pool_in_use), s.fragmentation,
                             static_cast<unsigned long long>(s.fills), static_cast<unsigned long long>(s.pool_ops));
                std::fflush(csv);
            }
            if (s.t >= o.seconds) c.stop.store(true);
        }
        if (csv) std::fclose(csv);
    });

    // The pipeline: rounds of frames through one pipeline object, every frame checked.
    try {
        env.run_pipeline(o, c);
    } catch (const std::exception& e) {
        c.fail(std::string("pipeline: ") + e.what());
    }
    c.stop.store(true);
    sampler.join();
    churner.join();
    filler.join();
    env.check_clean();

    if (c.errors.load() != 0) {
        std::printf("FAILED: %s\n", c.first_error.c_str());
        return 1;
    }
    // The verdict over the samples after the warm-up.
    std::vector<sample> warm, after;
    for (const auto& s : samples) (s.t <= o.warmup ? warm : after).push_back(s);
    if (warm.empty() || after.size() < 3) {
        std::printf("FAILED: too few samples after the warm-up (%zu)\n", after.size());
        return 1;
    }
    auto peak = [](const std::vector<sample>& v, std::uint64_t sample::*m) {
        std::uint64_t x = 0;
        for (const auto& s : v) x = std::max(x, s.*m);
        return x;
    };
    auto median_fps = [](std::vector<sample> v) {
        std::sort(v.begin(), v.end(), [](const sample& a, const sample& b) { return a.fps < b.fps; });
        return v[v.size() / 2].fps;
    };
    const double rss_growth = (static_cast<double>(peak(after, &sample::rss)) - static_cast<double>(peak(warm, &sample::rss))) / 1048576.0;
    const double dev_growth = (static_cast<double>(peak(after, &sample::device)) - static_cast<double>(peak(warm, &sample::device))) / 1048576.0;
    const std::size_t third = after.size() / 3;
    const double fps_first = median_fps({after.begin(), after.begin() + static_cast<std::ptrdiff_t>(third)});
    const double fps_last = median_fps({after.end() - static_cast<std::ptrdiff_t>(third), after.end()});
    const double ratio = fps_first > 0 ? fps_last / fps_first : 0;
    std::printf("after the %.0f s warm-up: RSS %+.1f MiB (bound %.0f), device memory %+.2f MiB (bound %.1f), fps of the "
                "last third / first third %.3f (bound %.2f); %llu frames, %llu fills, %llu pool operations, all checked\n",
                o.warmup, rss_growth, o.max_rss_growth_mib, dev_growth, o.max_device_growth_mib, ratio, 1 - o.max_fps_drop,
                static_cast<unsigned long long>(c.frames.load()), static_cast<unsigned long long>(c.fills.load()),
                static_cast<unsigned long long>(c.pool_ops.load()));
    const bool ok = rss_growth <= o.max_rss_growth_mib && dev_growth <= o.max_device_growth_mib && ratio >= 1 - o.max_fps_drop;
    std::printf("%s\n", ok ? "soak: nothing grew, throughput held" : "FAILED: see the bounds above");
    return ok ? 0 : 1;
}

// The pipeline part of the soak, for any backend environment: writers draw frames, the GPU stage
// is `stage`, the consumer checks every frame against `expect`.
template <class B, class Env, class Stage, class Expect>
void pipeline_rounds(Env& env, const options& o, counters& c, std::size_t in_elems, std::size_t out_elems, Stage stage,
                     Expect expect) {
    pipeline_config cfg;
    cfg.input_elements = in_elems;
    cfg.output_elements = out_elems;
    cfg.writers = 2;
    cfg.wait_timeout = std::chrono::seconds(60);  // a bound against hangs, generous for loaded CI machines
    using P = pipeline<B, 3>;
    std::uint64_t base = 0;  // the frame index of run r's frame k is base + k
    std::vector<float> want(out_elems);
    P p(
        env.gpu, env.notifier(), env.stage(), env.pool, cfg,
        [&base](write_only_view<float> v, std::uint64_t k) {
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = pixel(i, base + k);
        },
        [&stage](typename P::input_ring::buffer_type& in, typename P::output_ring::buffer_type& out, std::uint64_t) {
            return stage(in, out);
        },
        [&](std::span<const float> out, std::uint64_t k) {
            expect(base + k, want);
            for (std::size_t i = 0; i < out.size(); i += 97)
                if (std::abs(out[i] - want[i]) > 1e-4f * (1.0f + std::abs(want[i])))
                    throw std::runtime_error("frame " + std::to_string(base + k) + " element " + std::to_string(i) +
                                             " is " + std::to_string(out[i]) + ", expected " + std::to_string(want[i]));
            c.frames.fetch_add(1);
        });
    constexpr std::uint64_t round = 64;
    while (!c.stop.load()) {
        (void)env.run(p.run(round));
        base += round;
    }
    (void)o;
}

struct host_env {
    using backend = host_backend;
    host_backend gpu;
    thread_pool pool{3};
    host_backend& notifier() { return gpu; }
    thread_pool& stage() { return pool; }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    std::uint64_t device_bytes() const { return gpu.bytes_in_use(); }
    std::uint64_t heap0_available() const { return 0; }
    void check_clean() {
        if (const std::string e = gpu.device_error(); !e.empty()) throw std::runtime_error("host backend: " + e);
    }
    void run_pipeline(const options& o, counters& c) {
        const std::size_t n = std::size_t{o.w} * o.h * 3;
        const host_kernel scale = [](const host_invocation& in) {
            auto x = in.as<const float>(0);
            auto y = in.as<float>(1);
            for (std::size_t i = 0; i < y.size(); ++i) y[i] = 0.5f * x[i] + 1.0f;
        };
        pipeline_rounds<host_backend>(
            *this, o, c, n, n,
            [this, &scale](auto& in, auto& out) {
                return dispatch(gpu, scale, {1}, {}, bind(in, usage::read), bind(out, usage::write));
            },
            [n](std::uint64_t k, std::vector<float>& want) {
                for (std::size_t i = 0; i < n; ++i) want[i] = 0.5f * pixel(i, k) + 1.0f;
            });
    }
};

#if UNIBUF_SOAK_VULKAN
struct vulkan_env {
    using backend = vulkan_backend;
    explicit vulkan_env(bool validate) : gpu(unibuf_example::make_vulkan_context(validate)) {
#if defined(UNIBUF_EXAMPLE_KEEP_DRIVER_LOADED)
        unibuf_test::keep_driver_libraries_loaded();
#endif
    }
    vulkan_backend gpu;
    vulkan_fence_waiter waiter{gpu};
    thread_pool pool{3};
    vulkan_fence_waiter& notifier() { return waiter; }
    thread_pool& stage() { return pool; }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    std::uint64_t device_bytes() const {
        std::uint64_t sum = 0;
        for (std::size_t h = 0; h < gpu.context().capabilities().memory.heaps.size(); ++h) sum += gpu.bytes_in_use(h);
        return sum;
    }
    std::uint64_t heap0_available() const {
        if (!gpu.context().capabilities().memory_budget) return 0;
        const auto b = gpu.context().budget({});
        return b.available.empty() ? 0 : b.available[0];
    }
    void check_clean() { unibuf_example::throw_on_vulkan_messages(gpu); }
    void run_pipeline(const options& o, counters& c) {
        conv2d_desc d;
        d.n = 1;
        d.c = 3;
        d.h = o.h;
        d.w = o.w;
        d.k = 8;
        d.r = d.s = 3;
        d.pad_top = d.pad_bottom = d.pad_left = d.pad_right = 1;
        d.bias = true;
        conv2d<vulkan_backend> conv(gpu, d);
        const conv2d_sizes z = conv.sizes();
        std::vector<float> wv(static_cast<std::size_t>(z.weights)), bv(static_cast<std::size_t>(z.bias));
        for (std::size_t i = 0; i < wv.size(); ++i) wv[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.125f;
        for (std::size_t i = 0; i < bv.size(); ++i) bv[i] = 0.25f * static_cast<float>(i);
        device_buffer<float, vulkan_backend> weights(gpu, wv.size()), bias(gpu, bv.size());
        weights.write(wv);
        bias.write(bv);
        pipeline_rounds<vulkan_backend>(
            *this, o, c, static_cast<std::size_t>(z.input), static_cast<std::size_t>(z.output),
            [&](auto& i, auto& out) { return conv(i, weights, bias, out); },
            [&](std::uint64_t k, std::vector<float>& want) {
                // The checked outputs only (every 97th), each summed directly: the check must not be
                // what limits the soak's frame rate.
                const std::size_t plane = std::size_t{d.h} * d.w;
                for (std::size_t o = 0; o < want.size(); o += 97) {
                    const std::size_t kk = o / plane, y = o % plane / d.w, x = o % d.w;
                    double sum = bv[kk];
                    for (std::size_t ci = 0; ci < d.c; ++ci)
                        for (std::size_t r = 0; r < 3; ++r)
                            for (std::size_t s = 0; s < 3; ++s) {
                                const long iy = static_cast<long>(y + r) - 1, ix = static_cast<long>(x + s) - 1;
                                if (iy < 0 || ix < 0 || iy >= static_cast<long>(d.h) || ix >= static_cast<long>(d.w)) continue;
                                sum += static_cast<double>(pixel(ci * plane + static_cast<std::size_t>(iy) * d.w + static_cast<std::size_t>(ix), k)) *
                                       wv[((kk * d.c + ci) * 3 + r) * 3 + s];
                            }
                    want[o] = static_cast<float>(sum);
                }
            });
    }

};
#endif

} // namespace

int main(int argc, char** argv) {
    const std::optional<options> o = parse(argc, argv);
    if (!o) return 2;
    try {
        std::printf("unibuf-soak: %s backend, %.0f s (warm-up %.0f s, a sample every %.0f s): pipeline %ux%u frames, "
                    "pool churn, producer fills, all at once\n",
                    o->backend.c_str(), o->seconds, o->warmup, o->interval, o->w, o->h);
        if (o->backend == "host") {
            host_env env;
            return soak(env, *o);
        }
#if UNIBUF_SOAK_VULKAN
        if (o->backend == "vulkan") {
            vulkan_env env(o->validate);
            return soak(env, *o);
        }
#endif
        std::fprintf(stderr, "unibuf-soak: backend '%s' is not built here\n", o->backend.c_str());
        return 2;
    } catch (const std::exception& e) {
        std::printf("FAILED: %s\n", e.what());
        return 1;
    }
}
