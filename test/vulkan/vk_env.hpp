// Vulkan environments for the shared behaviour suite and the backend tests: one backend per
// environment and process, validation with synchronization validation on, every message collected.
#pragma once

#include <unibuf/vulkan.hpp>
#include <unibuf/ops/saxpy/saxpy.spv.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <dlfcn.h>

namespace unibuf_test {

/// Under AddressSanitizer: keeps the driver and the validation layer loaded after the Vulkan
/// loader unloads them at vkDestroyInstance, so that LeakSanitizer can name them at exit and
/// test/vulkan/lsan.supp can suppress their process-lifetime allocations by library.
#if defined(__SANITIZE_ADDRESS__)
#define UNIBUF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)  // Clang's spelling
#define UNIBUF_TEST_ASAN 1
#endif
#endif
inline void pin_driver_libraries() {
#if defined(UNIBUF_TEST_ASAN)
    static const bool once = [] {
        for (const char* lib : {"libvulkan_lvp.so", "libVkLayer_khronos_validation.so"})
            (void)dlopen(lib, RTLD_NOW | RTLD_NODELETE);
        return true;
    }();
    (void)once;
#endif
}

/// A context with VK_LAYER_KHRONOS_validation and synchronization validation; creation fails (and
/// so does every test using it) when no Vulkan driver or no validation layer is installed.
inline unibuf::vulkan_context validated_context() {
    pin_driver_libraries();
    unibuf::vulkan_context_options o;
    o.validation = true;
    o.sync_validation = true;
    return unibuf::vulkan_context(o);
}

/// A device made by "the application", with or without the timeline feature, validated.
struct own_device {
    unibuf::detail::vulkan_library lib;
    vk::DispatchLoaderDynamic d;
    vk::Instance instance;
    vk::PhysicalDevice physical;
    vk::Device device;
    vk::Queue queue;
    std::uint32_t family = 0;

    explicit own_device(bool timeline) {
        pin_driver_libraries();
        d.init(lib.open());
        const char* layer = "VK_LAYER_KHRONOS_validation";
        const char* ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        vk::ApplicationInfo app;
        app.apiVersion = VK_API_VERSION_1_2;
        vk::InstanceCreateInfo ci;
        ci.pApplicationInfo = &app;
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = &layer;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = &ext;
        unibuf::detail::vk_check(vk::createInstance(&ci, nullptr, &instance, d), "vkCreateInstance");
        d.init(instance);
        std::uint32_t n = 1;
        const vk::Result r = instance.enumeratePhysicalDevices(&n, &physical, d);
        if (r != vk::Result::eSuccess && r != vk::Result::eIncomplete) unibuf::detail::vk_check(r, "vkEnumeratePhysicalDevices");
        std::uint32_t nf = 0;
        physical.getQueueFamilyProperties(&nf, nullptr, d);
        std::vector<vk::QueueFamilyProperties> fams(nf);
        physical.getQueueFamilyProperties(&nf, fams.data(), d);
        while (family < nf && !(fams[family].queueFlags & vk::QueueFlagBits::eCompute)) ++family;
        const float prio = 1.0f;
        vk::DeviceQueueCreateInfo q;
        q.queueFamilyIndex = family;
        q.queueCount = 1;
        q.pQueuePriorities = &prio;
        vk::PhysicalDeviceVulkan12Features f12;
        f12.timelineSemaphore = timeline ? VK_TRUE : VK_FALSE;
        vk::DeviceCreateInfo dci;
        dci.pNext = &f12;
        dci.queueCreateInfoCount = 1;
        dci.pQueueCreateInfos = &q;
        unibuf::detail::vk_check(physical.createDevice(&dci, nullptr, &device, d), "vkCreateDevice");
        d.init(device);
        device.getQueue(family, 0, &queue, d);
    }
    ~own_device() {
        device.destroy(nullptr, d);
        instance.destroy(nullptr, d);
    }
    unibuf::vulkan_external_device handles(bool timeline) const {
        unibuf::vulkan_external_device e;
        e.instance = static_cast<VkInstance>(instance);
        e.physical_device = static_cast<VkPhysicalDevice>(physical);
        e.device = static_cast<VkDevice>(device);
        e.queue = static_cast<VkQueue>(queue);
        e.queue_family = family;
        e.api_version = VK_API_VERSION_1_2;
        e.timeline_semaphore_enabled = timeline;
        e.debug_utils_enabled = true;
        return e;
    }
};

/// Fails the current test once per validation message collected since the last call.
inline void expect_no_messages(unibuf::vulkan_backend& b) {
    for (const auto& m : b.context().take_messages())
        ADD_FAILURE() << "Vulkan validation message [" << m.id_name << "]: " << m.text;
}

/// Builds the saxpy kernel of include/unibuf/ops/saxpy/saxpy.comp (2 bindings, {float a; uint n;}).
inline unibuf::vulkan_kernel make_saxpy(unibuf::vulkan_backend& b) {
    return unibuf::vulkan_kernel(b, unibuf::kernels::saxpy_spv, 2, 8);
}

/// The environment of the shared suite; `Opt` tweaks the backend options.
template <class Opt>
struct basic_vulkan_env {
    using backend = unibuf::vulkan_backend;
    static constexpr const char* name = Opt::name;
    static backend& get() {
        static backend b(validated_context(), Opt::options());
        return b;
    }
    static unibuf::vulkan_kernel& saxpy() {
        static unibuf::vulkan_kernel k = make_saxpy(get());
        return k;
    }
    static void expect_clean() { expect_no_messages(get()); }
};

/// Default options: timeline fences, spin_then_block, automatic placement as decided.
struct default_options {
    static constexpr const char* name = "vulkan";
    static unibuf::vulkan_backend::options options() { return {}; }
};
/// Every automatic buffer staged (the staging path on unified-memory devices such as lavapipe),
/// VkFences instead of timeline values, blocking waits.
struct staged_fence_options {
    static constexpr const char* name = "vulkan-staged-vkfence";
    static unibuf::vulkan_backend::options options() {
        unibuf::vulkan_backend::options o;
        o.thresholds.force_staging = true;
        o.use_timeline = false;
        o.wait = unibuf::wait_strategy::block;
        return o;
    }
};

using vulkan_env = basic_vulkan_env<default_options>;
using vulkan_staged_env = basic_vulkan_env<staged_fence_options>;

} // namespace unibuf_test
