/// @file memory_request.hpp
/// @brief Where bytes live and how host and device are ordered, as run-time values, and the
/// request a backend receives for one allocation.
#pragma once

#include <cstdint>
#include <string_view>

namespace unibuf {

/// @brief Where the bytes live; placement policies name one of these.
enum class placement_kind : std::uint8_t {
    host,           ///< system RAM the device reads over the bus
    device,         ///< device-local memory that is not host-visible; host access is staged
    device_mapped,  ///< device-local memory mapped into the host (resizable BAR, UMA)
    automatic,      ///< chosen at run time from the device's memory properties
};

/// @brief How host access and device use are kept in order; sync policies name one of these.
enum class sync_kind : std::uint8_t {
    none,    ///< the caller flushes, invalidates and waits
    fenced,  ///< the buffer remembers its last device use; host access waits for it
    lazy,    ///< host/device copies tracked by state, synchronized on access
};

/// @brief Printable name of a placement kind.
[[nodiscard]] constexpr std::string_view to_string(placement_kind k) noexcept {
    switch (k) {
        case placement_kind::host: return "host";
        case placement_kind::device: return "device";
        case placement_kind::device_mapped: return "device_mapped";
        case placement_kind::automatic: return "automatic";
    }
    return "?";
}

/// @brief Printable name of a sync kind.
[[nodiscard]] constexpr std::string_view to_string(sync_kind k) noexcept {
    switch (k) {
        case sync_kind::none: return "none";
        case sync_kind::fenced: return "fenced";
        case sync_kind::lazy: return "lazy";
    }
    return "?";
}

/// @brief Everything a backend needs to know about a buffer's policies, as run-time values.
///
/// Built from the compile-time policies by `basic_buffer` (see `memory_request_for`); backends
/// map it to native flags. Keeping this a plain value keeps memory-type selection a pure
/// function that can be tested without a device.
struct memory_request {
    std::uint64_t size_bytes = 0;
    bool host_read = true;        ///< the host reads the memory
    bool host_write = true;       ///< the host writes the memory
    bool explicit_flush = false;  ///< host writes/reads need flush/invalidate (may be non-coherent)
    bool write_combined = false;  ///< host only streams writes; uncached memory is fine, even preferred
    placement_kind placement = placement_kind::automatic;
    sync_kind sync = sync_kind::fenced;
    bool device_write = true;     ///< device work may write the buffer
};

} // namespace unibuf
