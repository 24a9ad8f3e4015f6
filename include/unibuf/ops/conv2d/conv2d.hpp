/// @file conv2d.hpp
/// @brief `unibuf::conv2d<B>`: a 2-D convolution built once from a backend and a description, then
/// called with buffers of that backend; it checks every size first and goes through `dispatch`,
/// so fenced and lazy buffers stay right.
///
/// The backend's part (the kernel, the tiling, the precision decision) is `conv2d_traits<B>`, in
/// ops/host/conv2d.hpp (the CPU reference), ops/vulkan/conv2d.hpp and ops/gl/conv2d.hpp (the tiled
/// GLSL kernel of conv2d.comp); the umbrella headers include them.
/// @code
/// unibuf::conv2d_desc d; d.n = 1; d.c = 3; d.h = 1080; d.w = 1920; d.k = 16; d.pad(1); d.bias = true;
/// unibuf::conv2d<unibuf::vulkan_backend> conv(gpu, d);
/// auto f = conv(input, weights, bias, output);   // the dispatch's fence; output is written
/// @endcode
#pragma once

#include "conv2d_desc.hpp"
#include "precision.hpp"
#include "tiling.hpp"

#include "../../buffer/concepts.hpp"
#include "../../buffer/dispatch.hpp"
#include "../../core/error.hpp"
#include "../../core/usage.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

namespace unibuf {

/// @brief A backend's part of conv2d; specialized in ops/<backend>/conv2d.hpp. A specialization gives
/// `using kernel = ...;`, `static conv2d_precision_decision decide(B&, const conv2d_options&)`,
/// `static conv2d_tiling tiling(B&, const conv2d_desc&, const conv2d_options&)` and
/// `static kernel make_kernel(B&, const conv2d_desc&, const conv2d_tiling&)`. A backend whose
/// precision changes the kernel (Vulkan's tensor-core path) gives instead `decide(B&, const
/// conv2d_desc&, const conv2d_options&)` and takes the decision as the last argument of `tiling`
/// and `make_kernel`.
template <class B>
struct conv2d_traits;

namespace detail {
// True when the byte ranges of two bound buffers overlap in one allocation.
template <class A, class Bf>
[[nodiscard]] bool conv2d_overlap(A& a, Bf& b) {
    if (static_cast<const void*>(&a.allocation()) != static_cast<const void*>(&b.allocation())) return false;
    const std::uint64_t a0 = a.byte_offset(), a1 = a0 + a.size_bytes();
    const std::uint64_t b0 = b.byte_offset(), b1 = b0 + b.size_bytes();
    return a0 < b1 && b0 < a1;
}

// The three steps of conv2d_traits<B>, in the form the backend gives (with or without the description
// in `decide` and the decision in `tiling` and `make_kernel`).
template <class B>
[[nodiscard]] conv2d_precision_decision conv2d_decide(B& b, const conv2d_desc& d, const conv2d_options& opt) {
    if constexpr (requires { conv2d_traits<B>::decide(b, d, opt); })
        return conv2d_traits<B>::decide(b, d, opt);
    else
        return conv2d_traits<B>::decide(b, opt);
}
template <class B>
[[nodiscard]] conv2d_tiling conv2d_tile(B& b, const conv2d_desc& d, const conv2d_options& opt,
                                        const conv2d_precision_decision& p) {
    if constexpr (requires { conv2d_traits<B>::tiling(b, d, opt, p); })
        return conv2d_traits<B>::tiling(b, d, opt, p);
    else
        return conv2d_traits<B>::tiling(b, d, opt);
}
template <class B>
[[nodiscard]] typename conv2d_traits<B>::kernel conv2d_kernel(B& b, const conv2d_desc& d, const conv2d_tiling& t,
                                                              const conv2d_precision_decision& p) {
    if constexpr (requires { conv2d_traits<B>::make_kernel(b, d, t, p); })
        return conv2d_traits<B>::make_kernel(b, d, t, p);
    else
        return conv2d_traits<B>::make_kernel(b, d, t);
}
} // namespace detail

/// @brief A 2-D convolution of one description on backend `B` (`host_backend`: the CPU reference;
/// `vulkan_backend`, `gl_backend`: the tiled kernel of conv2d.comp).
///
/// Made once (the description checked, the tiling chosen against the device's limits, the kernel
/// built), then called any number of times with `DeviceBindable` buffers of `float` (owning
/// buffers, pool slices, ring slots, `upload_stream` blocks) that are at least as large as their
/// tensors; larger buffers keep their extra elements. Move-only; the backend must outlive it.
/// @tparam B the backend
template <class B>
class conv2d {
public:
    using backend_type = B;                                ///< the backend
    using fence = typename B::fence;                       ///< what a call returns
    using kernel_type = typename conv2d_traits<B>::kernel;  ///< the backend's kernel

