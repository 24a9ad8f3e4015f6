// The conv2d behaviour suite, run on every backend (host: the CPU reference itself; Vulkan with
// validation + synchronization validation; OpenGL with a debug context). The oracle is
// conv2d_reference computed here on the CPU; a result passes when every element lies within
// conv2d_fp32_tolerance: twice the float summation bound gamma_n * sum |in * w| (n = C*R*S + 1)
// plus the final rounding, i.e. what any order of fp32 sums (fma or not) can differ from the exact
// result.
//
// An environment `Env` provides: using backend; static backend& get(); static void expect_clean().
#pragma once

#include "../common/expect_error.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace unibuf_test {

/// Random floats in [-1, 1] from `seed`.
inline std::vector<float> conv_random(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

/// The reference result of `d` and its per-element magnitude.
struct conv_expected {
    std::vector<float> out, magnitude;
};

inline conv_expected conv_reference(const unibuf::conv2d_desc& d, const std::vector<float>& in,
                                    const std::vector<float>& w, const std::vector<float>& b) {
    const auto z = unibuf::conv2d_validate(d);
    conv_expected e;
    e.out.resize(z.output);
    e.magnitude.resize(z.output);
    unibuf::conv2d_reference(d, in, w, b, e.out, e.magnitude);
    return e;
}

/// Checks `got` against `e` within the fp32 bound; reports the first few mismatches with the description.
inline void expect_close(const unibuf::conv2d_desc& d, const std::vector<float>& got, const conv_expected& e,
                         std::size_t count) {
    ASSERT_GE(got.size(), count) << d.to_string();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const double tol = unibuf::conv2d_fp32_tolerance(d, e.magnitude[i]);
        const double diff = std::fabs(static_cast<double>(got[i]) - static_cast<double>(e.out[i]));
        if (!(diff <= tol) && ++bad <= 3)
            ADD_FAILURE() << d.to_string() << ": element " << i << " is " << got[i] << ", expected " << e.out[i]
                          << " (tolerance " << tol << ")";
    }
    EXPECT_EQ(bad, 0u) << d.to_string() << ": " << bad << " of " << count << " elements outside the tolerance";
}

/// A random description in the ranges: N 1-3, C 1-19, H/W 1-41, K 1-21, R/S 1-7, stride 1-3,
/// padding 0-R (rows) / 0-S (columns) per side, dilation 1-3, bias and ReLU each on or off.
inline unibuf::conv2d_desc random_desc(std::mt19937& rng) {
    auto in = [&](std::uint32_t lo, std::uint32_t hi) { return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng); };
    unibuf::conv2d_desc d;
    d.n = in(1, 3);
    d.c = in(1, 19);
    d.h = in(1, 41);
    d.w = in(1, 41);
    d.k = in(1, 21);
    d.r = in(1, 7);
    d.s = in(1, 7);
    d.stride_h = in(1, 3);
    d.stride_w = in(1, 3);
    d.pad_top = in(0, d.r);
    d.pad_bottom = in(0, d.r);
    d.pad_left = in(0, d.s);
    d.pad_right = in(0, d.s);
    d.dilation_h = in(1, 3);
    d.dilation_w = in(1, 3);
    d.bias = in(0, 1) == 1;
    d.relu = in(0, 1) == 1;
    return d;
}

} // namespace unibuf_test

namespace {
using namespace unibuf;
using namespace unibuf_test;

template <class Env>
class Conv2dBehaviour : public ::testing::Test {
protected:
    using B = typename Env::backend;
    using lazy_dev = device_buffer<float, B>;  // read_write, coherent, device, lazy
    using lazy_shared = shared_buffer<float, B>;

    B& dev() { return Env::get(); }
    void TearDown() override { Env::expect_clean(); }

