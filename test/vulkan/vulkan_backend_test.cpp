// Vulkan backend tests on a real driver (lavapipe in CI), with validation and synchronization
// validation on: any validation message fails the test that caused it.
#include "../common/expect_error.hpp"
#include "vk_env.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <numeric>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::vulkan_env;

struct saxpy_params {
    float a;
    std::uint32_t n;
};

constexpr std::uint64_t MiB = 1024 * 1024;

class VulkanBackend : public ::testing::Test {
protected:
    vulkan_backend& dev() { return vulkan_env::get(); }
    vulkan_kernel& saxpy() { return vulkan_env::saxpy(); }
    void TearDown() override { vulkan_env::expect_clean(); }

    memory_request request(std::uint64_t bytes, placement_kind p, sync_kind s = sync_kind::fenced, bool host_read = true,
                           bool host_write = true) {
        memory_request r;
        r.size_bytes = bytes;
        r.placement = p;
        r.sync = s;
        r.host_read = host_read;
        r.host_write = host_write;
        return r;
    }

    /// y = a * x + y over whole raw allocations of floats.
    vulkan_backend::fence run_saxpy(vulkan_backend& b, vulkan_kernel& k, vulkan_backend::allocation& x,
                                    vulkan_backend::allocation& y, float a, std::span<const vulkan_backend::fence> after = {}) {
        const auto n = static_cast<std::uint32_t>(y.size() / sizeof(float));
        const saxpy_params p{a, n};
        const bound_range<vulkan_backend> ranges[] = {{&x, 0, x.size(), usage::read}, {&y, 0, y.size(), usage::read_write}};
        return b.dispatch(k, {(n + 63) / 64, 1, 1}, ranges, push_constants(p), after);
    }
};

// ---- context ----------------------------------------------------------------------------------

TEST_F(VulkanBackend, ContextChoosesTheBestDeviceAndReadsItsCapabilities) {
    const auto& ctx = dev().context();
    const auto& caps = ctx.capabilities();
    EXPECT_TRUE(ctx.validation_enabled());
    EXPECT_TRUE(ctx.sync_validation_enabled());
    EXPECT_TRUE(ctx.collects_messages());
    EXPECT_TRUE(ctx.owns_handles());
    EXPECT_FALSE(caps.device_name.empty());
    EXPECT_GE(caps.api_version, VK_API_VERSION_1_1);
    ASSERT_FALSE(caps.memory.heaps.empty());
    ASSERT_FALSE(caps.memory.types.empty());
    EXPECT_GE(caps.non_coherent_atom, 1u);
    EXPECT_EQ(caps.memory.non_coherent_atom, caps.non_coherent_atom);
    EXPECT_GE(caps.min_storage_offset_alignment, 1u);
    EXPECT_GE(caps.max_push_constants_size, 128u);
    EXPECT_EQ(dev().limits().non_coherent_atom, caps.non_coherent_atom);
    EXPECT_EQ(dev().limits().min_storage_offset_alignment, caps.min_storage_offset_alignment);
    EXPECT_EQ(dev().limits().max_allocation_size, caps.max_allocation_size);
    EXPECT_EQ(dev().name(), "vulkan");
    EXPECT_EQ(dev().uses_timeline(), caps.timeline_semaphore);

    // The chosen device ranks highest among the devices with Vulkan 1.1 (discrete > integrated > virtual > CPU).
    const auto& d = ctx.dispatcher();
    std::uint32_t n = 0;
    ASSERT_EQ(ctx.instance().enumeratePhysicalDevices(&n, static_cast<vk::PhysicalDevice*>(nullptr), d), vk::Result::eSuccess);
    std::vector<vk::PhysicalDevice> devs(n);
    ASSERT_EQ(ctx.instance().enumeratePhysicalDevices(&n, devs.data(), d), vk::Result::eSuccess);
    int best = 0;
    for (auto pd : devs) {
        vk::PhysicalDeviceProperties p;
        pd.getProperties(&p, d);
        if (p.apiVersion >= VK_API_VERSION_1_1) best = std::max(best, unibuf::detail::device_rank(p.deviceType));
    }
    EXPECT_EQ(unibuf::detail::device_rank(caps.device_type), best);
    // The queue family supports compute.
    std::uint32_t nf = 0;
    ctx.physical_device().getQueueFamilyProperties(&nf, nullptr, d);
    std::vector<vk::QueueFamilyProperties> fams(nf);
    ctx.physical_device().getQueueFamilyProperties(&nf, fams.data(), d);
    ASSERT_LT(ctx.queue_family(), nf);
    EXPECT_TRUE(fams[ctx.queue_family()].queueFlags & vk::QueueFlagBits::eCompute);
}

TEST_F(VulkanBackend, TheMessengerCollectsValidationErrors) {
    // A deliberately invalid call: a buffer of 0 bytes (VUID-VkBufferCreateInfo-size-00912).
    const auto& ctx = dev().context();
    vk::BufferCreateInfo bci;
    bci.size = 0;
    bci.usage = vk::BufferUsageFlagBits::eStorageBuffer;
    vk::Buffer buf;
    const vk::Result r = ctx.device().createBuffer(&bci, nullptr, &buf, ctx.dispatcher());
    if (r == vk::Result::eSuccess && buf) ctx.device().destroyBuffer(buf, nullptr, ctx.dispatcher());
    auto msgs = dev().context().take_messages();
    ASSERT_FALSE(msgs.empty()) << "the validation layer reported nothing for a 0-byte buffer";
    bool found = false;
    for (const auto& m : msgs) found = found || m.text.find("size") != std::string::npos;
    EXPECT_TRUE(found) << msgs.front().text;
    EXPECT_EQ(dev().context().message_count(), 0u);
}

TEST_F(VulkanBackend, TheMessengerCountsValidationAndPerformanceWarningsAndErrorsOnly) {
    // The loader reports its own notices as GENERAL messages (with VK_INSTANCE_LAYERS set:
    // "env var 'VK_INSTANCE_LAYERS' defined and adding layers", a warning). They are not
    // validation messages and must not fail a program that checks for none.
    unibuf::detail::message_sink sink;
    VkDebugUtilsMessengerCallbackDataEXT data{};
    data.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CALLBACK_DATA_EXT;
    data.pMessageIdName = "Loader Message";
    data.pMessage = "env var 'VK_INSTANCE_LAYERS' defined and adding layers \"VK_LAYER_KHRONOS_validation\"";
    const auto send = [&](VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT type) {
        (void)unibuf::detail::message_sink::callback(sev, type, &data, &sink);
    };
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT, VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT);
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT, VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT);
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT, VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT);
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_VERBOSE_BIT_EXT, VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT);
    EXPECT_TRUE(sink.messages.empty()) << sink.messages.size() << " general or info messages were counted";
    data.pMessageIdName = "VUID-test";
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT, VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT);
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT, VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT);
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT, VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT);
    send(VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
         VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT);
    ASSERT_EQ(sink.messages.size(), 4u);
    EXPECT_EQ(sink.messages[0].level, vulkan_message::severity::warning);
    EXPECT_EQ(sink.messages[1].level, vulkan_message::severity::error);
    EXPECT_EQ(sink.messages[0].id_name, "VUID-test");
    // What the messenger asks the instance for: the same two types and severities.
    const auto ci = sink.create_info();
    EXPECT_FALSE(ci.messageType & vk::DebugUtilsMessageTypeFlagBitsEXT::eGeneral);
    EXPECT_TRUE(ci.messageType & vk::DebugUtilsMessageTypeFlagBitsEXT::eValidation);
    EXPECT_TRUE(ci.messageType & vk::DebugUtilsMessageTypeFlagBitsEXT::ePerformance);
    EXPECT_FALSE(ci.messageSeverity & vk::DebugUtilsMessageSeverityFlagBitsEXT::eInfo);
    // A context created now: whether or not VK_INSTANCE_LAYERS is set (ctest runs this binary both
    // ways, see CMakeLists.txt), its creation left no message.
    vulkan_context fresh = unibuf_test::validated_context();
    for (const auto& m : fresh.take_messages()) ADD_FAILURE() << "[" << m.id_name << "] " << m.text;
}

