/// @file glad_implementation.hpp
/// @brief glad 2's function pointers and loaders: include in exactly ONE translation unit.
///
/// glad's header-only mode declares its function pointers everywhere and defines them where
/// `GLAD_GL_IMPLEMENTATION` / `GLAD_EGL_IMPLEMENTATION` are defined. This header is that one place:
///
/// @code
/// // gl_loader.cpp, one file of your program
/// #include <unibuf/backend/gl/glad_implementation.hpp>
/// @endcode
///
/// Not needed when you use your own loader (`UNIBUF_GL_LOADER_HEADER`) or a compiled glad library
/// (`UNIBUF_GLAD=package` with a non-header-only glad).
#pragma once

#if defined(UNIBUF_GL_LOADER_HEADER)
#  error "unibuf: glad_implementation.hpp defines glad's symbols, but UNIBUF_GL_LOADER_HEADER selects your own loader; do not include it"
#endif

#define GLAD_GL_IMPLEMENTATION
#include <glad/gl.h>
#undef GLAD_GL_IMPLEMENTATION
#define GLAD_EGL_IMPLEMENTATION
#include <glad/egl.h>
#undef GLAD_EGL_IMPLEMENTATION
