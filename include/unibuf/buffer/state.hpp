/// @file state.hpp
/// @brief The lazy synchronization state machine, as pure functions (no backend, no buffer).
///
/// | state | host copy | device copy |
/// |---|---|---|
/// | uninitialized | no data | no data |
/// | host_only | data | never written |
/// | device_only | never written | data |
/// | synchronized | same | same |
/// | host_dirty | newer | older |
/// | device_dirty | older | newer |
///
/// Events: host write access, host read access, device use (reading and/or writing). Each
/// transition says which synchronization action must run first (`action`), so the buffer can
/// perform it through its backend and any backend gets the same transitions.
#pragma once

#include <cstdint>
#include <string_view>

namespace unibuf {

/// @brief Where the current data of a lazily synchronized buffer is.
enum class buffer_state : std::uint8_t {
    uninitialized,
    host_only,
    device_only,
    synchronized,
    host_dirty,
    device_dirty,
};

/// @brief Printable name of a state.
[[nodiscard]] constexpr std::string_view to_string(buffer_state s) noexcept {
    switch (s) {
        case buffer_state::uninitialized: return "uninitialized";
        case buffer_state::host_only: return "host_only";
        case buffer_state::device_only: return "device_only";
        case buffer_state::synchronized: return "synchronized";
        case buffer_state::host_dirty: return "host_dirty";
        case buffer_state::device_dirty: return "device_dirty";
    }
    return "?";
}

/// @brief What must happen before an access may proceed.
enum class sync_action : std::uint8_t {
    nothing,
    to_device,  ///< flush host writes / staging copy host -> device
    to_host,    ///< wait for device work, invalidate / staging copy device -> host
};

/// @brief Result of one event: the action to run first, then the new state.
struct transition {
    sync_action action;
    buffer_state next;
};

/// @brief True when the host copy holds data the device copy lacks.
[[nodiscard]] constexpr bool host_newer(buffer_state s) noexcept {
    return s == buffer_state::host_only || s == buffer_state::host_dirty;
}
/// @brief True when the device copy holds data the host copy lacks.
[[nodiscard]] constexpr bool device_newer(buffer_state s) noexcept {
    return s == buffer_state::device_only || s == buffer_state::device_dirty;
}

/// @brief The host is about to read. Device data is brought over first.
[[nodiscard]] constexpr transition on_host_read(buffer_state s) noexcept {
    if (device_newer(s)) return {sync_action::to_host, buffer_state::synchronized};
    return {sync_action::nothing, s};
}

/// @brief The host is about to write. `whole` is true when every byte will be overwritten (fill,
/// a full-size write), so device data need not be brought over first.
[[nodiscard]] constexpr transition on_host_write(buffer_state s, bool whole) noexcept {
    if (device_newer(s) && !whole) return {sync_action::to_host, buffer_state::host_dirty};
    if (s == buffer_state::uninitialized || s == buffer_state::host_only)
        return {sync_action::nothing, buffer_state::host_only};
    if (s == buffer_state::device_only && whole) return {sync_action::nothing, buffer_state::host_only};
    return {sync_action::nothing, buffer_state::host_dirty};
}

/// @brief Device work is about to use the buffer (reading if `reads`, writing if `writes`).
/// Host data is brought over first unless the device overwrites without reading.
[[nodiscard]] constexpr transition on_device_use(buffer_state s, bool reads, bool writes) noexcept {
    sync_action act = (host_newer(s) && reads) ? sync_action::to_device : sync_action::nothing;
    buffer_state next = s;
    if (act == sync_action::to_device) next = buffer_state::synchronized;
    if (writes) {
        // A device write leaves host data stale; if the host never had data, the device alone has it.
        next = (s == buffer_state::uninitialized || (s == buffer_state::host_only && !reads) ||
                s == buffer_state::device_only)
                   ? buffer_state::device_only
                   : buffer_state::device_dirty;
    }
    return {act, next};
}

/// @brief `mark_host_dirty()`: the caller says it wrote through a pointer the buffer did not see.
[[nodiscard]] constexpr buffer_state on_mark_host_dirty(buffer_state s) noexcept {
    return (s == buffer_state::uninitialized || s == buffer_state::host_only) ? buffer_state::host_only
                                                                               : buffer_state::host_dirty;
}

/// @brief `mark_device_dirty()`: the caller says device work wrote the buffer behind its back.
[[nodiscard]] constexpr buffer_state on_mark_device_dirty(buffer_state s) noexcept {
    return (s == buffer_state::uninitialized || s == buffer_state::device_only) ? buffer_state::device_only
                                                                                 : buffer_state::device_dirty;
}

/// @brief `sync_to_device()`.
[[nodiscard]] constexpr transition on_sync_to_device(buffer_state s) noexcept {
    if (host_newer(s)) return {sync_action::to_device, buffer_state::synchronized};
    return {sync_action::nothing, s};
}

/// @brief `sync_to_host()`.
[[nodiscard]] constexpr transition on_sync_to_host(buffer_state s) noexcept {
    if (device_newer(s)) return {sync_action::to_host, buffer_state::synchronized};
    return {sync_action::nothing, s};
}

} // namespace unibuf
