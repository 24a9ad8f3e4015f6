// Every transition of the lazy state machine, as pure functions.
#include <unibuf/buffer/state.hpp>

#include <gtest/gtest.h>

#include <array>

using unibuf::buffer_state;
using unibuf::sync_action;
namespace u = unibuf;

namespace {
constexpr std::array all_states{buffer_state::uninitialized, buffer_state::host_only,   buffer_state::device_only,
                                buffer_state::synchronized,  buffer_state::host_dirty, buffer_state::device_dirty};

// Compile-time checks: the machine is constexpr.
static_assert(u::on_host_read(buffer_state::device_dirty).action == sync_action::to_host);
static_assert(u::on_device_use(buffer_state::host_dirty, true, false).next == buffer_state::synchronized);
} // namespace

TEST(LazyState, HostReadBringsDeviceDataOnlyWhenDeviceIsNewer) {
    for (auto s : all_states) {
        const auto t = u::on_host_read(s);
        if (s == buffer_state::device_only || s == buffer_state::device_dirty) {
            EXPECT_EQ(t.action, sync_action::to_host) << u::to_string(s);
            EXPECT_EQ(t.next, buffer_state::synchronized) << u::to_string(s);
        } else {
            EXPECT_EQ(t.action, sync_action::nothing) << u::to_string(s);
            EXPECT_EQ(t.next, s) << u::to_string(s);
        }
    }
}

TEST(LazyState, HostWriteTransitions) {
    struct row {
        buffer_state from;
        bool whole;
        sync_action action;
        buffer_state to;
    };
    const row rows[] = {
        {buffer_state::uninitialized, false, sync_action::nothing, buffer_state::host_only},
        {buffer_state::uninitialized, true, sync_action::nothing, buffer_state::host_only},
        {buffer_state::host_only, false, sync_action::nothing, buffer_state::host_only},
        {buffer_state::device_only, false, sync_action::to_host, buffer_state::host_dirty},
        {buffer_state::device_only, true, sync_action::nothing, buffer_state::host_only},
        {buffer_state::synchronized, false, sync_action::nothing, buffer_state::host_dirty},
        {buffer_state::synchronized, true, sync_action::nothing, buffer_state::host_dirty},
        {buffer_state::host_dirty, false, sync_action::nothing, buffer_state::host_dirty},
        {buffer_state::device_dirty, false, sync_action::to_host, buffer_state::host_dirty},
        {buffer_state::device_dirty, true, sync_action::nothing, buffer_state::host_dirty},
    };
    for (const auto& r : rows) {
        const auto t = u::on_host_write(r.from, r.whole);
        EXPECT_EQ(t.action, r.action) << u::to_string(r.from) << " whole=" << r.whole;
        EXPECT_EQ(t.next, r.to) << u::to_string(r.from) << " whole=" << r.whole;
    }
}

TEST(LazyState, DeviceUseTransitions) {
    struct row {
        buffer_state from;
        bool reads, writes;
        sync_action action;
        buffer_state to;
    };
    const row rows[] = {
        {buffer_state::uninitialized, true, false, sync_action::nothing, buffer_state::uninitialized},
        {buffer_state::uninitialized, false, true, sync_action::nothing, buffer_state::device_only},
        {buffer_state::host_only, true, false, sync_action::to_device, buffer_state::synchronized},
        {buffer_state::host_only, true, true, sync_action::to_device, buffer_state::device_dirty},
        {buffer_state::host_only, false, true, sync_action::nothing, buffer_state::device_only},
        {buffer_state::host_dirty, true, false, sync_action::to_device, buffer_state::synchronized},
        {buffer_state::host_dirty, true, true, sync_action::to_device, buffer_state::device_dirty},
        {buffer_state::host_dirty, false, true, sync_action::nothing, buffer_state::device_dirty},
        {buffer_state::synchronized, true, false, sync_action::nothing, buffer_state::synchronized},
        {buffer_state::synchronized, true, true, sync_action::nothing, buffer_state::device_dirty},
        {buffer_state::device_only, true, true, sync_action::nothing, buffer_state::device_only},
        {buffer_state::device_dirty, true, false, sync_action::nothing, buffer_state::device_dirty},
        {buffer_state::device_dirty, true, true, sync_action::nothing, buffer_state::device_dirty},
    };
    for (const auto& r : rows) {
        const auto t = u::on_device_use(r.from, r.reads, r.writes);
        EXPECT_EQ(t.action, r.action) << u::to_string(r.from) << " r=" << r.reads << " w=" << r.writes;
        EXPECT_EQ(t.next, r.to) << u::to_string(r.from) << " r=" << r.reads << " w=" << r.writes;
    }
}

TEST(LazyState, MarksAndExplicitSyncs) {
    for (auto s : all_states) {
        const bool untouched_or_host = s == buffer_state::uninitialized || s == buffer_state::host_only;
        EXPECT_EQ(u::on_mark_host_dirty(s), untouched_or_host ? buffer_state::host_only : buffer_state::host_dirty);
        const bool untouched_or_dev = s == buffer_state::uninitialized || s == buffer_state::device_only;
        EXPECT_EQ(u::on_mark_device_dirty(s),
                  untouched_or_dev ? buffer_state::device_only : buffer_state::device_dirty);
        const auto d = u::on_sync_to_device(s);
        EXPECT_EQ(d.action, u::host_newer(s) ? sync_action::to_device : sync_action::nothing);
        EXPECT_EQ(d.next, u::host_newer(s) ? buffer_state::synchronized : s);
        const auto h = u::on_sync_to_host(s);
        EXPECT_EQ(h.action, u::device_newer(s) ? sync_action::to_host : sync_action::nothing);
        EXPECT_EQ(h.next, u::device_newer(s) ? buffer_state::synchronized : s);
        EXPECT_FALSE(u::to_string(s).empty());
    }
}
