/// @file coopmat_tiling.hpp
/// @brief The tile sizes of the tensor-core conv2d kernel (`conv2d_coopmat.comp`, an implicit GEMM
/// on cooperative matrices), chosen per shape and checked against the device's shared-memory,
/// work-group and group-count limits; the kernel's specialization constants.
#pragma once

#include "conv2d_desc.hpp"
#include "tiling.hpp"

#include "../../core/error.hpp"
#include "../../core/usage.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace unibuf {

/// @brief The device limits the tensor-core tiling must respect, beyond `conv2d_device_limits`.
struct conv2d_coopmat_limits {
    conv2d_device_limits compute;  ///< shared memory and work-group size
    std::array<std::uint32_t, 3> max_group_count{65535, 65535, 65535};  ///< maxComputeWorkGroupCount
    std::uint32_t subgroup_size = 32;  ///< invocations per subgroup (a work group holds whole subgroups)
};

/// @brief How `conv2d_coopmat.comp` tiles one description: a work group of `wm` x `wn` subgroups
/// computes `bm` consecutive output pixels of one image for `bn` output channels, taking `bk` of
/// the C*R*S products per round, with `mm` x `mn` x `mk` cooperative matrices.
struct conv2d_coopmat_tiling {
    std::uint32_t invocations = 128;  ///< wm * wn * subgroup size (the work-group size in x)
    std::uint32_t bm = 128;           ///< output pixels per group (a multiple of wm * mm)
    std::uint32_t bn = 64;            ///< output channels per group (a multiple of wn * mn)
    std::uint32_t bk = 32;            ///< C*R*S columns per round (a multiple of mk)
    std::uint32_t wm = 2, wn = 2;     ///< subgroups along the pixels and along the channels
    std::uint32_t mm = 16, mn = 16, mk = 16;  ///< the cooperative matrix shape M x N x K
    std::uint32_t shared_bytes = 0;   ///< shared memory the work group uses
    dispatch_size groups;             ///< work groups of one convolution (pixel blocks x + y * groups.x)

    /// @brief "128 px x 64 ch x 32 per round, 2x2 subgroups, 16x16x16 matrices (25600 B shared)".
    [[nodiscard]] std::string to_string() const {
        return std::to_string(bm) + " px x " + std::to_string(bn) + " ch x " + std::to_string(bk) + " per round, " +
               std::to_string(wm) + "x" + std::to_string(wn) + " subgroups, " + std::to_string(mm) + "x" +
               std::to_string(mn) + "x" + std::to_string(mk) + " matrices (" + std::to_string(shared_bytes) + " B shared)";
    }
};

/// @brief Shared memory of `conv2d_coopmat.comp` for a tile: the fp16 input and weight tiles (columns
/// padded by 8 halves) and each subgroup's fp32 staging of one mm x mn output tile (columns padded
/// by 4 floats).
[[nodiscard]] constexpr std::uint64_t conv2d_coopmat_shared_bytes(std::uint32_t bm, std::uint32_t bn, std::uint32_t bk,
                                                                  std::uint32_t wm, std::uint32_t wn, std::uint32_t mm,
                                                                  std::uint32_t mn) noexcept {
    return 2 * (std::uint64_t{bk} * (std::uint64_t{bm} + 8) + std::uint64_t{bn} * (std::uint64_t{bk} + 8)) +
           4 * (std::uint64_t{wm} * wn * mn * (std::uint64_t{mm} + 4));
}

namespace detail {
// Records why no tensor-core tile fits; the empty result.
[[nodiscard]] inline std::optional<conv2d_coopmat_tiling> conv2d_no_tile(std::string& why, std::string text) {
    why = std::move(text);
    return std::nullopt;
}
} // namespace detail

