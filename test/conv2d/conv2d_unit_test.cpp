// conv2d without a device: descriptions, output shapes and their checks, the tiling under device
// limits, the constants of the kernel, the CPU reference against hand-computed results, and the
// behaviour suite on the host backend (where the conv2d is the reference run as a host kernel).
#include "conv2d_behaviour.hpp"

#include "../common/host_env.hpp"

#include <unibuf/ops/conv2d/conv2d_desc.hpp>
#include <unibuf/ops/conv2d/reference.hpp>
#include <unibuf/ops/conv2d/tiling.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <vector>

namespace {
using namespace unibuf;
using unibuf_test::expect_error;

// PyTorch's formula, side by side with the description's: floor((in + pads - dil*(k-1) - 1)/stride) + 1.
TEST(Conv2dShape, OutputShapeFollowsPyTorch) {
    conv2d_desc d;
    d.n = 2;
    d.c = 3;
    d.h = 1080;
    d.w = 1920;
    d.k = 16;
    d.pad(1);
    EXPECT_EQ(conv2d_output_shape(d), (conv2d_shape{2, 16, 1080, 1920}));
    d = {};
    d.n = 32;
    d.c = 3;
    d.h = d.w = 224;
    d.k = 64;
    d.r = d.s = 7;
    d.stride(2).pad(3);
    EXPECT_EQ(conv2d_output_shape(d), (conv2d_shape{32, 64, 112, 112}));
    d = {};
    d.h = 10;
    d.w = 9;
    d.r = 2;  // even kernel, asymmetric padding, dilation
    d.s = 4;
    d.pad_top = 1;
    d.pad_bottom = 0;
    d.pad_left = 0;
    d.pad_right = 3;
    d.dilation(2);
    d.stride_h = 3;
    // rows: (10 + 1 - 2*1 - 1)/3 + 1 = 3; columns: (9 + 3 - 2*3 - 1)/1 + 1 = 6
    EXPECT_EQ(conv2d_output_shape(d), (conv2d_shape{1, 1, 3, 6}));
}

TEST(Conv2dShape, InvalidDescriptionsAreRefusedWithTheirMessages) {
    conv2d_desc d;
    d.r = 0;
    expect_error([&] { (void)conv2d_validate(d); }, errc::out_of_range, {"kernel 0x3", "R and S must be 1 to 7"});
    d = {};
    d.s = 8;
    expect_error([&] { (void)conv2d_validate(d); }, errc::out_of_range, {"kernel 3x8"});
    d = {};
    d.stride_h = 0;
    expect_error([&] { (void)conv2d_validate(d); }, errc::invalid_argument, {"stride 0x1", "at least 1"});
    d = {};
    d.dilation_w = 0;
    expect_error([&] { (void)conv2d_validate(d); }, errc::invalid_argument, {"dilation 1x0"});
    d = {};
    d.n = 0;
    expect_error([&] { (void)conv2d_validate(d); }, errc::invalid_argument, {"N=0", "must be at least 1"});
    d = {};
    d.h = 5;
    d.w = 5;
    d.dilation(3);  // the dilated 3x3 kernel spans 7x7 > 5x5
    expect_error([&] { (void)conv2d_validate(d); }, errc::invalid_argument,
                 {"the output 1x1x0x0 is empty", "padded input is 5x5", "spans 7x7"});
    d = {};
    d.pad_left = 1u << 31;
    expect_error([&] { (void)conv2d_validate(d); }, errc::out_of_range, {"padding must be below 2^31"});
    // Every tensor's element count is checked against 32-bit device indices (and 64-bit overflow).
    d = {};
    d.n = 65536;
    d.c = 65536;
    d.h = d.w = 3;
    d.r = d.s = 1;
    expect_error([&] { (void)conv2d_validate(d); }, errc::out_of_range, {"input tensor 65536x65536x3x3", "elements; at most 4294967295"});
    d = {};
    d.n = d.c = d.h = d.w = 0xffffffffu;
    d.r = d.s = 1;
    expect_error([&] { (void)conv2d_validate(d); }, errc::out_of_range, {"more than 2^64"});
    d = {};
    d.c = 65536;
    d.k = 65536;
    d.h = d.w = 3;
    expect_error([&] { (void)conv2d_validate(d); }, errc::out_of_range, {"weight tensor 65536x65536x3x3"});
}

TEST(Conv2dShape, BufferChecksNameTheShapeAndTheElements) {
    conv2d_desc d;
    d.c = 2;
    d.h = d.w = 4;
    expect_error([&] { conv2d_check_buffer(d, "input", conv2d_input_shape(d), 32, 31); }, errc::out_of_range,
                 {"input buffer holds 31 floats", "input 1x2x4x4 needs 32"});
    conv2d_check_buffer(d, "input", conv2d_input_shape(d), 32, 32);
}

// The reference on hand-computed cases.
TEST(Conv2dReference, HandComputedCases) {
    // 3x3 input 1..9, 3x3 ones, pad 1, stride 2, bias -20, ReLU: windows 12, 16, 24, 28 -> 0, 0, 4, 8.
    conv2d_desc d;
    d.h = d.w = 3;
    d.pad(1).stride(2);
    d.bias = d.relu = true;
    std::vector<float> in{1, 2, 3, 4, 5, 6, 7, 8, 9}, w(9, 1.0f), b{-20.0f}, out(4);
    conv2d_reference(d, in, w, b, out);
    EXPECT_EQ(out, (std::vector<float>{0, 0, 4, 8}));

    // Dilation 2, 2x2 ones on a 5x5 input in[i][j] = 5i + j: out[y][x] = 20y + 4x + 24.
    d = {};
    d.h = d.w = 5;
    d.r = d.s = 2;
    d.dilation(2);
    in.resize(25);
    for (int i = 0; i < 25; ++i) in[static_cast<std::size_t>(i)] = static_cast<float>(i);
    w.assign(4, 1.0f);
    out.assign(9, 0.0f);
    conv2d_reference(d, in, w, {}, out);
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 3; ++x) EXPECT_EQ(out[static_cast<std::size_t>(y * 3 + x)], 20.0f * y + 4.0f * x + 24.0f);

