/// @file gl_error.hpp
/// @brief GL's error queue as the OpenGL backend reads it: names for the codes of `glGetError`,
/// and a bounded drain before a sequence of calls whose errors are to be read.
#pragma once

#include "loader.hpp"

#include <string>

namespace unibuf::detail {

/// @brief Printable name of a `glGetError` code.
inline std::string gl_error_name(GLenum e) {
    switch (e) {
        case GL_INVALID_ENUM: return "GL_INVALID_ENUM";
        case GL_INVALID_VALUE: return "GL_INVALID_VALUE";
        case GL_INVALID_OPERATION: return "GL_INVALID_OPERATION";
        case GL_OUT_OF_MEMORY: return "GL_OUT_OF_MEMORY";
        case GL_INVALID_FRAMEBUFFER_OPERATION: return "GL_INVALID_FRAMEBUFFER_OPERATION";
        default: return "GL error " + std::to_string(e);
    }
}

/// @brief Empties the error queue (at most 16 entries: a lost context may report forever), so that
/// the next `glGetError` reports the calls made after this one.
inline void gl_drain_errors() noexcept {
    for (int i = 0; i < 16 && glGetError() != GL_NO_ERROR; ++i) {
    }
}

} // namespace unibuf::detail