TEST_F(VulkanBackend, SynchronizationValidationReportsAMissingBarrier) {
    // A dispatch writes y, then a copy reads y with no barrier between them: a read-after-write
    // hazard only synchronization validation sees. Recorded by hand, outside the backend (whose
    // batches put a barrier before every command).
    const auto& ctx = dev().context();
    const auto& d = ctx.dispatcher();
    vk::Device device = ctx.device();
    auto y = dev().allocate(request(4096, placement_kind::host));
    auto x = dev().allocate(request(4096, placement_kind::host));
    auto z = dev().allocate(request(4096, placement_kind::host));

    vk::CommandPoolCreateInfo pci;
    pci.queueFamilyIndex = ctx.queue_family();
    vk::CommandPool pool;
    ASSERT_EQ(device.createCommandPool(&pci, nullptr, &pool, d), vk::Result::eSuccess);
    vk::DescriptorPoolSize ps{vk::DescriptorType::eStorageBuffer, 2};
    vk::DescriptorPoolCreateInfo dpci;
    dpci.maxSets = 1;
    dpci.poolSizeCount = 1;
    dpci.pPoolSizes = &ps;
    vk::DescriptorPool dpool;
    ASSERT_EQ(device.createDescriptorPool(&dpci, nullptr, &dpool, d), vk::Result::eSuccess);
    vk::DescriptorSetLayout sl = saxpy().set_layout();
    vk::DescriptorSetAllocateInfo dai;
    dai.descriptorPool = dpool;
    dai.descriptorSetCount = 1;
    dai.pSetLayouts = &sl;
    vk::DescriptorSet set;
    ASSERT_EQ(device.allocateDescriptorSets(&dai, &set, d), vk::Result::eSuccess);
    vk::DescriptorBufferInfo infos[2] = {{x.buffer(), 0, 4096}, {y.buffer(), 0, 4096}};
    vk::WriteDescriptorSet w[2];
    for (std::uint32_t i = 0; i < 2; ++i) {
        w[i].dstSet = set;
        w[i].dstBinding = i;
        w[i].descriptorCount = 1;
        w[i].descriptorType = vk::DescriptorType::eStorageBuffer;
        w[i].pBufferInfo = &infos[i];
    }
    device.updateDescriptorSets(2, w, 0, nullptr, d);
    vk::CommandBufferAllocateInfo cai;
    cai.commandPool = pool;
    cai.commandBufferCount = 1;
    vk::CommandBuffer cb;
    ASSERT_EQ(device.allocateCommandBuffers(&cai, &cb, d), vk::Result::eSuccess);
    vk::CommandBufferBeginInfo bi;
    ASSERT_EQ(cb.begin(&bi, d), vk::Result::eSuccess);
    const saxpy_params p{1.0f, 1024};
    cb.bindPipeline(vk::PipelineBindPoint::eCompute, saxpy().pipeline(), d);
    cb.bindDescriptorSets(vk::PipelineBindPoint::eCompute, saxpy().pipeline_layout(), 0, 1, &set, 0, nullptr, d);
    cb.pushConstants(saxpy().pipeline_layout(), vk::ShaderStageFlagBits::eCompute, 0, sizeof p, &p, d);
    cb.dispatch(16, 1, 1, d);
    EXPECT_EQ(dev().context().message_count(), 0u);
    const vk::BufferCopy region{0, 0, 4096};
    cb.copyBuffer(y.buffer(), z.buffer(), 1, &region, d);
    (void)d.vkEndCommandBuffer(static_cast<VkCommandBuffer>(cb));
    auto msgs = dev().context().take_messages();
    bool hazard = false;
    for (const auto& m : msgs) hazard = hazard || m.id_name.find("SYNC-HAZARD-READ-AFTER-WRITE") != std::string::npos;
    EXPECT_TRUE(hazard) << "synchronization validation did not report the missing barrier (" << msgs.size()
                        << " messages)";
    device.freeCommandBuffers(pool, 1, &cb, d);
    device.destroyCommandPool(pool, nullptr, d);
    device.destroyDescriptorPool(dpool, nullptr, d);
}

// ---- memory decisions ---------------------------------------------------------------------------

TEST_F(VulkanBackend, AllocationsFollowThePureDecisionAndReportIt) {
    const auto& table = dev().context().capabilities().memory;
    for (placement_kind p : {placement_kind::host, placement_kind::device, placement_kind::device_mapped,
                             placement_kind::automatic}) {
        for (std::uint64_t n : {std::uint64_t{4}, std::uint64_t{4097}, 8 * MiB}) {
            const auto req = request(n, p, sync_kind::fenced);
            const auto expected = dev().decide(req);
            ASSERT_TRUE(expected) << expected.message;
            auto a = dev().allocate(req);
            SCOPED_TRACE(vulkan::describe_request(req) + " " + std::to_string(n) + ": " + a.report().reason);
            EXPECT_EQ(a.size(), n);
            EXPECT_NE(a.host_data(), nullptr);
            EXPECT_EQ(a.memory_type(), expected.device_type);
            EXPECT_EQ(a.staging_memory_type(), expected.staging_type);
            EXPECT_EQ(a.staged(), expected.staged);
            EXPECT_EQ(a.report().memory_type, expected.device_type);
            EXPECT_EQ(a.report().zero_copy, !expected.staged);
            EXPECT_EQ(a.report().fallbacks, expected.report.fallbacks);
            EXPECT_EQ(a.report().requested, p);
            const auto dev_flags = table.types[static_cast<std::size_t>(a.memory_type())].flags;
            if (p == placement_kind::device && (dev_flags & vulkan::memory_property::host_visible) != 0) {
                EXPECT_FALSE(a.report().fallbacks.empty()) << "host-visible device memory must be reported";
            }
            if (p == placement_kind::device) {
                EXPECT_TRUE(a.staged());
            }
            if (p == placement_kind::host) {
                EXPECT_FALSE(a.staged());
            }
        }
    }
}

