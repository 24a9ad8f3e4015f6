/// @file conv2d.hpp
/// @brief The host backend's conv2d: the CPU reference (`conv2d_reference`) run as a host kernel.
#pragma once

#include "../../backend/host/host_backend.hpp"
#include "../conv2d/conv2d.hpp"
#include "../conv2d/reference.hpp"

#include <span>

namespace unibuf {

/// @brief conv2d on the host backend: the kernel is `conv2d_reference` over the bound memory, on
/// the backend's worker thread with `std::thread::hardware_concurrency()` helpers; fp32 only.
template <>
struct conv2d_traits<host_backend> {
    using kernel = host_kernel;  ///< the reference over bindings 0 input, 1 weights, 2 bias, 3 output

    /// @brief exact fp32 always; a tensor-core request falls back, with the reason.
    static conv2d_precision_decision decide(host_backend&, const conv2d_options& opt) {
        conv2d_precision_decision d;
        d.requested = opt.precision;
        d.used = conv2d_precision::exact_fp32;
        d.fallback = opt.precision != conv2d_precision::exact_fp32;
        d.reason = d.fallback ? "the host backend runs the CPU reference, which has no tensor cores"
                              : "the CPU reference (double sums rounded to float)";
        return d;
    }
    /// @brief One group: the reference does its own threading.
    static conv2d_tiling tiling(host_backend&, const conv2d_desc&, const conv2d_options&) {
        conv2d_tiling t;
        t.lx = t.ly = t.px = t.kb = t.cb = 1;
        t.groups = {1, 1, 1};
        return t;
    }
    /// @brief The reference over the bound memory (bias unread when the description has none).
    static kernel make_kernel(host_backend&, const conv2d_desc& d, const conv2d_tiling&) {
        return [d](const host_invocation& inv) {
            const auto bias = d.bias ? std::span<const float>(inv.as<const float>(2)) : std::span<const float>{};
            conv2d_reference(d, inv.as<const float>(0), inv.as<const float>(1), bias, inv.as<float>(3));
        };
    }
};

} // namespace unibuf
