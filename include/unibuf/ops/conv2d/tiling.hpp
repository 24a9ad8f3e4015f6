/// @file tiling.hpp
/// @brief The tile sizes of the GPU conv2d kernel (`conv2d.comp`), chosen per shape and checked
/// against the device's shared-memory and work-group limits; the kernel's constants.
#pragma once

#include "conv2d_desc.hpp"
#include "precision.hpp"

#include "../../core/error.hpp"
#include "../../core/usage.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace unibuf {

/// @brief The compute limits the tiling must respect (from `maxComputeSharedMemorySize`,
/// `maxComputeWorkGroupInvocations`, `maxComputeWorkGroupSize` on Vulkan; the GL_MAX_COMPUTE_* of GL).
struct conv2d_device_limits {
    std::uint32_t max_shared_bytes = 16384;  ///< both APIs guarantee at least 16 KiB (GL: 32 KiB)
    std::uint32_t max_invocations = 128;     ///< per work group; both APIs guarantee at least 128
    std::uint32_t max_size_x = 128;          ///< work-group size in x
    std::uint32_t max_size_y = 128;          ///< work-group size in y
};

/// @brief How `conv2d.comp` tiles one description: a work group computes `ly` rows x `lx*px`
/// columns of output for `kb` output channels (a multiple of 4), staging `cb` input channels at a time.
struct conv2d_tiling {
    std::uint32_t lx = 32;  ///< invocations in x (work-group size x)
    std::uint32_t ly = 4;   ///< invocations in y = output rows per tile
    std::uint32_t px = 1;   ///< output columns per invocation (at tx + p*lx)
    std::uint32_t kb = 4;   ///< output channels per work group (all in each invocation's registers); a multiple of 4
    std::uint32_t cb = 1;   ///< input channels staged in shared memory per round
    std::uint32_t shared_bytes = 0;  ///< shared memory the work group uses
    dispatch_size groups;            ///< work groups of one convolution

    /// @brief "32x4 px4 kb16 cb3 (9360 B shared)", for reports.
    [[nodiscard]] std::string to_string() const {
        return std::to_string(lx) + "x" + std::to_string(ly) + " px" + std::to_string(px) + " kb" + std::to_string(kb) +
               " cb" + std::to_string(cb) + " (" + std::to_string(shared_bytes) + " B shared)";
    }
};

/// @brief Shared memory `conv2d.comp` uses for `d` with tile `t` (its input patch with rows padded
/// by one float, and the weights of `cb` channels for `kb` outputs), in bytes (64-bit: no overflow
/// for any description that `conv2d_validate` accepts).
[[nodiscard]] constexpr std::uint64_t conv2d_shared_bytes(const conv2d_desc& d, std::uint32_t lx, std::uint32_t ly,
                                                          std::uint32_t px, std::uint32_t kb, std::uint32_t cb) noexcept {
    const std::uint64_t ith = std::uint64_t{ly - 1} * d.stride_h + std::uint64_t{d.r - 1} * d.dilation_h + 1;
    const std::uint64_t itw = (std::uint64_t{lx} * px - 1) * d.stride_w + std::uint64_t{d.s - 1} * d.dilation_w + 1;
    return 4 * (std::uint64_t{cb} * ith * (itw + 1) + std::uint64_t{cb} * d.r * d.s * kb);
}

namespace detail {
[[nodiscard]] constexpr std::uint32_t conv2d_pow2_at_least(std::uint64_t v, std::uint32_t cap) noexcept {
    std::uint32_t p = 1;
    while (p < v && p < cap) p *= 2;
    return p;
}
[[nodiscard]] constexpr std::uint32_t conv2d_div_up(std::uint64_t a, std::uint64_t b) noexcept {
    return static_cast<std::uint32_t>((a + b - 1) / b);
}
} // namespace detail

