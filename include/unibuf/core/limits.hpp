/// @file limits.hpp
/// @brief Alignment and granularity limits of a device.
#pragma once

#include <cstdint>

namespace unibuf {

/// @brief Alignment and granularity limits a backend imposes on sub-allocations and flushes.
struct device_limits {
    std::uint64_t non_coherent_atom = 1;         ///< flush/invalidate granularity (Vulkan nonCoherentAtomSize)
    std::uint64_t min_storage_offset_alignment = 1;  ///< offset alignment of a storage-buffer binding
    std::uint64_t max_allocation_size = ~std::uint64_t{0};  ///< largest single allocation
};

} // namespace unibuf
