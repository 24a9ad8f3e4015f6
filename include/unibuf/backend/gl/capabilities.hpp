/// @file capabilities.hpp
/// @brief What the current GL context offers the OpenGL backend, and what the backend requires.
///
/// The backend needs OpenGL 4.4, or OpenGL 4.3 with `GL_ARB_buffer_storage`: compute shaders and
/// shader storage buffers (GL 4.3) and persistent-mapped buffer storage (`glBufferStorage`, core in
/// GL 4.4). It uses direct state access (GL 4.5 or `GL_ARB_direct_state_access`) where present.
#pragma once

#include "loader.hpp"

#include "../../core/error.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace unibuf {

/// @brief What the current context offers, as the backend found it.
struct gl_capabilities {
    int major = 0;
    int minor = 0;
    bool buffer_storage = false;       ///< GL 4.4 or GL_ARB_buffer_storage (a gl_backend requires it)
    bool direct_state_access = false;  ///< GL 4.5 or GL_ARB_direct_state_access (and declared by the loader)
    std::uint64_t storage_offset_alignment = 1;  ///< GL_SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT
    std::uint64_t uniform_offset_alignment = 1;  ///< GL_UNIFORM_BUFFER_OFFSET_ALIGNMENT
    std::uint64_t max_storage_block_size = 0;    ///< GL_MAX_SHADER_STORAGE_BLOCK_SIZE
    std::uint32_t max_storage_bindings = 0;      ///< GL_MAX_SHADER_STORAGE_BUFFER_BINDINGS
    std::uint64_t max_uniform_block_size = 0;    ///< GL_MAX_UNIFORM_BLOCK_SIZE
    std::array<std::uint32_t, 3> max_groups{};   ///< GL_MAX_COMPUTE_WORK_GROUP_COUNT
    std::string vendor, renderer, version;
};

namespace detail {

/// @brief The start of the message when a context falls short of what the backend requires.
inline constexpr std::string_view gl_requirement =
    "unibuf: gl_backend needs OpenGL 4.4, or OpenGL 4.3 with GL_ARB_buffer_storage (compute shaders, shader "
    "storage buffers, persistent-mapped buffer storage)";

/// @brief Step 1: a current, loaded context of GL 4.3 or newer: its version, vendor and renderer.
/// @throws std::system_error unsupported: GL functions not loaded, no current context, GL < 4.3
inline void gl_read_version(gl_capabilities& caps) {
#if defined(GLAD_GL_H_)
    if (glad_glGetString == nullptr || glad_glGetIntegerv == nullptr)
        throw_error(errc::unsupported, "unibuf: gl_backend: the GL functions are not loaded; create an "
                                       "egl_context, or call gladLoadGL(...) on your context first");
#endif
    const auto* version = reinterpret_cast<const char*>(glGetString(GL_VERSION));
    if (version == nullptr)
        throw_error(errc::unsupported, "unibuf: gl_backend: no OpenGL context is current on this thread");
    caps.version = version;
    const auto* vendor = reinterpret_cast<const char*>(glGetString(GL_VENDOR));
    const auto* renderer = reinterpret_cast<const char*>(glGetString(GL_RENDERER));
    caps.vendor = vendor != nullptr ? vendor : "";
    caps.renderer = renderer != nullptr ? renderer : "";
    GLint v = 0;
    glGetIntegerv(GL_MAJOR_VERSION, &v);
    caps.major = v;
    glGetIntegerv(GL_MINOR_VERSION, &v);
    caps.minor = v;
    if (caps.major * 10 + caps.minor < 43)
        throw_error(errc::unsupported, std::string(gl_requirement) + "; the current context is " + caps.version +
                                           " (" + caps.renderer + ")");
}

/// @brief Step 2: buffer storage and direct state access, from the version and the extensions,
/// where the loader also declares (and, with glad, has loaded) their functions.
/// @throws std::system_error unsupported: no buffer storage (GL 4.3 without GL_ARB_buffer_storage,
/// or glBufferStorage not loaded)
inline void gl_read_extensions(gl_capabilities& caps) {
    GLint n = 0;
    glGetIntegerv(GL_NUM_EXTENSIONS, &n);
    bool arb_storage = false;
    bool arb_dsa = false;
    for (GLint i = 0; i < n; ++i) {
        const auto* e = reinterpret_cast<const char*>(glGetStringi(GL_EXTENSIONS, static_cast<GLuint>(i)));
        if (e == nullptr) continue;
        const std::string_view ext(e);
        arb_storage = arb_storage || ext == "GL_ARB_buffer_storage";
        arb_dsa = arb_dsa || ext == "GL_ARB_direct_state_access";
    }
    const int version = caps.major * 10 + caps.minor;
    caps.buffer_storage = version >= 44 || arb_storage;
#if defined(GL_VERSION_4_5)
    caps.direct_state_access = version >= 45 || arb_dsa;
#endif
    if (!caps.buffer_storage)
        throw_error(errc::unsupported, std::string(gl_requirement) + "; the current context is " + caps.version +
                                           " (" + caps.renderer + ") without GL_ARB_buffer_storage");
#if defined(GLAD_GL_H_)
    if (glad_glBufferStorage == nullptr)
        throw_error(errc::unsupported, std::string(gl_requirement) + "; the context " + caps.version + " (" +
                                           caps.renderer + ") has it, but glBufferStorage is not loaded");
#  if defined(GL_VERSION_4_5)
    if (caps.direct_state_access && glad_glNamedBufferStorage == nullptr) caps.direct_state_access = false;
#  endif
#endif
}

/// @brief Step 3: the limits the backend checks bindings and dispatches against.
inline void gl_read_limits(gl_capabilities& caps) {
    GLint v = 0;
    GLint64 v64 = 0;
    glGetIntegerv(GL_SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT, &v);
    caps.storage_offset_alignment = static_cast<std::uint64_t>(std::max(v, 1));
    glGetIntegerv(GL_UNIFORM_BUFFER_OFFSET_ALIGNMENT, &v);
    caps.uniform_offset_alignment = static_cast<std::uint64_t>(std::max(v, 1));
    glGetInteger64v(GL_MAX_SHADER_STORAGE_BLOCK_SIZE, &v64);
    caps.max_storage_block_size = static_cast<std::uint64_t>(v64);
    glGetIntegerv(GL_MAX_SHADER_STORAGE_BUFFER_BINDINGS, &v);
    caps.max_storage_bindings = static_cast<std::uint32_t>(v);
    glGetInteger64v(GL_MAX_UNIFORM_BLOCK_SIZE, &v64);
    caps.max_uniform_block_size = static_cast<std::uint64_t>(v64);
    for (GLuint i = 0; i < 3; ++i) {
        glGetIntegeri_v(GL_MAX_COMPUTE_WORK_GROUP_COUNT, i, &v);
        caps.max_groups[i] = static_cast<std::uint32_t>(v);
    }
}

/// @brief The capabilities of the context current on this thread, checked against the
/// requirement in the file comment.
/// @throws std::system_error unsupported: GL functions not loaded, no current context, less than
/// GL 4.4 or GL 4.3 with GL_ARB_buffer_storage
inline gl_capabilities gl_query_capabilities() {
    gl_capabilities caps;
    gl_read_version(caps);
    gl_read_extensions(caps);
    gl_read_limits(caps);
    return caps;
}

} // namespace detail

} // namespace unibuf