/// @brief Chooses the tile of a valid description `d` for a device with limits `lim`.
///
/// Start (from tile sweeps on the H200; measured: see bench/RESULTS.md): K rounded up to 4 output
/// channels per group up to 16, or 32 when K >= 32; 2 columns per invocation from 48 output columns,
/// else 1; 32 invocations across (fewer for narrow outputs); 256 invocations per group for stride 1
/// rows, 128 for strided ones and for few channels in and out (C <= 4 and K <= 16: the streaming
/// 1080p C3->K16 shape, where 32x4 tiles of 2 columns ran fastest); up to 8 input channels per round. Then fewer input channels per round until the group uses at most 16 KiB of
/// shared memory (more groups per multiprocessor: on the H200 a 1080p C16->K16 tile ran 1.9x
/// faster with 15 KiB than with 29 KiB; measured: see bench/RESULTS.md). Then, while the device's
/// shared memory or work-group limits are exceeded: fewer input channels, fewer rows, fewer columns
/// per invocation, fewer invocations across, fewer output channels.
/// @throws std::system_error unsupported when even a 1x1 tile of one channel does not fit (the
/// message gives the bytes needed and the device's limit); invalid_argument/out_of_range from
/// `conv2d_validate`
[[nodiscard]] inline conv2d_tiling conv2d_choose_tiling(const conv2d_desc& d, const conv2d_device_limits& lim) {
    const conv2d_sizes z = conv2d_validate(d);
    const std::uint64_t ow = z.out.w, oh = z.out.h;
    conv2d_tiling t;
    const std::uint32_t k4 = (d.k + 3) / 4 * 4;
    t.kb = k4 >= 32 ? 32 : std::min<std::uint32_t>(k4, 16);
    t.px = ow >= 48 ? 2 : 1;
    t.lx = detail::conv2d_pow2_at_least(detail::conv2d_div_up(ow, t.px), 32);
    t.lx = std::max<std::uint32_t>(t.lx, 8);
    const bool few_channels = t.kb <= 16 && d.c <= 4;
    const std::uint32_t group = d.stride_h == 1 && !few_channels ? 256 : 128;
    t.ly = std::max<std::uint32_t>(1, std::min<std::uint32_t>(group / t.lx, detail::conv2d_pow2_at_least(oh, 128)));
    t.cb = std::min<std::uint32_t>(d.c, 8);
    constexpr std::uint64_t preferred_shared = 16384;
    while (t.cb > 1 && conv2d_shared_bytes(d, t.lx, t.ly, t.px, t.kb, t.cb) > preferred_shared) t.cb = (t.cb + 1) / 2;
    const auto fits = [&] {
        return conv2d_shared_bytes(d, t.lx, t.ly, t.px, t.kb, t.cb) <= lim.max_shared_bytes &&
               std::uint64_t{t.lx} * t.ly <= lim.max_invocations && t.lx <= lim.max_size_x && t.ly <= lim.max_size_y;
    };
    while (!fits()) {
        if (t.cb > 1) {
            t.cb = (t.cb + 1) / 2;
        } else if (t.ly > 1) {
            t.ly /= 2;
        } else if (t.px > 1) {
            t.px /= 2;
        } else if (t.lx > 1) {
            t.lx /= 2;
        } else if (t.kb > 4) {
            t.kb = (t.kb / 2 + 3) / 4 * 4;
        } else {
            throw_error(errc::unsupported,
                        detail::conv2d_what(d) + "even a 1x1 tile of 4 channels needs " +
                            std::to_string(conv2d_shared_bytes(d, 1, 1, 1, 4, 1)) +
                            " bytes of shared memory; the device offers " + std::to_string(lim.max_shared_bytes));
        }
    }
    t.shared_bytes = static_cast<std::uint32_t>(conv2d_shared_bytes(d, t.lx, t.ly, t.px, t.kb, t.cb));
    t.groups.x = detail::conv2d_div_up(ow, std::uint64_t{t.lx} * t.px);
    t.groups.y = detail::conv2d_div_up(oh, t.ly);
    t.groups.z = d.n * detail::conv2d_div_up(d.k, t.kb);  // <= N*K <= output elements < 2^32
    return t;
}

/// @brief A tile given by the caller (`lx`, `ly`, `px`, `kb`, `cb` of `t`), checked like a chosen one;
/// `kb` and `cb` are capped at K and C, and the group counts computed.
/// @throws std::system_error invalid_argument (a zero size), unsupported (past a limit: the message
/// names the tile, the bytes or invocations it needs and the device's limit); what `conv2d_validate` throws
[[nodiscard]] inline conv2d_tiling conv2d_fixed_tiling(const conv2d_desc& d, conv2d_tiling t, const conv2d_device_limits& lim) {
    const conv2d_sizes z = conv2d_validate(d);
    if (t.lx == 0 || t.ly == 0 || t.px == 0 || t.kb == 0 || t.cb == 0)
        throw_error(errc::invalid_argument, detail::conv2d_what(d) + "tile " + t.to_string() + " has a zero size");
    t.kb = std::min(t.kb, (d.k + 3) / 4 * 4);
    if (t.kb % 4 != 0)
        throw_error(errc::invalid_argument, detail::conv2d_what(d) + "tile " + t.to_string() +
                                                ": output channels per group must be a multiple of 4");
    t.cb = std::min(t.cb, d.c);
    if (t.lx > 1024 || t.ly > 1024 || t.px > 16 || t.kb > 64 || t.cb > 64)
        throw_error(errc::unsupported, detail::conv2d_what(d) + "tile " + t.to_string() +
                                           ": at most 1024 invocations a side, 16 columns, 64 channels per invocation");
    const std::uint64_t bytes = conv2d_shared_bytes(d, t.lx, t.ly, t.px, t.kb, t.cb);
    if (bytes > lim.max_shared_bytes || std::uint64_t{t.lx} * t.ly > lim.max_invocations || t.lx > lim.max_size_x ||
        t.ly > lim.max_size_y)
        throw_error(errc::unsupported, detail::conv2d_what(d) + "tile " + t.to_string() + " needs " + std::to_string(bytes) +
                                           " bytes of shared memory and " + std::to_string(std::uint64_t{t.lx} * t.ly) +
                                           " invocations; the device offers " + std::to_string(lim.max_shared_bytes) +
                                           " bytes and " + std::to_string(lim.max_invocations) + " invocations (" +
                                           std::to_string(lim.max_size_x) + " x " + std::to_string(lim.max_size_y) + ")");
    t.shared_bytes = static_cast<std::uint32_t>(bytes);
    t.groups.x = detail::conv2d_div_up(z.out.w, std::uint64_t{t.lx} * t.px);
    t.groups.y = detail::conv2d_div_up(z.out.h, t.ly);
    t.groups.z = d.n * detail::conv2d_div_up(d.k, t.kb);
    return t;
}

