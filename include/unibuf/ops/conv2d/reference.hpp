/// @file reference.hpp
/// @brief The CPU reference of conv2d: plainly correct (double accumulation, the definition's loop
/// order), threaded over output rows; the oracle of every conv2d test and the host backend's conv2d.
#pragma once

#include "conv2d_desc.hpp"

#include "../../core/config.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace unibuf {

/// @brief Computes `d` on the CPU: `out` (N*K*OH*OW) from `in` (N*C*H*W), `w` (K*C*R*S) and `bias`
/// (K, or empty when the description has none). Sums are taken in double, each product exact.
///
/// When `magnitude` is not empty it receives, per output, `|bias| + sum |in * w|`: the scale of the
/// float rounding error of any summation order (a float sum of n terms is within
/// `n * 2^-24 / (1 - n * 2^-24)` times that of the exact one), which tests use as their tolerance.
/// @param threads worker threads (0: `std::thread::hardware_concurrency()`); the calling thread works too
/// @throws std::system_error from `conv2d_validate`; out_of_range when a span is smaller than its
/// tensor (the message names the tensor's shape and the elements available); invalid_argument
/// when `bias` is empty but the description has a bias
inline void conv2d_reference(const conv2d_desc& d, std::span<const float> in, std::span<const float> w,
                             std::span<const float> bias, std::span<float> out, std::span<float> magnitude = {},
                             unsigned threads = 0) {
    const conv2d_sizes z = conv2d_validate(d);
    conv2d_check_buffer(d, "input", conv2d_input_shape(d), z.input, in.size());
    conv2d_check_buffer(d, "weight", conv2d_weight_shape(d), z.weights, w.size());
    conv2d_check_buffer(d, "output", z.out, z.output, out.size());
    if (d.bias) conv2d_check_buffer(d, "bias", conv2d_shape{1, d.k, 1, 1}, d.k, bias.size());
    if (!magnitude.empty()) conv2d_check_buffer(d, "magnitude", z.out, z.output, magnitude.size());

    const std::int64_t oh = static_cast<std::int64_t>(z.out.h), ow = static_cast<std::int64_t>(z.out.w);
    const std::int64_t H = d.h, W = d.w, C = d.c, K = d.k, R = d.r, S = d.s;
    const std::int64_t sh = d.stride_h, sw = d.stride_w, dh = d.dilation_h, dw = d.dilation_w;
    const std::int64_t pt = d.pad_top, pl = d.pad_left;
    const bool mag = !magnitude.empty();

    // One output row (n, k, y) of all OW columns: for each tap, the columns whose input lies inside.
    const auto row = [&](std::int64_t item, std::vector<double>& acc, std::vector<double>& abs_acc) {
        const std::int64_t y = item % oh;
        const std::int64_t k = (item / oh) % K;
        const std::int64_t n = item / (oh * K);
        const double b = d.bias ? static_cast<double>(bias[static_cast<std::size_t>(k)]) : 0.0;
        std::fill(acc.begin(), acc.end(), b);
        if (mag) std::fill(abs_acc.begin(), abs_acc.end(), std::fabs(b));
        for (std::int64_t c = 0; c < C; ++c) {
            for (std::int64_t r = 0; r < R; ++r) {
                const std::int64_t iy = y * sh - pt + r * dh;
                if (iy < 0 || iy >= H) continue;
                const float* irow = in.data() + ((n * C + c) * H + iy) * W;
                for (std::int64_t s = 0; s < S; ++s) {
                    const double wv = w[static_cast<std::size_t>(((k * C + c) * R + r) * S + s)];
                    const std::int64_t off = s * dw - pl;  // ix = x*sw + off must lie in [0, W)
                    std::int64_t x0 = off >= 0 ? 0 : (-off + sw - 1) / sw;
                    std::int64_t x1 = W - off <= 0 ? 0 : (W - off - 1) / sw + 1;  // first x with ix >= W
                    x1 = std::min(x1, ow);
                    for (std::int64_t x = x0; x < x1; ++x) {
                        const double p = wv * static_cast<double>(irow[x * sw + off]);
                        acc[static_cast<std::size_t>(x)] += p;
                        if (mag) abs_acc[static_cast<std::size_t>(x)] += std::fabs(p);
                    }
                }
            }
        }
        const std::size_t base = static_cast<std::size_t>(((n * K + k) * oh + y) * ow);
        for (std::int64_t x = 0; x < ow; ++x) {
            double v = acc[static_cast<std::size_t>(x)];
            if (d.relu) v = std::max(v, 0.0);
            out[base + static_cast<std::size_t>(x)] = static_cast<float>(v);
            if (mag) magnitude[base + static_cast<std::size_t>(x)] = static_cast<float>(abs_acc[static_cast<std::size_t>(x)]);
        }
    };

    const std::int64_t items = static_cast<std::int64_t>(d.n) * K * oh;
    std::atomic<std::int64_t> next{0};
#if UNIBUF_EXCEPTIONS
    std::exception_ptr error;
    std::mutex error_mutex;
#endif
    const auto rows = [&] {
        std::vector<double> acc(static_cast<std::size_t>(ow)), abs_acc(mag ? static_cast<std::size_t>(ow) : 0);
        for (std::int64_t i = next.fetch_add(1); i < items; i = next.fetch_add(1)) row(i, acc, abs_acc);
    };
    const auto work = [&] {
#if UNIBUF_EXCEPTIONS
        try {
            rows();
        } catch (...) {  // std::bad_alloc of the row buffers: rethrown on the calling thread
            const std::lock_guard lock(error_mutex);
            if (!error) error = std::current_exception();
            next.store(items);
        }
#else
        rows();  // without exceptions an allocation failure ends the program, as everywhere else
#endif
    };
    unsigned n_threads = threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
    n_threads = static_cast<unsigned>(std::min<std::int64_t>(n_threads, items));
    std::vector<std::thread> team;
    team.reserve(n_threads > 0 ? n_threads - 1 : 0);
    for (unsigned i = 1; i < n_threads; ++i) team.emplace_back(work);
    work();
    for (auto& t : team) t.join();
#if UNIBUF_EXCEPTIONS
    if (error) std::rethrow_exception(error);
#endif
}

