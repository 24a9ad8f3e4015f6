// The main demo: unibuf's coroutine pipeline end to end.
//
//   writer threads ──fill(view, k)──▶ input slots ──conv2d (GPU)──▶ output slots ──▶ consumer (in order)
//
// Writer threads draw a moving pattern (rotating stripes, a travelling disc, a scrolling
// checkerboard: one per colour channel) straight into the input slots; the GPU stage runs an edge
// filter (Sobel x, Sobel y and Laplacian of the luminance: three output channels) or a Gaussian
// blur as a 3x3 conv2d; the consumer takes every result in frame order. Every k-th frame is
// recomputed on the CPU (conv2d_reference) and compared within the fp32 rounding bound; one input
// frame and its output are written as PNG files (and side by side in a third). A live progress
// line shows frames, fps, GB/s each way and the frames verified. Exits 1 when a checked frame is
// wrong (or, with --validate, when the Vulkan validation layers or the GL debug output reported
// anything).
//
//   unibuf-pipeline-demo [--backend vulkan|opengl|host] [--size WxH] [--frames N] [--writers T]
//                        [--slots 2|3|4|8] [--check-every K] [--filter edge|blur] [--out DIR]
//                        [--validate]
//
// Without --size / --frames it sizes itself from the device: 1920x1080 on a GPU; on a CPU driver
// (lavapipe, llvmpipe) or the host backend a size that finishes in about 20 s on a slow CI machine.
#include <unibuf/unibuf.hpp>
#if UNIBUF_DEMO_VULKAN
#include <unibuf/vulkan.hpp>

#include "vulkan_validation.hpp"
#endif
#if UNIBUF_DEMO_OPENGL
#include <unibuf/backend/gl/debug.hpp>
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/opengl.hpp>
#endif
#if defined(UNIBUF_EXAMPLE_KEEP_DRIVER_LOADED)  // set by CMake in ASan builds only
#include "../test/opengl/keep_libraries.hpp"
#endif

#include "demo_png.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <numbers>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;
using steady = std::chrono::steady_clock;

// ---- options ----------------------------------------------------------------------------------

struct options {
    std::string backend;               // empty: the first built of vulkan, opengl, host
    std::uint32_t width = 0, height = 0;  // 0: chosen from the device
    std::uint64_t frames = 0;          // 0: chosen from the device
    std::size_t writers = 0;           // 0: from the CPU count
    std::size_t slots = 3;
    std::uint64_t check_every = 0;     // 0: chosen (about 10 checks a run)
    std::string filter = "edge";
    std::string out_dir = ".";
    bool validate = false;
    std::optional<std::uint64_t> corrupt;  // test of the check itself: this frame's copy is altered
};

void usage(std::FILE* to) {
    std::fputs("usage: unibuf-pipeline-demo [--backend vulkan|opengl|host] [--size WxH] [--frames N]\n"
               "                            [--writers T] [--slots 2|3|4|8] [--check-every K]\n"
               "                            [--filter edge|blur] [--out DIR] [--validate]\n"
               "  --size, --frames   default: from the device (1920x1080 on a GPU, smaller on CPU drivers)\n"
               "  --check-every K    recompute every K-th frame on the CPU (default: about 10 checks)\n"
               "  --out DIR          where pipeline-input.png, pipeline-output.png and pipeline-demo.png\n"
               "                     (both side by side) go (default .)\n"
               "  --validate         Vulkan validation + synchronization validation / a GL debug context;\n"
               "                     any message fails the run\n"
               "  --corrupt K        alter one output float of checked frame K before the check (to see\n"
               "                     the check fail: exit status 1)\n",
               to);
}

