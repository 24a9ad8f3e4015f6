// The fault injection walk (fault_walk.hpp) on the Vulkan backend (lavapipe in CI), with
// validation and synchronization validation: `vulkan_backend::options::faults` fails the N-th
// vkAllocateMemory / vkMapMemory / flush or invalidate / vkQueueSubmit / fence wait, or loses the
// device at the N-th submission. Variants: placements as decided on one queue, and every placement
// staged (`selection_thresholds::force_staging`) with two queues (`emulate_transfer_queue`, copies
// of at least 1 KiB split over both: `copy_queue::both`), so that the cross-queue semaphore waits
// and the split submissions are walked too. Both again on the VkFence fallback
// (`options::use_timeline = false`, as on a device without timeline semaphores): its fences,
// its waits in slices and its cross-queue binary semaphores are other code.
//
// One validated context for the process (its messenger collects every message); each N adopts its
// device into a fresh backend, so that a message emitted while that backend is destroyed (a
// command buffer or memory freed while the device still used it) is seen too.
#include "fault_walk.hpp"
#include "fault_walk_twice.spv.hpp"

#include "../common/expect_error.hpp"
#include "../vulkan/vk_env.hpp"

#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/async/vulkan/fence_waiter.hpp>
#include <unibuf/vulkan.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

namespace {

using namespace unibuf;
using namespace unibuf_fault_walk;

// The process's validated context; never given to a backend (each N adopts its device).
vulkan_context& base_context() {
    static vulkan_context c = unibuf_test::validated_context();
    return c;
}

vulkan_context adopted_context() {
    auto& b = base_context();
    vulkan_external_device e;
    e.instance = static_cast<VkInstance>(b.instance());
    e.physical_device = static_cast<VkPhysicalDevice>(b.physical_device());
    e.device = static_cast<VkDevice>(b.device());
    e.queue = static_cast<VkQueue>(b.queue());
    e.queue_family = b.queue_family();
    e.api_version = b.capabilities().api_version;
    e.timeline_semaphore_enabled = b.capabilities().timeline_semaphore;
    e.memory_budget_enabled = b.capabilities().memory_budget;
    // The base context's messenger sees everything (during the backend's destruction too). The
    // adopted context has none of its own, as a device an application validates itself: the walk
    // found the backend's destruction then freeing what the layer still counted in use.
    e.debug_utils_enabled = false;
    return vulkan_context::adopt(e);
}

template <bool Timeline>
struct basic_vulkan_walk_env {
    using backend = vulkan_backend;
    static constexpr const char* variant_name[2] = {Timeline ? "as_decided" : "vkfence_as_decided",
                                                    Timeline ? "staged_two_queues" : "vkfence_staged_two_queues"};
    static constexpr std::size_t scale = 1;

    // Destruction order: waiter and workers, kernel, then the backend.
    vulkan_backend backend_;
    vulkan_kernel kernel_;
    std::optional<thread_pool> workers_;  // made for the pipeline only (no extra threads elsewhere)
    std::optional<vulkan_fence_waiter> waiter_;

    basic_vulkan_walk_env(std::shared_ptr<fault_injector> f, bool staged)
        : backend_(adopted_context(), make_options(std::move(f), staged)),
          kernel_(backend_, kernels::fault_walk_twice_spv, 2, 0) {}
    static vulkan_backend::options make_options(std::shared_ptr<fault_injector> f, bool staged) {
        vulkan_backend::options o;
        o.faults = std::move(f);
        o.use_timeline = Timeline;
        o.thresholds.force_staging = staged;
        if (staged) {
            o.emulate_transfer_queue = true;
            o.copies = copy_queue::both;
            o.transfer_min_bytes = 1024;
        }
        return o;
    }

