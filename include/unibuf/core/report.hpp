/// @file report.hpp
/// @brief What a backend chose for one allocation, and why.
#pragma once

#include "memory_request.hpp"

#include <string>
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

} // namespace unibuf
