/// @file context.hpp
/// @brief A headless Vulkan context for unibuf: instance, physical device, device, one
/// compute-capable queue and, where the device has a dedicated transfer queue family, one transfer
/// queue; optional validation with synchronization validation and a debug
/// messenger that collects messages; or the caller's own handles ("bring your own device").
///
/// The Vulkan loader is opened at run time (`libvulkan.so.1`), so programs need the Vulkan headers
/// to build but no Vulkan library to link. All calls go through a `vk::DispatchLoaderDynamic`
/// owned by the context; Vulkan-Hpp's default dispatcher is never used.
///
/// @code
/// unibuf::vulkan_context_options opt;
/// opt.validation = true;                      // VK_LAYER_KHRONOS_validation + sync validation
/// unibuf::vulkan_context ctx(opt);            // prefers a discrete GPU, then integrated, virtual, CPU
/// std::printf("%s\n", ctx.capabilities().device_name.c_str());
/// for (const auto& m : ctx.take_messages()) std::printf("%s\n", m.text.c_str());
/// @endcode
#pragma once

#include <vulkan/vulkan.hpp>

#include "../../core/error.hpp"
#include "memory_selection.hpp"
#include "memory_table.hpp"

#include <dlfcn.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief One message of the debug-utils messenger: what a validation layer reports (validation
/// and performance messages of warning or error severity). General messages (the loader's notices,
/// e.g. "env var 'VK_INSTANCE_LAYERS' defined and adding layers") are not collected: they say
/// nothing about the program's use of Vulkan.
struct vulkan_message {
    /// @brief Severity as reported by VK_EXT_debug_utils.
    enum class severity : std::uint8_t { verbose, info, warning, error };
    severity level = severity::error;
    std::string id_name;  ///< e.g. "SYNC-HAZARD-WRITE-AFTER-WRITE", "VUID-..."
    std::string text;
};

/// @brief How `vulkan_context` creates its own instance and device.
struct vulkan_context_options {
    /// @brief Enable VK_LAYER_KHRONOS_validation; creation fails (errc::unsupported) when the layer
    /// is not installed or not on VK_LAYER_PATH.
    bool validation = false;
    /// @brief With `validation`: also enable synchronization validation (VK_EXT_validation_features).
    bool sync_validation = true;
    /// @brief Collect the validation and performance warnings and errors through VK_EXT_debug_utils
    /// when the instance offers it (always on with `validation`); general messages (loader,
    /// driver notices) are left out.
    bool debug_messenger = true;
    /// @brief Also print each collected message to stderr.
    bool print_messages = false;
    /// @brief Physical device index to use; -1 chooses: discrete GPU, then integrated, virtual, CPU.
    /// The environment variable UNIBUF_VULKAN_DEVICE, when set, overrides -1.
    int device_index = -1;
    /// @brief Application name given to the instance.
    std::string application_name = "unibuf";
    /// @brief Also create one queue of a dedicated transfer family (transfer support without
    /// graphics or compute: the copy engines of discrete GPUs) where the device has one. Devices
    /// with one universal family (lavapipe) have none: `transfer_queue()` is then null.
    bool transfer_queue = true;
    /// @brief Enable VK_NV_cooperative_matrix (tensor cores) with the features its kernels need
    /// (cooperativeMatrix, shaderFloat16, vulkanMemoryModel) where the device exposes all of them;
    /// where it does not, the device is created without them and
    /// `vulkan_context::cooperative_matrix()` says why (creation never fails for it).
    bool cooperative_matrix = true;
};

/// @brief Handles of a Vulkan device the caller created and keeps owning ("bring your own device").
/// The context never destroys them; they must outlive the context and everything made from it.
struct vulkan_external_device {
    VkInstance instance = VK_NULL_HANDLE;
    VkPhysicalDevice physical_device = VK_NULL_HANDLE;
    VkDevice device = VK_NULL_HANDLE;
    VkQueue queue = VK_NULL_HANDLE;  ///< a queue of `queue_family`, which must support compute
    std::uint32_t queue_family = 0;
    /// @brief The loader entry point the caller uses; null: the system loader's (libvulkan.so.1).
    PFN_vkGetInstanceProcAddr get_instance_proc_addr = nullptr;
    /// @brief The `apiVersion` the instance was created with (at least Vulkan 1.1).
    std::uint32_t api_version = VK_API_VERSION_1_1;
    /// @brief The device was created with the `timelineSemaphore` feature enabled (Vulkan 1.2);
    /// otherwise fences are VkFences.
    bool timeline_semaphore_enabled = false;
    /// @brief The device was created with VK_EXT_memory_budget enabled.
    bool memory_budget_enabled = false;
    /// @brief The instance was created with VK_EXT_debug_utils enabled: the context then adds its
    /// own messenger (collected like an owned context's).
    bool debug_utils_enabled = false;
    /// @brief Optional: a queue of `transfer_queue_family` for staged copies (null: every copy runs
    /// on `queue`). It may be `queue` itself or another queue of its family.
    VkQueue transfer_queue = VK_NULL_HANDLE;
    /// @brief The family of `transfer_queue` (transfer, graphics or compute support).
    std::uint32_t transfer_queue_family = 0;
    /// @brief The device was created with VK_NV_cooperative_matrix and the features
    /// `cooperativeMatrix` (VkPhysicalDeviceCooperativeMatrixFeaturesNV), `shaderFloat16` and
    /// `vulkanMemoryModel` (Vulkan 1.2) enabled: unibuf's tensor-core kernels may then run on it.
    bool cooperative_matrix_nv_enabled = false;
};

/// @brief One matrix shape the device's cooperative matrices support
/// (`vkGetPhysicalDeviceCooperativeMatrixPropertiesNV`): D (M x N) = A (M x K) * B (K x N) + C.
struct vulkan_cooperative_matrix_shape {
    std::uint32_t m = 0, n = 0, k = 0;  ///< MSize, NSize, KSize
    vk::ComponentTypeNV a = vk::ComponentTypeNV::eFloat16, b = vk::ComponentTypeNV::eFloat16;
    vk::ComponentTypeNV c = vk::ComponentTypeNV::eFloat32, d = vk::ComponentTypeNV::eFloat32;
    vk::ScopeNV scope = vk::ScopeNV::eSubgroup;

