/// @file concepts.hpp
/// @brief What a policy, a backend and a buffer must provide, and the rules on combining policies.
///
/// Layers: one base concept per policy axis (`AccessPolicy`, ...), `Policy` for any of them,
/// `Backend` for what `basic_buffer` needs from a backend, then buffer concepts that relate a
/// buffer to an operation (`HostReadable`, `HostWritable`, `HostViewable`, `DeviceBindable`).
///
/// ## Combination rules (checked by `basic_buffer`, each with its own message)
/// | rule | why |
/// |---|---|
/// | R1 element type is a trivially copyable object type, not const/volatile | bytes are copied, mapped and flushed as raw memory |
/// | R2 at most one policy per category; duplicates and conflicts rejected | positional ambiguity is the classic policy-design bug |
/// | R3 every policy argument is a complete policy: a known `policy_category`, a `name`, its category's traits | a typo must not silently become a default |
/// | R4 `write_combined` only with an access mode the host does not read | uncached reads run at ~0.03 GB/s (H100 BAR) |
/// | R5 `placement::device` needs `sync::fenced` or `sync::lazy` | host access is a staging copy that must be ordered after device work |
/// | R6 `placement::device` takes only `coherence::coherent` | there is no host mapping whose coherence could be chosen |
/// | R7 no host view/pointer of a `placement::device` buffer | the memory is not host-visible; use write/read/to_vector |
/// | R8 no host read of a `write_only` buffer (nor of an element of its view: conversion, arithmetic, comparison, compound assignment, element-to-element assignment), no host write of a `read_only` buffer | the access policy is what chose the memory type |
/// | R9 a buffer's backend argument is a `Backend` (the aliases' too) | every operation of the buffer is a call into the backend |
/// | R10 `state()`, `sync_to_device()`, `sync_to_host()`, `mark_host_dirty()`, `mark_device_dirty()` only under `sync::lazy` | only a lazy buffer tracks where its newest data is; the others use `flush`/`invalidate`/`wait` |
/// R1–R6 and R9 fire when the buffer type is instantiated, R7, R8 and R10 when the forbidden member
/// is used; each with one error whose message names its rule.
#pragma once

#include "policy.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace unibuf {

/// @brief A policy of category `Tag`: names `policy_category = Tag` and `name`. What a policy type
/// must provide in full (rule R3): `using policy_category = <one of the four tags>;`,
/// `static constexpr std::string_view name`, and the traits of its category (the concepts below).
template <class P, class Tag>
concept PolicyOf = requires {
    typename P::policy_category;
    requires std::same_as<typename P::policy_category, Tag>;
    { P::name } -> std::convertible_to<std::string_view>;
};

/// @brief A host-access policy: says whether the host reads and writes.
template <class P>
concept AccessPolicy = PolicyOf<P, access_tag> && requires {
    { P::host_read } -> std::convertible_to<bool>;
    { P::host_write } -> std::convertible_to<bool>;
} && (P::host_read || P::host_write);

/// @brief A coherence policy: says whether flush/invalidate is needed (`requires_flush`) and
/// whether the memory may be uncached write-combined (`uncached`, then the host must never read it).
template <class P>
concept CoherencePolicy = PolicyOf<P, coherence_tag> && requires {
    { P::requires_flush } -> std::convertible_to<bool>;
    { P::uncached } -> std::convertible_to<bool>;
};

/// @brief A placement policy: names a `placement_kind` and whether a host pointer exists.
template <class P>
concept PlacementPolicy = PolicyOf<P, placement_tag> && requires {
    { P::kind } -> std::convertible_to<placement_kind>;
    { P::host_pointer } -> std::convertible_to<bool>;
};

/// @brief A synchronization policy: names a `sync_kind`.
template <class P>
concept SyncPolicy = PolicyOf<P, sync_tag> && requires {
    { P::kind } -> std::convertible_to<sync_kind>;
};

/// @brief Any policy of the four categories.
template <class P>
concept Policy = AccessPolicy<P> || CoherencePolicy<P> || PlacementPolicy<P> || SyncPolicy<P>;

/// @brief An element type a buffer may hold (rule R1).
template <class T>
concept BufferElement = std::is_object_v<T> && std::is_trivially_copyable_v<T> &&
                        !std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_array_v<T>;

struct allocation_report;
struct device_limits;

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

/// @brief A buffer type: exposes its element, backend and resolved policies.
template <class Buf>
concept Buffer = requires {
    typename Buf::value_type;
    typename Buf::backend_type;
    typename Buf::access_policy;
    typename Buf::coherence_policy;
    typename Buf::placement_policy;
    typename Buf::sync_policy;
} && Backend<typename Buf::backend_type>;

/// @brief The host may read the buffer's contents (`read`, `to_vector`, read views).
template <class Buf>
concept HostReadable = Buffer<Buf> && Buf::access_policy::host_read;

/// @brief The host may write the buffer's contents (`write`, `fill`, write views).
template <class Buf>
concept HostWritable = Buffer<Buf> && Buf::access_policy::host_write;

/// @brief The buffer hands out a host pointer / view (not `placement::device`).
template <class Buf>
concept HostViewable = Buffer<Buf> && Buf::placement_policy::host_pointer;

/// @brief The buffer can be bound to device work of its backend.
template <class Buf>
concept DeviceBindable = Buffer<Buf> && requires(Buf& buf) {
    { buf.allocation() };
    { buf.byte_offset() } -> std::convertible_to<std::uint64_t>;
    { buf.size_bytes() } -> std::convertible_to<std::uint64_t>;
};

/// @brief The buffer's state is tracked by the lazy state machine.
template <class Buf>
concept LazySynced = Buffer<Buf> && (Buf::sync_policy::kind == sync_kind::lazy);

} // namespace unibuf
