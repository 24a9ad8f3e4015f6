// basic_buffer on the host backend: views per access mode, named copies, custom policies, moves.
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <numeric>
#include <type_traits>
#include <vector>

using namespace unibuf;

namespace {
/// A user-written access policy: the host only writes, like access::write_only, named differently.
struct streaming_writes {
    using policy_category = access_tag;
    static constexpr bool host_read = false;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "streaming_writes";
};
} // namespace

TEST(Buffer, ViewsFollowTheAccessPolicy) {
    host_backend dev;
    basic_buffer<int, host_backend, access::read_write> rw(dev, 4);
    basic_buffer<int, host_backend, access::read_only> ro(dev, 4);
    basic_buffer<int, host_backend, access::write_only, coherence::write_combined> wo(dev, 4);
    static_assert(std::is_same_v<decltype(rw.view()), std::span<int>>);
    static_assert(std::is_same_v<decltype(ro.view()), std::span<const int>>);
    static_assert(std::is_same_v<decltype(wo.view()), write_only_view<int>>);

    auto w = wo.view();
    w[0] = 7;
    const std::vector<int> tail{8, 9, 10};
    w.assign(tail, 1);
    wo.flush();
    EXPECT_EQ(w.size(), 4u);
    EXPECT_EQ(w.size_bytes(), 16u);
    // Read it back the only way a write-only buffer allows: a device copy into a readable buffer.
    rw.copy_from(wo);
    EXPECT_EQ(rw.to_vector(), (std::vector<int>{7, 8, 9, 10}));
    ro.copy_from(rw);
    EXPECT_EQ(ro.view()[3], 10);
}

TEST(Buffer, DefaultsAreDocumentedAndPoliciesMayComeInAnyOrder) {
    using a = basic_buffer<float, host_backend>;
    static_assert(std::is_same_v<a::access_policy, access::read_write>);
    static_assert(std::is_same_v<a::coherence_policy, coherence::coherent>);
    static_assert(std::is_same_v<a::placement_policy, placement::automatic>);
    static_assert(std::is_same_v<a::sync_policy, sync::fenced>);
    using b = basic_buffer<float, host_backend, sync::lazy, placement::device, access::read_only>;
    using c = basic_buffer<float, host_backend, access::read_only, placement::device, sync::lazy>;
    static_assert(std::is_same_v<b::access_policy, c::access_policy>);
    static_assert(std::is_same_v<b::placement_policy, c::placement_policy>);
    static_assert(std::is_same_v<b::sync_policy, c::sync_policy>);
    host_backend dev;
    b buf(dev, 3);
    EXPECT_EQ(buf.report().requested, placement_kind::device);
}

TEST(Buffer, UserPoliciesComposeLikeBuiltIns) {
    static_assert(AccessPolicy<streaming_writes>);
    host_backend dev;
    basic_buffer<float, host_backend, streaming_writes, coherence::write_combined, placement::device_mapped> b(dev, 5);
    static_assert(!decltype(b)::host_readable);
    b.fill(2.5f);
    readback_buffer<float, host_backend> r(dev, 5);
    r.copy_from(b);
    EXPECT_EQ(r.to_vector(), std::vector<float>(5, 2.5f));
    const auto req = decltype(b)::request_for(5);
    EXPECT_EQ(req.size_bytes, 20u);
    EXPECT_FALSE(req.host_read);
    EXPECT_TRUE(req.write_combined);
    EXPECT_EQ(req.placement, placement_kind::device_mapped);
}

TEST(Buffer, DeviceBufferIsReachedThroughNamedStagedCalls) {
    host_backend dev;
    device_buffer<int, host_backend> d(dev, 100);
    std::vector<int> src(100);
    std::iota(src.begin(), src.end(), 0);
    d.write(src);
    EXPECT_EQ(d.state(), buffer_state::host_only);
    std::vector<int> mid(10);
    d.read(mid, 45);
    EXPECT_EQ(mid.front(), 45);
    EXPECT_EQ(mid.back(), 54);
    EXPECT_EQ(d.to_vector(), src);
}

TEST(Buffer, LazyMarksRecordWritesTheBufferDidNotSee) {
    host_backend dev;
    shared_buffer<int, host_backend> s(dev, 4);
    EXPECT_EQ(s.state(), buffer_state::uninitialized);
    s.data()[0] = 1;
    s.mark_host_dirty();
    EXPECT_EQ(s.state(), buffer_state::host_only);
    s.sync_to_device();
    EXPECT_EQ(s.state(), buffer_state::synchronized);
    s.mark_device_dirty();
    EXPECT_EQ(s.state(), buffer_state::device_dirty);
    s.sync_to_host();
    EXPECT_EQ(s.state(), buffer_state::synchronized);
    s.mark_host_dirty();
    EXPECT_EQ(s.state(), buffer_state::host_dirty);
}

TEST(Buffer, MoveAssignmentReleasesTheOldAllocation) {
    host_backend dev;
    basic_buffer<double, host_backend, placement::host> a(dev, 1000);
    basic_buffer<double, host_backend, placement::host> b(dev, 10);
    EXPECT_EQ(dev.bytes_in_use(), 8080u);
    b.fill(1.0);
    a = std::move(b);
    EXPECT_EQ(dev.bytes_in_use(), 80u);
    EXPECT_EQ(a.to_vector(), std::vector<double>(10, 1.0));
    a.reset();
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(dev.bytes_in_use(), 0u);
    EXPECT_THROW(a.fill(2.0), std::system_error);
}