    /// @brief True for fp16 A and B, fp32 C and D, at subgroup scope (what unibuf's conv2d uses).
    [[nodiscard]] bool fp16_fp32_subgroup() const noexcept {
        return a == vk::ComponentTypeNV::eFloat16 && b == vk::ComponentTypeNV::eFloat16 &&
               c == vk::ComponentTypeNV::eFloat32 && d == vk::ComponentTypeNV::eFloat32 && scope == vk::ScopeNV::eSubgroup;
    }
    /// @brief "16x16x16".
    [[nodiscard]] std::string to_string() const {
        return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
    }
};

/// @brief What a context enabled for cooperative matrices (tensor cores), and why.
struct vulkan_cooperative_matrix_info {
    /// @brief VK_NV_cooperative_matrix is enabled with cooperativeMatrix, shaderFloat16 and
    /// vulkanMemoryModel, and the device runs cooperative matrices and basic subgroup operations
    /// in compute shaders.
    bool enabled = false;
    std::string extension;  ///< "VK_NV_cooperative_matrix" when enabled, else empty
    /// @brief The device's shapes (every component type and scope) when enabled.
    std::vector<vulkan_cooperative_matrix_shape> shapes;
    std::uint32_t subgroup_size = 0;  ///< the device's subgroupSize (Vulkan 1.1)
    std::string note;                 ///< what was enabled, or why nothing was (printable)
};

/// @brief What unibuf reads from a physical device once, at context creation.
struct vulkan_capabilities {
    std::string device_name;
    std::string driver_name;  ///< VkPhysicalDeviceDriverProperties (Vulkan 1.2), else empty
    std::string driver_info;
    vk::PhysicalDeviceType device_type = vk::PhysicalDeviceType::eOther;
    std::uint32_t vendor_id = 0;
    std::uint32_t device_id = 0;
    std::uint32_t api_version = 0;     ///< effective: min(instance apiVersion, device apiVersion)
    std::uint32_t driver_version = 0;
    vulkan::memory_table memory;      ///< memory types and heaps (and nonCoherentAtomSize)
    std::uint64_t non_coherent_atom = 1;
    std::uint64_t min_storage_offset_alignment = 1;
    std::uint64_t max_allocation_size = ~std::uint64_t{0};  ///< maxMemoryAllocationSize (Vulkan 1.1)
    std::uint64_t max_storage_buffer_range = 0;
    std::uint32_t max_push_constants_size = 0;
    std::array<std::uint32_t, 3> max_group_count{};
    bool timeline_semaphore = false;  ///< enabled on the device (fences are timeline values)
    bool memory_budget = false;       ///< VK_EXT_memory_budget enabled
    std::uint32_t queue_family = 0;
    /// @brief The context has a transfer queue (`vulkan_context::transfer_queue()`).
    bool transfer_queue = false;
    /// @brief Its family (meaningful when `transfer_queue`).
    std::uint32_t transfer_queue_family = 0;
    /// @brief Why the context has the transfer queue it has, or none (printable).
    std::string transfer_queue_note;
    /// @brief Cooperative matrices: enabled or not, the shapes, and why (`vulkan_context::cooperative_matrix()`).
    vulkan_cooperative_matrix_info cooperative_matrix;
};

/// @brief Printable name of a physical device type.
[[nodiscard]] inline std::string_view device_type_name(vk::PhysicalDeviceType t) noexcept {
    switch (t) {
        case vk::PhysicalDeviceType::eDiscreteGpu: return "discrete GPU";
        case vk::PhysicalDeviceType::eIntegratedGpu: return "integrated GPU";
        case vk::PhysicalDeviceType::eVirtualGpu: return "virtual GPU";
        case vk::PhysicalDeviceType::eCpu: return "CPU";
        default: return "other";
    }
}

namespace detail {

/// Name of a VkResult (without needing Vulkan-Hpp's to_string, which users may disable).
[[nodiscard]] inline std::string vk_result_name(vk::Result r) {
    switch (r) {
        case vk::Result::eSuccess: return "VK_SUCCESS";
        case vk::Result::eNotReady: return "VK_NOT_READY";
        case vk::Result::eTimeout: return "VK_TIMEOUT";
        case vk::Result::eIncomplete: return "VK_INCOMPLETE";
        case vk::Result::eErrorOutOfHostMemory: return "VK_ERROR_OUT_OF_HOST_MEMORY";
        case vk::Result::eErrorOutOfDeviceMemory: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
        case vk::Result::eErrorInitializationFailed: return "VK_ERROR_INITIALIZATION_FAILED";
        case vk::Result::eErrorDeviceLost: return "VK_ERROR_DEVICE_LOST";
        case vk::Result::eErrorMemoryMapFailed: return "VK_ERROR_MEMORY_MAP_FAILED";
        case vk::Result::eErrorLayerNotPresent: return "VK_ERROR_LAYER_NOT_PRESENT";
        case vk::Result::eErrorExtensionNotPresent: return "VK_ERROR_EXTENSION_NOT_PRESENT";
        case vk::Result::eErrorFeatureNotPresent: return "VK_ERROR_FEATURE_NOT_PRESENT";
        case vk::Result::eErrorIncompatibleDriver: return "VK_ERROR_INCOMPATIBLE_DRIVER";
        case vk::Result::eErrorTooManyObjects: return "VK_ERROR_TOO_MANY_OBJECTS";
        case vk::Result::eErrorFragmentedPool: return "VK_ERROR_FRAGMENTED_POOL";
        case vk::Result::eErrorOutOfPoolMemory: return "VK_ERROR_OUT_OF_POOL_MEMORY";
        default: return "VkResult " + std::to_string(static_cast<int>(r));
    }
}

/// The unibuf error condition of a failed Vulkan call.
[[nodiscard]] inline errc vk_errc(vk::Result r) noexcept {
    switch (r) {
        case vk::Result::eErrorOutOfHostMemory:
        case vk::Result::eErrorOutOfDeviceMemory:
        case vk::Result::eErrorOutOfPoolMemory:
        case vk::Result::eErrorFragmentedPool:
        case vk::Result::eErrorTooManyObjects: return errc::out_of_memory;
        case vk::Result::eErrorDeviceLost: return errc::device_lost;
        case vk::Result::eErrorMemoryMapFailed: return errc::mapping_failed;
        case vk::Result::eTimeout: return errc::timeout;
        default: return errc::unsupported;
    }
}

/// Throws a unibuf error naming the call when `r` is not VK_SUCCESS.
inline void vk_check(vk::Result r, const char* call) {
    if (r != vk::Result::eSuccess)
        throw_error(vk_errc(r), std::string("unibuf: vulkan: ") + call + " failed: " + vk_result_name(r));
}

/// The system Vulkan loader, opened at run time. Move-only.
class vulkan_library {
public:
    vulkan_library() = default;
    vulkan_library(vulkan_library&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
    vulkan_library& operator=(vulkan_library&& o) noexcept {
        if (this != &o) {
            close();
            handle_ = std::exchange(o.handle_, nullptr);
        }
        return *this;
    }
    vulkan_library(const vulkan_library&) = delete;
    vulkan_library& operator=(const vulkan_library&) = delete;
    ~vulkan_library() { close(); }

    /// Opens libvulkan.so.1 and returns vkGetInstanceProcAddr.
    /// @throws std::system_error errc::unsupported when no loader is installed
    PFN_vkGetInstanceProcAddr open() {
        for (const char* name : {"libvulkan.so.1", "libvulkan.so"}) {
            handle_ = dlopen(name, RTLD_NOW | RTLD_LOCAL);
            if (handle_ != nullptr) break;
        }
        if (handle_ == nullptr)
            throw_error(errc::unsupported,
                        "unibuf: vulkan: no Vulkan loader (libvulkan.so.1) could be opened; install libvulkan1");
        auto* p = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(handle_, "vkGetInstanceProcAddr"));
        if (p == nullptr)
            throw_error(errc::unsupported, "unibuf: vulkan: libvulkan.so.1 exports no vkGetInstanceProcAddr");
        return p;
    }

private:
    void close() noexcept {
        if (handle_ != nullptr) dlclose(handle_);
        handle_ = nullptr;
    }
    void* handle_ = nullptr;
};

/// Collects debug-utils messages; lives on the heap so the callback's pointer survives moves.
struct message_sink {
    std::mutex m;
    std::vector<vulkan_message> messages;
    bool print = false;