/// @brief The float rounding bound a result of `d` is checked with against the reference:
/// `gamma * magnitude` with `gamma = n*u / (1 - n*u)`, `n = C*R*S + 1` terms, `u = 2^-24`, doubled
/// (the result's final rounding and the reference's own rounding to float), plus 1e-30 for zeros.
[[nodiscard]] inline double conv2d_fp32_tolerance(const conv2d_desc& d, float magnitude) noexcept {
    const double n = static_cast<double>(d.c) * d.r * d.s + 1.0;
    const double u = 1.0 / 16777216.0;
    const double gamma = n * u / (1.0 - n * u);
    return 2.0 * gamma * static_cast<double>(magnitude) + 2.0 * u * static_cast<double>(magnitude) + 1e-30;
}

/// @brief The bound a tensor-core (`conv2d_precision::tensor_core_fp16`) result of `d` is checked with
/// against the reference: inputs and weights rounded to fp16 (relative error u_h = 2^-11 each; below
/// 2^-14 an absolute error of at most e = 2^-25), exact products, fp32 sums of n = C*R*S + 1 terms
/// with one fp32 ulp u_a = 2^-23 per addition (tensor cores may truncate), the final rounding and
/// the reference's own rounding to float:
/// `(2 u_h + u_h^2) M + a + gamma(n, u_a) ((1 + u_h)^2 M + a) + 2 * 2^-24 M + 1e-30`, where M is
/// `magnitude` (|bias| + sum |in * w|, as `conv2d_reference` gives it) and
/// `a = (n-1) e ((max_abs_input + max_abs_weight)(1 + u_h) + e)` the subnormals' part.
/// Valid while every |input| and |weight| is below 65504 (fp16's largest finite value).
/// @param max_abs_input the largest |input element|; @param max_abs_weight the largest |weight|
[[nodiscard]] inline double conv2d_tensor_core_fp16_tolerance(const conv2d_desc& d, float magnitude, float max_abs_input,
                                                              float max_abs_weight) noexcept {
    const double n = static_cast<double>(d.c) * d.r * d.s + 1.0;
    const double uh = 1.0 / 2048.0, ua = 1.0 / 8388608.0, e = 1.0 / 33554432.0, u = 1.0 / 16777216.0;
    const double m = static_cast<double>(magnitude);
    const double a =
        (n - 1.0) * e * ((static_cast<double>(max_abs_input) + static_cast<double>(max_abs_weight)) * (1.0 + uh) + e);
    const double gamma = n * ua / (1.0 - n * ua);
    return (2.0 * uh + uh * uh) * m + a + gamma * ((1.0 + uh) * (1.0 + uh) * m + a) + 2.0 * u * m + 1e-30;
}

} // namespace unibuf