template <class T>
bool parse_number(std::string_view s, T& out) {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

// Returns the options, or nothing after printing what was wrong.
std::optional<options> parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const auto value = [&]() -> std::optional<std::string_view> {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", argv[i]);
                return std::nullopt;
            }
            return std::string_view(argv[++i]);
        };
        const auto bad = [&](std::string_view what, std::string_view v, const char* valid) {
            std::fprintf(stderr, "%.*s: '%.*s' is not valid; %s\n", int(what.size()), what.data(), int(v.size()),
                         v.data(), valid);
            return std::nullopt;
        };
        if (a == "--help" || a == "-h") {
            usage(stdout);
            std::exit(0);
        } else if (a == "--validate") {
            o.validate = true;
        } else if (a == "--backend" || a == "--size" || a == "--frames" || a == "--writers" || a == "--slots" ||
                   a == "--check-every" || a == "--filter" || a == "--out" || a == "--corrupt") {
            const auto v = value();
            if (!v) return std::nullopt;
            if (a == "--backend") {
                if (*v != "vulkan" && *v != "opengl" && *v != "host") return bad(a, *v, "vulkan, opengl or host");
                o.backend = std::string(*v);
            } else if (a == "--size") {
                const auto x = v->find('x');
                if (x == std::string_view::npos || !parse_number(v->substr(0, x), o.width) ||
                    !parse_number(v->substr(x + 1), o.height) || o.width == 0 || o.height == 0 || o.width > 16384 ||
                    o.height > 16384)
                    return bad(a, *v, "WxH, each side 1 to 16384");
            } else if (a == "--frames") {
                if (!parse_number(*v, o.frames) || o.frames == 0) return bad(a, *v, "at least 1");
            } else if (a == "--writers") {
                if (!parse_number(*v, o.writers) || o.writers == 0 || o.writers > 256) return bad(a, *v, "1 to 256");
            } else if (a == "--slots") {
                if (!parse_number(*v, o.slots) || (o.slots != 2 && o.slots != 3 && o.slots != 4 && o.slots != 8))
                    return bad(a, *v, "2, 3, 4 or 8");
            } else if (a == "--check-every") {
                if (!parse_number(*v, o.check_every) || o.check_every == 0) return bad(a, *v, "at least 1");
            } else if (a == "--corrupt") {
                std::uint64_t k = 0;
                if (!parse_number(*v, k)) return bad(a, *v, "a frame index");
                o.corrupt = k;
            } else if (a == "--filter") {
                if (*v != "edge" && *v != "blur") return bad(a, *v, "edge or blur");
                o.filter = std::string(*v);
            } else {
                o.out_dir = std::string(*v);
            }
        } else {
            std::fprintf(stderr, "unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return std::nullopt;
        }
    }
    return o;
}

// ---- the frames: a moving pattern, one motif per channel --------------------------------------

constexpr std::size_t sine_steps = 4096;
const std::array<float, sine_steps>& sine_table() {
    static const std::array<float, sine_steps> t = [] {
        std::array<float, sine_steps> s{};
        for (std::size_t i = 0; i < sine_steps; ++i)
            s[i] = static_cast<float>(0.5 + 0.5 * std::sin(2.0 * std::numbers::pi * static_cast<double>(i) / sine_steps));
        return s;
    }();
    return t;
}

// Row y of channel c of frame k (W floats). Deterministic: the verifier redraws the same frame.
void draw_row(std::uint32_t c, std::uint32_t y, std::uint64_t k, std::uint32_t w, std::uint32_t h, std::span<float> row) {
    const double t = static_cast<double>(k % 100000) * 0.035;
    const double fx = static_cast<double>(w), fy = static_cast<double>(h);
    if (c == 0) {  // stripes turning about the centre
        const auto& sine = sine_table();
        const double period = std::max(8.0, fy / 7.0);
        const double ca = std::cos(t) * sine_steps / period, sa = std::sin(t) * sine_steps / period;
        const double base = (static_cast<double>(y) - fy / 2) * sa - (fx / 2) * ca + 1e9;
        for (std::uint32_t x = 0; x < w; ++x) {
            const auto u = static_cast<std::uint64_t>(base + static_cast<double>(x) * ca);
            row[x] = sine[u % sine_steps];
        }
    } else if (c == 1) {  // a disc travelling on a Lissajous path over a vertical ramp
        const double cx = fx * (0.5 + 0.3 * std::cos(t * 1.3)), cy = fy * (0.5 + 0.3 * std::sin(t * 2.1));
        const double r2 = (fy / 5) * (fy / 5), dy = static_cast<double>(y) - cy;
        const float ramp = 0.1f + 0.25f * static_cast<float>(y) / static_cast<float>(h);
        for (std::uint32_t x = 0; x < w; ++x) {
            const double dx = static_cast<double>(x) - cx;
            row[x] = dx * dx + dy * dy < r2 ? 0.95f : ramp;
        }
    } else {  // a checkerboard scrolling diagonally
        const std::uint64_t cell = std::max<std::uint64_t>(4, h / 9);
        const std::uint64_t yy = (y + 2 * k) / cell;
        for (std::uint32_t x = 0; x < w; ++x) row[x] = ((x + 3 * k) / cell + yy) % 2 == 0 ? 0.8f : 0.15f;
    }
}