    // One case in flight: the description, its buffers, the conv2d, and the expected result.
    struct item {
        conv2d_desc d;
        std::unique_ptr<conv2d<B>> conv;
        std::unique_ptr<lazy_shared> in;
        std::unique_ptr<lazy_dev> w, b, out;
        conv_expected want;
    };

    std::unique_ptr<item> start(const conv2d_desc& d, std::uint32_t seed) {
        auto it = std::make_unique<item>();
        it->d = d;
        it->conv = std::make_unique<conv2d<B>>(dev(), d);
        const auto z = it->conv->sizes();
        const auto in = conv_random(z.input, seed);
        const auto w = conv_random(z.weights, seed + 1);
        const auto b = d.bias ? conv_random(d.k, seed + 2) : std::vector<float>{};
        it->want = conv_reference(d, in, w, b);
        it->in = std::make_unique<lazy_shared>(dev(), in.size());
        it->in->write(in);
        it->w = std::make_unique<lazy_dev>(dev(), w.size());
        it->w->write(w);
        it->out = std::make_unique<lazy_dev>(dev(), z.output);
        it->out->set_wait_timeout(std::chrono::seconds(60));  // 25 cases queue at once on a shared CI CPU
        it->out->fill(std::numeric_limits<float>::quiet_NaN());  // an element never written fails the check
        (void)it->out->sync_to_device();                          // synchronized: the device write makes it device_dirty
        if (d.bias) {
            it->b = std::make_unique<lazy_dev>(dev(), b.size());
            it->b->write(b);
            (void)(*it->conv)(*it->in, *it->w, *it->b, *it->out);
        } else {
            (void)(*it->conv)(*it->in, *it->w, *it->out);
        }
        return it;
    }

    void finish(item& it) {
        EXPECT_EQ(it.out->state(), buffer_state::device_dirty) << it.d.to_string();
        expect_close(it.d, it.out->to_vector(), it.want, it.want.out.size());
        EXPECT_EQ(it.out->state(), buffer_state::synchronized) << it.d.to_string();
    }
};

TYPED_TEST_SUITE_P(Conv2dBehaviour);

// A hand-computed case through the backend: 1x1x3x3 input 1..9, a 3x3 kernel of ones, padding 1,
// stride 2, bias -20, ReLU: the four windows sum to 12, 16, 24, 28.
TYPED_TEST_P(Conv2dBehaviour, HandComputedStridedPaddedBiasRelu) {
    conv2d_desc d;
    d.h = d.w = 3;
    d.pad(1).stride(2);
    d.bias = d.relu = true;
    conv2d<typename TestFixture::B> conv(this->dev(), d);
    EXPECT_EQ(conv.output_shape(), (conv2d_shape{1, 1, 2, 2}));
    typename TestFixture::lazy_shared in(this->dev(), 9), w(this->dev(), 9), b(this->dev(), 1), out(this->dev(), 4);
    in.write(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9});
    w.fill(1.0f);
    b.fill(-20.0f);
    (void)conv(in, w, b, out);
    EXPECT_EQ(out.to_vector(), (std::vector<float>{0, 0, 4, 8}));
}

// >= 200 random descriptions in the ranges, in batches of 25 in flight at once.
TYPED_TEST_P(Conv2dBehaviour, RandomDescriptionsMatchTheReference) {
    std::mt19937 rng(20261129);
    int done = 0, empty = 0;
    std::uint32_t seed = 1;
    while (done < 200) {
        std::vector<std::unique_ptr<typename TestFixture::item>> batch;
        while (batch.size() < 25 && done + static_cast<int>(batch.size()) < 200) {
            const conv2d_desc d = random_desc(rng);
            if (conv2d_output_shape(d).h == 0 || conv2d_output_shape(d).w == 0) {
                ++empty;  // an empty output must be refused before anything is made
                expect_error([&] { conv2d<typename TestFixture::B> c(this->dev(), d); }, errc::invalid_argument,
                             {"is empty", "the padded input is"});
                continue;
            }
            batch.push_back(this->start(d, seed));
            seed += 3;
        }
        for (auto& it : batch) this->finish(*it);
        done += static_cast<int>(batch.size());
        if (::testing::Test::HasFailure()) break;
    }
    EXPECT_EQ(done, 200);
    ::testing::Test::RecordProperty("empty_outputs_refused", empty);
}

