/// @file conv2d.hpp
/// @brief The Vulkan backend's conv2d: conv2d.comp's SPIR-V with the description and the tiling as
/// specialization constants, tiles checked against the device's compute limits; with
/// `conv2d_precision::tensor_core_fp16`, conv2d_coopmat.comp's (cooperative matrices) where the
/// context enabled VK_NV_cooperative_matrix.
#pragma once

#include "../../backend/vulkan/vulkan_backend.hpp"
#include "../conv2d/conv2d.hpp"
#include "../conv2d/conv2d.spv.hpp"
#include "../conv2d/conv2d_coopmat.spv.hpp"
#include "../conv2d/coopmat_tiling.hpp"

#include <array>
#include <optional>
#include <string>
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

/// @brief Which cooperative-matrix extensions the Vulkan device exposes, and what its context enabled.
struct vulkan_cooperative_matrix_support {
    bool khr = false;      ///< VK_KHR_cooperative_matrix exposed
    bool nv = false;       ///< VK_NV_cooperative_matrix exposed
    bool nv2 = false;      ///< VK_NV_cooperative_matrix2 exposed
    /// @brief What the context enabled (`vulkan_context::cooperative_matrix()`): unibuf's tensor-core
    /// kernel uses VK_NV_cooperative_matrix and runs only where the context enabled it.
    vulkan_cooperative_matrix_info enabled;
};

/// @brief Reads the device's extension list for the cooperative-matrix extensions (none found
/// when the list cannot be read), and what the context enabled.
[[nodiscard]] inline vulkan_cooperative_matrix_support conv2d_cooperative_matrix_support(const vulkan_context& ctx) {
    vulkan_cooperative_matrix_support s;
    s.enabled = ctx.cooperative_matrix();
    const auto pd = ctx.physical_device();
    if (!pd) return s;
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

/// @brief The cooperative-matrix shape the tensor-core conv2d uses: an fp16 x fp16 + fp32 subgroup
/// shape of the device, 16x16x16 first, then 16x8x16, then any other the kernel tiles (M at most
/// 64, N dividing 16, K dividing 32); none (all sizes 0) when there is none.
[[nodiscard]] inline vulkan_cooperative_matrix_shape conv2d_coopmat_shape(const vulkan_cooperative_matrix_info& cm) {
    const auto usable = [](const vulkan_cooperative_matrix_shape& s) {
        return s.fp16_fp32_subgroup() && s.m > 0 && s.m <= 64 && s.n > 0 && 16 % s.n == 0 && s.k > 0 && 32 % s.k == 0;
    };
    for (const auto& want : {std::array<std::uint32_t, 3>{16, 16, 16}, std::array<std::uint32_t, 3>{16, 8, 16}})
        for (const auto& s : cm.shapes)
            if (usable(s) && s.m == want[0] && s.n == want[1] && s.k == want[2]) return s;
    for (const auto& s : cm.shapes)
        if (usable(s)) return s;
    vulkan_cooperative_matrix_shape none;
    none.m = none.n = none.k = 0;
    return none;
}

/// @brief The precision decision of a Vulkan conv2d from what the device exposes and its context
/// enabled (pure, so that it is tested on every device kind). `tensor_core_fp16` is used where the
/// context enabled VK_NV_cooperative_matrix and the device has an fp16 x fp16 + fp32 subgroup shape
/// the kernel tiles; otherwise a request for it falls back to exact fp32, with the reason.
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
    if (!s.khr && !s.nv && !s.enabled.enabled) {
        d.reason = "the device exposes neither VK_KHR_cooperative_matrix nor VK_NV_cooperative_matrix";
        return d;
    }
    if (!s.enabled.enabled) {
        d.reason = "the device exposes " + std::string(s.nv ? "VK_NV_cooperative_matrix" : "VK_KHR_cooperative_matrix") +
                   ", but the context did not enable VK_NV_cooperative_matrix, which unibuf's tensor-core kernel uses (" +
                   (s.enabled.note.empty() ? std::string("no note") : s.enabled.note) + ")";
        return d;
    }
    const auto shape = conv2d_coopmat_shape(s.enabled);
    if (shape.m == 0) {
        d.reason = "VK_NV_cooperative_matrix is enabled, but none of the device's " +
                   std::to_string(s.enabled.shapes.size()) +
                   " cooperative-matrix shapes is an fp16 x fp16 + fp32 subgroup shape the kernel tiles";
        return d;
    }
    d.fallback = false;
    d.used = conv2d_precision::tensor_core_fp16;
    d.reason = "VK_NV_cooperative_matrix, " + shape.to_string() +
               " (MxNxK) fp16 x fp16 + fp32 matrices at subgroup scope: inputs and weights rounded to fp16, products "
               "and sums in fp32 (bound: conv2d_tensor_core_fp16_tolerance)";
    return d;
}