    /// The message types collected: what the validation layers report about the program's use of
    /// Vulkan. GENERAL is left out: the loader reports its own notices with it (a layer added by
    /// VK_INSTANCE_LAYERS, a manifest it skipped), which are not validation messages.
    static constexpr VkDebugUtilsMessageTypeFlagsEXT collected_types =
        VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    /// The severities collected.
    static constexpr VkDebugUtilsMessageSeverityFlagsEXT collected_severities =
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;

    /// True for a message the sink keeps (both a collected type and a collected severity).
    [[nodiscard]] static constexpr bool collects(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT types) noexcept {
        const auto severity = static_cast<VkDebugUtilsMessageSeverityFlagsEXT>(sev);
        return (types & collected_types) != 0 && (severity & collected_severities) != 0;
    }

    static VKAPI_ATTR VkBool32 VKAPI_CALL callback(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                   VkDebugUtilsMessageTypeFlagsEXT types,
                                                   const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
        // The messenger asks for these only; a driver or layer may still send more (and a messenger
        // the caller created on an adopted instance may ask for anything).
        if (!collects(sev, types)) return VK_FALSE;
        auto* self = static_cast<message_sink*>(user);
        vulkan_message msg;
        msg.level = (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) != 0     ? vulkan_message::severity::error
                    : (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) != 0 ? vulkan_message::severity::warning
                    : (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT) != 0    ? vulkan_message::severity::info
                                                                                   : vulkan_message::severity::verbose;
        if (data != nullptr) {
            if (data->pMessageIdName != nullptr) msg.id_name = data->pMessageIdName;
            if (data->pMessage != nullptr) msg.text = data->pMessage;
        }
        std::lock_guard lk(self->m);
        if (self->print) std::fprintf(stderr, "unibuf: vulkan message: %s\n", msg.text.c_str());
        self->messages.push_back(std::move(msg));
        return VK_FALSE;
    }

    [[nodiscard]] vk::DebugUtilsMessengerCreateInfoEXT create_info() {
        vk::DebugUtilsMessengerCreateInfoEXT ci;
        ci.messageSeverity = vk::DebugUtilsMessageSeverityFlagBitsEXT::eWarning |
                             vk::DebugUtilsMessageSeverityFlagBitsEXT::eError;
        ci.messageType = vk::DebugUtilsMessageTypeFlagBitsEXT::eValidation |
                         vk::DebugUtilsMessageTypeFlagBitsEXT::ePerformance;
        ci.pfnUserCallback = &message_sink::callback;
        ci.pUserData = this;
        return ci;
    }
};

[[nodiscard]] inline bool has_extension(const std::vector<vk::ExtensionProperties>& exts, const char* name) {
    for (const auto& e : exts)
        if (std::string_view(e.extensionName.data()) == name) return true;
    return false;
}

/// The first family with transfer support and neither graphics nor compute, or -1.
[[nodiscard]] inline int dedicated_transfer_family(const std::vector<vk::QueueFamilyProperties>& fams) noexcept {
    for (std::size_t f = 0; f < fams.size(); ++f) {
        const auto flags = fams[f].queueFlags;
        if ((flags & vk::QueueFlagBits::eTransfer) && !(flags & vk::QueueFlagBits::eGraphics) &&
            !(flags & vk::QueueFlagBits::eCompute) && fams[f].queueCount > 0)
            return static_cast<int>(f);
    }
    return -1;
}

[[nodiscard]] inline int device_rank(vk::PhysicalDeviceType t) noexcept {
    switch (t) {
        case vk::PhysicalDeviceType::eDiscreteGpu: return 4;
        case vk::PhysicalDeviceType::eIntegratedGpu: return 3;
        case vk::PhysicalDeviceType::eVirtualGpu: return 2;
        case vk::PhysicalDeviceType::eCpu: return 1;
        default: return 0;
    }
}

} // namespace detail

/// @brief Instance, physical device, device and compute queue for unibuf's Vulkan backend.
///
/// Move-only. An owning context destroys its device, messenger and instance (in that order) on
/// destruction; a context made by `adopt` destroys only the messenger it added.
///
/// A moved-from context is empty: its handles are null, `take_messages()` returns nothing,
/// `message_count()` is 0, `collects_messages()` is false, `budget()` throws
/// `errc::invalid_argument`, and a `vulkan_backend` made from it throws `errc::invalid_argument`.
/// After `reset()` the same holds, except that messages collected before stay to be taken.
/// Thread-safety: the accessors are safe from any thread; `take_messages` is synchronized.
class vulkan_context {
public:
    /// @brief Creates an instance and a device with one compute-capable queue, and one queue of a
    /// dedicated transfer family where the device has one (`vulkan_context_options::transfer_queue`).
    /// @throws std::system_error errc::unsupported (no loader, no Vulkan 1.1 device with a compute
    /// queue, validation requested but the layer is missing), out_of_memory, device_lost
    explicit vulkan_context(const vulkan_context_options& opt = {}) : sink_(std::make_unique<detail::message_sink>()) {
        owns_ = true;
        sink_->print = opt.print_messages;
        dld_.init(library_.open());
        create_instance(opt);
        choose_physical_device(opt);
        want_coopmat_ = opt.cooperative_matrix;
        create_device();
        read_capabilities();
    }