    // Channels: C=2 planes of 1 and 10, K=2 1x1 kernels [[1,2],[3,4]], N=2 (the second image doubled).
    d = {};
    d.n = 2;
    d.c = 2;
    d.k = 2;
    d.h = 1;
    d.w = 2;
    d.r = d.s = 1;
    in = {1, 1, 10, 10, 2, 2, 20, 20};
    w = {1, 2, 3, 4};
    out.assign(8, 0.0f);
    std::vector<float> mag(8);
    conv2d_reference(d, in, w, {}, out, mag, 3);
    EXPECT_EQ(out, (std::vector<float>{21, 21, 43, 43, 42, 42, 86, 86}));
    EXPECT_EQ(mag, out);  // all terms positive
    // Negative products count by their size in the magnitude.
    w = {1, -2, 3, 4};
    conv2d_reference(d, in, w, {}, out, mag);
    EXPECT_EQ(out[0], -19.0f);
    EXPECT_EQ(mag[0], 21.0f);
}

TEST(Conv2dReference, SmallSpansAreRefused) {
    conv2d_desc d;
    d.h = d.w = 3;
    std::vector<float> in(9), w(9), out(1);
    std::vector<float> small(8);
    expect_error([&] { conv2d_reference(d, small, w, {}, out); }, errc::out_of_range, {"input buffer holds 8 floats"});
    expect_error([&] { conv2d_reference(d, in, small, {}, out); }, errc::out_of_range, {"weight buffer holds 8 floats"});
    d.bias = true;
    expect_error([&] { conv2d_reference(d, in, w, {}, out); }, errc::out_of_range, {"bias buffer holds 0 floats"});
}