/// @brief The tile of `opt` when it gives one (`conv2d_fixed_tiling`), else `conv2d_choose_tiling`.
/// @throws std::system_error out_of_range when a padded side of the input reaches 2^30 (the kernel
/// computes input rows and columns as 32-bit signed integers); what those two throw
[[nodiscard]] inline conv2d_tiling conv2d_tiling_for(const conv2d_desc& d, const conv2d_device_limits& lim,
                                                     const conv2d_options& opt) {
    constexpr std::uint64_t side_limit = std::uint64_t{1} << 30;
    if (std::uint64_t{d.h} + d.pad_top + d.pad_bottom >= side_limit ||
        std::uint64_t{d.w} + d.pad_left + d.pad_right >= side_limit)
        throw_error(errc::out_of_range, detail::conv2d_what(d) + "the padded input is " +
                                            std::to_string(std::uint64_t{d.h} + d.pad_top + d.pad_bottom) + "x" +
                                            std::to_string(std::uint64_t{d.w} + d.pad_left + d.pad_right) +
                                            "; the GPU kernel takes sides below 2^30 (32-bit signed indices)");
    if (opt.tile_lx == 0 && opt.tile_ly == 0 && opt.tile_px == 0 && opt.tile_kb == 0 && opt.tile_cb == 0)
        return conv2d_choose_tiling(d, lim);
    conv2d_tiling t;
    t.lx = opt.tile_lx;
    t.ly = opt.tile_ly;
    t.px = opt.tile_px;
    t.kb = opt.tile_kb;
    t.cb = opt.tile_cb;
    return conv2d_fixed_tiling(d, t, lim);
}

/// @brief Number of constants of `conv2d.comp` (Vulkan specialization constants 0..21, GL #defines).
inline constexpr std::size_t conv2d_constant_count = 22;

/// @brief Names of the constants of `conv2d.comp`, in specialization-constant id order.
inline constexpr std::array<std::string_view, conv2d_constant_count> conv2d_constant_names{
    "LX", "LY", "PX", "KB", "CB", "N", "C", "H", "W", "K", "R", "S",
    "SH", "SW", "PT", "PL", "DH", "DW", "OH", "OW", "HAS_BIAS", "RELU"};

/// @brief Values of the constants of `conv2d.comp` for a valid description and its tiling.
[[nodiscard]] inline std::array<std::uint32_t, conv2d_constant_count> conv2d_constants(const conv2d_desc& d,
                                                                                      const conv2d_tiling& t) {
    const conv2d_shape o = conv2d_output_shape(d);
    return {t.lx, t.ly, t.px, t.kb, t.cb, d.n, d.c, d.h, d.w, d.k, d.r, d.s,
            d.stride_h, d.stride_w, d.pad_top, d.pad_left, d.dilation_h, d.dilation_w,
            static_cast<std::uint32_t>(o.h), static_cast<std::uint32_t>(o.w), d.bias ? 1u : 0u, d.relu ? 1u : 0u};
}

/// @brief `glsl` with a `#define NAME VALUEu` line per constant inserted after its `#version` line
/// (the OpenGL form of the specialization constants).
/// @throws std::system_error invalid_argument when `glsl` has no `#version` line
[[nodiscard]] inline std::string conv2d_glsl_with_constants(std::string_view glsl,
                                                            const std::array<std::uint32_t, conv2d_constant_count>& v) {
    // The first line that starts with #version (comments may mention the word).
    std::size_t at = glsl.starts_with("#version") ? 0 : glsl.find("\n#version");
    if (at != std::string_view::npos && at != 0) ++at;
    if (at == std::string_view::npos)
        throw_error(errc::invalid_argument, "unibuf: conv2d: the GLSL source has no #version line");
    const std::size_t eol = glsl.find('\n', at);
    const std::size_t cut = eol == std::string_view::npos ? glsl.size() : eol + 1;
    std::string out(glsl.substr(0, cut));
    if (eol == std::string_view::npos) out += '\n';
    for (std::size_t i = 0; i < conv2d_constant_count; ++i)
        out += "#define " + std::string(conv2d_constant_names[i]) + " " + std::to_string(v[i]) + "u\n";
    out += "#line " + std::to_string(1 + static_cast<std::size_t>(std::count(glsl.begin(), glsl.begin() + static_cast<std::ptrdiff_t>(cut), '\n'))) + "\n";
    out.append(glsl.substr(cut));
    return out;
}

} // namespace unibuf
