/// @file conv2d_desc.hpp
/// @brief `conv2d_desc`: what a 2-D convolution computes (NCHW fp32, PyTorch's layout), its output
/// shape, and the checks every backend runs before anything is submitted.
///
/// @code
/// unibuf::conv2d_desc d;                       // 1 x 3 x 1080 x 1920 -> 16 channels, 3x3, pad 1
/// d.n = 1; d.c = 3; d.h = 1080; d.w = 1920; d.k = 16; d.r = d.s = 3;
/// d.pad_top = d.pad_bottom = d.pad_left = d.pad_right = 1; d.bias = true;
/// auto out = unibuf::conv2d_output_shape(d);   // 1 x 16 x 1080 x 1920
/// @endcode
#pragma once

#include "../../core/detail/meta.hpp"
#include "../../core/error.hpp"

#include <cstdint>
#include <limits>
#include <string>

namespace unibuf {

/// @brief A 4-D tensor shape (N, C, H, W), outermost first.
struct conv2d_shape {
    std::uint64_t n = 0, c = 0, h = 0, w = 0;

    /// @brief n*c*h*w (each factor is at most 2^32, the description checks the product).
    [[nodiscard]] constexpr std::uint64_t elements() const noexcept { return n * c * h * w; }
    /// @brief "NxCxHxW", as messages print it.
    [[nodiscard]] std::string to_string() const {
        return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
    }
    friend constexpr bool operator==(const conv2d_shape&, const conv2d_shape&) = default;
};

/// @brief The largest kernel side (R and S) unibuf's conv2d accepts.
inline constexpr std::uint32_t conv2d_max_kernel_side = 7;

/// @brief A 2-D convolution, as PyTorch's `conv2d` computes it (cross-correlation):
/// `out[n][k][y][x] = relu?(bias[k] + sum over c, r, s of in[n][c][y*stride_h - pad_top + r*dilation_h]
/// [x*stride_w - pad_left + s*dilation_w] * weights[k][c][r][s])`, reads outside the input are 0.
///
/// Tensors are dense fp32 in NCHW order: input N*C*H*W, weights K*C*R*S, bias K, output
/// N*K*OH*OW (`conv2d_output_shape`). Padding is given per side, so asymmetric ("same" for even
/// kernels) padding needs no extra copy.
struct conv2d_desc {
    std::uint32_t n = 1;  ///< images in the batch
    std::uint32_t c = 1;  ///< input channels
    std::uint32_t h = 1;  ///< input rows
    std::uint32_t w = 1;  ///< input columns
    std::uint32_t k = 1;  ///< output channels
    std::uint32_t r = 3;  ///< kernel rows (1 to 7)
    std::uint32_t s = 3;  ///< kernel columns (1 to 7)
    std::uint32_t stride_h = 1, stride_w = 1;             ///< at least 1
    std::uint32_t pad_top = 0, pad_bottom = 0;             ///< zero rows added above / below
    std::uint32_t pad_left = 0, pad_right = 0;             ///< zero columns added left / right
    std::uint32_t dilation_h = 1, dilation_w = 1;          ///< at least 1
    bool bias = false;  ///< add bias[k] to every output of channel k
    bool relu = false;  ///< max(0, x) on every output

