// What the host backend simulates: non-coherent memory, staging, fences, memory limits.
#include "../common/expect_error.hpp"
#include "../common/gate.hpp"
#include "../common/host_env.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

using namespace unibuf;
using namespace std::chrono_literals;

namespace {

using unibuf_test::gate;

/// Device-side snapshot of a buffer's bytes, taken by a kernel (what the "GPU" sees).
template <class Buf>
std::vector<float> device_sees(host_backend& dev, Buf& b) {
    std::vector<float> out(b.size());
    auto f = dev.submit([&] {
        const std::byte* p = b.allocation().device_data() + b.byte_offset();
        std::memcpy(out.data(), p, b.size_bytes());
    });
    EXPECT_TRUE(dev.wait(f, default_wait_timeout));
    return out;
}

} // namespace

TEST(HostBackend, NonCoherentHostWritesReachTheDeviceOnlyThroughFlushRoundedToTheAtom) {
    host_backend dev;  // simulate_non_coherent, atom 64 bytes = 16 floats
    basic_buffer<float, host_backend, coherence::explicit_flush, placement::host, sync::none> b(dev, 64);
    EXPECT_FALSE(b.report().host_coherent);
    auto v = b.view();
    for (std::size_t i = 0; i < 64; ++i) v[i] = 1.0f + static_cast<float>(i);

    auto seen = device_sees(dev, b);
    for (float x : seen) EXPECT_EQ(x, 0.0f) << "a host write reached the device without a flush";

    (void)b.flush(17, 1);  // element 17 lies in the second atom: elements 16..31
    seen = device_sees(dev, b);
    for (std::size_t i = 0; i < 64; ++i) {
        const bool in_atom = i >= 16 && i < 32;
        EXPECT_EQ(seen[i], in_atom ? 1.0f + static_cast<float>(i) : 0.0f) << "element " << i;
    }
}

TEST(HostBackend, NonCoherentDeviceWritesReachTheHostOnlyThroughInvalidate) {
    host_backend dev;
    basic_buffer<float, host_backend, coherence::explicit_flush, placement::device_mapped, sync::none> b(dev, 32);
    auto f = dev.submit([&] {
        auto* p = reinterpret_cast<float*>(b.allocation().device_data());
        for (int i = 0; i < 32; ++i) p[i] = 9.0f;
    });
    ASSERT_TRUE(dev.wait(f, default_wait_timeout));
    EXPECT_EQ(b.view()[0], 0.0f) << "device write visible without invalidate";
    b.invalidate(0, 1);  // rounds to the first atom (16 floats)
    EXPECT_EQ(b.view()[15], 9.0f);
    EXPECT_EQ(b.view()[16], 0.0f);
    b.invalidate();
    EXPECT_EQ(b.view()[31], 9.0f);
}

TEST(HostBackend, CoherentMemoryIsZeroCopy) {
    host_backend dev;
    basic_buffer<float, host_backend, placement::device_mapped, sync::none> b(dev, 8);
    EXPECT_TRUE(b.report().zero_copy);
    EXPECT_EQ(b.report().chosen, placement_kind::device_mapped);
    b.view()[3] = 4.0f;
    EXPECT_EQ(device_sees(dev, b)[3], 4.0f);
}

TEST(HostBackend, DevicePlacementIsStagedAndForcedStagingIsReported) {
    host_backend dev;
    device_buffer<int, host_backend> d(dev, 16);
    EXPECT_FALSE(d.report().zero_copy);
    EXPECT_EQ(d.report().chosen, placement_kind::device);
    EXPECT_TRUE(d.report().fallbacks.empty());
    d.fill(5);
    EXPECT_EQ(d.state(), buffer_state::host_only);
    d.sync_to_device();
    EXPECT_EQ(d.state(), buffer_state::synchronized);
    ASSERT_TRUE(d.wait(default_wait_timeout));
    EXPECT_EQ(*reinterpret_cast<const int*>(d.allocation().device_data()), 5);

    host_backend::options o;
    o.force_staging = true;
    host_backend staged(o);
    shared_buffer<int, host_backend> s(staged, 16);
    EXPECT_FALSE(s.report().zero_copy);
    ASSERT_EQ(s.report().fallbacks.size(), 1u);
    EXPECT_NE(s.report().fallbacks[0].find("force_staging"), std::string::npos);
}

TEST(HostBackend, AllocatingUntilFailureGivesACleanErrorAndLeaksNothing) {
    host_backend::options o;
    o.memory_limit = 1 << 20;
    host_backend dev(o);
    std::vector<basic_buffer<std::byte, host_backend, placement::host>> held;
    std::error_code ec;
    for (int i = 0; i < 100; ++i) {
        auto b = basic_buffer<std::byte, host_backend, placement::host>::try_create(dev, 100000, ec);
        if (!b) break;
        held.push_back(std::move(*b));
    }
    EXPECT_EQ(held.size(), 10u);
    EXPECT_EQ(ec, make_error_code(errc::out_of_memory));
    unibuf_test::expect_error([&] { basic_buffer<std::byte, host_backend, placement::host> more(dev, 100000); },
                              errc::out_of_memory, {"asked for 100000 bytes", "48576 of 1048576 bytes free"});
    held.clear();
    EXPECT_EQ(dev.bytes_in_use(), 0u);
    basic_buffer<std::byte, host_backend, placement::host> again(dev, 1 << 20);
    EXPECT_EQ(dev.bytes_in_use(), 1u << 20);
}

TEST(HostBackend, FencesCompleteWhenTheirWorkHasRun) {
    host_backend dev;
    gate g;
    auto f1 = dev.submit([&] { (void)g.wait(); });
    auto f2 = dev.submit([] {});
    EXPECT_FALSE(dev.is_complete(f1));
    EXPECT_FALSE(dev.wait(f2, 1ms)) << "later work completed before earlier work";
    g.open();
    EXPECT_TRUE(dev.wait(f2, default_wait_timeout));
    EXPECT_TRUE(dev.is_complete(f1));
    EXPECT_TRUE(dev.is_complete(host_backend::fence{}));
}

TEST(HostBackend, FencedHostAccessWaitsForDeviceUseAndTimesOutCleanly) {
    host_backend dev;
    basic_buffer<float, host_backend, placement::host, sync::fenced> b(dev, 64);
    b.fill(1.0f);
    gate g;
    host_kernel hold = [&](const host_invocation& in) {
        (void)g.wait();
        for (auto& x : in.as<float>(0)) x = 2.0f;
    };
    (void)unibuf::dispatch(dev, hold, {1, 1, 1}, {}, bind(b, usage::read_write));
    EXPECT_FALSE(b.is_idle());
    b.set_wait_timeout(2ms);
    const std::vector<float> one{3.0f};
    // No write into memory the device is still using.
    unibuf_test::expect_error([&] { b.write(one, 0); }, errc::timeout, {"did not complete within 2 ms"});
    EXPECT_EQ(b.try_write(one, 0), make_error_code(errc::timeout));
    g.open();
    b.set_wait_timeout(default_wait_timeout);
    b.write(one, 0);
    const auto v = b.to_vector();
    EXPECT_EQ(v[0], 3.0f);
    EXPECT_EQ(v[1], 2.0f);
}

TEST(HostBackend, ZeroByteAllocationIsRejected) {
    host_backend dev;
    memory_request r;
    r.size_bytes = 0;
    std::error_code ec;
    auto a = dev.try_allocate(r, ec);
    EXPECT_FALSE(a);
    EXPECT_EQ(ec, make_error_code(errc::invalid_argument));
}
