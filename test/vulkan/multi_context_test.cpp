// Several Vulkan contexts in one process (issue "Reliability", item 1): two devices unibuf creates
// on the same physical device and one device the application brings (`vulkan_context::adopt`),
// each with its own buffers, pool, ring and pipeline, all used at the same time from their own
// threads; validation and synchronization validation on every one. A buffer of one context used
// by another context's dispatch, copy or ring is refused before anything is submitted, with an
// error naming both.
#include "../common/expect_error.hpp"
#include "../common/context_workload.hpp"
#include "../common/gate.hpp"
#include "vk_env.hpp"

#include <unibuf/async/pipeline.hpp>
#include <unibuf/async/vulkan/fence_waiter.hpp>
#include <unibuf/ops/vulkan/conv2d.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;

constexpr std::uint32_t side = 48;  // frames and buffers of side x side floats
constexpr std::size_t n = std::size_t{side} * side;

// out = scale * in: a 1x1 conv2d of one channel (the library's real operator), weight `scale`.
struct scaler {
    explicit scaler(vulkan_backend& b, float scale) : conv(b, unibuf_test::scale_desc(side)), weight(b, 1), bias(b, 1) {
        weight.write(std::vector<float>{scale});
        bias.write(std::vector<float>{0.0f});
    }
    template <class In, class Out>
    vulkan_backend::fence operator()(In& in, Out& out) {
        return conv(in, weight, bias, out);
    }
    conv2d<vulkan_backend> conv;
    device_buffer<float, vulkan_backend> weight, bias;
};

// One context's whole workload (test/common/context_workload.hpp) with the conv2d as the device step.
std::size_t workload(vulkan_backend& b, float scale, std::uint64_t salt) {
    scaler s(b, scale);
    vulkan_fence_waiter waiter(b);
    thread_pool workers(2);
    return unibuf_test::context_workload(
        b, n, scale, salt, [&s](auto& in, auto& out) { return s(in, out); }, waiter, workers, workers,
        [](auto t) { return sync_wait(std::move(t)); });
}

struct context_set {
    unibuf_test::own_device app{true};  // the application's own device, validated by its own instance
    vulkan_backend a{unibuf_test::validated_context()};
    vulkan_backend b{unibuf_test::validated_context()};
    vulkan_backend user{vulkan_context::adopt(app.handles(true))};
};

TEST(VulkanContexts, TwoCreatedAndOneAdoptedDeviceWorkAtTheSameTime) {
    context_set cs;
    ASSERT_NE(static_cast<VkDevice>(cs.a.context().device()), static_cast<VkDevice>(cs.b.context().device()));
    // Each context has its own instance, so the physical device is compared by its UUID.
    auto uuid = [](const vulkan_context& c) {
        vk::PhysicalDeviceIDProperties id;
        vk::PhysicalDeviceProperties2 p2;
        p2.pNext = &id;
        c.physical_device().getProperties2(&p2, c.dispatcher());
        return std::vector<std::uint8_t>(id.deviceUUID.begin(), id.deviceUUID.end());
    };
    ASSERT_EQ(uuid(cs.a.context()), uuid(cs.b.context())) << "the two created contexts are two devices on one physical device";
    vulkan_backend* backends[] = {&cs.a, &cs.b, &cs.user};
    std::atomic<std::size_t> wrong{0};
    std::vector<std::string> errors(3);
    unibuf_test::gate start;
    std::vector<std::thread> ts;
    for (std::size_t i = 0; i < 3; ++i)
        ts.emplace_back([&, i] {
            if (!start.wait()) {
                errors[i] = "the start gate did not open";
                return;
            }
            try {
                wrong += workload(*backends[i], 2.0f + static_cast<float>(i), 10 * i);
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    start.open();  // all three at once
    for (auto& t : ts) t.join();
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(errors[i], "") << "context " << i;
    EXPECT_EQ(wrong.load(), 0u);
    for (auto* b : backends) unibuf_test::expect_no_messages(*b);
}

TEST(VulkanContexts, ABufferOfOneContextIsRefusedByAnotherBeforeAnythingIsSubmitted) {
    context_set cs;
    scaler on_b(cs.b, 2.0f);
    device_buffer<float, vulkan_backend> in_a(cs.a, n), out_b(cs.b, n);
    in_a.write(std::vector<float>(n, 1.0f));
    const auto before = cs.b.submitted_fence();
    const std::string dev_a = unibuf::detail::address_text(static_cast<VkDevice>(cs.a.context().device()));
    const std::string dev_b = unibuf::detail::address_text(static_cast<VkDevice>(cs.b.context().device()));
    // A dispatch (here the conv2d's) on B with a buffer of A.
    unibuf_test::expect_error([&] { (void)on_b(in_a, out_b); }, errc::invalid_argument,
                              {"binding 0 lives on vulkan backend", dev_a.c_str(), "the dispatch runs on vulkan backend", dev_b.c_str()});
    // A copy between them.
    unibuf_test::expect_error([&] { (void)out_b.copy_from(in_a); }, errc::invalid_argument,
                              {"copy_from a buffer that lives on vulkan backend", dev_a.c_str(), dev_b.c_str()});
    // A ring of B given A's buffers.
    using buf = device_buffer<float, vulkan_backend>;
    unibuf_test::expect_error([&] { ring<buf, 2> r(cs.b, [&](std::size_t) { return buf(cs.a, n); }); },
                              errc::invalid_argument, {"another backend object"});
    EXPECT_EQ(cs.b.submitted_fence().value, before.value) << "something was submitted on B";
    // An application device's buffer in a unibuf device's dispatch, and the other way round.
    device_buffer<float, vulkan_backend> in_user(cs.user, n);
    unibuf_test::expect_error([&] { (void)on_b(in_user, out_b); }, errc::invalid_argument, {"binding 0 lives on"});
    // Each context still works with its own buffers.
    device_buffer<float, vulkan_backend> in_b(cs.b, n);
    in_b.write(std::vector<float>(n, 3.0f));
    (void)on_b(in_b, out_b);
    const auto got = out_b.to_vector();
    EXPECT_EQ(got.front(), 6.0f);
    EXPECT_EQ(got.back(), 6.0f);
    for (auto* b : {&cs.a, &cs.b, &cs.user}) unibuf_test::expect_no_messages(*b);
}

} // namespace