void draw_frame(const conv2d_desc& d, std::uint64_t k, std::span<float> out) {
    for (std::uint32_t c = 0; c < d.c; ++c)
        for (std::uint32_t y = 0; y < d.h; ++y)
            draw_row(c, y, k, d.w, d.h, out.subspan((std::size_t{c} * d.h + y) * d.w, d.w));
}

// ---- the filter: 3 -> 3 channels, 3x3 ------------------------------------------------------

struct filter {
    std::vector<float> weights;  // K x C x 3 x 3
    std::vector<float> bias;     // K
    demo::tone tone;
    const char* what;
};

filter make_filter(const std::string& name) {
    filter f;
    f.weights.assign(3 * 3 * 9, 0.0f);
    f.bias.assign(3, 0.0f);
    const auto set = [&](std::uint32_t k, std::uint32_t c, const std::array<float, 9>& taps, float scale) {
        for (std::size_t i = 0; i < 9; ++i) f.weights[(k * 3 + c) * 9 + i] = taps[i] * scale;
    };
    if (name == "blur") {
        const std::array<float, 9> gauss{1, 2, 1, 2, 4, 2, 1, 2, 1};
        for (std::uint32_t c = 0; c < 3; ++c) set(c, c, gauss, 1.0f / 16.0f);
        f.tone = demo::tone::unit;
        f.what = "Gaussian blur 3x3 on each channel (K=3, C=3)";
    } else {
        const std::array<float, 9> sobel_x{-1, 0, 1, -2, 0, 2, -1, 0, 1};
        const std::array<float, 9> sobel_y{-1, -2, -1, 0, 0, 0, 1, 2, 1};
        const std::array<float, 9> laplace{0, -1, 0, -1, 4, -1, 0, -1, 0};
        const std::array<float, 3> luma{0.299f, 0.587f, 0.114f};
        for (std::uint32_t c = 0; c < 3; ++c) {
            set(0, c, sobel_x, luma[c]);
            set(1, c, sobel_y, luma[c]);
            set(2, c, laplace, luma[c]);
        }
        f.tone = demo::tone::signed_;
        f.what = "edges of the luminance: R = Sobel x, G = Sobel y, B = Laplacian (K=3, C=3)";
    }
    return f;
}

// ---- the CPU check, off the consumer's thread ------------------------------------------------

// Checked frames go to one verifier thread through a queue of at most two: a slow check slows the
// consumer (and so the pipeline) instead of piling up copies.
class verifier {
public:
    verifier(const conv2d_desc& d, const filter& f, std::uint64_t keep_frame)
        : d_(d), f_(f), keep_(keep_frame), thread_([this](std::stop_token st) { loop(st); }) {}
    verifier(const verifier&) = delete;
    verifier& operator=(const verifier&) = delete;
    ~verifier() { finish(); }