TEST_F(VulkanBackend, BytesInUseAreCountedAndReturned) {
    const auto& caps = dev().context().capabilities();
    std::vector<std::uint64_t> before;
    for (std::size_t h = 0; h < caps.memory.heaps.size(); ++h) before.push_back(dev().bytes_in_use(h));
    {
        auto a = dev().allocate(request(3 * MiB, placement_kind::device));
        std::uint64_t grew = 0;
        for (std::size_t h = 0; h < caps.memory.heaps.size(); ++h) grew += dev().bytes_in_use(h) - before[h];
        EXPECT_GE(grew, 6 * MiB) << "device copy and staging buffer";
    }
    for (std::size_t h = 0; h < caps.memory.heaps.size(); ++h) EXPECT_EQ(dev().bytes_in_use(h), before[h]);
}

/// Allocates `chunk`-byte device buffers until the backend says out_of_memory; checks the error,
/// frees everything and checks that the bytes came back. Returns how many fitted.
std::size_t exhaust(vulkan_backend& b, std::uint64_t chunk, placement_kind p) {
    const auto& caps = b.context().capabilities();
    memory_request r;
    r.size_bytes = chunk;
    r.placement = p;
    std::vector<vulkan_backend::allocation> held;
    std::error_code ec;
    for (int i = 0; i < 100 && !ec; ++i) {
        auto a = b.try_allocate(r, ec);
        if (!ec) {
            EXPECT_TRUE(static_cast<bool>(a));
            held.push_back(std::move(a));
        } else {
            EXPECT_FALSE(static_cast<bool>(a));
        }
    }
    EXPECT_TRUE(ec) << "100 allocations of " << chunk << " bytes never ran out";
    EXPECT_EQ(ec, make_error_code(errc::out_of_memory)) << ec.message();
    // allocate fails where try_allocate did, naming the request and what is available.
    const std::string asked = std::to_string(chunk) + " bytes";
    unibuf_test::expect_error([&] { (void)b.allocate(r); }, errc::out_of_memory, {"asked for", asked.c_str(), "available"});
    const std::size_t fitted = held.size();
    held.clear();
    for (std::size_t h = 0; h < caps.memory.heaps.size(); ++h) EXPECT_EQ(b.bytes_in_use(h), 0u) << "heap " << h;
    auto again = b.try_allocate(r, ec);
    EXPECT_FALSE(ec) << "memory was not returned: " << ec.message();
    return fitted;
}

TEST_F(VulkanBackend, OutOfMemoryIsACleanErrorAndLeaksNothing) {
    // A backend capped at 256 MiB per heap: real allocations until the cap, on any device.
    vulkan_backend::options o;
    o.heap_limit = 256 * MiB;
    vulkan_backend capped(unibuf_test::validated_context(), o);
    memory_request dr;
    dr.size_bytes = 48 * MiB;
    dr.placement = placement_kind::device;
    const auto d = capped.decide(dr);
    ASSERT_TRUE(d) << d.message;
    const auto& types = capped.context().capabilities().memory.types;
    const bool shared_heap = types[static_cast<std::size_t>(d.device_type)].heap ==
                             types[static_cast<std::size_t>(d.staging_type)].heap;
    EXPECT_EQ(exhaust(capped, 48 * MiB, placement_kind::device), shared_heap ? 2u : 5u)
        << "device copy and staging buffer count against their heaps";
    EXPECT_GE(exhaust(capped, 48 * MiB, placement_kind::device_mapped), 2u);
    unibuf_test::expect_no_messages(capped);

    // Where the device's heaps are small (lavapipe: 2 GiB), exhaust the real budget too.
    const auto& caps = dev().context().capabilities();
    std::uint64_t total = 0;
    for (const auto& h : caps.memory.heaps) total += h.size;
    if (total <= 4 * 1024 * MiB) {
        EXPECT_GE(exhaust(dev(), 128 * MiB, placement_kind::device), 1u);
    }
    std::error_code ec;

    // Beyond the largest single allocation the device allows: a clear error, no Vulkan call.
    if (caps.max_allocation_size < ~std::uint64_t{0}) {
        unibuf_test::expect_error([&] { (void)dev().allocate(request(caps.max_allocation_size + 1, placement_kind::host)); },
                                  errc::out_of_memory, {"maxMemoryAllocationSize"});
    }
    (void)dev().try_allocate(request(0, placement_kind::host), ec);
    EXPECT_EQ(ec, make_error_code(errc::invalid_argument));
}

// ---- host <-> device paths -----------------------------------------------------------------------

TEST_F(VulkanBackend, StagedFlushAndInvalidateMoveExactlyTheirRange) {
    auto a = dev().allocate(request(4096, placement_kind::device));
    ASSERT_TRUE(a.staged());
    auto* h = a.host_data();
    std::memset(h, 0x11, 4096);
    auto f = dev().flush(a, 0, 4096);
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));
    std::memset(h + 1001, 0x22, 7);  // odd offset and length
    f = dev().flush(a, 1001, 7);
    EXPECT_NE(f.value, 0u);
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));
    std::memset(h, 0x00, 4096);      // the staging area forgets; the device copy keeps
    dev().invalidate(a, 999, 11);    // brings back only [999, 1010)
    for (int i = 999; i < 1010; ++i)
        EXPECT_EQ(static_cast<int>(h[i]), (i >= 1001 && i < 1008) ? 0x22 : 0x11) << "at " << i;
    EXPECT_EQ(static_cast<int>(h[998]), 0) << "outside the range nothing moved";
    EXPECT_EQ(static_cast<int>(h[1010]), 0);
    EXPECT_THROW(dev().flush(a, 4000, 97), std::system_error);
    EXPECT_THROW(dev().invalidate(a, 4097, 0), std::system_error);
}

TEST_F(VulkanBackend, FlushRangesRoundToTheAtomAndStayInsideTheAllocation) {
    using vulkan::round_to_atom;
    constexpr auto r1 = round_to_atom(3, 5, 64, 4096);
    static_assert(r1.offset == 0 && r1.size == 64);
    constexpr auto r2 = round_to_atom(63, 2, 64, 4096);
    static_assert(r2.offset == 0 && r2.size == 128);
    constexpr auto r3 = round_to_atom(4000, 96, 64, 4096);
    static_assert(r3.offset == 3968 && r3.size == 128);
    constexpr auto r4 = round_to_atom(100, 0, 64, 4096);
    static_assert(r4.size == 0);
    constexpr auto r5 = round_to_atom(130, 10, 256, 192);  // allocation smaller than the rounded end
    static_assert(r5.offset == 0 && r5.size == 192);
    // On this device: a non-coherent zero-copy flush of odd ranges raises no validation error.
    memory_request req = request(1000, placement_kind::host, sync_kind::none);
    req.explicit_flush = true;
    auto a = dev().allocate(req);
    std::memset(a.host_data() + 3, 1, 7);
    dev().flush(a, 3, 7);
    dev().flush(a, 999, 1);
    dev().invalidate(a, 990, 10);
    EXPECT_EQ(static_cast<int>(a.host_data()[3]), 1);
}