/// @brief Chooses the tensor-core tile of a valid description `d` for matrices `mm` x `mn` x `mk`.
///
/// Four subgroups per group: output channels per group 16 (K <= 16; 4x1 subgroups), 32 (K <= 32)
/// or 64 (2x2 subgroups); output pixels per group a power-of-two multiple of 4 or 2 matrices that
/// divides the group's invocations (each invocation gathers for one pixel), up to 128 (fewer for
/// small outputs); 32 of the C*R*S products per round. Then, while shared memory is past the device's limit: fewer
/// pixels, fewer products per round, fewer channels.
/// @returns the tile, or none when no tile fits (`why` then says what the smallest needs and what
/// the device offers), a matrix shape does not tile (N must divide 16, K divide 32) or the grid
/// passes maxComputeWorkGroupCount
/// @throws std::system_error out_of_range when a padded side reaches 2^30; what `conv2d_validate` throws
[[nodiscard]] inline std::optional<conv2d_coopmat_tiling> conv2d_try_coopmat_tiling(const conv2d_desc& d, std::uint32_t mm,
                                                                                    std::uint32_t mn, std::uint32_t mk,
                                                                                    const conv2d_coopmat_limits& lim,
                                                                                    std::string& why) {
    const conv2d_sizes z = conv2d_validate(d);
    constexpr std::uint64_t side_limit = std::uint64_t{1} << 30;
    if (std::uint64_t{d.h} + d.pad_top + d.pad_bottom >= side_limit ||
        std::uint64_t{d.w} + d.pad_left + d.pad_right >= side_limit)
        throw_error(errc::out_of_range, detail::conv2d_what(d) + "the padded input has a side of 2^30 or more; the "
                                                                 "tensor-core kernel takes sides below 2^30");
    if (mm == 0 || mn == 0 || mk == 0 || 16 % mn != 0 || 32 % mk != 0 || mm > 64 || lim.subgroup_size == 0)
        return detail::conv2d_no_tile(why, detail::conv2d_what(d) + "cooperative matrices " + std::to_string(mm) + "x" +
                                           std::to_string(mn) + "x" + std::to_string(mk) + " with subgroups of " +
                                           std::to_string(lim.subgroup_size) +
                                           " do not tile (N must divide 16, K divide 32, subgroups be non-empty)");
    conv2d_coopmat_tiling t;
    t.mm = mm;
    t.mn = mn;
    t.mk = mk;
    t.bn = d.k <= 16 ? 16 : d.k <= 32 ? 32 : 64;
    t.wn = t.bn >= 32 ? 2 : 1;
    t.wm = 4 / t.wn;
    const std::uint64_t ohw = z.out.h * z.out.w;
    const std::uint32_t step = t.wm * mm;  // bm is a multiple of this
    t.bk = 32;
    t.invocations = t.wm * t.wn * lim.subgroup_size;
    if (t.invocations % step != 0)
        return detail::conv2d_no_tile(why, detail::conv2d_what(d) + "subgroups of " + std::to_string(lim.subgroup_size) +
                                               " give " + std::to_string(t.invocations) +
                                               " invocations per group, not a multiple of the " + std::to_string(step) +
                                               " pixels of one row of matrices");
    t.bm = step;
    while (t.bm * 2 <= std::min<std::uint32_t>(128, t.invocations) && t.invocations % (t.bm * 2) == 0 && t.bm < ohw)
        t.bm *= 2;
    const auto shared = [&] { return conv2d_coopmat_shared_bytes(t.bm, t.bn, t.bk, t.wm, t.wn, t.mm, t.mn); };
    if (std::uint64_t{t.invocations} > lim.compute.max_invocations || t.invocations > lim.compute.max_size_x)
        return detail::conv2d_no_tile(why, detail::conv2d_what(d) + "the tensor-core kernel needs " +
                                           std::to_string(t.invocations) + " invocations per group (" +
                                           std::to_string(t.wm * t.wn) + " subgroups of " +
                                           std::to_string(lim.subgroup_size) + "); the device offers " +
                                           std::to_string(lim.compute.max_invocations) + " (" +
                                           std::to_string(lim.compute.max_size_x) + " in x)");
    while (shared() > lim.compute.max_shared_bytes) {
        if (t.bm > step) {
            t.bm = std::max(step, t.bm / 2 / step * step);
        } else if (t.bk > mk) {
            t.bk = std::max(mk, t.bk / 2 / mk * mk);
        } else if (t.bn / 2 >= t.wn * mn && (t.bn / 2) % (t.wn * mn) == 0) {
            t.bn /= 2;
        } else {
            return detail::conv2d_no_tile(why, detail::conv2d_what(d) + "the smallest tensor-core tile (" + t.to_string() +
                                               ") needs " + std::to_string(shared()) +
                                               " bytes of shared memory; the device offers " +
                                               std::to_string(lim.compute.max_shared_bytes));
        }
    }
    t.shared_bytes = static_cast<std::uint32_t>(shared());
    const std::uint64_t blocks = (ohw + t.bm - 1) / t.bm;
    const std::uint64_t gx = std::min<std::uint64_t>(blocks, std::max<std::uint32_t>(1, lim.max_group_count[0]));
    const std::uint64_t gy = (blocks + gx - 1) / gx;
    const std::uint64_t gz = std::uint64_t{d.n} * ((d.k + t.bn - 1) / t.bn);
    if (gy > lim.max_group_count[1] || gz > lim.max_group_count[2])
        return detail::conv2d_no_tile(why, detail::conv2d_what(d) + "the tensor-core grid " + std::to_string(gx) + " x " +
                                           std::to_string(gy) + " x " + std::to_string(gz) +
                                           " passes the device's maxComputeWorkGroupCount " +
                                           std::to_string(lim.max_group_count[0]) + " x " +
                                           std::to_string(lim.max_group_count[1]) + " x " +
                                           std::to_string(lim.max_group_count[2]));
    t.groups.x = static_cast<std::uint32_t>(gx);
    t.groups.y = static_cast<std::uint32_t>(gy);
    t.groups.z = static_cast<std::uint32_t>(gz);
    return t;
}

