/// @file common.hpp
/// @brief Backend-neutral vocabulary: decision reports, device limits, binding usage, wait options.
///
/// Everything here is plain data; no backend headers are included.
#pragma once

#include "../policy/category.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace unibuf {

/// @brief What a backend chose for one allocation, and why. Every fallback is recorded here.
struct allocation_report {
    placement_kind requested = placement_kind::automatic;  ///< placement the policies asked for
    placement_kind chosen = placement_kind::host;          ///< placement that was allocated
    bool zero_copy = true;        ///< host view is the memory the device uses (no staging copy)
    bool host_coherent = true;    ///< host writes need no flush, reads no invalidate
    bool host_cached = true;      ///< host reads are cached (fast)
    int memory_type = -1;         ///< backend memory-type index, -1 where the backend has none
    std::vector<std::string> fallbacks;  ///< each fallback taken, in words (empty: none)
    std::string reason;           ///< one line: why this memory was chosen
};

/// @brief Alignment and granularity limits a backend imposes on sub-allocations and flushes.
struct device_limits {
    std::uint64_t non_coherent_atom = 1;         ///< flush/invalidate granularity (Vulkan nonCoherentAtomSize)
    std::uint64_t min_storage_offset_alignment = 1;  ///< offset alignment of a storage-buffer binding
    std::uint64_t max_allocation_size = ~std::uint64_t{0};  ///< largest single allocation
};

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

/// @brief Default bound on any wait unibuf performs on the caller's behalf (fenced/lazy access).
/// Waits that run out throw `errc::timeout` naming what was waited for.
inline constexpr std::chrono::nanoseconds default_wait_timeout = std::chrono::seconds(10);

namespace detail {
/// @brief The time point `timeout` from now on `Clock`, for the bounded waits: saturated at the
/// clock's last time point, so that a timeout of `std::chrono::nanoseconds::max()` ("wait as
/// long as it takes") never overflows the clock's arithmetic; a timeout of zero or less is now.
template <class Clock = std::chrono::steady_clock>
[[nodiscard]] typename Clock::time_point deadline_after(std::chrono::nanoseconds timeout) noexcept {
    const typename Clock::time_point now = Clock::now();
    if (timeout <= std::chrono::nanoseconds::zero()) return now;
    // No clock counts finer than nanoseconds: the cast never widens the count.
    const auto d = std::chrono::duration_cast<typename Clock::duration>(timeout);
    if (d >= Clock::time_point::max() - now) return Clock::time_point::max();
    return now + d;
}
} // namespace detail

/// @brief Work-group count of a compute dispatch.
struct dispatch_size {
    std::uint32_t x = 1, y = 1, z = 1;
};

/// @brief How a parallel fill (`unibuf::producer`) gets the writers' data to the device.
enum class produce_path : std::uint8_t {
    /// The writers store straight into the buffer's memory (its mapping), which is flushed at the end.
    direct,
    /// The writers store into host staging memory in chunks; each chunk is copied into the
    /// buffer's device memory as soon as it is complete, while the writers go on (copy engine and
    /// CPU work side by side). Staging is the buffer's own (placement::device) or the producer's ring.
    staged_pipelined,
};

/// @brief "direct" / "staged_pipelined".
[[nodiscard]] constexpr std::string_view to_string(produce_path p) noexcept {
    return p == produce_path::direct ? "direct" : "staged_pipelined";
}

/// @brief A backend's choice of `produce_path` for one fill, and why (one line).
struct produce_plan {
    produce_path path = produce_path::direct;
    std::string reason;
};

} // namespace unibuf
