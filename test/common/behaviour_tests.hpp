// The behaviour tests every backend runs: one typed suite, instantiated per backend environment.
//
// An environment `Env` provides:
//   using backend = <backend type>;
//   static constexpr const char* name;
//   static backend& get();        // one backend per process
//   static auto& saxpy();         // kernel of include/unibuf/ops/saxpy/saxpy.comp
//   static void expect_clean();   // fails the test for each validation/debug message since the last call
//
// Each test walks every valid policy combination (69 of them) or the combinations it is about,
// moving real data host -> device -> host through the backend and checking every element.
#pragma once

#include "combos.hpp"
#include "expect_error.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace unibuf_test {

using namespace unibuf;

/// Parameters of saxpy.comp: y[i] = a * x[i] + y[i] for i < n.
struct saxpy_params {
    float a;
    std::uint32_t n;
};

inline std::vector<float> pattern(std::size_t n, float base) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i % 1021);
    return v;
}


} // namespace unibuf_test

// The suite lives in an unnamed namespace, reachable from the global one, so that each backend's
// test file instantiates it with INSTANTIATE_TYPED_TEST_SUITE_P(<Backend>, BufferBehaviour, Types<env>).
namespace {
using namespace unibuf;
using namespace unibuf_test;

template <class Env>
class BufferBehaviour : public ::testing::Test {
protected:
    using B = typename Env::backend;
    // Helper buffers whose own behaviour is simple: host-visible, read-write, fenced.
    using plain = basic_buffer<float, B, access::read_write, coherence::coherent, placement::host, sync::fenced>;

    B& dev() { return Env::get(); }

    void TearDown() override { Env::expect_clean(); }

    /// y = a * x + y over n elements, through the generic dispatch.
    template <class X, class Y>
    typename B::fence saxpy(X& x, Y& y, float a, std::size_t n) {
        const saxpy_params p{a, static_cast<std::uint32_t>(n)};
        const std::uint32_t groups = static_cast<std::uint32_t>((n + 63) / 64);
        return unibuf::dispatch(dev(), Env::saxpy(), dispatch_size{groups, 1, 1}, push_constants(p),
                                bind(x, usage::read), bind(y, usage::read_write));
    }

    /// Puts `data` into the device copy of `b` by the path its policies allow.
    template <class Buf>
    void load(Buf& b, const std::vector<float>& data) {
        if constexpr (Buf::host_writable) {
            b.write(data);
            if constexpr (Buf::sync == sync_kind::none) {
                auto f = b.flush();  // the caller flushes under sync::none
                (void)f;
            }
        } else {
            plain src(dev(), data.size());
            src.write(data);
            b.copy_from(src);
        }
    }

    /// Reads the host copy of `b` by the path its policies allow (sync::none: wait + invalidate first).
    template <class Buf>
    std::vector<float> fetch(Buf& b) {
        if constexpr (Buf::sync == sync_kind::none) {
            EXPECT_TRUE(b.wait(default_wait_timeout)) << "device work did not complete in time";
            b.invalidate();
        }
        if constexpr (Buf::host_readable) {
            return b.to_vector();
        } else {
            plain dst(dev(), b.size());
            dst.copy_from(b);
            return dst.to_vector();
        }
    }