/// @brief The tensor-core limits of the device of `b`: `conv2d_limits`, maxComputeWorkGroupCount
/// and the subgroup size.
[[nodiscard]] inline conv2d_coopmat_limits conv2d_coopmat_limits_of(vulkan_backend& b) {
    conv2d_coopmat_limits l;
    l.compute = conv2d_limits(b);
    l.max_group_count = b.context().capabilities().max_group_count;
    l.subgroup_size = b.context().cooperative_matrix().subgroup_size;
    return l;
}

/// @brief The tensor-core tile of `d` on the device of `b` (with `conv2d_coopmat_shape`), or none
/// with the reason in `why`.
/// @throws std::system_error what `conv2d_try_coopmat_tiling` throws
[[nodiscard]] inline std::optional<conv2d_coopmat_tiling> conv2d_coopmat_tiling_for(vulkan_backend& b, const conv2d_desc& d,
                                                                                    std::string& why) {
    const auto shape = conv2d_coopmat_shape(b.context().cooperative_matrix());
    if (shape.m == 0) {
        why = detail::conv2d_what(d) + "no fp16 x fp16 + fp32 cooperative-matrix shape is enabled on this device";
        return std::nullopt;
    }
    return conv2d_try_coopmat_tiling(d, shape.m, shape.n, shape.k, conv2d_coopmat_limits_of(b), why);
}

/// @brief conv2d on Vulkan: `vulkan_kernel` of `kernels::conv2d_spv` with 22 specialization
/// constants; on the tensor-core path of `kernels::conv2d_coopmat_spv` with 27 (the fixed tile of
/// `conv2d_options` applies to the fp32 kernel only).
template <>
struct conv2d_traits<vulkan_backend> {
    using kernel = vulkan_kernel;  ///< 4 storage buffers, no push constants

    /// @brief `conv2d_vulkan_precision`; for the tensor-core path also the tile of `d`: a
    /// description no tensor-core tile fits falls back to exact fp32 with the reason.
    static conv2d_precision_decision decide(vulkan_backend& b, const conv2d_desc& d, const conv2d_options& opt) {
        conv2d_precision_decision r = conv2d_vulkan_precision(conv2d_cooperative_matrix_support(b), opt);
        if (r.used != conv2d_precision::tensor_core_fp16) return r;
        std::string why;
        if (const auto t = conv2d_coopmat_tiling_for(b, d, why)) {
            r.reason += "; tile " + t->to_string();
        } else {
            r.used = conv2d_precision::exact_fp32;
            r.fallback = true;
            r.reason = "no tensor-core tile fits: " + why;
        }
        return r;
    }
    /// @brief `conv2d_tiling_for` under the device's limits; on the tensor-core path its tile as
    /// `conv2d_tiling_of` reports it.
    static conv2d_tiling tiling(vulkan_backend& b, const conv2d_desc& d, const conv2d_options& opt,
                                const conv2d_precision_decision& p) {
        if (p.used == conv2d_precision::tensor_core_fp16) return conv2d_tiling_of(coopmat_tile(b, d));
        return conv2d_tiling_for(d, conv2d_limits(b), opt);
    }
    /// @brief The pipeline with the description and the tiling as specialization constants.
    static kernel make_kernel(vulkan_backend& b, const conv2d_desc& d, const conv2d_tiling& t,
                              const conv2d_precision_decision& p) {
        if (p.used == conv2d_precision::tensor_core_fp16) {
            const auto v = conv2d_coopmat_constants(d, coopmat_tile(b, d));
            std::array<vulkan_specialization, conv2d_coopmat_constant_count> sc{};
            for (std::uint32_t i = 0; i < conv2d_coopmat_constant_count; ++i) sc[i] = {i, v[i]};
            return vulkan_kernel(b, kernels::conv2d_coopmat_spv, 4, 0, std::span<const vulkan_specialization>(sc));
        }
        const auto v = conv2d_constants(d, t);
        std::array<vulkan_specialization, conv2d_constant_count> sc{};
        for (std::uint32_t i = 0; i < conv2d_constant_count; ++i) sc[i] = {i, v[i]};
        return vulkan_kernel(b, kernels::conv2d_spv, 4, 0, std::span<const vulkan_specialization>(sc));
    }

private:
    // The tile `decide` found (the choice is deterministic for a device and a description).
    static conv2d_coopmat_tiling coopmat_tile(vulkan_backend& b, const conv2d_desc& d) {
        std::string why;
        auto t = conv2d_coopmat_tiling_for(b, d, why);
        if (!t) throw_error(errc::unsupported, why);
        return *t;
    }
};

} // namespace unibuf
