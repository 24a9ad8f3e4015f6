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
    /// Tensor cores through cooperative matrices (`VK_KHR_cooperative_matrix`): inputs rounded to
    /// fp16 (relative error 2^-11 each), fp32 accumulation; error bound per output
    /// `(2 * 2^-11 + n * 2^-24) * sum |in * w|`, n = C*R*S + 1.
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
