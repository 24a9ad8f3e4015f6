// The backend on a context and loader that are the user's, not unibuf's: a plain EGL context made
// here with <EGL/egl.h>, GL declared by the system's <GL/glcorearb.h> prototypes (through
// UNIBUF_GL_LOADER_HEADER="user_gl.h", set by CMake) and resolved by libOpenGL. No glad is compiled in.
#include <unibuf/opengl.hpp>
#include <unibuf/unibuf.hpp>

#include <EGL/egl.h>
#include <EGL/eglext.h>

#include <gtest/gtest.h>

#include "keep_libraries.hpp"

#include <cstdint>
#include <string>
#include <vector>

#if defined(GLAD_GL_H_)
#  error "this test must not see glad"
#endif

namespace {

using namespace unibuf;

/// The user's own headless context (Mesa surfaceless or the EGL device platform), current here.
struct user_context {
    EGLDisplay display = EGL_NO_DISPLAY;
    EGLContext context = EGL_NO_CONTEXT;

    user_context() {
        auto get_platform_display =
            reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(eglGetProcAddress("eglGetPlatformDisplayEXT"));
        auto query_devices = reinterpret_cast<PFNEGLQUERYDEVICESEXTPROC>(eglGetProcAddress("eglQueryDevicesEXT"));
        EGLDeviceEXT dev{};
        EGLint n = 0;
        if (get_platform_display != nullptr && query_devices != nullptr && query_devices(1, &dev, &n) == EGL_TRUE && n > 0)
            display = get_platform_display(EGL_PLATFORM_DEVICE_EXT, dev, nullptr);
        if (display == EGL_NO_DISPLAY && get_platform_display != nullptr)
            display = get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
        if (display == EGL_NO_DISPLAY || eglInitialize(display, nullptr, nullptr) == EGL_FALSE) return;
        eglBindAPI(EGL_OPENGL_API);
        const EGLint attr[] = {EGL_CONTEXT_MAJOR_VERSION, 4, EGL_CONTEXT_MINOR_VERSION, 5, EGL_CONTEXT_OPENGL_PROFILE_MASK,
                               EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL_CONTEXT_OPENGL_DEBUG, EGL_TRUE, EGL_NONE};
        context = eglCreateContext(display, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, attr);
        if (context != EGL_NO_CONTEXT) eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, context);
        unibuf_test::keep_driver_libraries_loaded();
    }
    ~user_context() {
        if (context != EGL_NO_CONTEXT) {
            eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
            eglDestroyContext(display, context);
        }
        if (display != EGL_NO_DISPLAY) eglTerminate(display);
        eglReleaseThread();
    }
};

struct saxpy_params {
    float a;
    std::uint32_t n;
};

TEST(gl_user_loader, BackendRunsOnTheUsersContextAndLoader) {
    user_context ctx;
    ASSERT_NE(ctx.context, EGL_NO_CONTEXT) << "no EGL OpenGL 4.5 core context (EGL error " << eglGetError() << ")";
    gl_debug_log log;
    {
        gl_backend gpu;
        EXPECT_TRUE(gpu.capabilities().buffer_storage);
        EXPECT_TRUE(gpu.capabilities().direct_state_access) << "GL_VERSION_4_5 is declared by glcorearb.h";
        gl_kernel saxpy(gpu, kernels::saxpy_glsl, "saxpy");
        const std::size_t n = 1000;
        upload_buffer<float, gl_backend> x(gpu, n);
        shared_buffer<float, gl_backend> y(gpu, n);
        std::vector<float> data(n);
        for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<float>(i);
        x.write(data);
        y.fill(1.0f);
        const saxpy_params p{2.0f, static_cast<std::uint32_t>(n)};
        unibuf::dispatch(gpu, saxpy, dispatch_size{(n + 63) / 64}, push_constants(p), bind(x, usage::read), bind(y));
        const auto got = y.to_vector();
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], 2.0f * data[i] + 1.0f) << i;
        EXPECT_TRUE(x.report().zero_copy);
    }
    for (const auto& m : log.take_errors()) ADD_FAILURE() << gl_debug_log::describe(m);
}

} // namespace