    /// The round trip of one combination at `n` elements: host -> device (x of a saxpy),
    /// device -> host (y of a saxpy), checking every element.
    template <class Combo>
    void round_trip(std::size_t n) {
        SCOPED_TRACE(Combo::name() + ", " + std::to_string(n) + " elements");
        using Buf = typename Combo::template buffer<float, B>;
        Buf b(dev(), n);
        const auto data = pattern(n, 1.0f);
        load(b, data);

        // host -> device: the kernel reads b.
        plain y(dev(), n);
        y.fill(1.0f);
        (void)saxpy(b, y, 2.0f, n);
        const auto got = y.to_vector();
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (got[i] != 2.0f * data[i] + 1.0f && bad++ < 3)
                ADD_FAILURE() << "device saw wrong data at " << i << ": " << got[i] << " != " << 2.0f * data[i] + 1.0f;
        EXPECT_EQ(bad, 0u);

        // device -> host: the kernel writes b (b = 3 * ones + b).
        plain ones(dev(), n);
        ones.fill(1.0f);
        (void)saxpy(ones, b, 3.0f, n);
        const auto back = fetch(b);
        ASSERT_EQ(back.size(), n);
        bad = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (back[i] != data[i] + 3.0f && bad++ < 3)
                ADD_FAILURE() << "host saw wrong data at " << i << ": " << back[i] << " != " << data[i] + 3.0f;
        EXPECT_EQ(bad, 0u);
    }
};

TYPED_TEST_SUITE_P(BufferBehaviour);

TYPED_TEST_P(BufferBehaviour, EveryValidCombinationRoundTripsSmallAndOddSizes) {
    int combos = 0;
    for_each_combo([&]<class Combo>() {
        ++combos;
        for (std::size_t n : {std::size_t{1}, std::size_t{63}, std::size_t{4097}}) this->template round_trip<Combo>(n);
    });
    EXPECT_EQ(combos, 69);
}

TYPED_TEST_P(BufferBehaviour, CommonBuffersRoundTrip64MiB) {
    constexpr std::size_t n = (std::size_t{64} << 20) / sizeof(float);
    this->template round_trip<combo<access::read_write, coherence::coherent, placement::automatic, sync::lazy>>(n);
    this->template round_trip<combo<access::read_write, coherence::coherent, placement::device, sync::fenced>>(n);
    this->template round_trip<combo<access::write_only, coherence::write_combined, placement::device_mapped, sync::fenced>>(n);
    this->template round_trip<combo<access::read_only, coherence::explicit_flush, placement::host, sync::none>>(n);
}

TYPED_TEST_P(BufferBehaviour, OddOffsetsWriteAndReadOnlyTheirRange) {
    using B = typename TypeParam::backend;
    auto check = [&]<class Buf>(Buf& b) {
        SCOPED_TRACE(std::string(Buf::placement_policy::name) + ", " + std::string(Buf::sync_policy::name));
        const std::size_t n = 1001;
        b.write(pattern(n, 0.0f));
        const auto mid = pattern(37, 5000.0f);
        b.write(mid, 333);
        std::vector<float> out(41);
        b.read(out, 331);
        const auto base = pattern(n, 0.0f);
        EXPECT_EQ(out[0], base[331]);
        EXPECT_EQ(out[1], base[332]);
        for (std::size_t i = 0; i < 37; ++i) EXPECT_EQ(out[2 + i], mid[i]);
        EXPECT_EQ(out[39], base[370]);
        EXPECT_EQ(out[40], base[371]);
    };
    basic_buffer<float, B, placement::host, sync::fenced> a(TypeParam::get(), 1001);
    basic_buffer<float, B, placement::device, sync::fenced> b(TypeParam::get(), 1001);
    basic_buffer<float, B, placement::device, sync::lazy> c(TypeParam::get(), 1001);
    basic_buffer<float, B, coherence::explicit_flush, placement::device_mapped, sync::lazy> d(TypeParam::get(), 1001);
    check(a);
    check(b);
    check(c);
    check(d);
}

TYPED_TEST_P(BufferBehaviour, OutOfRangeAccessIsRejectedWithSizes) {
    using B = typename TypeParam::backend;
    basic_buffer<float, B, sync::fenced> b(TypeParam::get(), 10);
    std::vector<float> four(4);
    unibuf_test::expect_error([&] { b.write(four, 8); }, errc::out_of_range, {"4 elements at offset 8", "10 elements"});
    EXPECT_EQ(b.try_read(four, 7), make_error_code(errc::out_of_range));
    EXPECT_FALSE(b.try_read(four, 6));
}

TYPED_TEST_P(BufferBehaviour, LazyStatesFollowRealDeviceWork) {
    using B = typename TypeParam::backend;
    auto walk = [&]<class Buf>(Buf& y) {
        SCOPED_TRACE(std::string(Buf::placement_policy::name) + ", " + std::string(Buf::coherence_policy::name));
        const std::size_t n = y.size();
        typename TestFixture::plain x(TypeParam::get(), n);
        x.fill(2.0f);
        EXPECT_EQ(y.state(), buffer_state::uninitialized);
        y.fill(1.0f);
        EXPECT_EQ(y.state(), buffer_state::host_only);
        (void)this->saxpy(x, y, 1.0f, n);  // flushes/stages first, then the device writes
        EXPECT_EQ(y.state(), buffer_state::device_dirty);
        auto v = y.to_vector();            // waits, brings the data back
        EXPECT_EQ(y.state(), buffer_state::synchronized);
        EXPECT_EQ(v.front(), 3.0f);
        EXPECT_EQ(v.back(), 3.0f);
        const std::vector<float> ten{10.0f};
        y.write(ten, n / 2);               // partial host write: host_dirty
        EXPECT_EQ(y.state(), buffer_state::host_dirty);
        y.sync_to_device();
        EXPECT_EQ(y.state(), buffer_state::synchronized);
        (void)this->saxpy(x, y, 1.0f, n);
        EXPECT_EQ(y.state(), buffer_state::device_dirty);
        y.sync_to_host();
        EXPECT_EQ(y.state(), buffer_state::synchronized);
        std::vector<float> got(1);
        y.read(got, n / 2);
        EXPECT_EQ(got[0], 12.0f);
        y.read(got, 0);
        EXPECT_EQ(got[0], 5.0f);
        // A partial host write after device work must not lose the device's other elements.
        (void)this->saxpy(x, y, 1.0f, n);
        const std::vector<float> one{100.0f};
        y.write(one, 1);
        EXPECT_EQ(y.state(), buffer_state::host_dirty);
        v = y.to_vector();
        EXPECT_EQ(v[0], 7.0f);
        EXPECT_EQ(v[1], 100.0f);
        EXPECT_EQ(v[n / 2], 14.0f);
    };
    basic_buffer<float, B, placement::device, sync::lazy> a(TypeParam::get(), 513);
    basic_buffer<float, B, placement::host, sync::lazy> b(TypeParam::get(), 513);
    basic_buffer<float, B, coherence::explicit_flush, placement::automatic, sync::lazy> c(TypeParam::get(), 513);
    walk(a);
    walk(b);
    walk(c);
}

TYPED_TEST_P(BufferBehaviour, ExplicitFlushIsWhatMakesHostWritesVisible) {
    using B = typename TypeParam::backend;
    // Under sync::none the caller flushes. Flushing a sub-range moves (at least) that range;
    // the device result must reflect the flushed data.
    const std::size_t n = 256;
    basic_buffer<float, B, coherence::explicit_flush, placement::host, sync::none> x(TypeParam::get(), n);
    typename TestFixture::plain y(TypeParam::get(), n);
    y.fill(0.0f);
    auto xv = x.view();
    for (std::size_t i = 0; i < n; ++i) xv[i] = static_cast<float>(i);
    x.flush(0, n);
    (void)this->saxpy(x, y, 1.0f, n);
    const auto got = y.to_vector();
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], static_cast<float>(i)) << "at " << i;
}

