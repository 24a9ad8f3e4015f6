/// @file category.hpp
/// @brief The four policy categories (the run-time kinds they name live in core/memory_request.hpp).
///
/// A policy is an empty tag type with a `policy_category` alias naming one of the tags below, a
/// `static constexpr std::string_view name`, and its category's `static constexpr` traits. Users
/// may write their own policy types; the concepts in `concepts.hpp` say what each category must
/// provide, and a buffer given an incomplete one says what it lacks (rule R3).
#pragma once

#include "../core/memory_request.hpp"

namespace unibuf {

/// @brief Category tag of host-access policies (`access::read_only`, ...).
struct access_tag {};
/// @brief Category tag of coherence policies (`coherence::coherent`, ...).
struct coherence_tag {};
/// @brief Category tag of placement policies (`placement::host`, ...).
struct placement_tag {};
/// @brief Category tag of synchronization policies (`sync::none`, ...).
struct sync_tag {};

} // namespace unibuf