    /// @brief Checks `d`, decides the precision, chooses the tiling and builds the kernel.
    /// @throws std::system_error invalid_argument / out_of_range from `conv2d_validate`; unsupported
    /// when no tiling fits the device, or when `opt.require_precision` is set and the precision
    /// asked for is not available (the message gives the reason); the backend's kernel errors
    conv2d(B& backend, const conv2d_desc& d, const conv2d_options& opt = {})
        : backend_(&backend), desc_(d), sizes_(conv2d_validate(d)),
          precision_(detail::conv2d_decide(backend, d, opt)), tiling_(detail::conv2d_tile(backend, d, opt, precision_)),
          kernel_(detail::conv2d_kernel(backend, d, tiling_, precision_)) {
        if (precision_.fallback && opt.require_precision)
            throw_error(errc::unsupported, detail::conv2d_what(d) + "precision " +
                                               std::string(to_string(opt.precision)) + " was required: " +
                                               precision_.reason);
    }

    /// @brief Takes over `o`'s kernel; `o` is empty afterwards (a call of it throws invalid_argument).
    conv2d(conv2d&& o) noexcept
        : backend_(std::exchange(o.backend_, nullptr)), desc_(o.desc_), sizes_(o.sizes_), precision_(std::move(o.precision_)),
          tiling_(o.tiling_), kernel_(std::move(o.kernel_)) {}
    /// @brief Releases this kernel, then takes over `o`'s; `o` is empty afterwards.
    conv2d& operator=(conv2d&& o) noexcept {
        if (this != &o) {
            backend_ = std::exchange(o.backend_, nullptr);
            desc_ = o.desc_;
            sizes_ = o.sizes_;
            precision_ = std::move(o.precision_);
            tiling_ = o.tiling_;
            kernel_ = std::move(o.kernel_);
        }
        return *this;
    }
    conv2d(const conv2d&) = delete;
    conv2d& operator=(const conv2d&) = delete;
    ~conv2d() = default;

    /// @brief False for an empty (moved-from) conv2d.
    [[nodiscard]] explicit operator bool() const noexcept { return backend_ != nullptr; }

    /// @brief Runs the convolution: `output` from `input`, `weights` and `bias` (the description
    /// must have `bias` set). Every check runs before any buffer or the device is touched.
    /// @returns the dispatch's fence (also each buffer's last use)
    /// @throws std::system_error invalid_argument (an empty or moved-from conv2d or buffer, the
    /// output overlapping an input), out_of_range (a buffer smaller than its tensor: the message
    /// names the tensor's shape, the elements needed and those available); the dispatch's errors
    template <DeviceBindable In, DeviceBindable Wt, DeviceBindable Bi, DeviceBindable Out>
    fence operator()(In& input, Wt& weights, Bi& bias, Out& output) {
        static_assert(std::is_same_v<typename Bi::value_type, float>, "unibuf: conv2d: the bias buffer must hold float");
        if (!desc_.bias)
            throw_error(errc::invalid_argument, detail::conv2d_what(desc_) +
                                                    "a bias buffer was given but the description has no bias");
        check_common(input, weights, output);
        require_nonempty(bias, "bias");
        conv2d_check_buffer(desc_, "bias", conv2d_shape{1, desc_.k, 1, 1}, sizes_.bias, bias.size_bytes() / sizeof(float));
        if (detail::conv2d_overlap(output, bias))
            throw_error(errc::invalid_argument, detail::conv2d_what(desc_) + "the output buffer overlaps the bias buffer");
        return run(input, weights, bias, output);
    }