TEST_F(VulkanBackend, CopiesBetweenPlacementsAndRejectsOverlap) {
    auto src = dev().allocate(request(1024, placement_kind::device));
    auto dst = dev().allocate(request(1024, placement_kind::host));
    for (int i = 0; i < 1024; ++i) src.host_data()[i] = static_cast<std::byte>(i & 0xff);
    dev().flush(src, 0, 1024);
    auto f = dev().copy(src, 17, dst, 3, 500);
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));
    dev().invalidate(dst, 0, 1024);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(static_cast<int>(dst.host_data()[3 + i]), (i + 17) & 0xff) << i;
    EXPECT_THROW((void)dev().copy(src, 0, src, 100, 200), std::system_error);
    EXPECT_NO_THROW((void)dev().copy(src, 0, src, 200, 200));
    EXPECT_THROW((void)dev().copy(src, 900, dst, 0, 200), std::system_error);
    EXPECT_EQ(dev().copy(src, 0, dst, 0, 0).value, 0u) << "an empty copy is complete at once";
}

TEST_F(VulkanBackend, CopyAndDispatchInOneBatchRunInOrder) {
    constexpr std::uint32_t n = 1000;
    auto x = dev().allocate(request(n * 4, placement_kind::device));
    auto y = dev().allocate(request(n * 4, placement_kind::device));
    auto* xs = reinterpret_cast<float*>(x.host_data());
    auto* ys = reinterpret_cast<float*>(y.host_data());
    for (std::uint32_t i = 0; i < n; ++i) {
        xs[i] = static_cast<float>(i);
        ys[i] = 1.0f;
    }
    const saxpy_params p{2.0f, n};
    const bound_range<vulkan_backend> ranges[] = {{&x, 0, n * 4, usage::read}, {&y, 0, n * 4, usage::read_write}};
    vulkan_backend::fence f;
    {
        auto b = dev().begin();
        b.upload(x, 0, n * 4);
        b.upload(y, 0, n * 4);
        b.dispatch(saxpy(), {(n + 63) / 64, 1, 1}, ranges, push_constants(p));
        b.download(y, 0, n * 4);
        EXPECT_EQ(b.size(), 4u);
        f = b.submit();
    }
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));
    dev().invalidate(y, 0, 0);
    for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(ys[i], 2.0f * static_cast<float>(i) + 1.0f) << i;
    {
        auto discarded = dev().begin();
        discarded.upload(x, 0, 4);
    }  // never submitted: nothing runs, the lock is released
    EXPECT_TRUE(dev().wait_idle());
}

// ---- dispatch -----------------------------------------------------------------------------------

TEST_F(VulkanBackend, DispatchRejectsBadArgumentsWithTheirValues) {
    auto x = dev().allocate(request(256, placement_kind::host));
    auto y = dev().allocate(request(256, placement_kind::host));
    const saxpy_params p{1.0f, 64};
    const bound_range<vulkan_backend> two[] = {{&x, 0, 256, usage::read}, {&y, 0, 256, usage::read_write}};
    auto expect = [](auto&& f, const char* needle) {
        SCOPED_TRACE(needle);
        unibuf_test::expect_error(f, errc::invalid_argument, {needle});
    };
    expect([&] { (void)dev().dispatch(saxpy(), {1, 1, 1}, std::span(two, 1), push_constants(p), {}); }, "2 bindings");
    const std::uint32_t four = 4;
    expect([&] { (void)dev().dispatch(saxpy(), {1, 1, 1}, two, push_constants(four), {}); }, "8 bytes");
    expect([&] { (void)dev().dispatch(saxpy(), {0, 1, 1}, two, push_constants(p), {}); }, "0 groups");
    const auto align = dev().limits().min_storage_offset_alignment;
    if (align > 1) {
        const bound_range<vulkan_backend> odd[] = {{&x, 1, 128, usage::read}, {&y, 0, 256, usage::read_write}};
        expect([&] { (void)dev().dispatch(saxpy(), {1, 1, 1}, odd, push_constants(p), {}); }, "aligned to");
    }
    const vulkan_backend::fence never{dev().submitted_fence().value + 1000};
    expect([&] { (void)dev().dispatch(saxpy(), {1, 1, 1}, two, push_constants(p), std::span(&never, 1)); },
           "never issued");
    const std::uint32_t not_spirv[] = {1, 2, 3};
    expect([&] { vulkan_kernel k(dev(), not_spirv, 2, 8); }, "not SPIR-V");
    EXPECT_TRUE(dev().wait_idle());
}

TEST_F(VulkanBackend, DispatchRespectsBindingOffsets) {
    const auto align = std::max<std::uint64_t>(dev().limits().min_storage_offset_alignment, 4);
    constexpr std::uint32_t n = 100;
    auto x = dev().allocate(request(align + n * 4, placement_kind::host));
    auto y = dev().allocate(request(align * 2 + n * 4, placement_kind::host));
    auto* xs = reinterpret_cast<float*>(x.host_data() + align);
    auto* ys = reinterpret_cast<float*>(y.host_data());
    for (std::uint32_t i = 0; i < (align * 2) / 4 + n; ++i) ys[i] = -1.0f;
    for (std::uint32_t i = 0; i < n; ++i) xs[i] = static_cast<float>(i);
    const saxpy_params p{1.0f, n};
    const bound_range<vulkan_backend> ranges[] = {{&x, align, n * 4, usage::read}, {&y, align * 2, n * 4, usage::read_write}};
    auto f = dev().dispatch(saxpy(), {2, 1, 1}, ranges, push_constants(p), {});
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));
    for (std::uint32_t i = 0; i < (align * 2) / 4; ++i) ASSERT_EQ(ys[i], -1.0f) << "before the bound range, " << i;
    for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(ys[(align * 2) / 4 + i], static_cast<float>(i) - 1.0f) << i;
}

TEST_F(VulkanBackend, DispatchesBeyondTheGroupCountLimitAreSplit) {
    // lavapipe allows 65535 groups per dimension; 65538 groups of 64 need a second vkCmdDispatchBase.
    const std::uint32_t limit = dev().context().capabilities().max_group_count[0];
    const std::uint32_t groups = std::min<std::uint32_t>(limit, 65535) + 3;
    const std::uint32_t n = groups * 64 - 5;
    auto x = dev().allocate(request(std::uint64_t{n} * 4, placement_kind::host));
    auto y = dev().allocate(request(std::uint64_t{n} * 4, placement_kind::host));
    auto* xs = reinterpret_cast<float*>(x.host_data());
    auto* ys = reinterpret_cast<float*>(y.host_data());
    for (std::uint32_t i = 0; i < n; ++i) {
        xs[i] = static_cast<float>(i % 1000);
        ys[i] = 0.5f;
    }
    const saxpy_params p{1.0f, n};
    const bound_range<vulkan_backend> ranges[] = {{&x, 0, x.size(), usage::read}, {&y, 0, y.size(), usage::read_write}};
    auto f = dev().dispatch(saxpy(), {groups, 1, 1}, ranges, push_constants(p), {});
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));
    std::size_t bad = 0;
    for (std::uint32_t i = 0; i < n; ++i) bad += ys[i] != static_cast<float>(i % 1000) + 0.5f;
    EXPECT_EQ(bad, 0u) << "of " << n << " elements in " << groups << " groups (device limit " << limit << ")";
}

