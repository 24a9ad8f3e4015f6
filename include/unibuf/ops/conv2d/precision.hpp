/// @file precision.hpp
/// @brief The precision of a conv2d: exact fp32 (the default), or an opt-in tensor-core path, and
/// the decision a backend takes on it, with its reason (never a silent fallback).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace unibuf {

/// @brief The arithmetic a conv2d is asked for.
enum class conv2d_precision {
    /// fp32 inputs, fp32 products and sums (the tolerance of `conv2d_fp32_tolerance`). The default.
    exact_fp32,
    /// Tensor cores through cooperative matrices (Vulkan only): inputs and weights rounded to fp16,
    /// products and sums in fp32. Error bound per output, with n = C*R*S + 1, M = |bias| + sum |in * w|
    /// and u_h = 2^-11 (fp16 rounding), u_a = 2^-23 (one fp32 ulp: tensor cores may truncate while
    /// adding), e = 2^-25 (absolute rounding of fp16 subnormals, below 2^-14):
    /// `(2 u_h + u_h^2) M + (n-1) e (max|in| + max|w|)(1 + u_h) + gamma(n, u_a) (1 + u_h)^2 M`
    /// plus the result's own rounding (`conv2d_tensor_core_fp16_tolerance` in reference.hpp; about
    /// 1e-3 M for the shapes of the tests). Valid while |in| and |w| stay below 65504 (fp16's
    /// largest finite value; larger ones become infinite).
    ///
    /// The kernel uses VK_NV_cooperative_matrix / GL_NV_cooperative_matrix, not the KHR extension:
    /// the toolchain unibuf builds with (Debian 12: Vulkan headers, Vulkan-Hpp and the validation
    /// layer 1.3.239; glslc of shaderc 2023.2 / glslang 11.13) predates VK_KHR_cooperative_matrix
    /// (1.3.255) and rejects GL_KHR_cooperative_matrix, while it knows the NV extension, so the
    /// kernel builds in CI and its tests run with validation on. NVIDIA drivers expose both (the
    /// H200's: fp16 16x16x16, 16x8x16, 16x8x8 at subgroup scope). Moving to the KHR extension is
    /// the next step once the toolchain knows it. OpenGL has no cooperative matrices here: a GL
    /// conv2d asked for this runs exact fp32 and says so.
    tensor_core_fp16,
};

/// @brief The printable name of a precision ("exact_fp32", "tensor_core_fp16").
[[nodiscard]] constexpr std::string_view to_string(conv2d_precision p) noexcept {
    switch (p) {
        case conv2d_precision::exact_fp32: return "exact_fp32";
        case conv2d_precision::tensor_core_fp16: return "tensor_core_fp16";
    }
    return "unknown";
}

/// @brief What a conv2d asks for about precision.
struct conv2d_options {
    conv2d_precision precision = conv2d_precision::exact_fp32;  ///< what is asked for
    /// When the asked precision is not available: false (default) runs exact fp32 and says so in
    /// `conv2d_precision_decision`; true throws `errc::unsupported` with the reason instead.
    bool require_precision = false;
    /// A fixed tile instead of the one chosen per shape (for tuning; 0 everywhere: chosen):
    /// invocations in x and y, output columns per invocation, output channels per group, input
    /// channels per round. GPU backends only; checked against the device's limits.
    std::uint32_t tile_lx = 0, tile_ly = 0, tile_px = 0, tile_kb = 0, tile_cb = 0;
};

/// @brief The precision a conv2d runs with, what was asked, and why they differ when they do.
struct conv2d_precision_decision {
    conv2d_precision requested = conv2d_precision::exact_fp32;
    conv2d_precision used = conv2d_precision::exact_fp32;
    bool fallback = false;  ///< true when `used != requested`
    std::string reason;     ///< one sentence, e.g. why the tensor-core path is not available

    /// @brief "exact_fp32 (asked: tensor_core_fp16; fallback: <reason>)", or "exact_fp32: <reason>".
    [[nodiscard]] std::string to_string() const {
        std::string s(unibuf::to_string(used));
        if (fallback) return s + " (asked: " + std::string(unibuf::to_string(requested)) + "; fallback: " + reason + ")";
        return reason.empty() ? s : s + ": " + reason;
    }
};

} // namespace unibuf