// The streaming shape once: 1 x 3 x 1080 x 1920 -> 16 channels, 3x3, padding 1, bias.
TYPED_TEST_P(Conv2dBehaviour, Frame1080pC3K16) {
    conv2d_desc d;
    d.c = 3;
    d.h = 1080;
    d.w = 1920;
    d.k = 16;
    d.pad(1);
    d.bias = true;
    auto it = this->start(d, 77);
    this->finish(*it);
}

// Pool slices at offsets after an odd-sized slice, an upload_stream block as the input, an output
// buffer larger than the output whose extra elements stay as they were.
TYPED_TEST_P(Conv2dBehaviour, PoolSlicesStreamBlocksAndLargerOutputs) {
    using B = typename TestFixture::B;
    conv2d_desc d;
    d.n = 2;
    d.c = 5;
    d.h = 17;
    d.w = 23;
    d.k = 7;
    d.r = 3;
    d.s = 2;
    d.pad_top = 1;
    d.pad_left = 2;
    d.stride_w = 2;
    d.bias = true;
    conv2d<B> conv(this->dev(), d);
    const auto z = conv.sizes();
    const auto in = conv_random(z.input, 5), w = conv_random(z.weights, 6), b = conv_random(d.k, 7);
    const auto want = conv_reference(d, in, w, b);

    buffer_pool<B, access::read_write, coherence::coherent, placement::host, sync::fenced> pool(
        this->dev(), pool_config::with_bytes(1 << 20));
    auto odd = pool.template acquire<float>(13);  // the slices below start after it
    auto pin = pool.template acquire<float>(z.input);
    auto pw = pool.template acquire<float>(z.weights + 3);
    auto pb = pool.template acquire<float>(d.k);
    auto pout = pool.template acquire<float>(z.output + 5);
    EXPECT_GT(pin.byte_offset(), 0u);
    pin.write(in);
    pw.write(w);
    pb.write(b);
    pout.fill(-7.0f);
    auto f = conv(pin, pw, pb, pout);
    (void)f;
    const auto got = pout.to_vector();
    expect_close(d, got, want, z.output);
    for (std::size_t i = z.output; i < got.size(); ++i) EXPECT_EQ(got[i], -7.0f) << "extra element " << i;

    upload_stream<B> up(this->dev(), 1 << 20, 2);
    auto blk = up.upload(std::span<const float>(in));
    typename TestFixture::lazy_dev out2(this->dev(), z.output);
    (void)conv(blk, pw, pb, out2);
    expect_close(d, out2.to_vector(), want, z.output);
}

