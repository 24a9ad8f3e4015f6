/// @file concepts.hpp
/// @brief The whole backend contract in code: `Backend` (what a buffer needs: allocate, map,
/// flush/invalidate, copy, fences, bounded waits), `FenceSource` (the fence after all submitted
/// work, under one name), `DispatchingBackend` (compute dispatch of a kernel), `ProducePlanner`
/// (a backend's own choice of fill path), `CopyBatchingBackend` (several copies in one
/// submission), and `bound_range`, a buffer range as a dispatch sees it.
#pragma once

#include "../core/vocabulary.hpp"
#include "produce_plan.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

namespace unibuf {

namespace detail {
/// @brief The two types a backend names (checked first, so that a type without them fails
/// `Backend` with one diagnosis instead of an error per parameter of the operations below).
template <class B>
concept backend_allocation_and_fence_types = requires {
    typename B::allocation;
    typename B::fence;
};

/// @brief The operations a backend provides on its allocations and fences.
template <class B>
concept backend_operations = requires(B& b, typename B::allocation& a, const memory_request& req,
                                      std::error_code& ec, std::uint64_t off, std::uint64_t n,
                                      const typename B::fence& f, std::chrono::nanoseconds timeout) {
    requires std::movable<typename B::allocation>;
    requires std::copyable<typename B::fence>;
    { b.allocate(req) } -> std::same_as<typename B::allocation>;
    { b.try_allocate(req, ec) } -> std::same_as<typename B::allocation>;
    { a.host_data() } -> std::same_as<std::byte*>;
    { a.size() } -> std::same_as<std::uint64_t>;
    { a.report() } -> std::convertible_to<const allocation_report&>;
    { b.flush(a, off, n) } -> std::same_as<typename B::fence>;
    { b.invalidate(a, off, n, timeout) } -> std::same_as<void>;
    { b.copy(a, off, a, off, n) } -> std::same_as<typename B::fence>;
    { b.wait(f, timeout) } -> std::same_as<bool>;
    { b.is_complete(f) } -> std::same_as<bool>;
    { b.limits() } -> std::convertible_to<device_limits>;
    { b.name() } -> std::convertible_to<std::string_view>;
};
} // namespace detail

/// @brief What `basic_buffer` needs from a backend (rule R9).
///
/// - `allocation`: move-only RAII handle of one allocation; `host_data()` is the persistent
///   mapping (zero-copy) or the persistent staging area (staged), never null for a placement
///   with `host_pointer`; `report()` says what was chosen and why.
/// - `fence`: a copyable value naming a point on the device's timeline; a default-constructed
///   fence is complete.
/// - `flush(a, off, n)`: makes host writes in the byte range visible to the device (no-op when
///   coherent and zero-copy, a flush rounded to the non-coherent atom, or a staging copy); returns
///   the fence after which the device sees the bytes.
/// - `invalidate(a, off, n, timeout)`: makes device writes in the range visible to the host; the
///   caller has waited for the device work that wrote them; a staging copy is waited for inside,
///   bounded by `timeout` (the caller's own bound, e.g. the buffer's `set_wait_timeout`); running
///   out throws `errc::timeout` naming the wait and the duration.
/// - `wait(f, timeout)`: bounded wait, false on timeout; `is_complete(f)` never blocks.
template <class B>
concept Backend = detail::backend_allocation_and_fence_types<B> && detail::backend_operations<B>;

/// @brief One buffer range bound to device work, as a backend sees it (binding index = position).
template <class B>
struct bound_range {
    typename B::allocation* allocation = nullptr;
    std::uint64_t offset = 0;  ///< bytes
    std::uint64_t size = 0;    ///< bytes
    usage use = usage::read_write;
};

/// @brief A backend that names the fence after all work submitted so far: `submitted_fence()`
/// completes when everything submitted before the call is done (Vulkan and host: the last
/// timeline value; OpenGL: a new sync object). Used by the upload stream to close a segment.
template <class B>
concept FenceSource = Backend<B> && requires(B& b) {
    { b.submitted_fence() } -> std::same_as<typename B::fence>;
};

/// @brief A backend that runs `Kernel` over work groups with buffer ranges bound in order:
/// `dispatch(kernel, groups, ranges, push bytes, fences to wait for)` returns the dispatch's fence.
template <class B, class Kernel>
concept DispatchingBackend = Backend<B> && requires(B& b, Kernel& k, dispatch_size groups,
                                                    std::span<const bound_range<B>> ranges,
                                                    std::span<const std::byte> push,
                                                    std::span<const typename B::fence> after) {
    { b.dispatch(k, groups, ranges, push, after) } -> std::same_as<typename B::fence>;
};

/// @brief A backend that decides itself how a parallel fill of `bytes` bytes by `threads`
/// writers reaches an allocation (`plan_produce`); others get the producer's default (staged
/// when the memory has no mapping, direct otherwise).
template <class B>
concept ProducePlanner = Backend<B> && requires(const B& b, const typename B::allocation& a) {
    { b.plan_produce(a, std::uint64_t{}, 1u) } -> std::convertible_to<produce_plan>;
};

/// @brief A backend that records several copies into one submission: `begin()` gives a batch
/// with `copy(src, src_off, dst, dst_off, n)`, `upload(a, off, n)` (its staging -> its device
/// memory) and `submit()` returning the batch's fence (Vulkan). The producer queues the copies of a
/// group of complete chunks as one batch on such a backend, and one copy or flush per chunk on others.
template <class B>
concept CopyBatchingBackend = Backend<B> && requires(B& b, typename B::allocation& x) {
    b.begin().copy(x, 0, x, 0, 0);
    b.begin().upload(x, 0, 0);
    { b.begin().submit() } -> std::same_as<typename B::fence>;
};

} // namespace unibuf
