/// @file gl.hpp
/// @brief The OpenGL backend in one include: loader selection, `gl_backend`, `gl_kernel`,
/// `gl_debug_log`, `gl_parallel_writes` and the embedded GLSL kernels. The headless context helper
/// is separate (`egl_context.hpp`), as it needs glad's EGL loader.
#pragma once

#include "loader.hpp"

#include "debug.hpp"
#include "gl_backend.hpp"
#include "parallel_writes.hpp"

#include "../../kernels/saxpy.glsl.hpp"