TEST_F(VulkanBackend, EmptyBatchesAllocationsAndContextsAreRejectedClearly) {
    auto x = dev().allocate(request(256, placement_kind::device));
    auto y = dev().allocate(request(256, placement_kind::device));
    vulkan_backend::allocation empty;
    auto moved_to = dev().allocate(request(64, placement_kind::host));
    auto moved = std::move(moved_to);
    for (vulkan_backend::allocation* e : {&empty, &moved_to}) {  // NOLINT(bugprone-use-after-move)
        EXPECT_FALSE(*e);
        EXPECT_EQ(e->host_data(), nullptr);
        unibuf_test::expect_error([&] { dev().flush(*e, 0, 0); }, errc::invalid_argument, {"flush", "empty"});
        unibuf_test::expect_error([&] { dev().invalidate(*e, 0, 0); }, errc::invalid_argument, {"invalidate", "empty"});
        unibuf_test::expect_error([&] { (void)dev().copy(x, 0, *e, 0, 4); }, errc::invalid_argument,
                                  {"copy destination", "empty"});
    }
    const saxpy_params p{1.0f, 64};
    const bound_range<vulkan_backend> ranges[] = {{&x, 0, 256, usage::read}, {&y, 0, 256, usage::read_write}};
    vulkan_backend::fence f;
    {
        auto b = dev().begin();
        auto taken = std::move(b);
        // NOLINTBEGIN(bugprone-use-after-move): the moved-from and submitted states are what is tested
        for (auto* e : {&b, &taken}) {
            if (e == &taken) {
                taken.upload(x, 0, 256);
                f = taken.submit();  // a submitted batch is empty too
            }
            EXPECT_EQ(e->size(), 0u);
            unibuf_test::expect_error([&] { e->copy(x, 0, y, 0, 4); }, errc::invalid_argument,
                                      {"batch::copy", "empty batch"});
            unibuf_test::expect_error([&] { e->upload(x, 0, 4); }, errc::invalid_argument, {"batch::upload", "empty batch"});
            unibuf_test::expect_error([&] { e->download(x, 0, 4); }, errc::invalid_argument,
                                      {"batch::download", "empty batch"});
            unibuf_test::expect_error([&] { e->dispatch(saxpy(), {1, 1, 1}, ranges, push_constants(p)); },
                                      errc::invalid_argument, {"batch::dispatch", "empty batch"});
            EXPECT_EQ(e->submit().value, 0u) << "submitting an empty batch gives a complete fence";
        }
        // NOLINTEND(bugprone-use-after-move)
    }
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));

    // A moved-from context: nothing to take, no budget, no backend.
    vulkan_context c = unibuf_test::validated_context();
    vulkan_context d(std::move(c));
    EXPECT_TRUE(d.device());
    // NOLINTBEGIN(bugprone-use-after-move)
    EXPECT_FALSE(c.device());
    EXPECT_FALSE(c.collects_messages());
    EXPECT_TRUE(c.take_messages().empty());
    EXPECT_EQ(c.message_count(), 0u);
    unibuf_test::expect_error([&] { (void)c.budget({}); }, errc::invalid_argument, {"budget", "empty"});
    unibuf_test::expect_error([&] { vulkan_backend b(std::move(c)); }, errc::invalid_argument, {"empty"});
    // NOLINTEND(bugprone-use-after-move)
    EXPECT_TRUE(d.take_messages().empty());
    EXPECT_TRUE(dev().wait_idle());
}

// Allocations, kernels and batches point to their backend: a backend is never moved, so never empty.
static_assert(!std::is_move_constructible_v<vulkan_backend> && !std::is_move_assignable_v<vulkan_backend>);
// One fence definition for the timeline-value backends, one type per backend: never interchangeable.
static_assert(!std::is_same_v<vulkan_backend::fence, host_backend::fence>);
static_assert(!std::is_convertible_v<host_backend::fence, vulkan_backend::fence>);

TEST_F(VulkanBackend, RoundingNearTwoToThe64StaysInsideTheAllocation) {
    using vulkan::round_to_atom;
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    // off + n wraps: the range ends at the allocation's end, not at a small wrapped value.
    constexpr auto a = round_to_atom(4000, max - 100, 64, 4096);
    static_assert(a.offset == 3968 && a.size == 128);
    // An allocation whose end is not a multiple of the atom, at the top of the address range.
    constexpr auto b = round_to_atom(max - 10, 5, 64, max);
    static_assert(b.offset == (max - 10) / 64 * 64 && b.offset + b.size == max);
    constexpr auto c = round_to_atom(max - 70, 2, 64, max);
    static_assert(c.offset + c.size == (max - 70) / 64 * 64 + 64);
    SUCCEED();
}

TEST_F(VulkanBackend, WaitsWithTheLargestTimeoutDoNotOverflowTheClock) {
    auto x = dev().allocate(request(4096, placement_kind::host));
    auto y = dev().allocate(request(4096, placement_kind::host));
    for (wait_strategy w : {wait_strategy::block, wait_strategy::spin, wait_strategy::spin_then_block}) {
        SCOPED_TRACE(std::string(to_string(w)));
        // The spin budget is a duration too: the largest one spins until the fence completes.
        dev().set_wait_strategy(w, std::chrono::nanoseconds::max());
        const auto f = run_saxpy(dev(), saxpy(), x, y, 1.0f);
        EXPECT_TRUE(dev().wait(f, std::chrono::nanoseconds::max()));
        EXPECT_TRUE(dev().wait_idle(std::chrono::nanoseconds::max()));
    }
    dev().set_wait_strategy(wait_strategy::spin_then_block);
}

TEST_F(VulkanBackend, EveryWaitStrategyWaitsAndTimesOut) {
    constexpr std::uint32_t n = 4096;
    auto x = dev().allocate(request(n * 4, placement_kind::host));
    auto y = dev().allocate(request(n * 4, placement_kind::host));
    std::fill_n(reinterpret_cast<float*>(x.host_data()), n, 1.0f);
    std::fill_n(reinterpret_cast<float*>(y.host_data()), n, 0.0f);
    for (wait_strategy w : {wait_strategy::block, wait_strategy::spin, wait_strategy::spin_then_block}) {
        SCOPED_TRACE(std::string(to_string(w)));
        dev().set_wait_strategy(w, std::chrono::microseconds(20));
        vulkan_backend::fence f{};
        for (int i = 0; i < 5; ++i) f = run_saxpy(dev(), saxpy(), x, y, 1.0f, std::span(&f, 1));
        ASSERT_TRUE(dev().wait(f, default_wait_timeout));
        EXPECT_TRUE(dev().is_complete(f));
        // A value that will never be signalled: the bounded wait returns false after the timeout.
        const vulkan_backend::fence never{dev().submitted_fence().value + 1};
        const auto t0 = std::chrono::steady_clock::now();
        EXPECT_FALSE(dev().wait(never, std::chrono::milliseconds(20)));
        EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(19));
        EXPECT_FALSE(dev().is_complete(never));
    }
    dev().set_wait_strategy(wait_strategy::spin_then_block);
    EXPECT_EQ(reinterpret_cast<float*>(y.host_data())[n - 1], 15.0f);
    EXPECT_TRUE(dev().is_complete(vulkan_backend::fence{}));
}

