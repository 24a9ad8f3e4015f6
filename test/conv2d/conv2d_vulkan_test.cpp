// The conv2d behaviour suite on Vulkan (validation and synchronization validation on; any message
// fails), the precision decision from each kind of device, the tensor-core tiling, and the
// tensor-core path (conv2d_coopmat.comp) against the CPU reference within
// conv2d_tensor_core_fp16_tolerance where the device has VK_NV_cooperative_matrix (skipped, naming
// the missing extension, elsewhere: lavapipe has none).
#include "conv2d_behaviour.hpp"

#include "../vulkan/vk_env.hpp"

#include <unibuf/vulkan.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

INSTANTIATE_TYPED_TEST_SUITE_P(Vulkan, Conv2dBehaviour, ::testing::Types<unibuf_test::vulkan_env>);

namespace {
using namespace unibuf;

// What an H200 reports (VK_NV_cooperative_matrix enabled, its fp16 and int8 shapes).
vulkan_cooperative_matrix_support h200_like() {
    vulkan_cooperative_matrix_support s{true, true, true, {}};
    s.enabled.enabled = true;
    s.enabled.extension = "VK_NV_cooperative_matrix";
    s.enabled.subgroup_size = 32;
    vulkan_cooperative_matrix_shape int8{16, 16, 32, vk::ComponentTypeNV::eSint8, vk::ComponentTypeNV::eSint8,
                                         vk::ComponentTypeNV::eSint32, vk::ComponentTypeNV::eSint32,
                                         vk::ScopeNV::eSubgroup};
    vulkan_cooperative_matrix_shape f16_16x8x8{16, 8, 8};
    vulkan_cooperative_matrix_shape f16_16x16x16{16, 16, 16};
    s.enabled.shapes = {int8, f16_16x8x8, f16_16x16x16};
    return s;
}

TEST(Conv2dVulkanPrecision, DecisionFromTheDeviceExtensions) {
    conv2d_options o;
    EXPECT_FALSE(conv2d_vulkan_precision({}, o).fallback);
    EXPECT_EQ(conv2d_vulkan_precision(h200_like(), o).used, conv2d_precision::exact_fp32);  // not asked
    o.precision = conv2d_precision::tensor_core_fp16;

    const auto none = conv2d_vulkan_precision({}, o);
    EXPECT_TRUE(none.fallback);
    EXPECT_EQ(none.used, conv2d_precision::exact_fp32);
    EXPECT_NE(none.reason.find("neither VK_KHR_cooperative_matrix nor VK_NV_cooperative_matrix"), std::string::npos);

    // Exposed but not enabled (e.g. a context made with cooperative_matrix = false): the note is passed on.
    vulkan_cooperative_matrix_support off{true, true, true, {}};
    off.enabled.note = "not enabled: vulkan_context_options::cooperative_matrix is false";
    const auto not_enabled = conv2d_vulkan_precision(off, o);
    EXPECT_TRUE(not_enabled.fallback);
    EXPECT_NE(not_enabled.reason.find("did not enable VK_NV_cooperative_matrix"), std::string::npos) << not_enabled.reason;
    EXPECT_NE(not_enabled.reason.find("cooperative_matrix is false"), std::string::npos) << not_enabled.reason;

    const auto h200 = conv2d_vulkan_precision(h200_like(), o);
    EXPECT_FALSE(h200.fallback) << h200.reason;
    EXPECT_EQ(h200.used, conv2d_precision::tensor_core_fp16);
    EXPECT_NE(h200.reason.find("VK_NV_cooperative_matrix, 16x16x16"), std::string::npos) << h200.reason;
    EXPECT_EQ(h200.to_string().find("fallback"), std::string::npos) << h200.to_string();

    // Only integer shapes: no fp16 path.
    auto ints = h200_like();
    ints.enabled.shapes.erase(ints.enabled.shapes.begin() + 1, ints.enabled.shapes.end());
    const auto int_only = conv2d_vulkan_precision(ints, o);
    EXPECT_TRUE(int_only.fallback);
    EXPECT_NE(int_only.reason.find("none of the device's 1 cooperative-matrix shapes"), std::string::npos) << int_only.reason;
}

TEST(Conv2dVulkanPrecision, ShapePreference) {
    auto s = h200_like();
    EXPECT_EQ(conv2d_coopmat_shape(s.enabled).to_string(), "16x16x16");
    s.enabled.shapes.pop_back();
    EXPECT_EQ(conv2d_coopmat_shape(s.enabled).to_string(), "16x8x8");
    s.enabled.shapes.pop_back();
    EXPECT_EQ(conv2d_coopmat_shape(s.enabled).m, 0u);
}

conv2d_desc shape(std::uint32_t n, std::uint32_t c, std::uint32_t h, std::uint32_t w, std::uint32_t k, std::uint32_t r,
                  std::uint32_t stride) {
    conv2d_desc d;
    d.n = n;
    d.c = c;
    d.h = h;
    d.w = w;
    d.k = k;
    d.r = d.s = r;
    d.stride_h = d.stride_w = stride;
    d.pad(r / 2);
    d.bias = true;
    return d;
}

// The eight shapes of the benchmark (issue 12).
std::array<conv2d_desc, 8> bench_shapes() {
    return {shape(1, 3, 1080, 1920, 16, 3, 1), shape(1, 16, 1080, 1920, 16, 3, 1), shape(1, 64, 224, 224, 64, 3, 1),
            shape(8, 64, 56, 56, 64, 3, 1),    shape(1, 32, 512, 512, 32, 3, 1),   shape(1, 32, 512, 512, 32, 5, 2),
            shape(1, 128, 128, 128, 128, 3, 1), shape(32, 3, 224, 224, 64, 7, 2)};
}

// Their small variants (same C, K, R, stride; smaller images and batches) for the numerical test.
std::array<conv2d_desc, 8> small_bench_shapes() {
    return {shape(1, 3, 54, 96, 16, 3, 1),  shape(1, 16, 54, 96, 16, 3, 1),  shape(1, 64, 28, 28, 64, 3, 1),
            shape(2, 64, 14, 14, 64, 3, 1), shape(1, 32, 32, 32, 32, 3, 1),  shape(1, 32, 32, 32, 32, 5, 2),
            shape(1, 128, 16, 16, 128, 3, 1), shape(2, 3, 32, 32, 64, 7, 2)};
}

TEST(Conv2dCoopmatTiling, EveryBenchmarkShapeFitsAnH200) {
    conv2d_coopmat_limits lim;
    lim.compute = {49152, 1024, 1024, 1024};
    lim.max_group_count = {2147483647u, 65535, 65535};
    lim.subgroup_size = 32;
    for (const auto& d : bench_shapes()) {
        const auto t = conv2d_choose_coopmat_tiling(d, 16, 16, 16, lim);
        SCOPED_TRACE(d.to_string() + ": " + t.to_string());
        EXPECT_EQ(t.invocations, t.wm * t.wn * 32);
        EXPECT_EQ(t.bm % (t.wm * t.mm), 0u);
        EXPECT_EQ(t.bn % (t.wn * t.mn), 0u);
        EXPECT_EQ(t.bk % t.mk, 0u);
        EXPECT_GE(t.bn, std::min<std::uint32_t>(d.k, 64));  // K <= 64: one channel block covers it
        EXPECT_EQ(t.invocations % t.bm, 0u);                 // each invocation gathers for one pixel
        EXPECT_EQ(t.bm, 128u);                               // every benchmark output has 128 pixels or more
        EXPECT_LE(t.shared_bytes, 49152u);
        EXPECT_EQ(t.shared_bytes, conv2d_coopmat_shared_bytes(t.bm, t.bn, t.bk, t.wm, t.wn, t.mm, t.mn));
        const auto o = conv2d_output_shape(d);
        EXPECT_GE(std::uint64_t{t.groups.x} * t.groups.y * t.bm, o.h * o.w);  // every pixel is covered
        EXPECT_LT(std::uint64_t{t.groups.x} * (t.groups.y - 1) * t.bm, o.h * o.w);  // no empty row of groups
        EXPECT_EQ(t.groups.z, d.n * ((d.k + t.bn - 1) / t.bn));
        const auto v = conv2d_coopmat_constants(d, t);
        EXPECT_EQ(v[0], t.invocations);
        EXPECT_EQ(v[9], t.groups.x);
        EXPECT_EQ(v[14], d.k);
        EXPECT_EQ(v[23], o.h);
        EXPECT_EQ(v[24], o.w);
        const auto r = conv2d_tiling_of(t);
        EXPECT_EQ(r.groups.x, t.groups.x);
        EXPECT_EQ(r.lx, t.invocations);
    }
}

TEST(Conv2dCoopmatTiling, LimitsShrinkTheTileOrRefuseIt) {
    const conv2d_desc d = shape(1, 128, 128, 128, 128, 3, 1);
    conv2d_coopmat_limits lim;
    lim.compute = {16384, 1024, 1024, 1024};
    const auto t = conv2d_choose_coopmat_tiling(d, 16, 16, 16, lim);
    EXPECT_LE(t.shared_bytes, 16384u) << t.to_string();
    EXPECT_LT(t.bm, 128u) << t.to_string();

    lim.compute.max_shared_bytes = 4096;
    unibuf_test::expect_error([&] { (void)conv2d_choose_coopmat_tiling(d, 16, 16, 16, lim); }, errc::unsupported,
                              {"smallest tensor-core tile", "bytes of shared memory; the device offers 4096"});
    lim.compute = {49152, 64, 64, 64};  // 4 subgroups of 32 do not fit
    unibuf_test::expect_error([&] { (void)conv2d_choose_coopmat_tiling(d, 16, 16, 16, lim); }, errc::unsupported,
                              {"needs 128 invocations per group", "the device offers 64"});
    lim.compute = {49152, 1024, 1024, 1024};
    unibuf_test::expect_error([&] { (void)conv2d_choose_coopmat_tiling(d, 16, 12, 16, lim); }, errc::unsupported,
                              {"cooperative matrices 16x12x16"});
    lim.max_group_count = {4, 4, 65535};  // 128 blocks of 128 pixels do not fit 4 x 4 groups
    std::string why;
    EXPECT_FALSE(conv2d_try_coopmat_tiling(d, 16, 16, 16, lim, why).has_value());
    EXPECT_NE(why.find("passes the device's maxComputeWorkGroupCount 4 x 4 x 65535"), std::string::npos) << why;
}

TEST(Conv2dCoopmatTolerance, BoundsTheFp16RoundingAndIsAboveTheFp32One) {
    const conv2d_desc d = shape(1, 64, 8, 8, 64, 3, 1);  // n = 577
    const double fp32 = conv2d_fp32_tolerance(d, 10.0f);
    const double tc = conv2d_tensor_core_fp16_tolerance(d, 10.0f, 1.0f, 1.0f);
    EXPECT_GT(tc, fp32);
    // Two fp16 roundings of 2^-11 each dominate: about 2^-10 of the magnitude, plus the sums.
    EXPECT_GT(tc, 10.0 * 2.0 / 2048.0);
    EXPECT_LT(tc, 10.0 * 2.0 / 2048.0 * 1.2);
    EXPECT_GT(conv2d_tensor_core_fp16_tolerance(d, 0.0f, 1.0f, 1.0f), 0.0);  // subnormals' part
}

// The context reports what it enabled for cooperative matrices, and a conv2d asked for tensor cores
// uses them exactly when the context enabled them; otherwise the fallback is reported and
// require_precision throws with the reason.
TEST(Conv2dVulkanTensorCore, DecisionFollowsTheContext) {
    auto& b = unibuf_test::vulkan_env::get();
    const auto& cm = b.context().cooperative_matrix();
    EXPECT_FALSE(cm.note.empty());
    EXPECT_GT(cm.subgroup_size, 0u);
    const auto s = conv2d_cooperative_matrix_support(b);
    conv2d_desc d = shape(1, 3, 9, 9, 4, 3, 1);
    conv2d_options o;
    o.precision = conv2d_precision::tensor_core_fp16;
    conv2d<vulkan_backend> conv(b, d, o);
    if (cm.enabled) {
        EXPECT_TRUE(s.nv);
        EXPECT_EQ(cm.extension, "VK_NV_cooperative_matrix");
        EXPECT_EQ(conv.precision().used, conv2d_precision::tensor_core_fp16) << conv.precision().to_string();
        EXPECT_FALSE(conv.precision().fallback);
        EXPECT_NE(conv.precision().reason.find("tile "), std::string::npos);
        o.require_precision = true;
        conv2d<vulkan_backend> required(b, d, o);
        EXPECT_EQ(required.precision().used, conv2d_precision::tensor_core_fp16);
    } else {
        EXPECT_NE(cm.note.find("not enabled"), std::string::npos) << cm.note;
        EXPECT_TRUE(cm.shapes.empty());
        EXPECT_EQ(conv.precision().used, conv2d_precision::exact_fp32);
        EXPECT_TRUE(conv.precision().fallback);
        EXPECT_NE(conv.precision().to_string().find("fallback"), std::string::npos);
        EXPECT_NE(conv.precision().reason.find("cooperative_matrix"), std::string::npos) << conv.precision().reason;
        o.require_precision = true;
        unibuf_test::expect_error([&] { conv2d<vulkan_backend> c(b, d, o); }, errc::unsupported,
                                  {"precision tensor_core_fp16 was required", "cooperative_matrix"});
    }
    unibuf_test::vulkan_env::expect_clean();
}

// A context made without cooperative matrices never uses them.
TEST(Conv2dVulkanTensorCore, ContextOptionTurnsThemOff) {
    unibuf_test::pin_driver_libraries();
    vulkan_context_options co;
    co.validation = true;
    co.cooperative_matrix = false;
    vulkan_backend b{vulkan_context(co)};
    EXPECT_FALSE(b.context().cooperative_matrix().enabled);
    EXPECT_NE(b.context().cooperative_matrix().note.find("cooperative_matrix is false"), std::string::npos);
    conv2d_options o;
    o.precision = conv2d_precision::tensor_core_fp16;
    conv2d<vulkan_backend> conv(b, shape(1, 3, 5, 5, 4, 3, 1), o);
    EXPECT_TRUE(conv.precision().fallback);
    unibuf_test::expect_no_messages(b);
}

// Runs `d` on the tensor-core path with random inputs in [-1, 1] and checks every element against
// the reference within conv2d_tensor_core_fp16_tolerance. Returns the largest |error| / tolerance.
double check_tensor_core(vulkan_backend& b, const conv2d_desc& d, std::uint32_t seed) {
    conv2d_options o;
    o.precision = conv2d_precision::tensor_core_fp16;
    o.require_precision = true;
    conv2d<vulkan_backend> conv(b, d, o);
    const auto z = conv.sizes();
    const auto in = unibuf_test::conv_random(z.input, seed);
    const auto w = unibuf_test::conv_random(z.weights, seed + 1);
    const auto bias = d.bias ? unibuf_test::conv_random(d.k, seed + 2) : std::vector<float>{};
    const auto want = unibuf_test::conv_reference(d, in, w, bias);
    float max_in = 0, max_w = 0;
    for (float x : in) max_in = std::max(max_in, std::fabs(x));
    for (float x : w) max_w = std::max(max_w, std::fabs(x));

    device_buffer<float, vulkan_backend> bin(b, in.size()), bw(b, w.size()), bout(b, z.output);
    bin.write(in);
    bw.write(w);
    bout.fill(std::numeric_limits<float>::quiet_NaN());  // an element never written fails the check
    if (d.bias) {
        device_buffer<float, vulkan_backend> bb(b, bias.size());
        bb.write(bias);
        (void)conv(bin, bw, bb, bout);
    } else {
        (void)conv(bin, bw, bout);
    }
    const auto got = bout.to_vector();
    std::size_t bad = 0;
    double worst = 0;
    for (std::size_t i = 0; i < z.output; ++i) {
        const double tol = conv2d_tensor_core_fp16_tolerance(d, want.magnitude[i], max_in, max_w);
        const double diff = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want.out[i]));
        worst = std::max(worst, diff / tol);
        if (!(diff <= tol) && ++bad <= 3)
            ADD_FAILURE() << d.to_string() << " (" << conv.precision().reason << "): element " << i << " is " << got[i]
                          << ", expected " << want.out[i] << " (tolerance " << tol << ")";
    }
    EXPECT_EQ(bad, 0u) << d.to_string() << ": " << bad << " of " << z.output << " elements outside the tolerance";
    return worst;
}

