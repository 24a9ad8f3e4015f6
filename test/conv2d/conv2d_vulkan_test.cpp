// The conv2d behaviour suite on Vulkan (validation and synchronization validation on; any message
// fails), and the precision decision from each kind of device.
#include "conv2d_behaviour.hpp"

#include "../vulkan/vk_env.hpp"

#include <unibuf/vulkan.hpp>

INSTANTIATE_TYPED_TEST_SUITE_P(Vulkan, Conv2dBehaviour, ::testing::Types<unibuf_test::vulkan_env>);

namespace {
using namespace unibuf;

TEST(Conv2dVulkanPrecision, DecisionFromTheDeviceExtensions) {
    conv2d_options o;
    EXPECT_FALSE(conv2d_vulkan_precision({}, o).fallback);
    o.precision = conv2d_precision::tensor_core_fp16;
    const auto none = conv2d_vulkan_precision({}, o);
    EXPECT_TRUE(none.fallback);
    EXPECT_EQ(none.used, conv2d_precision::exact_fp32);
    EXPECT_NE(none.reason.find("neither VK_KHR_cooperative_matrix nor VK_NV_cooperative_matrix"), std::string::npos);
    const auto h200 = conv2d_vulkan_precision({true, true, true}, o);
    EXPECT_TRUE(h200.fallback);
    EXPECT_NE(h200.reason.find("exposes VK_KHR_cooperative_matrix"), std::string::npos) << h200.reason;
    EXPECT_NE(h200.reason.find("cannot compile GL_KHR_cooperative_matrix"), std::string::npos) << h200.reason;
}

TEST(Conv2dVulkanKernel, SpecializationConstantIdGivenTwiceIsRefused) {
    auto& b = unibuf_test::vulkan_env::get();
    const std::array<vulkan_specialization, 2> sc{{{3, 1}, {3, 2}}};
    unibuf_test::expect_error([&] { vulkan_kernel k(b, kernels::conv2d_spv, 4, 0, std::span<const vulkan_specialization>(sc)); },
                              errc::invalid_argument, {"specialization constant id 3 is given twice"});
    unibuf_test::vulkan_env::expect_clean();
}

} // namespace
