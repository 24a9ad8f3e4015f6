// No silent lost writes (issue 10): the scoped host writer (write_scope) brings view writes to the
// device on staged, non-coherent and coherent memory and under every sync policy; a buffer with
// unflushed view writes bound to device work that reads it is caught in debug builds.
#include "../common/expect_error.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <numeric>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

using namespace unibuf;
using unibuf_test::expect_error;

namespace {

/// A host backend whose every placement is staged: the host view is a staging area, the device
/// copy is separate (the case of the lost write: host_backend::options::force_staging).
host_backend::options staged_options() {
    host_backend::options o;
    o.force_staging = true;
    return o;
}

/// What device work reading binding 0 sees: dispatches a kernel that copies it out, and waits.
template <class Buf>
std::vector<int> device_reads(host_backend& dev, Buf& b) {
    std::vector<int> seen;
    host_kernel k = [&](const host_invocation& in) {
        auto s = in.as<const int>(0);
        seen.assign(s.begin(), s.end());
    };
    const auto f = dispatch(dev, k, {1}, {}, bind(b, usage::read));
    EXPECT_TRUE(dev.wait(f, default_wait_timeout));
    return seen;
}

std::vector<int> iota_ints(std::size_t n, int first) {
    std::vector<int> v(n);
    std::iota(v.begin(), v.end(), first);
    return v;
}

/// Writes element i = first + i through a write scope of the whole buffer, then checks that
/// device work reads exactly that.
template <class Buf>
void scope_writes_reach_the_device(host_backend& dev, const char* what) {
    SCOPED_TRACE(what);
    Buf b(dev, 40);
    {
        auto w = b.write_scope();
        ASSERT_TRUE(w.is_open());
        ASSERT_EQ(w.size(), 40u);
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = 100 + static_cast<int>(i);
    }  // flushed / staged (fenced, none) or marked host-dirty (lazy) here
    EXPECT_FALSE(b.has_unflushed_view_writes());
    EXPECT_EQ(device_reads(dev, b), iota_ints(40, 100));
}

using staged_upload = upload_buffer<int, host_backend>;  // write_only, write_combined, automatic, fenced
using non_coherent_none = basic_buffer<int, host_backend, coherence::explicit_flush, placement::host, sync::none>;
using non_coherent_write_only =
    basic_buffer<int, host_backend, access::write_only, coherence::explicit_flush, placement::host, sync::none>;
using coherent_fenced = basic_buffer<int, host_backend, placement::host, sync::fenced>;
using coherent_none = basic_buffer<int, host_backend, placement::device_mapped, sync::none>;
using lazy_shared = shared_buffer<int, host_backend>;

// ---- the lost write of the issue -----------------------------------------------------------------

TEST(LostWrite, StagedUploadBufferWrittenThroughViewWithoutFlushIsMarked) {
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    ASSERT_FALSE(up.report().zero_copy);
    EXPECT_FALSE(up.has_unflushed_view_writes());
    auto v = up.view();
    v[3] = 3;
    EXPECT_TRUE(up.has_unflushed_view_writes()) << "view writes on staged memory need a staging copy";
    up.flush();
    EXPECT_FALSE(up.has_unflushed_view_writes());
    EXPECT_EQ(device_reads(dev, up)[3], 3) << "after flush() the device reads the write";
}

#if GTEST_HAS_DEATH_TEST && !defined(NDEBUG)
TEST(LostWriteDeathTest, DispatchReadingAStagedBufferWithUnflushedViewWritesAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // the host backend runs a worker thread
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    auto v = up.view();
    v[3] = 3;
    // Without the check the kernel would read 0 at index 3 (the staging copy never ran).
    EXPECT_DEATH(device_reads(dev, up), "view\\(\\) were not flushed");
}

TEST(LostWriteDeathTest, CopyFromASourceWithUnflushedViewWritesAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    host_backend dev;  // simulate_non_coherent: explicit_flush memory has a separate host copy
    non_coherent_none src(dev, 16);
    basic_buffer<int, host_backend, placement::host> dst(dev, 16);
    auto v = src.view();
    v[0] = 1;
    EXPECT_DEATH(dst.copy_from(src), "view\\(\\) were not flushed");
}

TEST(LostWriteDeathTest, DeviceUseWhileAWriteScopeIsOpenAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    auto w = up.write_scope();
    w[3] = 3;
    EXPECT_DEATH(device_reads(dev, up), "view\\(\\) were not flushed");
}
#endif

TEST(LostWrite, TheSameWritesThroughAWriteScopeArrive) {
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    {
        auto w = up.write_scope();
        w[3] = 3;
        EXPECT_TRUE(up.has_unflushed_view_writes()) << "the scope is still open";
    }
    EXPECT_FALSE(up.has_unflushed_view_writes());
    EXPECT_EQ(device_reads(dev, up)[3], 3);
}

TEST(LostWrite, CoherentZeroCopyAndLazyBuffersAreNeverMarked) {
    host_backend dev;
    upload_buffer<int, host_backend> zero_copy(dev, 8);  // the host backend's automatic: zero-copy, coherent
    ASSERT_TRUE(zero_copy.report().zero_copy && zero_copy.report().host_coherent);
    zero_copy.view()[3] = 3;
    EXPECT_FALSE(zero_copy.has_unflushed_view_writes());
    EXPECT_EQ(device_reads(dev, zero_copy)[3], 3) << "visible without a flush";

    host_backend staged(staged_options());
    lazy_shared lazy(staged, 8);
    ASSERT_FALSE(lazy.report().zero_copy);
    lazy.view()[3] = 3;
    EXPECT_FALSE(lazy.has_unflushed_view_writes());
    EXPECT_TRUE(host_newer(lazy.state())) << "lazy: the view marks the state instead";
    EXPECT_EQ(device_reads(staged, lazy)[3], 3) << "synced on use";
}

TEST(LostWrite, WhatClearsTheMark) {
    host_backend dev(staged_options());
    coherent_fenced b(dev, 8);  // read_write, fenced, staged by the backend
    auto mark = [&] {
        b.view()[0] = 1;
        ASSERT_TRUE(b.has_unflushed_view_writes());
    };
    mark();
    b.flush(0, 1);  // any flush: the mark does not know which elements were written
    EXPECT_FALSE(b.has_unflushed_view_writes());

    mark();
    b.fill(4);  // fenced whole-buffer write: every element staged
    EXPECT_FALSE(b.has_unflushed_view_writes());

    mark();
    b.write(std::vector<int>(2, 5), 3);  // a partial write stages only its own range
    EXPECT_TRUE(b.has_unflushed_view_writes());
    b.write(std::vector<int>(8, 6));  // a whole-buffer write stages everything
    EXPECT_FALSE(b.has_unflushed_view_writes());

    mark();
    (void)b.const_view();  // reading does not clear it
    EXPECT_TRUE(b.has_unflushed_view_writes());
    basic_buffer<int, host_backend, placement::host> src(dev, 8);
    src.fill(7);
    b.copy_from(src);  // device work that only writes supersedes the host's writes
    EXPECT_FALSE(b.has_unflushed_view_writes());
    EXPECT_EQ(b.to_vector(), std::vector<int>(8, 7));

    mark();
    auto moved = std::move(b);  // the mark moves with the memory
    EXPECT_TRUE(moved.has_unflushed_view_writes());
    EXPECT_FALSE(b.has_unflushed_view_writes());  // NOLINT(bugprone-use-after-move): empty now
    moved.reset();
    EXPECT_FALSE(moved.has_unflushed_view_writes());
}

TEST(LostWrite, ReadingThroughConstViewDoesNotMark) {
    host_backend dev;
    non_coherent_none b(dev, 16);
    b.invalidate();
    EXPECT_EQ(b.const_view()[0], 0);
    EXPECT_FALSE(b.has_unflushed_view_writes());
}

// ---- the write scope --------------------------------------------------------------------------

TEST(WriteScope, ViewTypeFollowsTheAccessPolicy) {
    using rw = basic_buffer<int, host_backend, access::read_write>;
    using wo = upload_buffer<int, host_backend>;
    static_assert(std::is_same_v<host_write_scope<rw>::view_type, std::span<int>>);
    static_assert(std::is_same_v<host_write_scope<wo>::view_type, write_only_view<int>>);
    static_assert(std::is_same_v<decltype(std::declval<rw&>().write_scope()), host_write_scope<rw>>);
    static_assert(std::is_same_v<decltype(std::declval<host_write_scope<rw>&>()[0]), int&>);
    static_assert(std::is_same_v<decltype(std::declval<host_write_scope<wo>&>()[0]), write_only_ref<int>>);
    static_assert(std::is_nothrow_move_constructible_v<host_write_scope<wo>>);
    static_assert(std::is_nothrow_move_assignable_v<host_write_scope<wo>>);
    static_assert(!std::is_copy_constructible_v<host_write_scope<wo>>);
    static_assert(!std::is_copy_assignable_v<host_write_scope<wo>>);
    static_assert(std::is_nothrow_destructible_v<host_write_scope<wo>>);
}

TEST(WriteScope, WritesReachTheDeviceOnStagedMemory) {
    host_backend dev(staged_options());
    scope_writes_reach_the_device<staged_upload>(dev, "upload_buffer, staged, fenced");
    scope_writes_reach_the_device<coherent_fenced>(dev, "read_write, staged, fenced");
    scope_writes_reach_the_device<lazy_shared>(dev, "shared_buffer, staged, lazy");
}

TEST(WriteScope, WritesReachTheDeviceOnExplicitFlushMemory) {
    host_backend dev;  // simulate_non_coherent
    ASSERT_FALSE(non_coherent_none(dev, 1).report().host_coherent);
    scope_writes_reach_the_device<non_coherent_none>(dev, "read_write, explicit_flush, none");
    scope_writes_reach_the_device<non_coherent_write_only>(dev, "write_only, explicit_flush, none");
}

TEST(WriteScope, WritesReachTheDeviceOnCoherentMemory) {
    host_backend dev;
    ASSERT_TRUE(coherent_fenced(dev, 1).report().zero_copy);
    scope_writes_reach_the_device<coherent_fenced>(dev, "read_write, coherent, fenced");
    scope_writes_reach_the_device<coherent_none>(dev, "read_write, coherent, device_mapped, none");
    scope_writes_reach_the_device<upload_buffer<int, host_backend>>(dev, "upload_buffer, zero-copy");
    scope_writes_reach_the_device<lazy_shared>(dev, "shared_buffer, zero-copy, lazy");
}

TEST(WriteScope, ASubRangeScopeFlushesItsRange) {
    host_backend dev(staged_options());
    staged_upload up(dev, 32);
    up.write(std::vector<int>(32, -1));
    {
        auto w = up.write_scope(10, 4);
        EXPECT_EQ(w.offset(), 10u);
        EXPECT_EQ(w.size(), 4u);
        w.view().assign(std::vector<int>{1, 2, 3, 4});
    }
    auto seen = device_reads(dev, up);
    for (std::size_t i = 0; i < 32; ++i) {
        const bool in = i >= 10 && i < 14;
        EXPECT_EQ(seen[i], in ? static_cast<int>(i) - 9 : -1) << "element " << i;
    }
    expect_error([&] { (void)up.write_scope(30, 3); }, errc::out_of_range,
                 {"write_scope of 3 elements at offset 30", "32 elements"});
}

TEST(WriteScope, LazyScopeAfterDeviceWriteBringsDeviceDataBackFirst) {
    host_backend dev(staged_options());
    lazy_shared s(dev, 8);
    s.fill(1);
    host_kernel twice = [](const host_invocation& in) {
        for (int& x : in.as<int>(0)) x *= 2;
    };
    dispatch(dev, twice, {1}, {}, bind(s, usage::read_write));
    EXPECT_EQ(s.state(), buffer_state::device_dirty);
    {
        auto w = s.write_scope(0, 1);  // a partial write: elements 1..7 must keep the device's 2
        w[0] = 9;
    }
    EXPECT_EQ(s.state(), buffer_state::host_dirty);
    EXPECT_EQ(device_reads(dev, s), (std::vector<int>{9, 2, 2, 2, 2, 2, 2, 2}));
}

TEST(WriteScope, CommitEndsTheScopeAndReturnsTheFence) {
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    auto w = up.write_scope();
    w[0] = 5;
    const host_backend::fence f = w.commit();
    EXPECT_NE(f.value, 0u) << "a staging copy was queued";
    EXPECT_EQ(up.last_use(), f);
    EXPECT_FALSE(w.is_open());
    EXPECT_EQ(w.size(), 0u);
    EXPECT_EQ(w.commit(), host_backend::fence{}) << "a closed scope commits nothing";
    EXPECT_FALSE(w.try_commit());
    expect_error([&] { (void)w.view(); }, errc::invalid_argument, {"closed write scope"});
    EXPECT_EQ(device_reads(dev, up)[0], 5);
}

TEST(WriteScope, MovedFromScopeIsClosedAndTheMovedToOneCommits) {
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    host_write_scope<staged_upload> outer;
    EXPECT_FALSE(outer.is_open());
    {
        auto w = up.write_scope();
        w[1] = 11;
        outer = std::move(w);
        EXPECT_FALSE(w.is_open());  // NOLINT(bugprone-use-after-move): what is tested
        EXPECT_FALSE(w.try_commit());
    }  // w's destructor does nothing
    EXPECT_TRUE(up.has_unflushed_view_writes());
    outer[2] = 12;
    host_write_scope<staged_upload> other = std::move(outer);
    other[3] = 13;
    other = host_write_scope<staged_upload>{};  // move-assigning ends the open scope
    EXPECT_FALSE(up.has_unflushed_view_writes());
    const auto seen = device_reads(dev, up);
    EXPECT_EQ(seen[1], 11);
    EXPECT_EQ(seen[2], 12);
    EXPECT_EQ(seen[3], 13);
}

TEST(WriteScope, BufferMovedWhileAScopeIsOpen) {
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    auto w = up.write_scope();
    w[0] = 1;
    staged_upload moved = std::move(up);
    // The scope refers to the moved-from buffer: its commit fails, the moved-to buffer keeps the mark.
    EXPECT_EQ(w.try_commit(), make_error_code(errc::invalid_argument));
    EXPECT_FALSE(w.is_open());
    EXPECT_TRUE(moved.has_unflushed_view_writes());
    moved.flush();
    EXPECT_EQ(device_reads(dev, moved)[0], 1);
}

TEST(WriteScope, DestructorOfAScopeWhoseFlushFailsDoesNotThrow) {
    host_backend dev(staged_options());
    staged_upload up(dev, 8);
    {
        auto w = up.write_scope();
        w[0] = 1;
        up.reset();  // the buffer is empty now: the destructor's flush fails and is dropped
    }
    EXPECT_TRUE(up.empty());
}

TEST(WriteScope, EmptyBufferHasNoWriteScope) {
    host_backend dev;
    staged_upload a(dev, 8);
    staged_upload b = std::move(a);
    expect_error([&] { (void)a.write_scope(); }, errc::invalid_argument,  // NOLINT(bugprone-use-after-move)
                 {"write_scope on an empty (moved-from) buffer"});
    EXPECT_TRUE(b.write_scope().is_open());
}

} // namespace
