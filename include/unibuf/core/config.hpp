/// @file config.hpp
/// @brief The only header that defines macros: an overridable assertion and an exceptions switch.
#pragma once

#include <cstdio>
#include <cstdlib>

/// @brief Assertion used for programming errors (not for recoverable conditions): inside unibuf,
/// and for misuse that would otherwise fail silently, such as binding a buffer whose view writes
/// were never flushed to device work (a lost write; see `basic_buffer_of::before_device_use`).
/// Debug builds (no NDEBUG) print the condition, the place and the message, then abort; with
/// NDEBUG it checks nothing. Define UNIBUF_ASSERT(cond, msg) before including any unibuf header to
/// route it elsewhere (e.g. to a logger or a throw), the same way in every translation unit.
#ifndef UNIBUF_ASSERT
#  ifdef NDEBUG
#    define UNIBUF_ASSERT(cond, msg) ((void)0)
#  else
#    define UNIBUF_ASSERT(cond, msg)                                                        \
       ((cond) ? (void)0                                                                   \
               : (std::fprintf(stderr, "unibuf: assertion failed: %s (%s:%d): %s\n", #cond, \
                               __FILE__, __LINE__, msg),                                    \
                  std::abort()))
#  endif
#endif

/// @brief 1 when C++ exceptions are enabled. Without exceptions, the throwing entry points abort
/// with the error message; the `try_` variants keep working and report through std::error_code.
#ifndef UNIBUF_EXCEPTIONS
#  if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#    define UNIBUF_EXCEPTIONS 1
#  else
#    define UNIBUF_EXCEPTIONS 0
#  endif
#endif