    /// @brief Sets the same padding on all four sides.
    constexpr conv2d_desc& pad(std::uint32_t p) noexcept {
        pad_top = pad_bottom = pad_left = pad_right = p;
        return *this;
    }
    /// @brief Sets both strides.
    constexpr conv2d_desc& stride(std::uint32_t v) noexcept {
        stride_h = stride_w = v;
        return *this;
    }
    /// @brief Sets both dilations.
    constexpr conv2d_desc& dilation(std::uint32_t v) noexcept {
        dilation_h = dilation_w = v;
        return *this;
    }
    /// @brief "N=1 C=3 H=1080 W=1920 K=16 R=3 S=3 stride 1x1 pad 1,1,1,1 dilation 1x1 bias relu":
    /// the description as error messages and benchmarks name it.
    [[nodiscard]] std::string to_string() const {
        std::string t = "N=" + std::to_string(n) + " C=" + std::to_string(c) + " H=" + std::to_string(h) +
                        " W=" + std::to_string(w) + " K=" + std::to_string(k) + " R=" + std::to_string(r) +
                        " S=" + std::to_string(s) + " stride " + std::to_string(stride_h) + "x" +
                        std::to_string(stride_w) + " pad " + std::to_string(pad_top) + "," +
                        std::to_string(pad_bottom) + "," + std::to_string(pad_left) + "," +
                        std::to_string(pad_right) + " dilation " + std::to_string(dilation_h) + "x" +
                        std::to_string(dilation_w);
        if (bias) t += " bias";
        if (relu) t += " relu";
        return t;
    }
    friend constexpr bool operator==(const conv2d_desc&, const conv2d_desc&) = default;
};

namespace detail {

// One output side: (in + pads - dilation*(kernel-1) - 1) / stride + 1, or 0 when the padded input is
// shorter than the dilated kernel. All in 64 bits: every term is below 2^35.
[[nodiscard]] constexpr std::uint64_t conv2d_out_side(std::uint64_t in, std::uint64_t pad_a, std::uint64_t pad_b,
                                                      std::uint64_t kernel, std::uint64_t dilation,
                                                      std::uint64_t stride) noexcept {
    const std::uint64_t padded = in + pad_a + pad_b;
    const std::uint64_t span = dilation * (kernel - 1) + 1;
    if (kernel == 0 || stride == 0 || padded < span) return 0;
    return (padded - span) / stride + 1;
}

[[nodiscard]] inline std::string conv2d_what(const conv2d_desc& d) { return "unibuf: conv2d (" + d.to_string() + "): "; }

// n*c*h*w, checked: throws out_of_range when it passes 2^32 - 1 (GPU shaders index with 32 bits).
inline std::uint64_t conv2d_checked_elements(const conv2d_desc& d, const conv2d_shape& sh, const char* tensor) {
    std::uint64_t e = 0;
    const bool ok = checked_mul(sh.n, sh.c, e) && checked_mul(e, sh.h, e) && checked_mul(e, sh.w, e);
    constexpr std::uint64_t max = std::numeric_limits<std::uint32_t>::max();
    if (!ok || e > max)
        throw_error(errc::out_of_range, conv2d_what(d) + "the " + tensor + " tensor " + sh.to_string() + " has " +
                                            (ok ? std::to_string(e) : std::string("more than 2^64")) +
                                            " elements; at most " + std::to_string(max) +
                                            " (32-bit indices on the device)");
    return e;
}

} // namespace detail

/// @brief The output shape N x K x OH x OW of `d`, without checking it (a side is 0 when the padded
/// input is shorter than the dilated kernel, or when a stride or kernel side is 0).
[[nodiscard]] constexpr conv2d_shape conv2d_output_shape(const conv2d_desc& d) noexcept {
    return {d.n, d.k, detail::conv2d_out_side(d.h, d.pad_top, d.pad_bottom, d.r, d.dilation_h, d.stride_h),
            detail::conv2d_out_side(d.w, d.pad_left, d.pad_right, d.s, d.dilation_w, d.stride_w)};
}

/// @brief The input shape N x C x H x W of `d`.
[[nodiscard]] constexpr conv2d_shape conv2d_input_shape(const conv2d_desc& d) noexcept { return {d.n, d.c, d.h, d.w}; }
/// @brief The weight shape K x C x R x S of `d`.
[[nodiscard]] constexpr conv2d_shape conv2d_weight_shape(const conv2d_desc& d) noexcept { return {d.k, d.c, d.r, d.s}; }

/// @brief The element counts of a valid description's tensors.
struct conv2d_sizes {
    std::uint64_t input = 0;    ///< N*C*H*W
    std::uint64_t weights = 0;  ///< K*C*R*S
    std::uint64_t bias = 0;     ///< K when the description has a bias, else 0
    std::uint64_t output = 0;   ///< N*K*OH*OW
    conv2d_shape out;           ///< N x K x OH x OW
};

/// @brief Checks `d` and returns its tensors' element counts.
/// @throws std::system_error invalid_argument: a zero N, C, H, W or K, a zero stride or dilation, an
/// empty output (the padded input shorter than the dilated kernel; the message names both);
/// out_of_range: R or S outside 1 to 7, padding of 2^31 or more, a tensor of 2^32 elements or more
inline conv2d_sizes conv2d_validate(const conv2d_desc& d) {
    const auto what = detail::conv2d_what(d);
    if (d.n == 0 || d.c == 0 || d.h == 0 || d.w == 0 || d.k == 0)
        throw_error(errc::invalid_argument, what + "N, C, H, W and K must be at least 1");
    if (d.r < 1 || d.r > conv2d_max_kernel_side || d.s < 1 || d.s > conv2d_max_kernel_side)
        throw_error(errc::out_of_range, what + "kernel " + std::to_string(d.r) + "x" + std::to_string(d.s) +
                                            "; R and S must be 1 to " + std::to_string(conv2d_max_kernel_side));
    if (d.stride_h == 0 || d.stride_w == 0)
        throw_error(errc::invalid_argument, what + "stride " + std::to_string(d.stride_h) + "x" +
                                                std::to_string(d.stride_w) + "; strides must be at least 1");
    if (d.dilation_h == 0 || d.dilation_w == 0)
        throw_error(errc::invalid_argument, what + "dilation " + std::to_string(d.dilation_h) + "x" +
                                                std::to_string(d.dilation_w) + "; dilations must be at least 1");
    constexpr std::uint32_t max_pad = std::uint32_t{1} << 31;
    if (d.pad_top >= max_pad || d.pad_bottom >= max_pad || d.pad_left >= max_pad || d.pad_right >= max_pad)
        throw_error(errc::out_of_range, what + "padding must be below 2^31 on every side");
    const conv2d_shape out = conv2d_output_shape(d);
    if (out.h == 0 || out.w == 0) {
        const std::uint64_t span_h = std::uint64_t{d.dilation_h} * (d.r - 1) + 1;
        const std::uint64_t span_w = std::uint64_t{d.dilation_w} * (d.s - 1) + 1;
        throw_error(errc::invalid_argument,
                    what + "the output " + out.to_string() + " is empty: the padded input is " +
                        std::to_string(std::uint64_t{d.h} + d.pad_top + d.pad_bottom) + "x" +
                        std::to_string(std::uint64_t{d.w} + d.pad_left + d.pad_right) +
                        " and the dilated kernel spans " + std::to_string(span_h) + "x" + std::to_string(span_w));
    }
    if (out.h > std::numeric_limits<std::uint32_t>::max() || out.w > std::numeric_limits<std::uint32_t>::max())
        throw_error(errc::out_of_range, what + "the output " + out.to_string() + " has a side of 2^32 or more");
    conv2d_sizes z;
    z.input = detail::conv2d_checked_elements(d, conv2d_input_shape(d), "input");
    z.weights = detail::conv2d_checked_elements(d, conv2d_weight_shape(d), "weight");
    z.output = detail::conv2d_checked_elements(d, out, "output");
    z.bias = d.bias ? d.k : 0;
    z.out = out;
    return z;
}

/// @brief Checks that a buffer of `available` elements holds a tensor of `needed` elements.
/// @throws std::system_error out_of_range naming the tensor, its shape, the elements needed and those available
inline void conv2d_check_buffer(const conv2d_desc& d, const char* tensor, const conv2d_shape& shape,
                                std::uint64_t needed, std::uint64_t available) {
    if (available < needed)
        throw_error(errc::out_of_range, detail::conv2d_what(d) + "the " + tensor + " buffer holds " +
                                            std::to_string(available) + " floats; the " + tensor + " " +
                                            shape.to_string() + " needs " + std::to_string(needed));
}

/// @brief Multiply-adds times 2 of a valid description: 2*N*K*OH*OW*C*R*S (what TFLOP/s counts).
[[nodiscard]] inline double conv2d_flops(const conv2d_desc& d) {
    const conv2d_shape o = conv2d_output_shape(d);
    return 2.0 * static_cast<double>(o.elements()) * d.c * d.r * d.s;
}

/// @brief Bytes a convolution must move at least: input, weights, bias read once, output written once.
[[nodiscard]] inline double conv2d_min_bytes(const conv2d_desc& d) {
    const conv2d_shape o = conv2d_output_shape(d);
    const double e = static_cast<double>(conv2d_input_shape(d).elements()) +
                     static_cast<double>(conv2d_weight_shape(d).elements()) + (d.bias ? d.k : 0) +
                     static_cast<double>(o.elements());
    return 4.0 * e;
}

} // namespace unibuf