// The reference agrees with a plain six-deep loop over random descriptions (independent indexing).
TEST(Conv2dReference, AgreesWithTheDefinitionOnRandomDescriptions) {
    std::mt19937 rng(7);
    for (int t = 0; t < 60; ++t) {
        const conv2d_desc d = unibuf_test::random_desc(rng);
        const auto o = conv2d_output_shape(d);
        if (o.h == 0 || o.w == 0) continue;
        const auto z = conv2d_validate(d);
        const auto in = unibuf_test::conv_random(z.input, 10u + static_cast<std::uint32_t>(t));
        const auto w = unibuf_test::conv_random(z.weights, 90u + static_cast<std::uint32_t>(t));
        const auto b = unibuf_test::conv_random(d.k, 200u + static_cast<std::uint32_t>(t));
        std::vector<float> out(z.output);
        conv2d_reference(d, in, w, d.bias ? std::span<const float>(b) : std::span<const float>{}, out);
        std::size_t i = 0;
        for (std::uint64_t n = 0; n < d.n; ++n)
            for (std::uint64_t k = 0; k < d.k; ++k)
                for (std::uint64_t y = 0; y < o.h; ++y)
                    for (std::uint64_t x = 0; x < o.w; ++x, ++i) {
                        double acc = d.bias ? b[k] : 0.0;
                        for (std::uint64_t c = 0; c < d.c; ++c)
                            for (std::uint64_t r = 0; r < d.r; ++r)
                                for (std::uint64_t s = 0; s < d.s; ++s) {
                                    const auto iy = static_cast<std::int64_t>(y * d.stride_h + r * d.dilation_h) - d.pad_top;
                                    const auto ix = static_cast<std::int64_t>(x * d.stride_w + s * d.dilation_w) - d.pad_left;
                                    if (iy < 0 || ix < 0 || iy >= d.h || ix >= d.w) continue;
                                    acc += static_cast<double>(in[((n * d.c + c) * d.h + static_cast<std::uint64_t>(iy)) * d.w +
                                                                  static_cast<std::uint64_t>(ix)]) *
                                           w[((k * d.c + c) * d.r + r) * d.s + s];
                                }
                        if (d.relu && acc < 0) acc = 0;
                        ASSERT_EQ(out[i], static_cast<float>(acc)) << d.to_string() << " element " << i;
                    }
    }
}

// Tiles always fit the limits given, and cover the output.
TEST(Conv2dTiling, FitsTheLimitsAndCoversTheOutput) {
    std::mt19937 rng(3);
    const conv2d_device_limits small{16384, 128, 128, 128}, tiny{4096, 64, 64, 16}, h200{49152, 1024, 1024, 1024};
    for (int t = 0; t < 300; ++t) {
        const conv2d_desc d = unibuf_test::random_desc(rng);
        const auto o = conv2d_output_shape(d);
        if (o.h == 0 || o.w == 0) continue;
        for (const auto& lim : {small, tiny, h200}) {
            const conv2d_tiling tl = conv2d_choose_tiling(d, lim);
            EXPECT_LE(tl.shared_bytes, lim.max_shared_bytes) << d.to_string();
            EXPECT_EQ(tl.shared_bytes, conv2d_shared_bytes(d, tl.lx, tl.ly, tl.px, tl.kb, tl.cb));
            EXPECT_LE(tl.lx * tl.ly, lim.max_invocations);
            EXPECT_LE(tl.lx, lim.max_size_x);
            EXPECT_LE(tl.ly, lim.max_size_y);
            EXPECT_GE(std::uint64_t{tl.groups.x} * tl.lx * tl.px, o.w);
            EXPECT_GE(std::uint64_t{tl.groups.y} * tl.ly, o.h);
            EXPECT_EQ(tl.groups.z, d.n * ((d.k + tl.kb - 1) / tl.kb));
            EXPECT_EQ(tl.kb % 4, 0u);
        }
    }
    // The streaming shape: 16 channels per group, 2 columns per invocation, 32x4 invocations.
    conv2d_desc s;
    s.c = 3;
    s.h = 1080;
    s.w = 1920;
    s.k = 16;
    s.pad(1);
    const auto ts = conv2d_choose_tiling(s, h200);
    EXPECT_EQ(ts.kb, 16u);
    EXPECT_EQ(ts.px, 2u);
    EXPECT_EQ(ts.lx, 32u);
    EXPECT_EQ(ts.ly, 4u);
    EXPECT_EQ(ts.cb, 3u);
    // A kernel whose smallest tile does not fit is refused with the bytes it needs.
    conv2d_desc big;
    big.h = big.w = 64;
    big.r = big.s = 7;
    big.dilation(3);
    expect_error([&] { (void)conv2d_choose_tiling(big, conv2d_device_limits{256, 128, 128, 128}); }, errc::unsupported,
                 {"bytes of shared memory; the device offers 256"});
}