TYPED_TEST_P(BufferBehaviour, CopyFromChecksSizesAndCopiesOnTheDevice) {
    using B = typename TypeParam::backend;
    basic_buffer<float, B, placement::device, sync::lazy> a(TypeParam::get(), 300);
    basic_buffer<float, B, placement::host, sync::fenced> b(TypeParam::get(), 300);
    basic_buffer<float, B, placement::host, sync::fenced> c(TypeParam::get(), 299);
    a.write(pattern(300, 7.0f));
    b.copy_from(a);
    EXPECT_EQ(b.to_vector(), pattern(300, 7.0f));
    EXPECT_THROW(c.copy_from(a), std::system_error);
}

TYPED_TEST_P(BufferBehaviour, MovedBuffersKeepTheirDataAndReportTheirMemory) {
    using B = typename TypeParam::backend;
    basic_buffer<int, B, placement::device, sync::fenced> a(TypeParam::get(), 64);
    a.fill(42);
    auto b = std::move(a);
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
    EXPECT_EQ(b.size(), 64u);
    EXPECT_EQ(b.to_vector(), std::vector<int>(64, 42));
    EXPECT_FALSE(b.report().zero_copy);
    EXPECT_FALSE(b.report().reason.empty());
    std::error_code ec;
    auto none = basic_buffer<int, B>::try_create(TypeParam::get(), 0, ec);
    EXPECT_FALSE(none.has_value());
    EXPECT_TRUE(ec);
}

REGISTER_TYPED_TEST_SUITE_P(BufferBehaviour, EveryValidCombinationRoundTripsSmallAndOddSizes,
                            CommonBuffersRoundTrip64MiB, OddOffsetsWriteAndReadOnlyTheirRange,
                            OutOfRangeAccessIsRejectedWithSizes, LazyStatesFollowRealDeviceWork,
                            ExplicitFlushIsWhatMakesHostWritesVisible, CopyFromChecksSizesAndCopiesOnTheDevice,
                            MovedBuffersKeepTheirDataAndReportTheirMemory);

} // namespace
