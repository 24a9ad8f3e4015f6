/// @file concepts.hpp
/// @brief What a policy must provide: one base concept per category (`AccessPolicy`,
/// `CoherencePolicy`, `PlacementPolicy`, `SyncPolicy`) and `Policy` for any of them (rule R3).
#pragma once

#include "policies.hpp"

#include <concepts>
#include <string_view>

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

} // namespace unibuf
