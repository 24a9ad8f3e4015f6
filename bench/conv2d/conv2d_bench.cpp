// conv2d benchmarks on Vulkan and OpenGL (issue 12): the eight shapes of the issue (N C HxW K R
// stride, padding R/2, bias), GPU time per convolution, TFLOP/s and GB/s (the minimum bytes: input,
// weights and bias read once, output written once).
//
// GPU time: OpenGL: a GL_TIME_ELAPSED query around M back-to-back dispatches, divided by M.
// Vulkan: the backend has no timestamp queries, so M back-to-back dispatches are recorded in one
// batch (one submit, a barrier between dispatches), and the wall time from submit to the fence
// is divided by M (the submit and wait, about 45 us on the H200, are spread over the M).
// The peer (peer_torch_conv2d.py) times cuDNN the same way: cudaEvents around M convolutions.
//
// Vulkan runs twice per shape: exact fp32 (conv2d/vulkan/) and the tensor-core path
// (conv2d/vulkan_tc/: conv2d_precision::tensor_core_fp16, required, so a device without
// VK_NV_cooperative_matrix skips it with the reason); the peer times cuDNN with and without TF32.
//
// Inputs are the same deterministic values the peer makes (value(i, salt), below). When
// UNIBUF_CONV2D_DUMP names a folder, each shape's outputs are written there (<index>-vulkan.bin,
// <index>-vulkan_tc.bin, <index>-opengl.bin, raw float32) and the peer prints their max relative
// error against cuDNN fp32.
//
// Environment: UNIBUF_BENCH_QUICK=1 (CI smoke: two small shapes instead, M = 2),
// UNIBUF_BENCH_VALIDATION=1 (Vulkan validation on), UNIBUF_CONV2D_M (dispatches per sample).
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/opengl.hpp>
#include <unibuf/vulkan.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {
using namespace unibuf;

bool env_flag(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' && *v != '0';
}

struct shape {
    std::uint32_t n, c, h, w, k, r, stride;
};
// The shapes (N C HxW K R stride).
shape shapes[] = {{1, 3, 1080, 1920, 16, 3, 1}, {1, 16, 1080, 1920, 16, 3, 1}, {1, 64, 224, 224, 64, 3, 1},
                        {8, 64, 56, 56, 64, 3, 1},    {1, 32, 512, 512, 32, 3, 1},   {1, 32, 512, 512, 32, 5, 2},
                        {1, 128, 128, 128, 128, 3, 1}, {32, 3, 224, 224, 64, 7, 2}};

conv2d_desc desc_of(const shape& s) {
    conv2d_desc d;
    d.n = s.n;
    d.c = s.c;
    d.h = s.h;
    d.w = s.w;
    d.k = s.k;
    d.r = d.s = s.r;
    d.stride(s.stride).pad(s.r / 2);
    d.bias = true;
    return d;
}
std::string name_of(const shape& s) {
    return std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) +
           "_k" + std::to_string(s.k) + "_r" + std::to_string(s.r) + "_s" + std::to_string(s.stride);
}

// The peer computes the same: ((i + salt) * 2654435761 mod 2^32) / 2^32 - 0.5, times `scale`, in double, to float.
std::vector<float> values(std::uint64_t count, std::uint64_t salt, double scale) {
    std::vector<float> v(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t h = ((i + salt) * 2654435761ull) % 4294967296ull;
        v[i] = static_cast<float>((static_cast<double>(h) / 4294967296.0 - 0.5) * scale);
    }
    return v;
}
struct tensors {
    std::vector<float> in, w, b;
};
tensors make_tensors(const conv2d_desc& d) {
    const auto z = conv2d_validate(d);
    tensors t;
    t.in = values(z.input, 0, 1.0);
    t.w = values(z.weights, 1000003, 2.0 / std::sqrt(static_cast<double>(d.c) * d.r * d.s));
    t.b = values(d.k, 7777777, 1.0);
    return t;
}

std::uint32_t dispatches_per_sample() {
    if (const char* m = std::getenv("UNIBUF_CONV2D_M")) return static_cast<std::uint32_t>(std::max(1, std::atoi(m)));
    return env_flag("UNIBUF_BENCH_QUICK") ? 2 : 50;
}

void dump(std::size_t index, const char* api, const std::vector<float>& out) {
    const char* dir = std::getenv("UNIBUF_CONV2D_DUMP");
    if (dir == nullptr || *dir == '\0') return;
    std::ofstream f(std::string(dir) + "/" + std::to_string(index) + "-" + api + ".bin", std::ios::binary);
    f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
}

void set_counters(benchmark::State& st, const conv2d_desc& d, double seconds_per_conv, const conv2d_tiling& t,
                  std::uint32_t m, const std::string& extra = {}) {
    st.counters["us_per_conv"] = seconds_per_conv * 1e6;
    st.counters["TFLOPs"] = conv2d_flops(d) / seconds_per_conv * 1e-12;
    st.counters["GBs"] = conv2d_min_bytes(d) / seconds_per_conv * 1e-9;
    st.counters["M"] = m;
    st.SetLabel(extra.empty() ? "tile " + t.to_string() : extra);
}

