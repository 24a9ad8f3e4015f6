/// @file concepts.hpp
/// @brief What a buffer is, the concepts that relate a buffer to an operation (`HostReadable`,
/// `HostWritable`, `HostViewable`, `DeviceBindable`, `LazySynced`), and the rules on combining
/// policies into a buffer. The policy concepts are in policy/concepts.hpp, `Backend` in
/// backend/concepts.hpp.
///
/// ## Combination rules (checked by `basic_buffer`, each with its own message)
/// | rule | why |
/// |---|---|
/// | R1 element type is a trivially copyable object type, not const/volatile | bytes are copied, mapped and flushed as raw memory |
/// | R2 at most one policy per category; duplicates and conflicts rejected | positional ambiguity is the classic policy-design bug |
/// | R3 every policy argument is a complete policy: a known `policy_category`, a `name`, its category's traits | a typo must not silently become a default |
/// | R4 `write_combined` only with an access mode the host does not read | uncached host reads are slow (tens of MB/s through a PCIe BAR) |
/// | R5 `placement::device` needs `sync::fenced` or `sync::lazy` | host access is a staging copy that must be ordered after device work |
/// | R6 `placement::device` takes only `coherence::coherent` | there is no host mapping whose coherence could be chosen |
/// | R7 no host view/pointer of a `placement::device` buffer | the memory is not host-visible; use write/read/to_vector |
/// | R8 no host read of a `write_only` buffer (nor of an element of its view: conversion, arithmetic, comparison, compound assignment, element-to-element assignment), no host write of a `read_only` buffer | the access policy is what chose the memory type |
/// | R9 a buffer's backend argument is a `Backend` (the aliases' too) | every operation of the buffer is a call into the backend |
/// | R10 `state()`, `sync_to_device()`, `sync_to_host()`, `mark_host_dirty()`, `mark_device_dirty()` only under `sync::lazy` | only a lazy buffer tracks where its newest data is; the others use `flush`/`invalidate`/`wait` |
/// R1–R6 and R9 fire when the buffer type is instantiated, R7, R8 and R10 when the forbidden member
/// is used; each with one error whose message names its rule.
#pragma once

#include "../backend/concepts.hpp"
#include "../policy/concepts.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace unibuf {

/// @brief An element type a buffer may hold (rule R1).
template <class T>
concept BufferElement = std::is_object_v<T> && std::is_trivially_copyable_v<T> &&
                        !std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_array_v<T>;

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
