/// @file gl.hpp
/// @brief The OpenGL backend alone in one include: loader selection, `gl_backend`, `gl_kernel`,
/// `gl_debug_log`. `unibuf/opengl.hpp` adds the layers above it (buffers, transfers, the embedded
/// kernels); the headless context helper is separate (`egl_context.hpp`), as it needs glad's EGL loader.
#pragma once

#include "loader.hpp"

#include "debug.hpp"
#include "gl_backend.hpp"