// ---- Vulkan -------------------------------------------------------------------------------------
using vk_buf = basic_buffer<float, vulkan_backend, access::read_write, coherence::coherent, placement::device, sync::fenced>;

vulkan_backend& vkb() {
    static vulkan_backend b = [] {
        vulkan_context_options o;
        o.validation = env_flag("UNIBUF_BENCH_VALIDATION");
        o.sync_validation = o.validation;
        return vulkan_backend(vulkan_context(o));
    }();
    return b;
}

void bench_vulkan(benchmark::State& st, std::size_t index, conv2d_options opt) {
    const conv2d_desc d = desc_of(shapes[index]);
    std::optional<conv2d<vulkan_backend>> made;
    try {
        made.emplace(vkb(), d, opt);
    } catch (const std::system_error& e) {
        st.SkipWithError(e.what());
        return;
    }
    auto& conv = *made;
    const bool fixed = opt.tile_lx != 0;
    const bool tensor_cores = conv.precision().used == conv2d_precision::tensor_core_fp16;
    const auto t = make_tensors(d);
    vk_buf in(vkb(), t.in.size()), w(vkb(), t.w.size()), b(vkb(), t.b.size()), out(vkb(), conv.sizes().output);
    in.write(t.in);
    w.write(t.w);
    b.write(t.b);
    (void)conv(in, w, b, out);  // warm-up, through dispatch(); its output is checked by the peer
    if (!fixed) dump(index, tensor_cores ? "vulkan_tc" : "vulkan", out.to_vector());
    const std::array<bound_range<vulkan_backend>, 4> ranges{
        bound_range<vulkan_backend>{&in.allocation(), in.byte_offset(), in.size_bytes(), usage::read},
        bound_range<vulkan_backend>{&w.allocation(), w.byte_offset(), w.size_bytes(), usage::read},
        bound_range<vulkan_backend>{&b.allocation(), b.byte_offset(), b.size_bytes(), usage::read},
        bound_range<vulkan_backend>{&out.allocation(), out.byte_offset(), out.size_bytes(), usage::write}};
    const std::uint32_t m = dispatches_per_sample();
    double total = 0;
    for (auto _ : st) {
        auto batch = vkb().begin();
        for (std::uint32_t i = 0; i < m; ++i)
            batch.dispatch(conv.kernel(), conv.tiling().groups, ranges, std::span<const std::byte>{});
        const auto t0 = std::chrono::steady_clock::now();
        const auto f = batch.submit();
        if (!vkb().wait(f, std::chrono::seconds(20))) {
            st.SkipWithError("vulkan: the batch did not complete in 20 s");
            break;
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        st.SetIterationTime(s / m);
        total += s / m;
    }
    if (st.iterations() > 0)
        set_counters(st, d, total / static_cast<double>(st.iterations()), conv.tiling(), m,
                     tensor_cores ? conv.precision().to_string() : std::string());
}

// UNIBUF_CONV2D_VARIANTS="lx,ly,px,kb,cb;...": each tile also runs on Vulkan for every shape it fits.
std::vector<conv2d_options> variants() {
    std::vector<conv2d_options> v;
    const char* e = std::getenv("UNIBUF_CONV2D_VARIANTS");
    if (e == nullptr) return v;
    std::string s(e);
    std::size_t pos = 0;
    while (pos < s.size()) {
        const std::size_t end = std::min(s.find(';', pos), s.size());
        conv2d_options o;
        unsigned t[5] = {0, 0, 0, 0, 0};
        if (std::sscanf(s.substr(pos, end - pos).c_str(), "%u,%u,%u,%u,%u", &t[0], &t[1], &t[2], &t[3], &t[4]) == 5) {
            o.tile_lx = t[0];
            o.tile_ly = t[1];
            o.tile_px = t[2];
            o.tile_kb = t[3];
            o.tile_cb = t[4];
            v.push_back(o);
        }
        pos = end + 1;
    }
    return v;
}

// ---- OpenGL -------------------------------------------------------------------------------------
using gl_buf = basic_buffer<float, gl_backend, access::read_write, coherence::coherent, placement::device, sync::fenced>;

struct gl_world {
    egl_context context;
    gl_backend gpu;
};
std::unique_ptr<gl_world> gl;

void bench_gl(benchmark::State& st, std::size_t index) {
    const conv2d_desc d = desc_of(shapes[index]);
    std::optional<conv2d<gl_backend>> made;
    try {
        made.emplace(gl->gpu, d);
    } catch (const std::system_error& e) {
        st.SkipWithError(e.what());
        return;
    }
    auto& conv = *made;
    const auto t = make_tensors(d);
    gl_buf in(gl->gpu, t.in.size()), w(gl->gpu, t.w.size()), b(gl->gpu, t.b.size()), out(gl->gpu, conv.sizes().output);
    in.write(t.in);
    w.write(t.w);
    b.write(t.b);
    (void)conv(in, w, b, out);
    dump(index, "opengl", out.to_vector());
    const std::uint32_t m = dispatches_per_sample();
    GLuint query = 0;
    glGenQueries(1, &query);
    double total = 0;
    bool wall = false;  // a driver whose GL_TIME_ELAPSED reads 0 (llvmpipe): wall time to glFinish instead
    for (auto _ : st) {
        const auto t0 = std::chrono::steady_clock::now();
        glBeginQuery(GL_TIME_ELAPSED, query);
        for (std::uint32_t i = 0; i < m; ++i) (void)conv(in, w, b, out);
        glEndQuery(GL_TIME_ELAPSED);
        GLuint64 ns = 0;
        glGetQueryObjectui64v(query, GL_QUERY_RESULT, &ns);  // waits for the result
        if (ns == 0) {
            glFinish();
            wall = true;
            ns = static_cast<GLuint64>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
        }
        const double s = static_cast<double>(ns) * 1e-9 / m;
        st.SetIterationTime(s);
        total += s;
    }
    st.counters["wall_time_fallback"] = wall ? 1 : 0;
    glDeleteQueries(1, &query);
    if (st.iterations() > 0) set_counters(st, d, total / static_cast<double>(st.iterations()), conv.tiling(), m);
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const bool quick = env_flag("UNIBUF_BENCH_QUICK");
    // A fixed number of samples: a driver whose timer query reads nonsense (llvmpipe's
    // GL_TIME_ELAPSED) must not make Google Benchmark run millions of iterations.
    const benchmark::IterationCount iterations = quick ? 2 : 10;
    const std::size_t count = std::size(shapes);
    // Quick (CI smoke on CPU drivers): two small shapes of the same kinds (streaming, strided 5x5).
    if (quick) {
        shapes[0] = {1, 3, 64, 96, 16, 3, 1};
        shapes[1] = {2, 8, 32, 32, 8, 5, 2};
    }
    const std::vector<std::size_t> picked = quick ? std::vector<std::size_t>{0, 1} : [&] {
        std::vector<std::size_t> all;
        for (std::size_t i = 0; i < count; ++i) all.push_back(i);
        return all;
    }();
    benchmark::AddCustomContext("conv2d_timing",
                                "vulkan: wall time of M dispatches in one submit / M (no timestamp queries in the "
                                "backend); opengl: GL_TIME_ELAPSED over M dispatches / M");
    bool any = false;
    try {
        (void)vkb();
        benchmark::AddCustomContext("vulkan_device", vkb().context().capabilities().device_name);
        conv2d_options o;
        o.precision = conv2d_precision::tensor_core_fp16;
        benchmark::AddCustomContext("vulkan_tensor_core_decision", conv2d_vulkan_precision(conv2d_cooperative_matrix_support(vkb()), o).to_string());
        for (std::size_t i : picked)
            benchmark::RegisterBenchmark(("conv2d/vulkan/" + name_of(shapes[i])).c_str(), bench_vulkan, i, conv2d_options{})
                ->UseManualTime()->Iterations(iterations)->Unit(benchmark::kMicrosecond);
        conv2d_options tc;
        tc.precision = conv2d_precision::tensor_core_fp16;
        tc.require_precision = true;  // a fallback would time the fp32 kernel under this name: skipped instead
        for (std::size_t i : picked)
            benchmark::RegisterBenchmark(("conv2d/vulkan_tc/" + name_of(shapes[i])).c_str(), bench_vulkan, i, tc)
                ->UseManualTime()->Iterations(iterations)->Unit(benchmark::kMicrosecond);
        for (const auto& o : variants())
            for (std::size_t i : picked)
                benchmark::RegisterBenchmark(("conv2d/vulkan_tile/" + name_of(shapes[i]) + "/" + std::to_string(o.tile_lx) +
                                              "x" + std::to_string(o.tile_ly) + "_px" + std::to_string(o.tile_px) + "_kb" +
                                              std::to_string(o.tile_kb) + "_cb" + std::to_string(o.tile_cb))
                                                 .c_str(),
                                             bench_vulkan, i, o)
                    ->UseManualTime()->Iterations(iterations)->Unit(benchmark::kMicrosecond);
        any = true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unibuf_conv2d_bench: no Vulkan device: %s\n", e.what());
    }
    try {
        gl = std::make_unique<gl_world>();
        benchmark::AddCustomContext("gl_renderer", gl->gpu.capabilities().renderer);
        for (std::size_t i : picked)
            benchmark::RegisterBenchmark(("conv2d/opengl/" + name_of(shapes[i])).c_str(), bench_gl, i)
                ->UseManualTime()->Iterations(iterations)->Unit(benchmark::kMicrosecond);
        any = true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unibuf_conv2d_bench: no OpenGL context: %s\n", e.what());
    }
    if (!any) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    gl.reset();
    int rc = 0;
    if (env_flag("UNIBUF_BENCH_VALIDATION")) {  // the smoke run: every validation message fails it
        for (const auto& m : vkb().context().take_messages()) {
            std::fprintf(stderr, "Vulkan validation message [%s]: %s\n", m.id_name.c_str(), m.text.c_str());
            rc = 1;
        }
    }
    return rc;
}
