/// @file sync.hpp
/// @brief Synchronization policies: who keeps host access and device work in order.
#pragma once

#include "category.hpp"

namespace unibuf::sync {

/// @brief No tracking: the caller flushes, invalidates and waits for fences itself. Cheapest;
/// every ordering bug is the caller's.
struct none {
    using policy_category = sync_tag;
    static constexpr sync_kind kind = sync_kind::none;
    static constexpr std::string_view name = "sync::none";
};

/// @brief The buffer remembers the fence of its last device use; host access waits for it.
/// Flushes and staging copies remain named calls.
struct fenced {
    using policy_category = sync_tag;
    static constexpr sync_kind kind = sync_kind::fenced;
    static constexpr std::string_view name = "sync::fenced";
};

/// @brief Host and device copies are tracked by a state machine (`buffer_state`) and synchronized
/// on access: flushes, staging copies and fence waits happen when the other side next needs the data.
struct lazy {
    using policy_category = sync_tag;
    static constexpr sync_kind kind = sync_kind::lazy;
    static constexpr std::string_view name = "sync::lazy";
};

} // namespace unibuf::sync
