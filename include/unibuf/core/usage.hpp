/// @file usage.hpp
/// @brief How device work uses a bound buffer, and the size of a compute dispatch.
#pragma once

#include <cstdint>

namespace unibuf {

/// @brief How device work uses a bound buffer.
enum class usage : std::uint8_t {
    read = 1,        ///< the device only reads
    write = 2,       ///< the device only writes (previous contents need not be synchronized)
    read_write = 3,  ///< the device reads and writes
};

/// @brief True when device work with this usage may write.
[[nodiscard]] constexpr bool writes(usage u) noexcept { return (static_cast<unsigned>(u) & 2u) != 0; }
/// @brief True when device work with this usage reads.
[[nodiscard]] constexpr bool reads(usage u) noexcept { return (static_cast<unsigned>(u) & 1u) != 0; }

/// @brief Work-group count of a compute dispatch.
struct dispatch_size {
    std::uint32_t x = 1, y = 1, z = 1;
};

} // namespace unibuf