// Every bad description and every too-small buffer is refused with its message, before anything runs.
TYPED_TEST_P(Conv2dBehaviour, BadDescriptionsAndSmallBuffersAreRefused) {
    using B = typename TestFixture::B;
    auto make = [&](const conv2d_desc& d) { conv2d<B> c(this->dev(), d); };
    conv2d_desc d;
    d.r = 8;
    expect_error([&] { make(d); }, errc::out_of_range, {"kernel 8x3", "1 to 7"});
    d = {};
    d.s = 0;
    expect_error([&] { make(d); }, errc::out_of_range, {"kernel 3x0", "1 to 7"});
    d = {};
    d.stride_w = 0;
    expect_error([&] { make(d); }, errc::invalid_argument, {"stride 1x0"});
    d = {};
    d.dilation_h = 0;
    expect_error([&] { make(d); }, errc::invalid_argument, {"dilation 0x1"});
    d = {};
    d.k = 0;
    expect_error([&] { make(d); }, errc::invalid_argument, {"N, C, H, W and K must be at least 1"});
    d = {};
    d.h = 2;  // 2 rows, 3x3 kernel, no padding: no output row
    expect_error([&] { make(d); }, errc::invalid_argument, {"the output 1x1x0x0 is empty", "padded input is 2x1"});

    d = {};
    d.c = 2;
    d.h = 6;
    d.w = 5;
    d.k = 3;
    d.bias = true;
    conv2d<B> conv(this->dev(), d);  // output 1x3x4x3 = 36, input 60, weights 54, bias 3
    typename TestFixture::lazy_dev in(this->dev(), 60), w(this->dev(), 54), b(this->dev(), 3), out(this->dev(), 36);
    typename TestFixture::lazy_dev small(this->dev(), 2);
    in.fill(1.0f);
    w.fill(1.0f);
    b.fill(0.0f);
    out.fill(5.0f);
    expect_error([&] { (void)conv(small, w, b, out); }, errc::out_of_range,
                 {"input buffer holds 2 floats", "input 1x2x6x5 needs 60"});
    expect_error([&] { (void)conv(in, small, b, out); }, errc::out_of_range,
                 {"weight buffer holds 2 floats", "weight 3x2x3x3 needs 54"});
    expect_error([&] { (void)conv(in, w, small, out); }, errc::out_of_range,
                 {"bias buffer holds 2 floats", "bias 1x3x1x1 needs 3"});
    expect_error([&] { (void)conv(in, w, b, small); }, errc::out_of_range,
                 {"output buffer holds 2 floats", "output 1x3x4x3 needs 36"});
    expect_error([&] { (void)conv(in, w, out); }, errc::invalid_argument, {"has a bias but no bias buffer"});
    expect_error([&] { (void)conv(in, w, b, in); }, errc::invalid_argument, {"overlaps the input"});
    // Nothing ran: the output still holds what the host wrote.
    EXPECT_EQ(out.state(), buffer_state::host_only);
    EXPECT_EQ(out.to_vector(), std::vector<float>(36, 5.0f));

    conv2d<B> moved(std::move(conv));
    EXPECT_FALSE(static_cast<bool>(conv));
    expect_error([&] { (void)conv(in, w, b, out); }, errc::invalid_argument, {"empty (moved-from) conv2d"});
    (void)moved(in, w, b, out);
    EXPECT_EQ(out.to_vector(), std::vector<float>(36, 18.0f));  // 2 channels x 9 taps of 1*1
}

// A tensor-core request is answered (fallback with its reason, or an error when required), never silent.
TYPED_TEST_P(Conv2dBehaviour, PrecisionRequestIsReported) {
    using B = typename TestFixture::B;
    conv2d_desc d;
    d.h = d.w = 3;
    conv2d<B> exact(this->dev(), d);
    EXPECT_EQ(exact.precision().used, conv2d_precision::exact_fp32);
    EXPECT_FALSE(exact.precision().fallback);
    conv2d_options o;
    o.precision = conv2d_precision::tensor_core_fp16;
    conv2d<B> asked(this->dev(), d, o);
    if (asked.precision().used != conv2d_precision::tensor_core_fp16) {
        EXPECT_TRUE(asked.precision().fallback);
        EXPECT_FALSE(asked.precision().reason.empty());
        EXPECT_NE(asked.precision().to_string().find("fallback"), std::string::npos);
        o.require_precision = true;
        expect_error([&] { conv2d<B> c(this->dev(), d, o); }, errc::unsupported,
                     {"precision tensor_core_fp16 was required"});
    }
}

REGISTER_TYPED_TEST_SUITE_P(Conv2dBehaviour, HandComputedStridedPaddedBiasRelu, RandomDescriptionsMatchTheReference,
                            Frame1080pC3K16, PoolSlicesStreamBlocksAndLargerOutputs,
                            BadDescriptionsAndSmallBuffersAreRefused, PrecisionRequestIsReported);

} // namespace
