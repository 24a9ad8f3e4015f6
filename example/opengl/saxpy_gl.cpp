// unibuf-example-opengl: saxpy on the OpenGL backend, on a headless EGL context.
//
// Creates the context (EGL device platform, then Mesa surfaceless), prints what each buffer type
// got from GL and why, fills x from four writer threads through gl_parallel_writes, runs the saxpy
// compute shader (include/unibuf/ops/saxpy/saxpy.comp, embedded as saxpy.glsl.hpp) and checks y.
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/opengl.hpp>
#include <unibuf/unibuf.hpp>

#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

struct saxpy_params {
    float a;
    std::uint32_t n;
};

template <class Buf>
void show(const char* title, const Buf& b) {
    const auto& r = b.report();
    const auto& plan = b.allocation().plan();
    std::printf("%-16s %-10s storage 0x%04x map 0x%04x  %s\n", title, std::string(unibuf::to_string(plan.mode)).c_str(),
                plan.mode == unibuf::gl_storage_mode::staged ? plan.staging_storage_flags : plan.storage_flags,
                plan.mode == unibuf::gl_storage_mode::staged ? plan.staging_map_flags : plan.map_flags, r.reason.c_str());
    for (const auto& f : r.fallbacks) std::printf("%16s fallback: %s\n", "", f.c_str());
}

} // namespace

int main() try {
    unibuf::egl_context ctx;  // current on this thread, GL loaded
    std::printf("context: %s\n", ctx.description().c_str());
    unibuf::gl_backend gpu;
    unibuf::gl_kernel saxpy(gpu, unibuf::kernels::saxpy_glsl, "saxpy");

    constexpr std::size_t n = 1 << 16;
    unibuf::upload_buffer<float, unibuf::gl_backend> x(gpu, n);
    unibuf::shared_buffer<float, unibuf::gl_backend> y(gpu, n);
    unibuf::device_buffer<float, unibuf::gl_backend> z(gpu, n);
    show("upload_buffer", x);
    show("shared_buffer", y);
    show("device_buffer", z);

    {   // four threads fill x; GL itself is called only on this (the context) thread
        unibuf::gl_parallel_writes<decltype(x)> batch(x);
        std::vector<std::thread> writers;
        for (std::size_t t = 0; t < 4; ++t)
            writers.emplace_back([c = batch.acquire(t * n / 4, n / 4)]() mutable {
                auto v = c.view();
                for (std::size_t i = 0; i < c.size(); ++i) v[i] = static_cast<float>(c.offset() + i);
            });
        batch.finish();
        for (auto& w : writers) w.join();
    }
    y.fill(1.0f);
    const saxpy_params p{2.0f, static_cast<std::uint32_t>(n)};
    unibuf::dispatch(gpu, saxpy, {static_cast<std::uint32_t>(n / 64)}, unibuf::push_constants(p),
                           unibuf::bind(x, unibuf::usage::read), unibuf::bind(y));
    z.copy_from(y);  // GPU copy into device memory
    const auto v = z.to_vector();  // staged back through the persistent-mapped staging buffer
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) bad += v[i] != 2.0f * static_cast<float>(i) + 1.0f;
    std::printf("saxpy over %zu elements: %s (y[1000] = %g)\n", n, bad == 0 ? "correct" : "WRONG", v[1000]);
    return bad == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "unibuf-example-opengl: %s\n", e.what());
    return 1;
}
