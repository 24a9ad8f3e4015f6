/// @file timeline_fence.hpp
/// @brief The fence of a backend whose work runs in submission order and counts its submissions:
/// a value on that count (the host backend's queue, the Vulkan backend's timeline semaphore or
/// its VkFence fallback). One definition, one type per backend (`Tag`), so that a fence of one
/// backend is never passed to another.
#pragma once

#include <cstdint>

namespace unibuf::detail {

/// @brief A point on a backend's submission count: complete once the work submitted as `value`
/// (and, the work running in order, everything before it) has run. `Tag` is the backend; it only
/// keeps the fences of different backends apart and need not be complete.
template <class Tag>
struct timeline_fence {
    std::uint64_t value = 0;  ///< 0: nothing to wait for (a default-constructed fence is complete)

    /// @brief Equal when they name the same submission.
    friend bool operator==(const timeline_fence&, const timeline_fence&) = default;
};

} // namespace unibuf::detail