    void push(std::uint64_t k, std::span<const float> out, bool corrupt) {
        std::vector<float> copy(out.begin(), out.end());
        if (corrupt && !copy.empty()) copy[copy.size() / 2] += 1.0f;
        std::unique_lock lk(m_);
        room_.wait(lk, [&] { return jobs_.size() < 2; });
        jobs_.push_back({k, std::move(copy)});
        work_.notify_one();
    }
    void finish() {
        {
            std::lock_guard lk(m_);
            closed_ = true;
        }
        work_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    std::uint64_t verified() const { return verified_.load(); }
    std::uint64_t wrong() const { return wrong_.load(); }
    const std::string& first_error() const { return first_error_; }  // after finish
    bool kept() const { return !kept_in_.empty(); }
    const std::vector<float>& kept_input() const { return kept_in_; }
    const std::vector<float>& kept_output() const { return kept_out_; }

private:
    struct job {
        std::uint64_t k;
        std::vector<float> out;
    };

    void loop(const std::stop_token&) {
        const conv2d_sizes z = conv2d_validate(d_);
        std::vector<float> in(z.input), ref(z.output), mag(z.output);
        for (;;) {
            job j;
            {
                std::unique_lock lk(m_);
                work_.wait(lk, [&] { return closed_ || !jobs_.empty(); });
                if (jobs_.empty()) return;
                j = std::move(jobs_.front());
                jobs_.pop_front();
            }
            room_.notify_one();
            draw_frame(d_, j.k, in);
            conv2d_reference(d_, in, f_.weights, f_.bias, ref, mag);
            std::uint64_t bad = 0;
            std::size_t first = 0;
            for (std::size_t i = 0; i < ref.size(); ++i) {
                const double err = std::fabs(static_cast<double>(j.out[i]) - static_cast<double>(ref[i]));
                if (!(err <= conv2d_fp32_tolerance(d_, mag[i]))) {
                    if (bad++ == 0) first = i;
                }
            }
            if (bad != 0) {
                if (wrong_.fetch_add(1) == 0)
                    first_error_ = "frame " + std::to_string(j.k) + ": " + std::to_string(bad) + " of " +
                                   std::to_string(ref.size()) + " outputs outside the fp32 bound; first at " +
                                   std::to_string(first) + ": got " + std::to_string(j.out[first]) + ", the CPU says " +
                                   std::to_string(ref[first]);
            } else {
                verified_.fetch_add(1);
            }
            if (j.k == keep_) {
                kept_in_ = in;
                kept_out_ = std::move(j.out);
            }
        }
    }

    conv2d_desc d_;
    const filter& f_;
    std::uint64_t keep_;
    std::mutex m_;
    std::condition_variable work_, room_;
    std::deque<job> jobs_;
    bool closed_ = false;
    std::atomic<std::uint64_t> verified_{0}, wrong_{0};
    std::string first_error_;
    std::vector<float> kept_in_, kept_out_;
    std::jthread thread_;  // last: it starts once everything above exists
};

// ---- the progress line --------------------------------------------------------------------------

class progress {
public:
    progress(std::uint64_t frames, double in_bytes, double out_bytes, const std::atomic<std::uint64_t>& written,
             const std::atomic<std::uint64_t>& consumed, const verifier& v)
        : frames_(frames), in_bytes_(in_bytes), out_bytes_(out_bytes), written_(written), consumed_(consumed), v_(v),
          tty_(isatty(fileno(stdout)) != 0), start_(steady::now()),
          thread_([this](std::stop_token st) { loop(st); }) {}
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;
    ~progress() { stop(); }

    void stop() {
        if (!thread_.joinable()) return;
        thread_.request_stop();
        thread_.join();
        print(true);
    }

private:
    void loop(const std::stop_token& st) {
        const auto period = tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(1000);
        std::mutex m;
        std::unique_lock lk(m);
        for (;;) {
            (void)cv_.wait_for(lk, st, period, [] { return false; });  // wakes on the period or the stop
            if (st.stop_requested()) return;
            print(false);
        }
    }
    void print(bool last) {
        const double s = std::chrono::duration<double>(steady::now() - start_).count();
        const auto w = static_cast<double>(written_.load()), c = static_cast<double>(consumed_.load());
        const double fps = s > 0 ? c / s : 0;
        std::printf("%sframes %6llu/%llu  %7.1f fps  in %6.2f GB/s  out %6.2f GB/s  verified %llu%s%s",
                    tty_ ? "\r" : "", static_cast<unsigned long long>(c), static_cast<unsigned long long>(frames_), fps,
                    s > 0 ? w * in_bytes_ / s * 1e-9 : 0.0, s > 0 ? c * out_bytes_ / s * 1e-9 : 0.0,
                    static_cast<unsigned long long>(v_.verified()), v_.wrong() != 0 ? "  WRONG: " : "",
                    v_.wrong() != 0 ? std::to_string(v_.wrong()).c_str() : "");
        std::fputs(tty_ && !last ? "   " : "\n", stdout);
        std::fflush(stdout);
    }

