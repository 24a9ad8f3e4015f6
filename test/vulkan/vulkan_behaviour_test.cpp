// The shared behaviour suites on the Vulkan backend: once as configured by default, once with every
// automatic buffer staged and VkFences instead of a timeline semaphore.
#include "../common/behaviour_tests.hpp"
#include "../common/produce_tests.hpp"
#include "../pool/pool_ring_behaviour.hpp"
#include "vk_env.hpp"

INSTANTIATE_TYPED_TEST_SUITE_P(Vulkan, BufferBehaviour, ::testing::Types<unibuf_test::vulkan_env>);
INSTANTIATE_TYPED_TEST_SUITE_P(VulkanStagedVkFence, BufferBehaviour, ::testing::Types<unibuf_test::vulkan_staged_env>);

// The pool and ring behaviour suite (test/pool/pool_ring_behaviour.hpp), in this translation unit
// so that vulkan.hpp is compiled once for both suites.
namespace unibuf_test {
INSTANTIATE_TYPED_TEST_SUITE_P(Vulkan, PoolRingBehaviour, ::testing::Types<vulkan_env>);
INSTANTIATE_TYPED_TEST_SUITE_P(VulkanStagedVkFence, PoolRingBehaviour, ::testing::Types<vulkan_staged_env>);
// unibuf::producer: every fill path, checked through device copies (validation on).
INSTANTIATE_TYPED_TEST_SUITE_P(Vulkan, ProduceBehaviour, ::testing::Types<vulkan_env>);
INSTANTIATE_TYPED_TEST_SUITE_P(VulkanStagedVkFence, ProduceBehaviour, ::testing::Types<vulkan_staged_env>);
} // namespace unibuf_test

// Beyond the shared suite's sizes (1, 63, 4097 elements for every combination, 64 MiB for four):
// every valid combination at odd sizes around 1 MiB and 16 MiB, on both Vulkan configurations.
namespace {
template <class Env>
class VulkanLargeRoundTrips : public BufferBehaviour<Env> {};
using vulkan_envs = ::testing::Types<unibuf_test::vulkan_env, unibuf_test::vulkan_staged_env>;
TYPED_TEST_SUITE(VulkanLargeRoundTrips, vulkan_envs);

TYPED_TEST(VulkanLargeRoundTrips, EveryValidCombinationAt1MiBAnd16MiBOddSizes) {
    int combos = 0;
    for_each_combo([&]<class Combo>() {
        ++combos;
        for (std::size_t n : {std::size_t{(1u << 20) / 4 + 3}, std::size_t{(16u << 20) / 4 + 1}})
            this->template round_trip<Combo>(n);
    });
    EXPECT_EQ(combos, 69);
}
} // namespace

// The producer asks the backend, whose answer is the pure decision on this device's table.
namespace {
TEST(VulkanProducer, ThePlanIsThePureDecisionOnThisDevicesTable) {
    using namespace unibuf;
    auto& b = unibuf_test::vulkan_env::get();
    const auto& mem = b.context().capabilities().memory;
    for (unsigned threads : {1u, 16u}) {
        producer<vulkan_backend> prod(b, threads);
        upload_buffer<float, vulkan_backend> up(b, (32u << 20) / 4);
        device_buffer<float, vulkan_backend> dv(b, 1000);
        const auto p = prod.plan(up);
        const auto want = vulkan::select_produce_path(mem, up.allocation().memory_type(), false, up.size_bytes(), threads,
                                                      b.config().producer);
        EXPECT_EQ(p.path, want.path);
        EXPECT_EQ(p.reason, want.reason);
        EXPECT_EQ(prod.plan(dv).path, produce_path::staged_pipelined);
        if (mem.unified()) {
            EXPECT_EQ(p.path, produce_path::direct) << "a unified-memory device (lavapipe) never stages a zero-copy fill: "
                                                    << p.reason;
        }
    }
    unibuf_test::expect_no_messages(b);
}
} // namespace
