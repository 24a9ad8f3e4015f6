// The OpenGL environments of the shared behaviour suite and of the backend tests.
//
// One headless debug context per process (EGL device platform first, then Mesa surfaceless), made
// current on the main thread, with a gl_debug_log collecting GL debug output; every
// GL_DEBUG_TYPE_ERROR fails the test that caused it (expect_clean, called from TearDown).
#pragma once

#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/opengl.hpp>

#include <gtest/gtest.h>

#include <string>

#include "keep_libraries.hpp"

namespace unibuf_test {

/// The process's context and its debug log (created on first use, on the calling thread).
struct gl_context_holder {
    unibuf::egl_context context;
    unibuf::gl_debug_log log;

    static gl_context_holder& get() {
        static gl_context_holder h;
        return h;
    }

private:
    gl_context_holder() : context(options()), log(true) { keep_driver_libraries_loaded(); }
    static unibuf::egl_context::options options() {
        unibuf::egl_context::options o;
        o.debug = true;
        return o;
    }
};

/// Fails the current test once per GL error reported since the last call.
inline void expect_no_gl_errors() {
    for (const auto& m : gl_context_holder::get().log.take_errors())
        ADD_FAILURE() << unibuf::gl_debug_log::describe(m);
}

/// Behaviour-suite environment over a gl_backend with options `Opt()`.
template <class Opt>
struct basic_gl_env {
    using backend = unibuf::gl_backend;
    static constexpr const char* name = "opengl";
    static backend& get() {
        (void)gl_context_holder::get();
        static backend b(Opt{}());
        return b;
    }
    static unibuf::gl_kernel& saxpy() {
        static unibuf::gl_kernel k(get(), unibuf::kernels::saxpy_glsl, "saxpy");
        return k;
    }
    static void expect_clean() { expect_no_gl_errors(); }
};

struct default_options {
    unibuf::gl_backend::options operator()() const { return {}; }
};
/// The forced traditional path: shadow copies with glBufferSubData / glGetBufferSubData.
struct traditional_options {
    unibuf::gl_backend::options operator()() const {
        unibuf::gl_backend::options o;
        o.force_traditional = true;
        return o;
    }
};
/// Persistent mapping through bind-to-target calls (no direct state access).
struct no_dsa_options {
    unibuf::gl_backend::options operator()() const {
        unibuf::gl_backend::options o;
        o.force_no_dsa = true;
        return o;
    }
};

using gl_env = basic_gl_env<default_options>;
using gl_traditional_env = basic_gl_env<traditional_options>;
using gl_no_dsa_env = basic_gl_env<no_dsa_options>;

/// Fixture base for backend tests: fails on GL errors after each test.
class gl_test : public ::testing::Test {
protected:
    unibuf::gl_backend& gpu() { return gl_env::get(); }
    void TearDown() override { expect_no_gl_errors(); }
};

} // namespace unibuf_test