    /// @brief Wraps the caller's instance, physical device, device and queue (and transfer queue,
    /// where given); destroys none of them.
    /// @throws std::system_error errc::invalid_argument when a handle is null, the queue family
    /// has no compute support or the transfer queue's family no transfer support, errc::unsupported
    /// when the device is older than Vulkan 1.1
    [[nodiscard]] static vulkan_context adopt(const vulkan_external_device& ext, const vulkan_context_options& opt = {}) {
        if (ext.instance == VK_NULL_HANDLE || ext.physical_device == VK_NULL_HANDLE || ext.device == VK_NULL_HANDLE ||
            ext.queue == VK_NULL_HANDLE)
            throw_error(errc::invalid_argument,
                        "unibuf: vulkan: adopt needs the instance, physical device, device and queue; one is null");
        vulkan_context c(adopt_tag{});
        c.sink_ = std::make_unique<detail::message_sink>();
        c.sink_->print = opt.print_messages;
        c.owns_ = false;
        PFN_vkGetInstanceProcAddr gipa = ext.get_instance_proc_addr;
        if (gipa == nullptr) gipa = c.library_.open();
        c.dld_.init(gipa);
        c.instance_ = vk::Instance(ext.instance);
        c.dld_.init(c.instance_);
        c.physical_ = vk::PhysicalDevice(ext.physical_device);
        c.device_ = vk::Device(ext.device);
        c.dld_.init(c.device_);
        c.queue_ = vk::Queue(ext.queue);
        c.family_ = ext.queue_family;
        c.instance_api_ = ext.api_version;
        c.timeline_ = ext.timeline_semaphore_enabled;
        c.budget_ext_ = ext.memory_budget_enabled;
        c.coopmat_ = ext.cooperative_matrix_nv_enabled;
        c.coopmat_note_ = ext.cooperative_matrix_nv_enabled
                              ? "VK_NV_cooperative_matrix: enabled by the caller (vulkan_external_device)"
                              : "not enabled: the caller's device does not declare VK_NV_cooperative_matrix "
                                "(vulkan_external_device::cooperative_matrix_nv_enabled)";
        std::uint32_t nfam = 0;
        c.physical_.getQueueFamilyProperties(&nfam, nullptr, c.dld_);
        std::vector<vk::QueueFamilyProperties> fams(nfam);
        c.physical_.getQueueFamilyProperties(&nfam, fams.data(), c.dld_);
        if (c.family_ >= nfam || !(fams[c.family_].queueFlags & vk::QueueFlagBits::eCompute))
            throw_error(errc::invalid_argument, "unibuf: vulkan: adopt: queue family " + std::to_string(c.family_) +
                                                    " does not support compute (the device has " +
                                                    std::to_string(nfam) + " families)");
        if (ext.transfer_queue != VK_NULL_HANDLE) {
            const auto tf = ext.transfer_queue_family;
            const auto any_copy = vk::QueueFlagBits::eTransfer | vk::QueueFlagBits::eGraphics | vk::QueueFlagBits::eCompute;
            if (tf >= nfam || !(fams[tf].queueFlags & any_copy))
                throw_error(errc::invalid_argument, "unibuf: vulkan: adopt: transfer queue family " + std::to_string(tf) +
                                                        " does not support transfers (the device has " +
                                                        std::to_string(nfam) + " families)");
            c.transfer_queue_ = vk::Queue(ext.transfer_queue);
            c.transfer_family_ = tf;
            c.transfer_note_ = "the caller's transfer queue (family " + std::to_string(tf) + ")";
        } else {
            c.transfer_note_ = "none adopted: the caller gave no transfer queue";
        }
        if (ext.debug_utils_enabled && c.dld_.vkCreateDebugUtilsMessengerEXT != nullptr) c.create_messenger();
        c.read_capabilities();
        return c;
    }

    vulkan_context(vulkan_context&& o) noexcept { steal(o); }
    vulkan_context& operator=(vulkan_context&& o) noexcept {
        if (this != &o) {
            reset();
            steal(o);
        }
        return *this;
    }
    vulkan_context(const vulkan_context&) = delete;
    vulkan_context& operator=(const vulkan_context&) = delete;
    ~vulkan_context() { reset(); }

    /// @brief Destroys what this context owns (device, messenger, instance); idempotent.
    void reset() noexcept {
        if (device_ && owns_) device_.destroy(nullptr, dld_);
        if (messenger_) instance_.destroyDebugUtilsMessengerEXT(messenger_, nullptr, dld_);
        if (instance_ && owns_) instance_.destroy(nullptr, dld_);
        device_ = vk::Device{};
        messenger_ = vk::DebugUtilsMessengerEXT{};
        instance_ = vk::Instance{};
        physical_ = vk::PhysicalDevice{};
        queue_ = vk::Queue{};
        transfer_queue_ = vk::Queue{};
    }