    std::uint64_t frames_;
    double in_bytes_, out_bytes_;
    const std::atomic<std::uint64_t>& written_;
    const std::atomic<std::uint64_t>& consumed_;
    const verifier& v_;
    bool tty_;
    steady::time_point start_;
    std::condition_variable_any cv_;
    std::jthread thread_;
};

void print_report(const char* what, const allocation_report& r) {
    std::printf("  %-7s %s, %s%s%s\n          why: %s\n", what, std::string(to_string(r.chosen)).c_str(),
                r.zero_copy ? "zero-copy" : "staged", r.host_cached ? ", host-cached" : ", uncached",
                r.host_coherent ? ", coherent" : ", flushed", r.reason.c_str());
    for (const auto& f : r.fallbacks) std::printf("          fallback: %s\n", f.c_str());
}

// ---- one run on one backend -----------------------------------------------------------------------

struct run_shape {
    conv2d_desc desc;
    std::uint64_t frames;
    std::size_t writers;
    std::uint64_t check_every;
};

template <std::size_t S, class Env>
int run_pipeline(Env& env, const options& o, const run_shape& shape) {
    using B = typename Env::backend;
    const conv2d_desc& d = shape.desc;
    const filter f = make_filter(o.filter);
    conv2d<B> conv(env.gpu, d);
    const conv2d_sizes z = conv.sizes();
    device_buffer<float, B> weights(env.gpu, static_cast<std::size_t>(z.weights));
    device_buffer<float, B> bias(env.gpu, static_cast<std::size_t>(z.bias));
    weights.write(f.weights);
    bias.write(f.bias);

    // The frame written as PNG: a checked one near the middle.
    const std::uint64_t keep = shape.frames / 2 / shape.check_every * shape.check_every;
    const std::uint64_t checks = (shape.frames - 1) / shape.check_every + 1;
    verifier check(d, f, keep);
    std::atomic<std::uint64_t> written{0}, consumed{0}, out_of_order{0};

    pipeline_config cfg;
    cfg.input_elements = static_cast<std::size_t>(z.input);
    cfg.output_elements = static_cast<std::size_t>(z.output);
    cfg.writers = shape.writers;
    using P = pipeline<B, S>;
    P p(
        env.gpu, env.notifier(), env.stage(), env.pool, cfg,
        [&](write_only_view<float> v, std::uint64_t k) {  // a writer thread: draw frame k into its slot
            std::vector<float> row(d.w);
            for (std::uint32_t c = 0; c < d.c; ++c)
                for (std::uint32_t y = 0; y < d.h; ++y) {
                    draw_row(c, y, k, d.w, d.h, row);
                    v.assign(row, (std::size_t{c} * d.h + y) * d.w);
                }
            written.fetch_add(1, std::memory_order_relaxed);
        },
        [&](typename P::input_ring::buffer_type& in, typename P::output_ring::buffer_type& out, std::uint64_t) {
            return conv(in, weights, bias, out);  // the GPU stage: the dispatch's fence
        },
        [&](std::span<const float> out, std::uint64_t k) {  // the consumer: frames in order
            if (k != consumed.load(std::memory_order_relaxed)) out_of_order.fetch_add(1);
            if (k % shape.check_every == 0) check.push(k, out, o.corrupt == k);
            consumed.fetch_add(1, std::memory_order_relaxed);
        });

    std::printf("memory of the %zu slots each way (the backend's decision and its reason):\n", S);
    print_report("input", p.input_report());
    print_report("output", p.output_report());
    std::printf("running %llu frames of %ux%u, %zu writer threads, one frame in %llu checked on the CPU\n",
                static_cast<unsigned long long>(shape.frames), d.w, d.h, shape.writers,
                static_cast<unsigned long long>(shape.check_every));
    std::fflush(stdout);

    pipeline_stats s;
    {
        progress line(shape.frames, static_cast<double>(z.input) * 4, static_cast<double>(z.output) * 4, written,
                      consumed, check);
        s = env.run(p.run(shape.frames));
        check.finish();
    }
    env.check_clean();

    std::printf("done: %llu frames in %.2f s, %.1f fps, in %.2f GB/s, out %.2f GB/s, dropped %llu\n",
                static_cast<unsigned long long>(s.frames_out), s.seconds, s.fps,
                s.seconds > 0 ? static_cast<double>(s.bytes_in) / s.seconds * 1e-9 : 0.0,
                s.seconds > 0 ? static_cast<double>(s.bytes_out) / s.seconds * 1e-9 : 0.0,
                static_cast<unsigned long long>(s.frames_dropped));
    std::printf("busy: writers %.2f s (over %zu threads), GPU %.2f s, consumer %.2f s; overlap efficiency %.2f\n",
                s.writer_busy_seconds, shape.writers, s.gpu_busy_seconds, s.consumer_busy_seconds,
                s.overlap_efficiency);

    int rc = 0;
    if (s.frames_out != shape.frames || consumed.load() != shape.frames || out_of_order.load() != 0) {
        std::printf("FAILED: %llu frames consumed of %llu, %llu out of order\n",
                    static_cast<unsigned long long>(consumed.load()), static_cast<unsigned long long>(shape.frames),
                    static_cast<unsigned long long>(out_of_order.load()));
        rc = 1;
    }
    if (check.wrong() != 0) {
        std::printf("FAILED: %llu of %llu checked frames differ from the CPU reference; %s\n",
                    static_cast<unsigned long long>(check.wrong()), static_cast<unsigned long long>(checks),
                    check.first_error().c_str());
        rc = 1;
    } else if (check.verified() != checks) {
        std::printf("FAILED: %llu frames verified, %llu expected\n", static_cast<unsigned long long>(check.verified()),
                    static_cast<unsigned long long>(checks));
        rc = 1;
    } else {
        std::printf("verified: all %llu checked frames (one in %llu of %llu) equal the CPU reference (conv2d_reference)\n"
                    "          within the fp32 rounding bound\n",
                    static_cast<unsigned long long>(check.verified()), static_cast<unsigned long long>(shape.check_every),
                    static_cast<unsigned long long>(shape.frames));
    }
    if (check.kept()) {
        const std::string in_png = o.out_dir + "/pipeline-input.png", out_png = o.out_dir + "/pipeline-output.png";
        demo::write_png(in_png, check.kept_input(), d.c, d.w, d.h, demo::tone::unit);
        demo::write_png(out_png, check.kept_output(), d.k, d.w, d.h, f.tone);
        const std::string pair_png = o.out_dir + "/pipeline-demo.png";
        demo::write_png_pair(pair_png, check.kept_input(), demo::tone::unit, check.kept_output(), f.tone, d.w, d.h);
        std::printf("images of frame %llu (output: %s):\n  %s\n  %s\n  %s (both side by side)\n",
                    static_cast<unsigned long long>(keep), f.what, in_png.c_str(), out_png.c_str(), pair_png.c_str());
    }
    return rc;
}

template <class Env>
int run_on(Env& env, const options& o) {
    std::printf("== unibuf pipeline demo: %s ==\ndevice: %s\n", Env::name, env.description().c_str());
    const bool cpu = env.cpu_device();
    run_shape shape;
    conv2d_desc& d = shape.desc;
    d.n = 1;
    d.c = 3;
    d.k = 3;
    d.r = d.s = 3;
    d.pad(1);
    d.bias = true;
    // A CPU device (lavapipe, llvmpipe, the host backend): 1280x720 frames, as many as take about
    // 20 s on a 2-core machine as slow as CI (measured there: lavapipe 19 fps, llvmpipe 13 fps, the
    // host backend 50 fps); a GPU: 600 frames of 1920x1080.
    d.w = o.width != 0 ? o.width : (cpu ? 1280 : 1920);
    d.h = o.height != 0 ? o.height : (cpu ? 720 : 1080);
    shape.frames = o.frames != 0 ? o.frames : (cpu ? Env::cpu_frames : 600);
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    shape.writers = o.writers != 0 ? o.writers : std::clamp<std::size_t>(hw / 2, 1, 8);
    shape.check_every = o.check_every != 0 ? o.check_every : std::max<std::uint64_t>(1, shape.frames / 10);
    const bool sized = o.width != 0 || o.frames != 0;
    std::printf("%s, conv2d %s\n",
                sized ? "size / frames given" : (cpu ? "a CPU device: a size that finishes in about 20 s" : "a GPU: 1080p"),
                d.to_string().c_str());
    if (o.validate) std::printf("validation on: %s\n", Env::validation);
    std::filesystem::create_directories(o.out_dir);  // for the images (throws filesystem_error, naming it)
    switch (o.slots) {
        case 2: return run_pipeline<2>(env, o, shape);
        case 4: return run_pipeline<4>(env, o, shape);
        case 8: return run_pipeline<8>(env, o, shape);
        default: return run_pipeline<3>(env, o, shape);
    }
}

// ---- the backends ------------------------------------------------------------------------------------

struct host_env {
    using backend = host_backend;
    static constexpr const char* name = "host backend";
    static constexpr const char* validation = "the host backend's device errors";
    static constexpr std::uint64_t cpu_frames = 1000;  // 1280x720 frames on a CPU device: about 20 s
    host_backend gpu;
    thread_pool pool{3};
    host_backend& notifier() { return gpu; }
    thread_pool& stage() { return pool; }
    std::string description() const { return "the host backend (a simulated device: its kernels run on a CPU thread)"; }
    bool cpu_device() const { return true; }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    void check_clean() {
        if (const std::string e = gpu.device_error(); !e.empty()) throw std::runtime_error("host backend: " + e);
    }
};

#if UNIBUF_DEMO_VULKAN
struct vulkan_env {
    using backend = vulkan_backend;
    static constexpr const char* name = "Vulkan";
    static constexpr const char* validation = "VK_LAYER_KHRONOS_validation with synchronization validation; any message fails";
    static constexpr std::uint64_t cpu_frames = 400;  // 1280x720 frames on a CPU device: about 20 s
    explicit vulkan_env(bool validate) : gpu(unibuf_example::make_vulkan_context(validate)) {
#if defined(UNIBUF_EXAMPLE_KEEP_DRIVER_LOADED)
        unibuf_test::keep_driver_libraries_loaded();  // LeakSanitizer then sees the driver's globals at exit
#endif
    }
    vulkan_backend gpu;
    vulkan_fence_waiter waiter{gpu};
    thread_pool pool{3};
    vulkan_fence_waiter& notifier() { return waiter; }
    thread_pool& stage() { return pool; }
    std::string description() const {
        const auto& c = gpu.context().capabilities();
        return c.device_name + " (" + std::string(device_type_name(c.device_type)) + ", " + c.driver_name + ")";
    }
    bool cpu_device() const { return gpu.context().capabilities().device_type == vk::PhysicalDeviceType::eCpu; }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    void check_clean() { unibuf_example::throw_on_vulkan_messages(gpu); }

};
#endif

#if UNIBUF_DEMO_OPENGL
struct gl_env {
    using backend = gl_backend;
    static constexpr const char* name = "OpenGL";
    static constexpr const char* validation = "a GL debug context; any GL_DEBUG_TYPE_ERROR fails";
    static constexpr std::uint64_t cpu_frames = 280;  // 1280x720 frames on a CPU device: about 20 s
    explicit gl_env(bool validate) : ctx(make_options(validate)) {
        if (validate) log.emplace(true);
#if defined(UNIBUF_EXAMPLE_KEEP_DRIVER_LOADED)
        unibuf_test::keep_driver_libraries_loaded();  // LeakSanitizer then sees the driver's globals at exit
#endif
    }
    egl_context ctx;
    std::optional<gl_debug_log> log;
    gl_backend gpu;
    gl_context_loop loop{gpu};
    thread_pool pool{3};
    gl_context_loop& notifier() { return loop; }
    gl_context_loop& stage() { return loop; }  // GL calls stay on this (the context) thread
    std::string description() const { return ctx.description(); }
    bool cpu_device() const {
        const std::string& r = gpu.capabilities().renderer;
        return r.find("llvmpipe") != std::string::npos || r.find("softpipe") != std::string::npos;
    }
    template <class T>
    T run(task<T> t) {
        return loop.run(std::move(t));  // this thread is the context thread
    }
    void check_clean() {
        if (!log) return;
        const auto errors = log->take_errors();
        for (const auto& m : errors) std::printf("GL debug: %s\n", gl_debug_log::describe(m).c_str());
        if (!errors.empty()) throw std::runtime_error("the GL debug output reported " + std::to_string(errors.size()) + " errors");
    }
    static egl_context::options make_options(bool validate) {
        egl_context::options opt;
        opt.debug = validate;
        return opt;
    }
};
#endif

} // namespace

int main(int argc, char** argv) {
    const std::optional<options> o = parse(argc, argv);
    if (!o) return 2;
    std::string backend = o->backend;
    if (backend.empty()) {
#if UNIBUF_DEMO_VULKAN
        backend = "vulkan";
#elif UNIBUF_DEMO_OPENGL
        backend = "opengl";
#else
        backend = "host";
#endif
    }
    try {
        if (backend == "host") {
            host_env env;
            return run_on(env, *o);
        }
#if UNIBUF_DEMO_VULKAN
        if (backend == "vulkan") {
            vulkan_env env(o->validate);
            return run_on(env, *o);
        }
#endif
#if UNIBUF_DEMO_OPENGL
        if (backend == "opengl") {
            gl_env env(o->validate);
            return run_on(env, *o);
        }
#endif
        std::fprintf(stderr, "the %s backend is not built into this demo\n", backend.c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "\nerror: %s\n", e.what());
        return 1;
    }
}
