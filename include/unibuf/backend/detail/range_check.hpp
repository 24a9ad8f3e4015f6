/// @file range_check.hpp
/// @brief The check every backend makes before it touches bytes `[off, off + n)` of an
/// allocation, with one message: an empty allocation is `invalid_argument`, a range that leaves
/// it (computed without forming `off + n`, which could wrap) is `out_of_range`.
#pragma once

#include "../../core/error.hpp"

#include <cstdint>
#include <string>

namespace unibuf::detail {

/// @brief Throws unless `[off, off + n)` lies inside an allocation of `size` bytes.
/// @param backend the backend's name for the message ("vulkan", "gl_backend", ...)
/// @param what the operation ("flush", "invalidate", "copy source", ...)
/// @param valid false for an empty (moved-from or failed) allocation
/// @throws std::system_error invalid_argument (empty allocation), out_of_range (outside it)
inline void check_allocation_range(const char* backend, const char* what, bool valid, std::uint64_t size,
                                   std::uint64_t off, std::uint64_t n) {
    if (!valid)
        throw_error(errc::invalid_argument, std::string("unibuf: ") + backend + ": " + what + " of " +
                                                std::to_string(n) + " bytes at offset " + std::to_string(off) +
                                                " in an empty (moved-from or failed) allocation");
    if (off > size || n > size - off)
        throw_error(errc::out_of_range, std::string("unibuf: ") + backend + ": " + what + " of " +
                                            std::to_string(n) + " bytes at offset " + std::to_string(off) +
                                            " in an allocation of " + std::to_string(size) + " bytes");
}

} // namespace unibuf::detail
