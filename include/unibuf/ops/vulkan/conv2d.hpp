/// @file conv2d.hpp
/// @brief The Vulkan backend's conv2d: conv2d.comp's SPIR-V with the description and the tiling as
/// specialization constants, tiles checked against the device's compute limits.
#pragma once

#include "../../backend/vulkan/vulkan_backend.hpp"
#include "../conv2d/conv2d.hpp"
#include "../conv2d/conv2d.spv.hpp"

#include <array>
#include <string_view>
#include <vector>

namespace unibuf {

/// @brief The compute limits of a Vulkan device (maxComputeSharedMemorySize,
/// maxComputeWorkGroupInvocations, maxComputeWorkGroupSize).
[[nodiscard]] inline conv2d_device_limits conv2d_limits(vulkan_backend& b) {
    vk::PhysicalDeviceProperties p;
    b.context().physical_device().getProperties(&p, b.context().dispatcher());
    conv2d_device_limits l;
    l.max_shared_bytes = p.limits.maxComputeSharedMemorySize;
    l.max_invocations = p.limits.maxComputeWorkGroupInvocations;
    l.max_size_x = p.limits.maxComputeWorkGroupSize[0];
    l.max_size_y = p.limits.maxComputeWorkGroupSize[1];
    return l;
}

/// @brief Which cooperative-matrix extensions the Vulkan device exposes.
struct vulkan_cooperative_matrix_support {
    bool khr = false;      ///< VK_KHR_cooperative_matrix
    bool nv = false;       ///< VK_NV_cooperative_matrix
    bool nv2 = false;      ///< VK_NV_cooperative_matrix2
};

/// @brief Reads the device's extension list for the cooperative-matrix extensions (none found
/// when the list cannot be read).
[[nodiscard]] inline vulkan_cooperative_matrix_support conv2d_cooperative_matrix_support(const vulkan_context& ctx) {
    vulkan_cooperative_matrix_support s;
    const auto pd = ctx.physical_device();
    const auto& dld = ctx.dispatcher();
    std::uint32_t n = 0;
    if (pd.enumerateDeviceExtensionProperties(nullptr, &n, nullptr, dld) != vk::Result::eSuccess) return s;
    std::vector<vk::ExtensionProperties> exts(n);
    if (pd.enumerateDeviceExtensionProperties(nullptr, &n, exts.data(), dld) != vk::Result::eSuccess) return s;
    for (const auto& e : exts) {
        const std::string_view name(e.extensionName.data());
        s.khr = s.khr || name == "VK_KHR_cooperative_matrix";
        s.nv = s.nv || name == "VK_NV_cooperative_matrix";
        s.nv2 = s.nv2 || name == "VK_NV_cooperative_matrix2";
    }
    return s;
}

/// @brief The same for the device of `b`.
[[nodiscard]] inline vulkan_cooperative_matrix_support conv2d_cooperative_matrix_support(vulkan_backend& b) {
    return conv2d_cooperative_matrix_support(b.context());
}

/// @brief The precision decision of a Vulkan conv2d from what the device exposes (pure, so that it
/// is tested on every device kind): the tensor-core path is not built in this version of unibuf, so
/// a request for it always falls back to exact fp32, with the reason.
[[nodiscard]] inline conv2d_precision_decision conv2d_vulkan_precision(const vulkan_cooperative_matrix_support& s,
                                                                       const conv2d_options& opt) {
    conv2d_precision_decision d;
    d.requested = opt.precision;
    d.used = conv2d_precision::exact_fp32;
    if (opt.precision == conv2d_precision::exact_fp32) {
        d.reason = "fp32 products and sums (the default)";
        return d;
    }
    d.fallback = true;
    if (!s.khr && !s.nv)
        d.reason = "the device exposes neither VK_KHR_cooperative_matrix nor VK_NV_cooperative_matrix";
    else
        d.reason = std::string("the device exposes ") + (s.khr ? "VK_KHR_cooperative_matrix" : "VK_NV_cooperative_matrix") +
                   ", but unibuf's tensor-core kernel is not built: glslc of shaderc 2023.2 (glslang 11.13) cannot "
                   "compile GL_KHR_cooperative_matrix, and the Vulkan context does not enable the extension";
    return d;
}

/// @brief conv2d on Vulkan: `vulkan_kernel` of `kernels::conv2d_spv` with 22 specialization constants.
template <>
struct conv2d_traits<vulkan_backend> {
    using kernel = vulkan_kernel;  ///< 4 storage buffers, no push constants

    /// @brief See `conv2d_vulkan_precision`.
    static conv2d_precision_decision decide(vulkan_backend& b, const conv2d_options& opt) {
        return conv2d_vulkan_precision(conv2d_cooperative_matrix_support(b), opt);
    }
    /// @brief `conv2d_tiling_for` under the device's limits.
    static conv2d_tiling tiling(vulkan_backend& b, const conv2d_desc& d, const conv2d_options& opt) {
        return conv2d_tiling_for(d, conv2d_limits(b), opt);
    }
    /// @brief The pipeline with the description and the tiling as specialization constants.
    static kernel make_kernel(vulkan_backend& b, const conv2d_desc& d, const conv2d_tiling& t) {
        const auto v = conv2d_constants(d, t);
        std::array<vulkan_specialization, conv2d_constant_count> sc{};
        for (std::uint32_t i = 0; i < conv2d_constant_count; ++i) sc[i] = {i, v[i]};
        return vulkan_kernel(b, kernels::conv2d_spv, 4, 0, std::span<const vulkan_specialization>(sc));
    }
};

} // namespace unibuf
