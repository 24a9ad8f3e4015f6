/// @file access.hpp
/// @brief Host access policies: which host views a buffer hands out.
#pragma once

#include "category.hpp"

namespace unibuf::access {

/// @brief The host only reads (readback). View: `std::span<const T>`.
/// Cost: none on cached memory; on uncached memory each read crosses the bus.
struct read_only {
    using policy_category = access_tag;
    static constexpr bool host_read = true;
    static constexpr bool host_write = false;
    static constexpr std::string_view name = "access::read_only";
};

/// @brief The host only writes (upload, streaming). View: a write-only view whose elements can be
/// assigned but not read. Allows write-combined memory, the fastest path for streaming writes.
struct write_only {
    using policy_category = access_tag;
    static constexpr bool host_read = false;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "access::write_only";
};

/// @brief The host reads and writes. View: `std::span<T>`.
/// Cost: excludes write-combined memory.
struct read_write {
    using policy_category = access_tag;
    static constexpr bool host_read = true;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "access::read_write";
};

} // namespace unibuf::access