/// @brief `conv2d_try_coopmat_tiling`, throwing when no tile fits.
/// @throws std::system_error unsupported with the reason no tile fits; out_of_range when a padded
/// side reaches 2^30; what `conv2d_validate` throws
[[nodiscard]] inline conv2d_coopmat_tiling conv2d_choose_coopmat_tiling(const conv2d_desc& d, std::uint32_t mm,
                                                                        std::uint32_t mn, std::uint32_t mk,
                                                                        const conv2d_coopmat_limits& lim) {
    std::string why;
    auto t = conv2d_try_coopmat_tiling(d, mm, mn, mk, lim, why);
    if (!t) throw_error(errc::unsupported, why);
    return *t;
}

/// @brief Number of specialization constants of `conv2d_coopmat.comp` (ids 0..26).
inline constexpr std::size_t conv2d_coopmat_constant_count = 27;

/// @brief Values of the specialization constants of `conv2d_coopmat.comp` (id order: NL, BM, BN,
/// BK, WM, WN, MM, MN, MK, GX, N, C, H, W, K, R, S, SH, SW, PT, PL, DH, DW, OH, OW, HAS_BIAS, RELU).
[[nodiscard]] inline std::array<std::uint32_t, conv2d_coopmat_constant_count> conv2d_coopmat_constants(
    const conv2d_desc& d, const conv2d_coopmat_tiling& t) {
    const conv2d_shape o = conv2d_output_shape(d);
    return {t.invocations, t.bm, t.bn, t.bk, t.wm, t.wn, t.mm, t.mn, t.mk, t.groups.x,
            d.n, d.c, d.h, d.w, d.k, d.r, d.s, d.stride_h, d.stride_w, d.pad_top, d.pad_left,
            d.dilation_h, d.dilation_w, static_cast<std::uint32_t>(o.h), static_cast<std::uint32_t>(o.w),
            d.bias ? 1u : 0u, d.relu ? 1u : 0u};
}

/// @brief The `conv2d_tiling` a tensor-core conv2d reports (`conv2d<B>::tiling()`): `lx` the
/// invocations per group, `ly` 1, `px` the output pixels per group, `kb` the output channels per
/// group, `cb` the C*R*S products per round, the shared bytes and the groups of `t`.
[[nodiscard]] inline conv2d_tiling conv2d_tiling_of(const conv2d_coopmat_tiling& t) noexcept {
    conv2d_tiling r;
    r.lx = t.invocations;
    r.ly = 1;
    r.px = t.bm;
    r.kb = t.bn;
    r.cb = t.bk;
    r.shared_bytes = t.shared_bytes;
    r.groups = t.groups;
    return r;
}

} // namespace unibuf