    /// @brief Runs a convolution without bias (the description must have `bias` false).
    /// @returns the dispatch's fence
    /// @throws std::system_error as the four-buffer call; invalid_argument when the description has a bias
    template <DeviceBindable In, DeviceBindable Wt, DeviceBindable Out>
    fence operator()(In& input, Wt& weights, Out& output) {
        if (desc_.bias)
            throw_error(errc::invalid_argument,
                        detail::conv2d_what(desc_) + "the description has a bias but no bias buffer was given");
        check_common(input, weights, output);
        return run(input, weights, weights, output);  // binding 2 is not read without a bias
    }

    /// @brief The description.
    [[nodiscard]] const conv2d_desc& desc() const noexcept { return desc_; }
    /// @brief The output shape N x K x OH x OW.
    [[nodiscard]] conv2d_shape output_shape() const noexcept { return sizes_.out; }
    /// @brief The element counts of the tensors.
    [[nodiscard]] const conv2d_sizes& sizes() const noexcept { return sizes_; }
    /// @brief The tiling chosen for this description on this device (the host backend: one group).
    [[nodiscard]] const conv2d_tiling& tiling() const noexcept { return tiling_; }
    /// @brief The precision used, what was asked, and why they differ.
    [[nodiscard]] const conv2d_precision_decision& precision() const noexcept { return precision_; }
    /// @brief The backend's kernel.
    [[nodiscard]] kernel_type& kernel() noexcept { return kernel_; }

private:
    template <class Buf>
    void require_nonempty(Buf& b, const char* tensor) const {
        if (detail::bound_buffer_empty(b) || b.size_bytes() == 0)
            throw_error(errc::invalid_argument,
                        detail::conv2d_what(desc_) + "the " + tensor + " buffer is empty (moved from or reset)");
    }

    template <class In, class Wt, class Out>
    void check_common(In& input, Wt& weights, Out& output) const {
        static_assert(std::is_same_v<typename In::value_type, float>, "unibuf: conv2d: the input buffer must hold float");
        static_assert(std::is_same_v<typename Wt::value_type, float>, "unibuf: conv2d: the weight buffer must hold float");
        static_assert(std::is_same_v<typename Out::value_type, float>, "unibuf: conv2d: the output buffer must hold float");
        static_assert(std::is_same_v<typename In::backend_type, B> && std::is_same_v<typename Wt::backend_type, B> &&
                          std::is_same_v<typename Out::backend_type, B>,
                      "unibuf: conv2d: every buffer must live on the conv2d's backend");
        if (backend_ == nullptr)
            throw_error(errc::invalid_argument, "unibuf: conv2d: call of an empty (moved-from) conv2d");
        require_nonempty(input, "input");
        require_nonempty(weights, "weight");
        require_nonempty(output, "output");
        conv2d_check_buffer(desc_, "input", conv2d_input_shape(desc_), sizes_.input, input.size_bytes() / sizeof(float));
        conv2d_check_buffer(desc_, "weight", conv2d_weight_shape(desc_), sizes_.weights, weights.size_bytes() / sizeof(float));
        conv2d_check_buffer(desc_, "output", sizes_.out, sizes_.output, output.size_bytes() / sizeof(float));
        if (detail::conv2d_overlap(output, input))
            throw_error(errc::invalid_argument, detail::conv2d_what(desc_) + "the output buffer overlaps the input buffer");
        if (detail::conv2d_overlap(output, weights))
            throw_error(errc::invalid_argument, detail::conv2d_what(desc_) + "the output buffer overlaps the weight buffer");
    }

    template <class In, class Wt, class Bi, class Out>
    fence run(In& input, Wt& weights, Bi& bias, Out& output) {
        // A larger output buffer keeps its extra elements: then its older contents must reach the
        // device first (read_write); an exact one is only written.
        const usage out_use = output.size_bytes() / sizeof(float) == sizes_.output ? usage::write : usage::read_write;
        return unibuf::dispatch(*backend_, kernel_, tiling_.groups, std::span<const std::byte>{},
                                bind(input, usage::read), bind(weights, usage::read), bind(bias, usage::read),
                                bind(output, out_use));
    }

    B* backend_;
    conv2d_desc desc_;
    conv2d_sizes sizes_;
    conv2d_precision_decision precision_;
    conv2d_tiling tiling_;
    kernel_type kernel_;
};

} // namespace unibuf
