// Issue 9 on the buffer layer (host backend, run under ASan/UBSan): sizes whose byte count would
// wrap, every member of an empty (moved-from or reset) buffer, empty bindings of a dispatch, the
// write-only view's range check, and the buffer's timeout reaching the backend's read-back.
#include "../common/expect_error.hpp"
#include "../common/gate.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

using namespace unibuf;
using namespace std::chrono_literals;
using unibuf_test::expect_error;

namespace {

constexpr std::size_t size_max = std::numeric_limits<std::size_t>::max();
// SIZE_MAX / 8 + 2 elements of 8 bytes: (2^61 + 1) * 8 = 2^64 + 8, which wraps to 8 bytes.
constexpr std::size_t wrapping_doubles = size_max / 8 + 2;

// ---- sizes whose byte count overflows -----------------------------------------------------------

TEST(BufferSafety, AByteSizeThatWrapsIsRejectedNamingElementsAndElementSize) {
    host_backend dev;
    const std::string asked = std::to_string(wrapping_doubles) + " elements of 8 bytes";
    expect_error([&] { shared_buffer<double, host_backend> b(dev, wrapping_doubles); }, errc::out_of_range,
                 {asked.c_str(), "overflows 64 bits", "at most 2305843009213693951 elements of 8 bytes"});
    expect_error([&] { device_buffer<double, host_backend> b(dev, wrapping_doubles); }, errc::out_of_range,
                 {asked.c_str(), "overflows 64 bits"});
    expect_error([&] { upload_buffer<std::uint32_t, host_backend> b(dev, size_max / 2); }, errc::out_of_range,
                 {(std::to_string(size_max / 2) + " elements of 4 bytes").c_str(), "overflows 64 bits"});
    // Nothing reached the backend: no bytes are held, and a valid buffer still allocates.
    EXPECT_EQ(dev.bytes_in_use(), 0u);
    shared_buffer<double, host_backend> ok(dev, 16);
    EXPECT_EQ(ok.size_bytes(), 128u);
}

TEST(BufferSafety, TryCreateReturnsOutOfRangeForAByteSizeThatWraps) {
    host_backend dev;
    std::error_code ec;
    auto s = shared_buffer<double, host_backend>::try_create(dev, wrapping_doubles, ec);
    EXPECT_FALSE(s.has_value());
    EXPECT_EQ(ec, make_error_code(errc::out_of_range));
    auto d = device_buffer<double, host_backend>::try_create(dev, wrapping_doubles, ec);
    EXPECT_FALSE(d.has_value());
    EXPECT_EQ(ec, make_error_code(errc::out_of_range));
    EXPECT_EQ(dev.bytes_in_use(), 0u);
    auto fine = device_buffer<double, host_backend>::try_create(dev, 4, ec);
    ASSERT_TRUE(fine.has_value()) << ec.message();
    EXPECT_FALSE(ec);
    EXPECT_EQ(fine->size(), 4u);
}

TEST(BufferSafety, RequestForChecksTheProductAtTheLimit) {
    using buf = shared_buffer<double, host_backend>;
    EXPECT_EQ(buf::max_size(), size_max / 8);
    EXPECT_EQ(buf::request_for(buf::max_size()).size_bytes, std::uint64_t{buf::max_size()} * 8);
    expect_error([] { (void)buf::request_for(buf::max_size() + 1); }, errc::out_of_range,
                 {(std::to_string(buf::max_size() + 1) + " elements of 8 bytes").c_str()});
    EXPECT_EQ((basic_buffer<std::byte, host_backend>::max_size()), size_max);  // one byte each never wraps
    EXPECT_EQ((basic_buffer<std::byte, host_backend>::request_for(size_max).size_bytes), std::uint64_t{size_max});
}

TEST(BufferSafety, AnAllocationFailureNamesTheElementsAskedFor) {
    // SIZE_MAX / 8 doubles do not wrap (2^64 - 8 bytes), but no backend has them: the backend's
    // message is led by the request in elements, and its code is kept.
    host_backend dev;
    const std::size_t n = size_max / 8;
    expect_error([&] { shared_buffer<double, host_backend> b(dev, n); }, errc::out_of_memory,
                 {("a buffer of " + std::to_string(n) + " elements of 8 bytes: unibuf: host_backend").c_str()});
#if UNIBUF_EXCEPTIONS
    try {
        shared_buffer<double, host_backend> b(dev, n);
        ADD_FAILURE() << "allocated 2^64 - 8 bytes";
    } catch (const std::system_error& e) {
        const std::string what = e.what();
        const std::string tail = ": " + e.code().message();
        EXPECT_EQ(what.find(tail), what.size() - tail.size()) << "the code's text once, at the end: " << what;
    }
#endif
    EXPECT_EQ(dev.bytes_in_use(), 0u);
}

TEST(BufferSafety, OffsetsAndCountsWhoseSumWrapsAreOutOfRange) {
    host_backend dev;
    basic_buffer<int, host_backend, placement::host, sync::fenced> b(dev, 8);
    b.fill(5);
    std::vector<int> two(2);
    // offset + count wraps to a small number: each access must still be rejected.
    expect_error([&] { b.write(two, size_max); }, errc::out_of_range, {"write of 2 elements at offset", "8 elements"});
    expect_error([&] { b.read(two, size_max - 1); }, errc::out_of_range, {"read of 2 elements"});
    expect_error([&] { b.flush(2, size_max - 1); }, errc::out_of_range, {"flush"});
    expect_error([&] { b.invalidate(size_max, 2); }, errc::out_of_range, {"invalidate"});
    EXPECT_EQ(b.try_write(two, size_max), make_error_code(errc::out_of_range));
    EXPECT_EQ(b.try_read(two, size_max - 1), make_error_code(errc::out_of_range));
    EXPECT_EQ(b.to_vector(), std::vector<int>(8, 5)) << "rejected accesses wrote nothing";
}

TEST(BufferSafety, WriteOnlyViewAssignChecksItsRange) {
    host_backend dev;
    upload_buffer<int, host_backend> up(dev, 4);
    auto w = up.view();
    const std::vector<int> three{1, 2, 3};
    expect_error([&] { w.assign(three, 2); }, errc::out_of_range,
                 {"assign of 3 elements of 4 bytes at offset 2", "view of 4 elements"});
    expect_error([&] { w.assign(three, size_max); }, errc::out_of_range, {"at offset"});
    w.assign(three, 1);
    w[0] = 9;
    readback_buffer<int, host_backend> back(dev, 4);
    back.copy_from(up);
    EXPECT_EQ(back.to_vector(), (std::vector<int>{9, 1, 2, 3}));
}

// ---- empty (moved-from or reset) buffers ------------------------------------------------------

/// Every member of an empty buffer either works on the empty state or throws invalid_argument
/// naming the member and "empty (moved-from) buffer"; none dereferences null (ASan/UBSan).
template <class Buf>
void expect_empty_buffer_is_safe(Buf& e, Buf& full) {
    using T = typename Buf::value_type;
    ASSERT_TRUE(e.empty());
    // Observers work.
    EXPECT_EQ(e.size(), 0u);
    EXPECT_EQ(e.size_bytes(), 0u);
    EXPECT_EQ(e.byte_offset(), 0u);
    EXPECT_TRUE(e.is_idle());
    EXPECT_TRUE(e.wait(0ns));
    EXPECT_TRUE(e.wait(1h)) << "returns at once";
    EXPECT_TRUE(full.backend().is_complete(e.last_use()));
    e.set_wait_timeout(20ms);
    EXPECT_EQ(e.wait_timeout(), 20ms);
    // Members that need memory throw the same clear error.
    const auto empty_error = [](auto&& f, const char* what) {
        expect_error(f, errc::invalid_argument, {what, "on an empty (moved-from) buffer"});
    };
    empty_error([&] { (void)e.allocation(); }, "allocation()");
    empty_error([&] { (void)e.backend(); }, "backend()");
    empty_error([&] { (void)e.report(); }, "report()");
    empty_error([&] { e.flush(); }, "flush");
    empty_error([&] { e.flush(0, 0); }, "flush");
    empty_error([&] { e.invalidate(); }, "invalidate");
    empty_error([&] { e.before_device_use(usage::read); }, "device use");
    empty_error([&] { e.copy_from(full); }, "copy_from (the destination)");
    empty_error([&] { full.copy_from(e); }, "copy_from (the source)");
    empty_error([&] { e.copy_from(e); }, "copy_from (the source)");
    std::vector<T> one(1);
    if constexpr (Buf::host_writable) {
        empty_error([&] { e.write(one); }, "write");
        empty_error([&] { e.write(std::span<const T>{}); }, "write");
        empty_error([&] { e.fill(T{}); }, "fill");
        empty_error([&] { (void)e.begin_fill(); }, "fill");
        EXPECT_EQ(e.try_write(one), make_error_code(errc::invalid_argument));
    }
    if constexpr (Buf::host_readable) {
        empty_error([&] { e.read(one); }, "read");
        empty_error([&] { (void)e.to_vector(); }, "to_vector");
        EXPECT_EQ(e.try_read(one), make_error_code(errc::invalid_argument));
    }
    if constexpr (Buf::host_viewable) {
        empty_error([&] { (void)e.view(); }, "view");
        EXPECT_EQ(e.data(), nullptr);
        if constexpr (Buf::host_readable) empty_error([&] { (void)e.const_view(); }, "const_view");
    }
    // Members that record device use or sync do nothing.
    e.after_device_use(typename Buf::fence_type{}, usage::read_write);
    e.end_fill(typename Buf::fence_type{}, true);
    if constexpr (Buf::sync == sync_kind::lazy) {
        e.mark_host_dirty();
        e.sync_to_device();
        e.mark_device_dirty();
        e.sync_to_host();
        EXPECT_EQ(e.state(), buffer_state::uninitialized);
    }
    EXPECT_TRUE(e.is_idle());
    e.reset();
    e.reset();
    EXPECT_TRUE(e.empty());
    // Moving an empty buffer gives an empty buffer; moving into one makes it usable.
    Buf still_empty(std::move(e));
    EXPECT_TRUE(still_empty.empty());
    e = std::move(still_empty);
    EXPECT_TRUE(e.empty());
    const std::size_t n = full.size();
    e = std::move(full);
    EXPECT_EQ(e.size(), n);
    EXPECT_FALSE(e.empty());
    EXPECT_TRUE(e.wait(1s));
    full = std::move(e);  // back, for the caller
}

template <class Buf>
void check_moved_from_and_reset(host_backend& dev) {
    SCOPED_TRACE(std::string(Buf::access_policy::name) + ", " + std::string(Buf::placement_policy::name) + ", " +
                 std::string(Buf::sync_policy::name));
    Buf a(dev, 16);
    Buf keep(std::move(a));
    expect_empty_buffer_is_safe(a, keep);  // NOLINT(bugprone-use-after-move): the moved-from state is tested
    Buf r(dev, 16);
    r.reset();
    expect_empty_buffer_is_safe(r, keep);
    EXPECT_EQ(keep.size(), 16u);
    EXPECT_EQ(&keep.backend(), &dev);
}

TEST(BufferSafety, EveryMemberOfAnEmptyBufferIsSafe) {
    host_backend dev;
    check_moved_from_and_reset<shared_buffer<int, host_backend>>(dev);
    check_moved_from_and_reset<device_buffer<int, host_backend>>(dev);
    check_moved_from_and_reset<upload_buffer<int, host_backend>>(dev);
    check_moved_from_and_reset<readback_buffer<int, host_backend>>(dev);
    check_moved_from_and_reset<basic_buffer<int, host_backend, coherence::explicit_flush, sync::none>>(dev);
    check_moved_from_and_reset<basic_buffer<int, host_backend, placement::device, sync::fenced>>(dev);
    EXPECT_TRUE(dev.wait_idle(default_wait_timeout));
    EXPECT_EQ(dev.bytes_in_use(), 0u);
}

TEST(BufferSafety, CopyBetweenMovedFromBuffersIsRejected) {
    host_backend dev;
    shared_buffer<float, host_backend> a(dev, 8), b(dev, 8);
    auto a2 = std::move(a);
    auto b2 = std::move(b);
    // Both empty with equal (zero) sizes: this used to reach the backend with null allocations.
    expect_error([&] { a.copy_from(b); }, errc::invalid_argument, {"copy_from", "empty (moved-from) buffer"});
    a2.fill(3.0f);
    b2.copy_from(a2);
    EXPECT_EQ(b2.to_vector(), std::vector<float>(8, 3.0f));
}

TEST(BufferSafety, DispatchRejectsAnEmptyBindingBeforeTouchingAnyBuffer) {
    host_backend dev;
    shared_buffer<int, host_backend> x(dev, 8);
    shared_buffer<int, host_backend> gone(dev, 8);
    auto kept = std::move(gone);
    x.fill(1);
    ASSERT_EQ(x.state(), buffer_state::host_only);
    bool ran = false;
    host_kernel k = [&](const host_invocation&) { ran = true; };
    expect_error([&] { dispatch(dev, k, {1}, {}, bind(x, usage::read_write), bind(gone, usage::read)); },
                 errc::invalid_argument, {"dispatch: binding 1", "empty (moved-from) buffer"});
    EXPECT_TRUE(dev.wait_idle(default_wait_timeout));
    EXPECT_FALSE(ran);
    EXPECT_EQ(x.state(), buffer_state::host_only) << "the valid binding was not prepared for a dispatch that never ran";
    EXPECT_TRUE(x.is_idle());
    // The same dispatch with a live buffer runs.
    dispatch(dev, k, {1}, {}, bind(x, usage::read_write), bind(kept, usage::read));
    EXPECT_TRUE(x.wait(default_wait_timeout));
    EXPECT_TRUE(ran);
    EXPECT_EQ(x.state(), buffer_state::device_dirty);
}

// ---- the buffer's timeout bounds the backend's waits -------------------------------------------

TEST(BufferSafety, FencedReadBackAndInvalidateObeyTheBuffersTimeout) {
    host_backend dev;
    basic_buffer<int, host_backend, placement::device, sync::fenced> d(dev, 32);
    d.fill(4);
    ASSERT_TRUE(d.wait(default_wait_timeout));
    unibuf_test::gate g;
    dev.submit([&] { g.wait(); });  // other work queued before the staging copy back
    d.set_wait_timeout(40ms);
    std::vector<int> out(32);
    expect_error([&] { d.read(out); }, errc::timeout, {"invalidate", "within 40 ms"});
    expect_error([&] { d.invalidate(); }, errc::timeout, {"invalidate", "within 40 ms"});
    g.open();
    ASSERT_TRUE(dev.wait_idle(default_wait_timeout));  // the abandoned copies ran; nothing refers to d now
    d.set_wait_timeout(default_wait_timeout);
    d.read(out);
    EXPECT_EQ(out, std::vector<int>(32, 4));
}

} // namespace