TEST(Conv2dTiling, SidesPastSignedIndicesAreRefused) {
    conv2d_desc d;
    d.h = 3;
    d.w = (1u << 30) - 2;  // 2^30 - 2 columns + 2 padding: past the GPU kernel's signed indices
    d.pad_left = 2;
    d.r = d.s = 1;
    expect_error([&] { (void)conv2d_tiling_for(d, {}, {}); }, errc::out_of_range,
                 {"padded input is 3x1073741824", "below 2^30"});
    d.pad_left = 1;
    EXPECT_NO_THROW((void)conv2d_tiling_for(d, {}, {}));
}

TEST(Conv2dTiling, GivenTilesAreCheckedLikeChosenOnes) {
    conv2d_desc d;
    d.c = 8;
    d.h = d.w = 64;
    d.k = 32;
    d.pad(1);
    conv2d_options o;
    o.tile_lx = 32;
    o.tile_ly = 8;
    o.tile_px = 2;
    o.tile_kb = 32;
    o.tile_cb = 4;
    const conv2d_device_limits h200{49152, 1024, 1024, 1024};
    const auto t = conv2d_tiling_for(d, h200, o);
    EXPECT_EQ(t.shared_bytes, conv2d_shared_bytes(d, 32, 8, 2, 32, 4));
    EXPECT_EQ(t.groups.x, 1u);
    EXPECT_EQ(t.groups.y, 8u);
    EXPECT_EQ(t.groups.z, 1u);
    o.tile_kb = 6;
    expect_error([&] { (void)conv2d_tiling_for(d, h200, o); }, errc::invalid_argument, {"multiple of 4"});
    o.tile_kb = 32;
    expect_error([&] { (void)conv2d_tiling_for(d, conv2d_device_limits{8192, 1024, 1024, 1024}, o); },
                 errc::unsupported, {"bytes of shared memory", "the device offers 8192 bytes"});
    o.tile_ly = 64;  // 2048 invocations
    expect_error([&] { (void)conv2d_tiling_for(d, h200, o); }, errc::unsupported, {"2048 invocations"});
    o.tile_cb = 0;
    expect_error([&] { (void)conv2d_tiling_for(d, h200, o); }, errc::invalid_argument, {"has a zero size"});
}

TEST(Conv2dTiling, GlslDefinesFollowTheVersionLine) {
    conv2d_desc d;
    d.h = d.w = 3;
    const auto v = conv2d_constants(d, conv2d_choose_tiling(d, {}));
    const std::string s = conv2d_glsl_with_constants("// c, not the #version line\n#version 450\nvoid main() {}\n", v);
    EXPECT_EQ(s.rfind("// c, not the #version line\n#version 450\n#define LX ", 0), 0u) << s;
    EXPECT_NE(s.find("#define RELU 0u\n#line 3\nvoid main() {}\n"), std::string::npos) << s;
    expect_error([&] { (void)conv2d_glsl_with_constants("void main() {}", v); }, errc::invalid_argument, {"no #version"});
}

} // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Host, Conv2dBehaviour, ::testing::Types<unibuf_test::host_env>);