    /// @brief The instance (owned, or the caller's when adopted).
    [[nodiscard]] vk::Instance instance() const noexcept { return instance_; }
    /// @brief The physical device chosen (or adopted).
    [[nodiscard]] vk::PhysicalDevice physical_device() const noexcept { return physical_; }
    /// @brief The logical device (owned, or the caller's when adopted).
    [[nodiscard]] vk::Device device() const noexcept { return device_; }
    /// @brief The compute queue. Submissions to it must be externally synchronized; the backend
    /// does so with its own mutex, so share the queue with other code only through the backend.
    [[nodiscard]] vk::Queue queue() const noexcept { return queue_; }
    /// @brief The queue family of `queue()` (compute-capable).
    [[nodiscard]] std::uint32_t queue_family() const noexcept { return family_; }
    /// @brief The transfer queue (a dedicated transfer family's, or the caller's when adopted);
    /// null when there is none. Externally synchronized like `queue()`: the backend's mutex does so.
    [[nodiscard]] vk::Queue transfer_queue() const noexcept { return transfer_queue_; }
    /// @brief The family of `transfer_queue()` (meaningful when it is not null).
    [[nodiscard]] std::uint32_t transfer_queue_family() const noexcept { return transfer_family_; }
    /// @brief The dispatcher every call on these handles goes through.
    [[nodiscard]] const vk::DispatchLoaderDynamic& dispatcher() const noexcept { return dld_; }
    /// @brief What was read from the device at creation (memory table, limits, features).
    [[nodiscard]] const vulkan_capabilities& capabilities() const noexcept { return caps_; }
    /// @brief True when this context created (and will destroy) its handles.
    [[nodiscard]] bool owns_handles() const noexcept { return owns_; }
    /// @brief True when VK_LAYER_KHRONOS_validation is enabled on the instance.
    [[nodiscard]] bool validation_enabled() const noexcept { return validation_; }
    /// @brief True when synchronization validation is enabled too.
    [[nodiscard]] bool sync_validation_enabled() const noexcept { return sync_validation_; }
    /// @brief True when a debug messenger collects messages.
    [[nodiscard]] bool collects_messages() const noexcept { return static_cast<bool>(messenger_); }
    /// @brief Cooperative matrices (tensor cores): whether VK_NV_cooperative_matrix and its
    /// features were enabled, the device's shapes, and why (`vulkan_context_options::cooperative_matrix`).
    [[nodiscard]] const vulkan_cooperative_matrix_info& cooperative_matrix() const noexcept {
        return caps_.cooperative_matrix;
    }

    /// @brief The validation messages collected since the last call (validation and performance
    /// warnings and errors), then clears them. Empty for an empty (moved-from) context.
    [[nodiscard]] std::vector<vulkan_message> take_messages() {
        if (!sink_) return {};
        std::lock_guard lk(sink_->m);
        return std::exchange(sink_->messages, {});
    }
    /// @brief Number of messages waiting in `take_messages` (0 for an empty context).
    [[nodiscard]] std::size_t message_count() const {
        if (!sink_) return 0;
        std::lock_guard lk(sink_->m);
        return sink_->messages.size();
    }

    /// @brief Bytes each heap can still take: VK_EXT_memory_budget's budget minus usage where the
    /// extension is enabled, else `fraction` of the heap size minus `own_usage` (this process's
    /// allocations as the caller counts them).
    /// @throws std::system_error invalid_argument for an empty (moved-from) context
    [[nodiscard]] vulkan::heap_budget budget(std::span<const std::uint64_t> own_usage,
                                             double fraction = vulkan::heap_budget::default_fraction) const {
        if (!physical_)
            throw_error(errc::invalid_argument, "unibuf: vulkan: budget() of an empty (moved-from or reset) context");
        if (!caps_.memory_budget) return vulkan::heap_budget::from_heap_sizes(caps_.memory, fraction, own_usage);
        vk::PhysicalDeviceMemoryBudgetPropertiesEXT b;
        vk::PhysicalDeviceMemoryProperties2 p2;
        p2.pNext = &b;
        physical_.getMemoryProperties2(&p2, dld_);
        vulkan::heap_budget out;
        out.source = "VK_EXT_memory_budget (heapBudget - heapUsage)";
        for (std::size_t i = 0; i < caps_.memory.heaps.size(); ++i)
            out.available.push_back(b.heapBudget[i] > b.heapUsage[i] ? b.heapBudget[i] - b.heapUsage[i] : 0);
        return out;
    }

private:
    struct adopt_tag {};
    explicit vulkan_context(adopt_tag) {}

    void steal(vulkan_context& o) noexcept {
        library_ = std::move(o.library_);
        dld_ = o.dld_;
        sink_ = std::move(o.sink_);
        instance_ = std::exchange(o.instance_, vk::Instance{});
        messenger_ = std::exchange(o.messenger_, vk::DebugUtilsMessengerEXT{});
        physical_ = std::exchange(o.physical_, vk::PhysicalDevice{});
        device_ = std::exchange(o.device_, vk::Device{});
        queue_ = std::exchange(o.queue_, vk::Queue{});
        family_ = o.family_;
        transfer_queue_ = std::exchange(o.transfer_queue_, vk::Queue{});
        transfer_family_ = o.transfer_family_;
        transfer_note_ = std::move(o.transfer_note_);
        instance_api_ = o.instance_api_;
        owns_ = o.owns_;
        validation_ = o.validation_;
        sync_validation_ = o.sync_validation_;
        timeline_ = o.timeline_;
        budget_ext_ = o.budget_ext_;
        coopmat_ = std::exchange(o.coopmat_, false);
        coopmat_note_ = std::move(o.coopmat_note_);
        caps_ = std::move(o.caps_);
        o.caps_.cooperative_matrix = {};  // an empty context has no cooperative matrices
    }

    template <class T, class F>
    [[nodiscard]] static std::vector<T> enumerate(F&& f, const char* call) {
        std::vector<T> out;
        vk::Result r;
        do {
            std::uint32_t n = 0;
            detail::vk_check(f(&n, static_cast<T*>(nullptr)), call);
            out.resize(n);
            r = f(&n, out.data());
            out.resize(n);
        } while (r == vk::Result::eIncomplete);
        detail::vk_check(r, call);
        return out;
    }

    // The instance's API version: the loader's, at most 1.3, at least 1.1.
    void choose_instance_api() {
        std::uint32_t loader_api = VK_API_VERSION_1_0;
        if (dld_.vkEnumerateInstanceVersion != nullptr)
            detail::vk_check(vk::enumerateInstanceVersion(&loader_api, dld_), "vkEnumerateInstanceVersion");
        if (loader_api < VK_API_VERSION_1_1)
            throw_error(errc::unsupported, "unibuf: vulkan: the Vulkan loader offers only Vulkan 1.0; unibuf needs 1.1");
        instance_api_ = loader_api >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : loader_api;
    }