    vulkan_backend& dev() { return backend_; }
    template <class In, class Out>
    vulkan_backend::fence twice(In& in, Out& out) {
        const auto groups = static_cast<std::uint32_t>((out.size() + 63) / 64);
        return dispatch(backend_, kernel_, dispatch_size{groups, 1, 1}, {}, bind(in, usage::read),
                        bind(out, usage::write));
    }
    vulkan_fence_waiter& notifier() {
        if (!waiter_) waiter_.emplace(backend_);
        return *waiter_;
    }
    thread_pool& pool() {
        if (!workers_) workers_.emplace(2);
        return *workers_;
    }
    thread_pool& stage() { return pool(); }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    bool idle(std::chrono::nanoseconds b) { return backend_.wait_idle(b); }
    std::uint64_t bytes_in_use() {
        std::uint64_t sum = 0;
        for (std::size_t h = 0; h < backend_.context().capabilities().memory.heaps.size(); ++h)
            sum += backend_.bytes_in_use(h);
        return sum;
    }
    std::string device_error() { return ""; }
    static void expect_clean() {
        for (const auto& m : base_context().take_messages())
            ADD_FAILURE() << "Vulkan validation message [" << m.id_name << "]: " << m.text;
    }
};

using vulkan_walk_env = basic_vulkan_walk_env<true>;
using vulkan_fence_walk_env = basic_vulkan_walk_env<false>;

class VulkanFaultWalk : public ::testing::TestWithParam<walk_param> {};

TEST_P(VulkanFaultWalk, EveryInjectedFailureIsCleanAndTheWalkEnds) {
    const auto [index, point, staged] = GetParam();
    walk_and_report<vulkan_walk_env>(index, point, staged);
}

INSTANTIATE_TEST_SUITE_P(Vulkan, VulkanFaultWalk, walk_params(), walk_name<vulkan_walk_env>);

class VulkanFenceFaultWalk : public ::testing::TestWithParam<walk_param> {};

TEST_P(VulkanFenceFaultWalk, EveryInjectedFailureIsCleanAndTheWalkEnds) {
    const auto [index, point, staged] = GetParam();
    walk_and_report<vulkan_fence_walk_env>(index, point, staged);
}

INSTANTIATE_TEST_SUITE_P(VulkanVkFence, VulkanFenceFaultWalk, walk_params(), walk_name<vulkan_fence_walk_env>);

// The lost device refuses every later submission and every wait for work not complete, names the
// call, and the backend still goes away cleanly (validation silent: it waited for the real device).
TEST(VulkanFaultInjection, ALostDeviceRefusesSubmissionsAndWaitsAndNamesTheCall) {
    auto faults = std::make_shared<fault_injector>();
    {
        vulkan_walk_env env(faults, false);
        shared_buffer<float, vulkan_backend> a(env.dev(), 64), b(env.dev(), 64);
        a.fill(1.0f);
        faults->arm(fault_point::device_lost, 1);
        unibuf_test::expect_error([&] { (void)env.twice(a, b); }, errc::device_lost,
                                  {"injected fault: device_lost call #1", "vkQueueSubmit", "VK_ERROR_DEVICE_LOST"});
        unibuf_test::expect_error([&] { (void)b.copy_from(a); }, errc::device_lost,
                                  {"vkQueueSubmit", "the device was lost"});
        EXPECT_TRUE(env.dev().wait_idle(bound)) << "nothing not complete to wait for";
    }
    vulkan_walk_env::expect_clean();
}

TEST(VulkanFaultInjection, AnInjectedSubmitFailureSubmitsNothingAndRecyclesTheCommandBuffer) {
    auto faults = std::make_shared<fault_injector>();
    {
        vulkan_walk_env env(faults, false);
        shared_buffer<float, vulkan_backend> a(env.dev(), 64), b(env.dev(), 64);
        a.fill(3.0f);
        const auto before = env.dev().submitted_fence().value;
        faults->arm(fault_point::submit, 1);
        unibuf_test::expect_error([&] { (void)env.twice(a, b); }, errc::out_of_memory,
                                  {"injected fault: submit call #1", "vkQueueSubmit", "nothing was submitted"});
        EXPECT_EQ(env.dev().submitted_fence().value, before) << "a failed submission has no fence";
        (void)env.twice(a, b);
        EXPECT_EQ(b.to_vector()[63], 6.0f);
    }
    vulkan_walk_env::expect_clean();
}

} // namespace