// Skips, naming the missing extension, where the context has no cooperative matrices (lavapipe).
#define UNIBUF_REQUIRE_COOPMAT(b)                                                                              \
    do {                                                                                                       \
        if (!(b).context().cooperative_matrix().enabled)                                                       \
            GTEST_SKIP() << "no VK_NV_cooperative_matrix on " << (b).context().capabilities().device_name << ": " \
                         << (b).context().cooperative_matrix().note;                                           \
    } while (0)

TEST(Conv2dVulkanTensorCore, BenchmarkShapesSmallVariantsMatchTheReference) {
    auto& b = unibuf_test::vulkan_env::get();
    UNIBUF_REQUIRE_COOPMAT(b);
    std::uint32_t seed = 100;
    double worst = 0;
    for (const auto& d : small_bench_shapes()) worst = std::max(worst, check_tensor_core(b, d, seed += 7));
    RecordProperty("worst_error_over_tolerance", std::to_string(worst));
    unibuf_test::vulkan_env::expect_clean();
}

TEST(Conv2dVulkanTensorCore, RandomDescriptionsMatchTheReference) {
    auto& b = unibuf_test::vulkan_env::get();
    UNIBUF_REQUIRE_COOPMAT(b);
    std::mt19937 rng(20261129);
    double worst = 0;
    int done = 0;
    std::uint32_t seed = 1000;
    while (done < 200 && !HasFailure()) {
        const conv2d_desc d = unibuf_test::random_desc(rng);
        const auto o = conv2d_output_shape(d);
        if (o.h == 0 || o.w == 0) continue;  // an empty output: refused on every path (the behaviour suite checks it)
        worst = std::max(worst, check_tensor_core(b, d, seed += 3));
        ++done;
    }
    EXPECT_EQ(done, 200);
    RecordProperty("worst_error_over_tolerance", std::to_string(worst));
    unibuf_test::vulkan_env::expect_clean();
}

TEST(Conv2dVulkanKernel, SpecializationConstantIdGivenTwiceIsRefused) {
    auto& b = unibuf_test::vulkan_env::get();
    const std::array<vulkan_specialization, 2> sc{{{3, 1}, {3, 2}}};
    unibuf_test::expect_error([&] { vulkan_kernel k(b, kernels::conv2d_spv, 4, 0, std::span<const vulkan_specialization>(sc)); },
                              errc::invalid_argument, {"specialization constant id 3 is given twice"});
    unibuf_test::vulkan_env::expect_clean();
}

} // namespace
