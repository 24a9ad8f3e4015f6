/// @file config.hpp
/// @brief The only header that defines macros: an overridable assertion and an exceptions switch.
#pragma once

#include <cstdio>
#include <cstdlib>

/// @brief Assertion used for programming errors inside unibuf (not for recoverable conditions).
/// Define UNIBUF_ASSERT before including any unibuf header to route it elsewhere.
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
