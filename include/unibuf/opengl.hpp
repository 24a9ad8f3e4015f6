/// @file opengl.hpp
/// @brief unibuf with the OpenGL backend in one include: the core (`unibuf.hpp`), loader
/// selection, `gl_backend`, `gl_kernel`, `gl_debug_log`, `gl_parallel_writes` and the embedded GLSL
/// kernels. The headless context helper
/// is separate (`egl_context.hpp`), as it needs glad's EGL loader.
///
/// ## Setting it up
/// - **CMake** (`find_package(unibuf)` or `add_subdirectory`): link `unibuf::opengl`. It generates
///   glad 2 at build time (`UNIBUF_GLAD=generate`, needs Python's glad 2 generator) or uses your
///   package manager's glad 2 (`UNIBUF_GLAD=package`). In exactly one source file:
///   `#include <unibuf/backend/gl/glad_implementation.hpp>`.
/// - **Header-only** (copy `include/`): generate glad once with the command in `loader.hpp`, put its
///   `include/` on the include path, include `glad_implementation.hpp` in one source file, link
///   `-ldl` (glibc older than 2.34). The GLSL kernels are already embedded (`ops/*/*.glsl.hpp`).
/// - **Your own context and loader**: define `UNIBUF_GL_LOADER_HEADER` (see `loader.hpp`), make your
///   context current, then construct `gl_backend` on that thread; `egl_context.hpp` and
///   `glad_implementation.hpp` are not used.
///
/// Thread rules: see `gl_backend.hpp` (GL calls on the context's thread, checked; writes from other
/// threads through `gl_parallel_writes`, transfer/gl/).
#pragma once

#include "unibuf.hpp"

#include "backend/gl/gl.hpp"
#include "ops/saxpy/saxpy.glsl.hpp"
#include "ops/gl/conv2d.hpp"
#include "transfer/gl/parallel_writes.hpp"
#if UNIBUF_EXCEPTIONS  // the async layer carries errors as exceptions
#include "async/gl/context_loop.hpp"
#endif