TEST_F(VulkanBackend, FreeingMemoryThatTheDeviceStillUsesIsDeferred) {
    const auto& caps = dev().context().capabilities();
    std::uint64_t before = 0;
    for (std::size_t h = 0; h < caps.memory.heaps.size(); ++h) before += dev().bytes_in_use(h);
    vulkan_backend::fence f;
    {
        auto x = dev().allocate(request(4 * MiB, placement_kind::device));
        auto y = dev().allocate(request(4 * MiB, placement_kind::device));
        f = run_saxpy(dev(), saxpy(), x, y, 1.0f);
        // both destroyed here, possibly before the dispatch ran: the backend must keep them alive
    }
    ASSERT_TRUE(dev().wait(f, default_wait_timeout));
    std::uint64_t after = 0;
    for (std::size_t h = 0; h < caps.memory.heaps.size(); ++h) after += dev().bytes_in_use(h);
    EXPECT_EQ(after, before);
    auto z = dev().allocate(request(64, placement_kind::host));  // a later submission frees the graveyard
    dev().flush(z, 0, 64);
    EXPECT_TRUE(dev().wait_idle());
}

TEST_F(VulkanBackend, ThreadsAllocateSubmitAndWaitConcurrently) {
    constexpr int threads = 4, rounds = 20;
    constexpr std::size_t n = 2000;
    std::atomic<int> wrong{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            basic_buffer<float, vulkan_backend, access::read_only, placement::device, sync::fenced> x(dev(), n);
            shared_buffer<float, vulkan_backend> y(dev(), n);
            basic_buffer<float, vulkan_backend, placement::host> src(dev(), n);
            src.write(std::vector<float>(n, static_cast<float>(t)));
            x.copy_from(src);
            for (int r = 0; r < rounds; ++r) {
                y.fill(1.0f);
                const saxpy_params p{2.0f, static_cast<std::uint32_t>(n)};
                unibuf::dispatch(dev(), saxpy(), {(n + 63) / 64, 1, 1}, push_constants(p), bind(x, usage::read),
                                       bind(y, usage::read_write));
                const auto v = y.to_vector();
                for (float e : v)
                    if (e != 2.0f * static_cast<float>(t) + 1.0f) ++wrong;
            }
        });
    for (auto& th : ts) th.join();
    EXPECT_EQ(wrong.load(), 0);
}

// ---- bring your own device ------------------------------------------------------------------------

using unibuf_test::own_device;  // test/vulkan/vk_env.hpp

TEST_F(VulkanBackend, BringYourOwnDeviceWorksAndIsLeftAlive) {
    for (bool timeline : {false, true}) {
        SCOPED_TRACE(timeline ? "with timeline semaphores" : "VkFence fallback");
        own_device app(timeline);
        {
            vulkan_backend b(vulkan_context::adopt(app.handles(timeline)));
            EXPECT_FALSE(b.context().owns_handles());
            EXPECT_FALSE(b.has_transfer_queue()) << "no transfer queue given: " << b.copy_queue_report();
            EXPECT_TRUE(b.context().collects_messages());
            EXPECT_EQ(b.uses_timeline(), timeline);
            EXPECT_EQ(static_cast<VkDevice>(b.context().device()), static_cast<VkDevice>(app.device));
            auto k = unibuf_test::make_saxpy(b);
            basic_buffer<float, vulkan_backend, placement::device, sync::lazy> x(b, 500), y(b, 500);
            x.fill(3.0f);
            y.fill(1.0f);
            const saxpy_params p{2.0f, 500};
            unibuf::dispatch(b, k, {8, 1, 1}, push_constants(p), bind(x, usage::read), bind(y));
            const auto v = y.to_vector();
            EXPECT_EQ(v.front(), 7.0f);
            EXPECT_EQ(v.back(), 7.0f);
            unibuf_test::expect_no_messages(b);
        }
        // The application's device still works after the backend is gone.
        vk::BufferCreateInfo bci;
        bci.size = 64;
        bci.usage = vk::BufferUsageFlagBits::eStorageBuffer;
        vk::Buffer buf;
        ASSERT_EQ(app.device.createBuffer(&bci, nullptr, &buf, app.d), vk::Result::eSuccess);
        app.device.destroyBuffer(buf, nullptr, app.d);
        EXPECT_EQ(static_cast<vk::Result>(app.d.vkDeviceWaitIdle(static_cast<VkDevice>(app.device))), vk::Result::eSuccess);
    }
}

// ---- the transfer queue ---------------------------------------------------------------------------
//
// On a device with a dedicated transfer family (NVIDIA) the context creates its queue and copy-only
// submissions run there; lavapipe has one universal family, so there these tests run the same
// bookkeeping with the transfer timeline emulated on the compute queue (options::emulate_transfer_queue):
// two timeline semaphores, cross-queue waits, transfer-only barriers, under synchronization validation.

/// A second backend whose copy-only submissions all go to the transfer queue (or its emulation).
vulkan_backend& transfer_dev() {
    static vulkan_backend b = [] {
        vulkan_backend::options o;
        o.copies = copy_queue::transfer;
        o.emulate_transfer_queue = true;
        o.thresholds.force_staging = true;
        return vulkan_backend(unibuf_test::validated_context(), o);
    }();
    return b;
}

class TransferQueue : public VulkanBackend {
protected:
    void TearDown() override {
        VulkanBackend::TearDown();
        unibuf_test::expect_no_messages(transfer_dev());
    }
    vulkan_kernel& xsaxpy() {
        static vulkan_kernel k = unibuf_test::make_saxpy(transfer_dev());
        return k;
    }
};