    // Adds VK_LAYER_KHRONOS_validation to `layers` after checking that it is installed and offers
    // what `opt` asks for (VK_EXT_validation_features for synchronization validation); sets
    // `debug_utils` when the layer brings VK_EXT_debug_utils, which it requires for the messenger.
    void require_validation_layer(const vulkan_context_options& opt, std::vector<const char*>& layers,
                                  bool& debug_utils) {
        const auto avail = enumerate<vk::LayerProperties>(
            [&](std::uint32_t* n, vk::LayerProperties* p) { return vk::enumerateInstanceLayerProperties(n, p, dld_); },
            "vkEnumerateInstanceLayerProperties");
        bool found = false;
        for (const auto& l : avail) found = found || std::string_view(l.layerName.data()) == "VK_LAYER_KHRONOS_validation";
        if (!found) {
            const char* lp = std::getenv("VK_LAYER_PATH");
            throw_error(errc::unsupported,
                        std::string("unibuf: vulkan: validation was requested but VK_LAYER_KHRONOS_validation is not "
                                    "installed (") + std::to_string(avail.size()) +
                            " layers found; VK_LAYER_PATH=" + (lp != nullptr ? lp : "<unset>") +
                            "): install vulkan-validationlayers or point VK_LAYER_PATH at the folder holding "
                            "VkLayer_khronos_validation.json");
        }
        layers.push_back("VK_LAYER_KHRONOS_validation");
        const auto lexts = enumerate<vk::ExtensionProperties>(
            [&](std::uint32_t* n, vk::ExtensionProperties* p) {
                return vk::enumerateInstanceExtensionProperties("VK_LAYER_KHRONOS_validation", n, p, dld_);
            },
            "vkEnumerateInstanceExtensionProperties(VK_LAYER_KHRONOS_validation)");
        debug_utils = debug_utils || detail::has_extension(lexts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        const bool validation_features = detail::has_extension(lexts, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
        if (opt.sync_validation && !validation_features)
            throw_error(errc::unsupported, "unibuf: vulkan: synchronization validation was requested but the "
                                           "validation layer offers no VK_EXT_validation_features");
        if (!debug_utils)
            throw_error(errc::unsupported, "unibuf: vulkan: validation was requested but VK_EXT_debug_utils is "
                                           "missing, so its messages could not be collected");
    }

    void create_instance(const vulkan_context_options& opt) {
        choose_instance_api();
        const auto exts = enumerate<vk::ExtensionProperties>(
            [&](std::uint32_t* n, vk::ExtensionProperties* p) {
                return vk::enumerateInstanceExtensionProperties(nullptr, n, p, dld_);
            },
            "vkEnumerateInstanceExtensionProperties");
        std::vector<const char*> layers;
        std::vector<const char*> enabled;
        bool debug_utils = detail::has_extension(exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        if (opt.validation) require_validation_layer(opt, layers, debug_utils);
        const bool messenger = debug_utils && (opt.debug_messenger || opt.validation);
        if (messenger) enabled.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        const bool sync_val = opt.validation && opt.sync_validation;
        if (sync_val) enabled.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);

        vk::ApplicationInfo app;
        app.pApplicationName = opt.application_name.c_str();
        app.pEngineName = "unibuf";
        app.apiVersion = instance_api_;
        vk::InstanceCreateInfo ci;
        ci.pApplicationInfo = &app;
        ci.enabledLayerCount = static_cast<std::uint32_t>(layers.size());
        ci.ppEnabledLayerNames = layers.data();
        ci.enabledExtensionCount = static_cast<std::uint32_t>(enabled.size());
        ci.ppEnabledExtensionNames = enabled.data();

        // Chain: instance -> messenger info (messages during create/destroy) -> validation features.
        vk::DebugUtilsMessengerCreateInfoEXT mci = sink_->create_info();
        const vk::ValidationFeatureEnableEXT sync_feature = vk::ValidationFeatureEnableEXT::eSynchronizationValidation;
        vk::ValidationFeaturesEXT vf;
        vf.enabledValidationFeatureCount = 1;
        vf.pEnabledValidationFeatures = &sync_feature;
        const void* chain = nullptr;
        if (sync_val) {
            vf.pNext = chain;
            chain = &vf;
        }
        if (messenger) {
            mci.pNext = chain;
            chain = &mci;
        }
        ci.pNext = chain;
        detail::vk_check(vk::createInstance(&ci, nullptr, &instance_, dld_), "vkCreateInstance");
        dld_.init(instance_);
        validation_ = opt.validation;
        sync_validation_ = sync_val;
        if (messenger) create_messenger();
    }

    void create_messenger() {
        const auto mci = sink_->create_info();
        detail::vk_check(instance_.createDebugUtilsMessengerEXT(&mci, nullptr, &messenger_, dld_),
                         "vkCreateDebugUtilsMessengerEXT");
    }

    void choose_physical_device(const vulkan_context_options& opt) {
        const auto devs = enumerate<vk::PhysicalDevice>(
            [&](std::uint32_t* n, vk::PhysicalDevice* p) { return instance_.enumeratePhysicalDevices(n, p, dld_); },
            "vkEnumeratePhysicalDevices");
        if (devs.empty())
            throw_error(errc::unsupported, "unibuf: vulkan: no Vulkan device found (no driver installed? on a machine "
                                           "without a GPU install Mesa's lavapipe, mesa-vulkan-drivers)");
        int wanted = opt.device_index;
        if (wanted < 0) {
            if (const char* env = std::getenv("UNIBUF_VULKAN_DEVICE"); env != nullptr && *env != '\0')
                wanted = std::atoi(env);
        }
        std::string seen;
        int best = -1, best_rank = -1;
        std::uint32_t best_family = 0;
        for (std::size_t i = 0; i < devs.size(); ++i) {
            vk::PhysicalDeviceProperties p;
            devs[i].getProperties(&p, dld_);
            seen += (seen.empty() ? "" : ", ") + std::string(p.deviceName.data());
            if (p.apiVersion < VK_API_VERSION_1_1) continue;
            std::uint32_t nfam = 0;
            devs[i].getQueueFamilyProperties(&nfam, nullptr, dld_);
            std::vector<vk::QueueFamilyProperties> fams(nfam);
            devs[i].getQueueFamilyProperties(&nfam, fams.data(), dld_);
            int family = -1;
            for (std::uint32_t f = 0; f < nfam && family < 0; ++f)
                if ((fams[f].queueFlags & vk::QueueFlagBits::eCompute) && fams[f].queueCount > 0)
                    family = static_cast<int>(f);
            if (family < 0) continue;
            const int rank = wanted >= 0 ? (static_cast<int>(i) == wanted ? 100 : -1) : detail::device_rank(p.deviceType);
            if (rank > best_rank) {
                best = static_cast<int>(i);
                best_rank = rank;
                best_family = static_cast<std::uint32_t>(family);
            }
        }
        if (best < 0 || best_rank < 0)
            throw_error(errc::unsupported,
                        "unibuf: vulkan: no usable device" +
                            (wanted >= 0 ? " at index " + std::to_string(wanted) : std::string()) +
                            " (need Vulkan 1.1 and a compute queue); devices found: " + seen);
        physical_ = devs[static_cast<std::size_t>(best)];
        family_ = best_family;
        choose_transfer_family(opt);
    }

    // The dedicated transfer family of the chosen device, if wanted and present.
    void choose_transfer_family(const vulkan_context_options& opt) {
        want_transfer_ = false;
        if (!opt.transfer_queue) {
            transfer_note_ = "none: vulkan_context_options::transfer_queue is false";
            return;
        }
        std::uint32_t nfam = 0;
        physical_.getQueueFamilyProperties(&nfam, nullptr, dld_);
        std::vector<vk::QueueFamilyProperties> fams(nfam);
        physical_.getQueueFamilyProperties(&nfam, fams.data(), dld_);
        const int tf = detail::dedicated_transfer_family(fams);
        if (tf < 0) {
            transfer_note_ = "none: the device has no queue family with transfer but no graphics/compute (" +
                             std::to_string(nfam) + (nfam == 1 ? " family)" : " families)");
            return;
        }
        want_transfer_ = true;
        transfer_family_ = static_cast<std::uint32_t>(tf);
        transfer_note_ = "dedicated transfer family " + std::to_string(tf) + " (" +
                         std::to_string(fams[static_cast<std::size_t>(tf)].queueCount) + " queues)";
    }

    void create_device() {
        vk::PhysicalDeviceProperties p;
        physical_.getProperties(&p, dld_);
        const std::uint32_t api = p.apiVersion < instance_api_ ? p.apiVersion : instance_api_;
        const auto exts = enumerate<vk::ExtensionProperties>(
            [&](std::uint32_t* n, vk::ExtensionProperties* e) {
                return physical_.enumerateDeviceExtensionProperties(nullptr, n, e, dld_);
            },
            "vkEnumerateDeviceExtensionProperties");
        std::vector<const char*> enabled;
        if (detail::has_extension(exts, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) {
            enabled.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
            budget_ext_ = true;
        }
        vk::PhysicalDeviceVulkan12Features f12;
        if (api >= VK_API_VERSION_1_2) {
            vk::PhysicalDeviceFeatures2 f2;
            f2.pNext = &f12;
            physical_.getFeatures2(&f2, dld_);
            timeline_ = f12.timelineSemaphore == VK_TRUE;
        }
        vk::PhysicalDeviceVulkan12Features want12;  // only what unibuf uses
        want12.timelineSemaphore = timeline_ ? VK_TRUE : VK_FALSE;
        vk::PhysicalDeviceCooperativeMatrixFeaturesNV want_cm;
        coopmat_ = false;
        if (!want_coopmat_)
            coopmat_note_ = "not enabled: vulkan_context_options::cooperative_matrix is false";
        else
            coopmat_ = coopmat_usable(api, exts, f12, coopmat_note_);
        if (coopmat_) {
            enabled.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
            want12.shaderFloat16 = VK_TRUE;
            want12.vulkanMemoryModel = VK_TRUE;
            want_cm.cooperativeMatrix = VK_TRUE;
            want12.pNext = &want_cm;
        }

        const float priority = 1.0f;
        vk::DeviceQueueCreateInfo qci[2];
        qci[0].queueFamilyIndex = family_;
        qci[0].queueCount = 1;
        qci[0].pQueuePriorities = &priority;
        qci[1].queueFamilyIndex = transfer_family_;
        qci[1].queueCount = 1;
        qci[1].pQueuePriorities = &priority;
        vk::DeviceCreateInfo ci;
        ci.queueCreateInfoCount = want_transfer_ ? 2 : 1;
        ci.pQueueCreateInfos = qci;
        ci.enabledExtensionCount = static_cast<std::uint32_t>(enabled.size());
        ci.ppEnabledExtensionNames = enabled.data();
        if (api >= VK_API_VERSION_1_2) ci.pNext = &want12;
        detail::vk_check(physical_.createDevice(&ci, nullptr, &device_, dld_), "vkCreateDevice");
        dld_.init(device_);
        device_.getQueue(family_, 0, &queue_, dld_);
        if (want_transfer_) device_.getQueue(transfer_family_, 0, &transfer_queue_, dld_);
    }

    // Whether VK_NV_cooperative_matrix can be enabled for unibuf's kernels: the extension, the
    // features cooperativeMatrix, shaderFloat16 and vulkanMemoryModel, cooperative matrices and
    // basic subgroup operations in compute shaders. `note` says what was found.
    bool coopmat_usable(std::uint32_t api, const std::vector<vk::ExtensionProperties>& exts,
                        const vk::PhysicalDeviceVulkan12Features& f12, std::string& note) const {
        const bool nv = detail::has_extension(exts, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
        if (!nv) {
            note = detail::has_extension(exts, "VK_KHR_cooperative_matrix")
                       ? "not enabled: the device exposes VK_KHR_cooperative_matrix but not VK_NV_cooperative_matrix, "
                         "the one unibuf's kernels use (the Vulkan headers and glslc it is built with predate the KHR one)"
                       : "not enabled: the device exposes no VK_NV_cooperative_matrix (nor VK_KHR_cooperative_matrix)";
            return false;
        }
        if (api < VK_API_VERSION_1_2) {
            note = "not enabled: VK_NV_cooperative_matrix is exposed, but shaderFloat16 and vulkanMemoryModel need "
                   "Vulkan 1.2 and the device offers " + std::to_string(VK_API_VERSION_MAJOR(api)) + "." +
                   std::to_string(VK_API_VERSION_MINOR(api));
            return false;
        }
        vk::PhysicalDeviceCooperativeMatrixFeaturesNV cm;
        vk::PhysicalDeviceFeatures2 f2;
        f2.pNext = &cm;
        physical_.getFeatures2(&f2, dld_);
        vk::PhysicalDeviceCooperativeMatrixPropertiesNV cmp;
        vk::PhysicalDeviceSubgroupProperties sg;
        vk::PhysicalDeviceProperties2 p2;
        p2.pNext = &cmp;
        cmp.pNext = &sg;
        physical_.getProperties2(&p2, dld_);
        std::string missing;
        const auto miss = [&](const char* what) { missing += (missing.empty() ? "" : ", ") + std::string(what); };
        if (cm.cooperativeMatrix != VK_TRUE) miss("the cooperativeMatrix feature");
        if (f12.shaderFloat16 != VK_TRUE) miss("the shaderFloat16 feature");
        if (f12.vulkanMemoryModel != VK_TRUE) miss("the vulkanMemoryModel feature");
        if (!(cmp.cooperativeMatrixSupportedStages & vk::ShaderStageFlagBits::eCompute))
            miss("cooperative matrices in compute shaders");
        if (!(sg.supportedStages & vk::ShaderStageFlagBits::eCompute) ||
            !(sg.supportedOperations & vk::SubgroupFeatureFlagBits::eBasic))
            miss("basic subgroup operations in compute shaders");
        if (!missing.empty()) {
            note = "not enabled: VK_NV_cooperative_matrix is exposed but the device lacks " + missing;
            return false;
        }
        note = "VK_NV_cooperative_matrix enabled (cooperativeMatrix, shaderFloat16, vulkanMemoryModel)";
        return true;
    }

    // The cooperative-matrix part of the capabilities: the shapes, when enabled (the properties
    // query is only made then: through the loader it reaches drivers without the extension too).
    void read_cooperative_matrix(std::uint32_t subgroup_size) {
        auto& cm = caps_.cooperative_matrix;
        cm = {};
        cm.subgroup_size = subgroup_size;
        cm.note = coopmat_note_;
        if (!coopmat_ || dld_.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV == nullptr) {
            if (coopmat_) cm.note = "not enabled: the loader offers no vkGetPhysicalDeviceCooperativeMatrixPropertiesNV";
            return;
        }
        const auto props = enumerate<vk::CooperativeMatrixPropertiesNV>(
            [&](std::uint32_t* n, vk::CooperativeMatrixPropertiesNV* p) {
                return physical_.getCooperativeMatrixPropertiesNV(n, p, dld_);
            },
            "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
        for (const auto& p : props)
            cm.shapes.push_back({p.MSize, p.NSize, p.KSize, p.AType, p.BType, p.CType, p.DType, p.scope});
        cm.enabled = true;
        cm.extension = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        std::string fp16;
        for (const auto& s : cm.shapes)
            if (s.fp16_fp32_subgroup()) fp16 += (fp16.empty() ? "" : ", ") + s.to_string();
        cm.note += "; fp16 x fp16 + fp32 subgroup shapes (MxNxK): " + (fp16.empty() ? std::string("none") : fp16);
    }

    void read_capabilities() {
        vk::PhysicalDeviceProperties p;
        physical_.getProperties(&p, dld_);
        caps_.device_name = p.deviceName.data();
        caps_.device_type = p.deviceType;
        caps_.vendor_id = p.vendorID;
        caps_.device_id = p.deviceID;
        caps_.driver_version = p.driverVersion;
        caps_.api_version = p.apiVersion < instance_api_ ? p.apiVersion : instance_api_;
        if (caps_.api_version < VK_API_VERSION_1_1)
            throw_error(errc::unsupported, "unibuf: vulkan: " + caps_.device_name + " offers Vulkan " +
                                               std::to_string(VK_API_VERSION_MAJOR(caps_.api_version)) + "." +
                                               std::to_string(VK_API_VERSION_MINOR(caps_.api_version)) +
                                               " to this instance; unibuf needs 1.1");
        vk::PhysicalDeviceMaintenance3Properties m3;
        vk::PhysicalDeviceDriverProperties drv;
        vk::PhysicalDeviceSubgroupProperties sg;
        vk::PhysicalDeviceProperties2 p2;
        p2.pNext = &m3;
        m3.pNext = &sg;
        if (caps_.api_version >= VK_API_VERSION_1_2) sg.pNext = &drv;
        physical_.getProperties2(&p2, dld_);
        read_cooperative_matrix(sg.subgroupSize);
        caps_.max_allocation_size = m3.maxMemoryAllocationSize;
        if (caps_.api_version >= VK_API_VERSION_1_2) {
            caps_.driver_name = drv.driverName.data();
            caps_.driver_info = drv.driverInfo.data();
        }
        const auto& lim = p.limits;
        caps_.non_coherent_atom = lim.nonCoherentAtomSize == 0 ? 1 : lim.nonCoherentAtomSize;
        caps_.min_storage_offset_alignment = lim.minStorageBufferOffsetAlignment == 0 ? 1 : lim.minStorageBufferOffsetAlignment;
        caps_.max_storage_buffer_range = lim.maxStorageBufferRange;
        caps_.max_push_constants_size = lim.maxPushConstantsSize;
        for (int i = 0; i < 3; ++i) caps_.max_group_count[static_cast<std::size_t>(i)] = lim.maxComputeWorkGroupCount[static_cast<std::size_t>(i)];
        caps_.timeline_semaphore = timeline_;
        caps_.memory_budget = budget_ext_;
        caps_.queue_family = family_;
        caps_.transfer_queue = static_cast<bool>(transfer_queue_);
        caps_.transfer_queue_family = transfer_family_;
        caps_.transfer_queue_note = transfer_note_;

        vk::PhysicalDeviceMemoryProperties mp;
        physical_.getMemoryProperties(&mp, dld_);
        auto& t = caps_.memory;
        t.device = caps_.device_name;
        t.source = "measured (vkGetPhysicalDeviceMemoryProperties)";
        t.non_coherent_atom = caps_.non_coherent_atom;
        t.heaps.clear();
        t.types.clear();
        for (std::uint32_t i = 0; i < mp.memoryHeapCount; ++i)
            t.heaps.push_back({mp.memoryHeaps[i].size, static_cast<std::uint32_t>(mp.memoryHeaps[i].flags)});
        for (std::uint32_t i = 0; i < mp.memoryTypeCount; ++i)
            t.types.push_back({static_cast<std::uint32_t>(mp.memoryTypes[i].propertyFlags), mp.memoryTypes[i].heapIndex});
    }

    // Declared in destruction order where it matters: the loader library closes last.
    detail::vulkan_library library_;
    vk::DispatchLoaderDynamic dld_;
    std::unique_ptr<detail::message_sink> sink_;
    vk::Instance instance_;
    vk::DebugUtilsMessengerEXT messenger_;
    vk::PhysicalDevice physical_;
    vk::Device device_;
    vk::Queue queue_;
    std::uint32_t family_ = 0;
    vk::Queue transfer_queue_;
    std::uint32_t transfer_family_ = 0;
    std::string transfer_note_;
    bool want_transfer_ = false;
    std::uint32_t instance_api_ = VK_API_VERSION_1_1;
    bool owns_ = true;
    bool validation_ = false;
    bool sync_validation_ = false;
    bool timeline_ = false;
    bool budget_ext_ = false;
    bool want_coopmat_ = true;
    bool coopmat_ = false;
    std::string coopmat_note_;
    vulkan_capabilities caps_;
};

} // namespace unibuf
