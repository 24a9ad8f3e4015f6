/// @file placement.hpp
/// @brief Placement policies: where the bytes live.
#pragma once

#include "category.hpp"

namespace unibuf::placement {

/// @brief System RAM that the device reads over the bus. Zero-copy host access at memory speed;
/// device reads cost bus bandwidth on every access.
struct host {
    using policy_category = placement_tag;
    static constexpr placement_kind kind = placement_kind::host;
    static constexpr bool host_pointer = true;
    static constexpr std::string_view name = "placement::host";
};

/// @brief Device-local memory that the host cannot map. Host access goes through a staging copy
/// (named calls `write`/`read`/`fill`/`to_vector`), so it needs `sync::fenced` or `sync::lazy`;
/// no host pointer or view exists.
struct device {
    using policy_category = placement_tag;
    static constexpr placement_kind kind = placement_kind::device;
    static constexpr bool host_pointer = false;
    static constexpr std::string_view name = "placement::device";
};

/// @brief Device-local memory mapped into the host (resizable BAR, small BAR window, unified
/// memory). Zero-copy both ways; host reads are slow unless the memory is cached. Falls back to
/// host memory, reported, when no such memory type or heap room exists.
struct device_mapped {
    using policy_category = placement_tag;
    static constexpr placement_kind kind = placement_kind::device_mapped;
    static constexpr bool host_pointer = true;
    static constexpr std::string_view name = "placement::device_mapped";
};

/// @brief Chosen at run time from the device's memory properties, the size and configured
/// thresholds; the decision is recorded in the buffer's report. The host view always exists:
/// when the choice is a staged placement, the view is of a persistent staging area and moving
/// the data to the device is a named or lazy sync (so `sync::none` restricts the choice to
/// mappable memory).
struct automatic {
    using policy_category = placement_tag;
    static constexpr placement_kind kind = placement_kind::automatic;
    static constexpr bool host_pointer = true;
    static constexpr std::string_view name = "placement::automatic";
};

} // namespace unibuf::placement