TEST_F(TransferQueue, TheContextFindsADedicatedTransferFamilyOrSaysWhyNot) {
    const auto& ctx = dev().context();
    const auto& d = ctx.dispatcher();
    std::uint32_t nf = 0;
    ctx.physical_device().getQueueFamilyProperties(&nf, nullptr, d);
    std::vector<vk::QueueFamilyProperties> fams(nf);
    ctx.physical_device().getQueueFamilyProperties(&nf, fams.data(), d);
    const int dedicated = unibuf::detail::dedicated_transfer_family(fams);
    const auto& caps = ctx.capabilities();
    EXPECT_FALSE(caps.transfer_queue_note.empty());
    if (dedicated < 0) {
        EXPECT_FALSE(ctx.transfer_queue()) << "no dedicated family, yet a transfer queue";
        EXPECT_FALSE(caps.transfer_queue);
        EXPECT_NE(caps.transfer_queue_note.find("no queue family with transfer"), std::string::npos) << caps.transfer_queue_note;
        EXPECT_FALSE(dev().has_transfer_queue());
        EXPECT_NE(dev().copy_queue_report().find("compute queue"), std::string::npos) << dev().copy_queue_report();
    } else {
        ASSERT_TRUE(ctx.transfer_queue());
        EXPECT_TRUE(caps.transfer_queue);
        EXPECT_EQ(ctx.transfer_queue_family(), static_cast<std::uint32_t>(dedicated));
        const auto flags = fams[ctx.transfer_queue_family()].queueFlags;
        EXPECT_TRUE(flags & vk::QueueFlagBits::eTransfer);
        EXPECT_FALSE(flags & vk::QueueFlagBits::eCompute);
        EXPECT_FALSE(flags & vk::QueueFlagBits::eGraphics);
        EXPECT_EQ(dev().has_transfer_queue(), dev().uses_timeline());
    }
    // Asked not to, the context creates none.
    vulkan_context_options o;
    o.transfer_queue = false;
    vulkan_context plain(o);
    EXPECT_FALSE(plain.transfer_queue());
    EXPECT_NE(plain.capabilities().transfer_queue_note.find("false"), std::string::npos);
    // The second backend has one (real or emulated) and says which.
    ASSERT_TRUE(transfer_dev().has_transfer_queue());
    EXPECT_NE(transfer_dev().copy_queue_report().find(dedicated < 0 ? "emulated" : "transfer queue ("),
              std::string::npos)
        << transfer_dev().copy_queue_report();
}

TEST_F(TransferQueue, StagedCopiesAndDispatchesRunInSubmissionOrderAcrossTheQueues) {
    auto& b = transfer_dev();
    constexpr std::uint32_t n = 4099;
    constexpr std::uint64_t bytes = n * 4;
    auto x = b.allocate(request(bytes, placement_kind::device));
    auto y = b.allocate(request(bytes, placement_kind::device));
    ASSERT_TRUE(x.staged());
    auto* xs = reinterpret_cast<float*>(x.host_data());
    auto* ys = reinterpret_cast<float*>(y.host_data());
    std::fill(ys, ys + n, 0.0f);
    auto f = b.flush(y, 0, bytes);  // transfer queue
    for (int round = 1; round <= 5; ++round) {
        for (std::uint32_t i = 0; i < n; ++i) xs[i] = static_cast<float>(round * 1000 + static_cast<int>(i % 7));
        const auto up = b.flush(x, 0, bytes);                       // transfer queue, after the dispatch before
        EXPECT_GT(up.value, f.value);
        f = run_saxpy(b, xsaxpy(), x, y, 1.0f, std::span(&up, 1));  // compute queue, after the copy
        ASSERT_TRUE(b.wait(up, default_wait_timeout));  // the staging memory is read until then
    }
    b.invalidate(y, 0, bytes);  // the copy back on the transfer queue, after the last dispatch
    EXPECT_TRUE(b.is_complete(f));
    for (std::uint32_t i = 0; i < n; ++i)
        ASSERT_EQ(ys[i], 15000.0f + 5.0f * static_cast<float>(i % 7)) << "at " << i;
}

TEST_F(TransferQueue, CopiesOfOneBatchWaitOnlyWhereTheyTouchWhatAnEarlierCopyWrote) {
    for (vulkan_backend* bp : {&dev(), &transfer_dev()}) {
        auto& b = *bp;
        SCOPED_TRACE(b.copy_queue_report());
        constexpr std::uint64_t n = 64 * 1024;
        auto src = b.allocate(request(2 * n, placement_kind::device));
        auto mid = b.allocate(request(2 * n, placement_kind::device));
        auto dst = b.allocate(request(2 * n, placement_kind::device));
        for (std::uint64_t i = 0; i < 2 * n; ++i) src.host_data()[i] = static_cast<std::byte>((i * 7) & 0xff);
        auto bt = b.begin();
        bt.upload(src, 0, 2 * n);
        bt.copy(src, 0, mid, 0, n);      // reads what the upload wrote: waits
        bt.copy(src, n, mid, n, n);      // disjoint from the copy before: no wait needed, none taken
        bt.copy(mid, 0, dst, n, n);      // reads what the copies wrote: waits
        bt.copy(mid, n, dst, 0, n);
        bt.copy(src, 0, mid, 0, 16);     // writes what the copy before read: waits
        bt.download(dst, 0, 2 * n);
        EXPECT_EQ(bt.size(), 7u);
        const auto f = bt.submit();
        ASSERT_TRUE(b.wait(f, default_wait_timeout));
        b.invalidate(dst, 0, 0);
        for (std::uint64_t i = 0; i < 2 * n; ++i) {
            const std::uint64_t from = i < n ? i + n : i - n;
            ASSERT_EQ(static_cast<int>(dst.host_data()[i]), static_cast<int>((from * 7) & 0xff)) << "at " << i;
        }
        unibuf_test::expect_no_messages(b);
    }
}

TEST_F(TransferQueue, TheProducersStagingCopiesRunOnTheTransferQueue) {
    auto& b = transfer_dev();
    produce_options o;
    o.grain_bytes = 4096;
    o.chunk_bytes = 3 * 4096;
    o.force = produce_path::staged_pipelined;
    constexpr std::size_t n = (1u << 20) / 4 + 5;
    for (unsigned threads : {1u, 4u}) {
        producer<vulkan_backend> prod(b, threads, o);
        upload_buffer<std::uint32_t, vulkan_backend> up(b, n);
        const auto r = prod.fill(up, [&](write_only_view<std::uint32_t> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint32_t>(first + i) * 3u + threads;
        });
        EXPECT_EQ(r.path, produce_path::staged_pipelined);
        EXPECT_GT(r.copies, 1u);
        ASSERT_TRUE(b.wait(r.fence, default_wait_timeout));
        basic_buffer<std::uint32_t, vulkan_backend, placement::host, sync::fenced> back(b, n);
        back.copy_from(up);
        const auto v = back.to_vector();
        for (std::size_t i = 0; i < n; ++i)
            ASSERT_EQ(v[i], static_cast<std::uint32_t>(i) * 3u + threads) << threads << " writers, at " << i;
    }
}

