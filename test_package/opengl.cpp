// The OpenGL target: a headless EGL context, the embedded saxpy compute shader, a read back.
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/opengl.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

int main() try {
    unibuf::egl_context ctx;  // current on this thread, GL loaded
    unibuf::gl_backend gpu;
    unibuf::gl_kernel saxpy(gpu, unibuf::kernels::saxpy_glsl, "saxpy");
    constexpr std::size_t n = 1024;
    unibuf::shared_buffer<float, unibuf::gl_backend> x(gpu, n), y(gpu, n);
    std::vector<float> xs(n);
    for (std::size_t i = 0; i < n; ++i) xs[i] = static_cast<float>(i);
    x.write(xs);
    y.fill(1.0f);
    struct params {
        float a;
        std::uint32_t n;
    } const p{3.0f, static_cast<std::uint32_t>(n)};
    unibuf::dispatch(gpu, saxpy, {static_cast<std::uint32_t>(n / 64)}, unibuf::push_constants(p),
                     unibuf::bind(x, unibuf::usage::read), unibuf::bind(y));
    const std::vector<float> v = y.to_vector();
    for (std::size_t i = 0; i < n; ++i) {
        if (v[i] != 3.0f * static_cast<float>(i) + 1.0f) {
            std::fprintf(stderr, "unibuf::opengl: y[%zu] = %g, expected %g\n", i, double(v[i]), 3.0 * double(i) + 1.0);
            return 1;
        }
    }
    std::printf("unibuf::opengl: ok (saxpy over %zu floats on %s)\n", n, ctx.description().c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "unibuf::opengl: %s\n", e.what());
    return 1;
}
