/// @file conv2d.hpp
/// @brief The OpenGL backend's conv2d: conv2d.comp with the description and the tiling as
/// `#define`s after its `#version` line, tiles checked against GL_MAX_COMPUTE_SHARED_MEMORY_SIZE
/// and the work-group limits. Build and call it on the context's thread.
#pragma once

#include "../../backend/gl/gl_backend.hpp"
#include "../conv2d/conv2d.glsl.hpp"
#include "../conv2d/conv2d.hpp"

#include <string>
#include <thread>

namespace unibuf {

/// @brief The compute limits of the current GL context (GL_MAX_COMPUTE_SHARED_MEMORY_SIZE,
/// GL_MAX_COMPUTE_WORK_GROUP_INVOCATIONS, GL_MAX_COMPUTE_WORK_GROUP_SIZE); call on its thread.
/// @throws std::system_error wrong_thread when called off the context's thread
[[nodiscard]] inline conv2d_device_limits conv2d_limits(gl_backend& b) {
    if (std::this_thread::get_id() != b.context_thread())
        throw_error(errc::wrong_thread, "unibuf: conv2d on OpenGL: made on a thread other than the GL context's; "
                                        "build it on the context's thread");
    conv2d_device_limits l;
    GLint v = 0;
    glGetIntegerv(GL_MAX_COMPUTE_SHARED_MEMORY_SIZE, &v);
    l.max_shared_bytes = static_cast<std::uint32_t>(v);
    glGetIntegerv(GL_MAX_COMPUTE_WORK_GROUP_INVOCATIONS, &v);
    l.max_invocations = static_cast<std::uint32_t>(v);
    glGetIntegeri_v(GL_MAX_COMPUTE_WORK_GROUP_SIZE, 0, &v);
    l.max_size_x = static_cast<std::uint32_t>(v);
    glGetIntegeri_v(GL_MAX_COMPUTE_WORK_GROUP_SIZE, 1, &v);
    l.max_size_y = static_cast<std::uint32_t>(v);
    return l;
}

/// @brief conv2d on OpenGL: a `gl_kernel` of `kernels::conv2d_glsl` with the constants as `#define`s.
template <>
struct conv2d_traits<gl_backend> {
    using kernel = gl_kernel;  ///< 4 storage buffers, no uniform block

    /// @brief exact fp32 always: unibuf has no cooperative-matrix path on OpenGL; a tensor-core
    /// request falls back, with the reason.
    static conv2d_precision_decision decide(gl_backend&, const conv2d_options& opt) {
        conv2d_precision_decision d;
        d.requested = opt.precision;
        d.used = conv2d_precision::exact_fp32;
        d.fallback = opt.precision != conv2d_precision::exact_fp32;
        d.reason = d.fallback ? "OpenGL has no cooperative-matrix path in unibuf (Vulkan only)"
                              : "fp32 products and sums (the default)";
        return d;
    }
    /// @brief `conv2d_tiling_for` under the context's limits. @throws wrong_thread off the context thread
    static conv2d_tiling tiling(gl_backend& b, const conv2d_desc& d, const conv2d_options& opt) {
        return conv2d_tiling_for(d, conv2d_limits(b), opt);
    }
    /// @brief Compiles conv2d.comp with the description's and the tiling's `#define`s.
    static kernel make_kernel(gl_backend& b, const conv2d_desc& d, const conv2d_tiling& t) {
        return gl_kernel(b, conv2d_glsl_with_constants(kernels::conv2d_glsl, conv2d_constants(d, t)), "conv2d");
    }
};

} // namespace unibuf