TEST_F(TransferQueue, ThreadsSubmitToBothQueuesConcurrently) {
    auto& b = transfer_dev();
    auto& k = xsaxpy();
    constexpr int threads = 4, rounds = 6;
    constexpr std::size_t n = 3000;
    std::atomic<int> wrong{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            basic_buffer<float, vulkan_backend, placement::device, sync::lazy> x(b, n), y(b, n);
            for (int r = 0; r < rounds; ++r) {
                x.fill(static_cast<float>(t + r));  // staged: a transfer-queue copy
                y.fill(1.0f);
                const saxpy_params p{2.0f, static_cast<std::uint32_t>(n)};
                unibuf::dispatch(b, k, {(n + 63) / 64, 1, 1}, push_constants(p), bind(x, usage::read), bind(y));
                const auto v = y.to_vector();  // the copy back, on the transfer queue
                for (float e : v)
                    if (e != 2.0f * static_cast<float>(t + r) + 1.0f) ++wrong;
            }
        });
    for (auto& th : ts) th.join();
    EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TransferQueue, AutomaticSendsLargeCopiesToTheTransferQueueAndForcingTheComputeQueueWorks) {
    auto& b = transfer_dev();
    constexpr std::uint64_t bytes = 256 * 1024;
    auto a = b.allocate(request(bytes, placement_kind::device));
    for (copy_queue q : {copy_queue::automatic, copy_queue::compute, copy_queue::transfer, copy_queue::both}) {
        b.set_copy_queue(q, 64 * 1024);  // automatic, both: this copy is large, a 4-byte one small
        EXPECT_NE(b.copy_queue_report().find(q == copy_queue::automatic ? "at least 65536 bytes" : to_string(q)),
                  std::string::npos)
            << b.copy_queue_report();
        std::memset(a.host_data(), static_cast<int>(q) + 1, bytes);
        ASSERT_TRUE(b.wait(b.flush(a, 0, bytes), default_wait_timeout));
        ASSERT_TRUE(b.wait(b.flush(a, 8, 4), default_wait_timeout));
        std::memset(a.host_data(), 0, bytes);
        b.invalidate(a, 0, bytes);
        for (std::uint64_t i = 0; i < bytes; i += 4093) ASSERT_EQ(static_cast<int>(a.host_data()[i]), static_cast<int>(q) + 1);
    }
    b.set_copy_queue(copy_queue::transfer, 0);
}

TEST_F(VulkanBackend, AdoptedDevicesUseTheCallersTransferQueue) {
    // The caller names its one queue as the transfer queue too (the only queue lavapipe has): copies
    // then run on the transfer timeline, on that queue.
    own_device app(true);
    {
        auto h = app.handles(true);
        h.transfer_queue = h.queue;
        h.transfer_queue_family = h.queue_family;
        vulkan_backend::options o;
        o.copies = copy_queue::transfer;
        vulkan_backend b(vulkan_context::adopt(h), o);
        EXPECT_TRUE(b.has_transfer_queue());
        EXPECT_NE(b.copy_queue_report().find("the caller's transfer queue"), std::string::npos) << b.copy_queue_report();
        auto k = unibuf_test::make_saxpy(b);
        basic_buffer<float, vulkan_backend, placement::device, sync::lazy> x(b, 700), y(b, 700);
        x.fill(2.0f);
        y.fill(1.0f);
        const saxpy_params p{3.0f, 700};
        unibuf::dispatch(b, k, {11, 1, 1}, push_constants(p), bind(x, usage::read), bind(y));
        const auto v = y.to_vector();
        EXPECT_EQ(v.front(), 7.0f);
        EXPECT_EQ(v.back(), 7.0f);
        unibuf_test::expect_no_messages(b);
    }
    auto bad = app.handles(true);
    bad.transfer_queue = bad.queue;
    bad.transfer_queue_family = 99;
    try {
        (void)vulkan_context::adopt(bad);
        ADD_FAILURE() << "adopted a transfer queue of a family the device lacks";
    } catch (const std::system_error& ex) {
        EXPECT_EQ(ex.code(), make_error_code(errc::invalid_argument));
        EXPECT_NE(std::string(ex.what()).find("transfer queue family 99"), std::string::npos) << ex.what();
    }
}

TEST_F(TransferQueue, SplitCopiesMoveEveryByteOnceAndDependentCopiesStayInOrder) {
    auto& b = transfer_dev();
    b.set_copy_queue(copy_queue::both, 0);
    constexpr std::uint64_t n = 300007;  // odd: the halves cut a copy at an odd byte
    auto src = b.allocate(request(n, placement_kind::device));
    auto dst = b.allocate(request(n, placement_kind::device));
    for (std::uint64_t i = 0; i < n; ++i) src.host_data()[i] = static_cast<std::byte>((i * 13 + 5) & 0xff);
    ASSERT_TRUE(b.wait(b.flush(src, 0, n), default_wait_timeout));  // one copy, split in two
    {
        auto bt = b.begin();  // three disjoint copies of odd sizes: split by bytes
        bt.copy(src, 0, dst, n - 1000, 1000);
        bt.copy(src, 1000, dst, 77, n - 1077);
        bt.copy(src, n - 77, dst, 0, 77);
        const auto f = bt.submit();
        const auto g = b.flush(src, 0, 4);  // after the split submission: waits for both halves
        ASSERT_TRUE(b.wait(g, default_wait_timeout));
        EXPECT_TRUE(b.is_complete(f));
    }
    b.invalidate(dst, 0, n);
    const auto expect = [](std::uint64_t i) { return static_cast<int>((i * 13 + 5) & 0xff); };
    for (std::uint64_t i = 0; i < 77; ++i) ASSERT_EQ(static_cast<int>(dst.host_data()[i]), expect(n - 77 + i)) << i;
    for (std::uint64_t i = 77; i < n - 1000; ++i) ASSERT_EQ(static_cast<int>(dst.host_data()[i]), expect(i - 77 + 1000)) << i;
    for (std::uint64_t i = n - 1000; i < n; ++i) ASSERT_EQ(static_cast<int>(dst.host_data()[i]), expect(i - (n - 1000))) << i;
    {
        auto bt = b.begin();  // dependent copies (dst read after written): one queue, in order
        bt.copy(src, 0, dst, 0, 4096);
        bt.copy(dst, 0, dst, 8192, 4096);
        ASSERT_TRUE(b.wait(bt.submit(), default_wait_timeout));
    }
    b.invalidate(dst, 8192, 4096);
    for (std::uint64_t i = 0; i < 4096; ++i) ASSERT_EQ(static_cast<int>(dst.host_data()[8192 + i]), expect(i)) << i;
    // The producer's staging copies, split.
    produce_options o;
    o.grain_bytes = 4096;
    o.chunk_bytes = 5 * 4096;
    o.force = produce_path::staged_pipelined;
    producer<vulkan_backend> prod(b, 3, o);
    upload_buffer<std::uint32_t, vulkan_backend> up(b, 100003);
    const auto r = prod.fill(up, [&](write_only_view<std::uint32_t> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint32_t>(first + i) ^ 0x5a5a5a5au;
    });
    ASSERT_TRUE(b.wait(r.fence, default_wait_timeout));
    basic_buffer<std::uint32_t, vulkan_backend, placement::host, sync::fenced> back(b, 100003);
    back.copy_from(up);
    const auto v = back.to_vector();
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], static_cast<std::uint32_t>(i) ^ 0x5a5a5a5au) << i;
    b.set_copy_queue(copy_queue::transfer, 0);
}

TEST_F(VulkanBackend, AdoptRejectsMissingHandles) {
    vulkan_external_device e;
    try {
        (void)vulkan_context::adopt(e);
        ADD_FAILURE() << "adopted null handles";
    } catch (const std::system_error& ex) {
        EXPECT_EQ(ex.code(), make_error_code(errc::invalid_argument));
    }
}

} // namespace
