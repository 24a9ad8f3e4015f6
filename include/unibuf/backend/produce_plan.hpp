/// @file produce_plan.hpp
/// @brief A backend's decision how a parallel fill (`unibuf::producer`) reaches the device.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace unibuf {

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
