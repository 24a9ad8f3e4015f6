/// @file policy_set.hpp
/// @brief Resolves an unordered policy pack into one policy per category, with defaults.
#pragma once

#include "../concepts.hpp"
#include "meta.hpp"

#include <type_traits>

namespace unibuf {

/// @brief The documented defaults for a category missing from a buffer's policy list.
struct default_policies {
    using access = unibuf::access::read_write;        ///< the host reads and writes
    using coherence = unibuf::coherence::coherent;    ///< no explicit flush
    using placement = unibuf::placement::automatic;   ///< chosen from the device
    using sync = unibuf::sync::fenced;                ///< host access waits for device use
};

namespace detail {

template <class P, class Tag>
inline constexpr bool has_category = PolicyOf<P, Tag>;

/// @brief Picks the first policy of category `Tag` in `Ps...`, else `Default`.
template <class Tag, class Default, class... Ps>
struct pick;
template <class Tag, class Default>
struct pick<Tag, Default> {
    using type = Default;
};
template <class Tag, class Default, class P, class... Ps>
struct pick<Tag, Default, P, Ps...> {
    using type = std::conditional_t<has_category<P, Tag>, P, typename pick<Tag, Default, Ps...>::type>;
};

template <class Tag, class... Ps>
inline constexpr std::size_t count_category = (std::size_t{0} + ... + (has_category<Ps, Tag> ? 1u : 0u));

template <class P>
inline constexpr bool known_category = has_category<P, access_tag> || has_category<P, coherence_tag> ||
                                       has_category<P, placement_tag> || has_category<P, sync_tag>;

/// @brief True when some type occurs twice in the pack.
template <class... Ps>
inline constexpr bool has_duplicate = ((count_same<Ps, Ps...> > 1) || ... || false);

} // namespace detail

/// @brief The four resolved policies of a policy pack given in any order.
///
/// Diagnoses (rules R2, R3 of concepts.hpp) with one message each; after a diagnosis the
/// members fall back to defaults so that no cascade of follow-on errors buries the message.
template <class... Ps>
struct policy_set {
    // Declared before the diagnostics: a compiler that drops members after a failed static_assert
    // must still find them, so the diagnosis stays one message.
    using access = typename detail::pick<access_tag, default_policies::access, Ps...>::type;
    using coherence = typename detail::pick<coherence_tag, default_policies::coherence, Ps...>::type;
    using placement = typename detail::pick<placement_tag, default_policies::placement, Ps...>::type;
    using sync = typename detail::pick<sync_tag, default_policies::sync, Ps...>::type;

    static constexpr bool all_policies = (detail::known_category<Ps> && ...);
    static_assert(all_policies,
                  "unibuf: a buffer policy argument is not a policy: each must name "
                  "policy_category = access_tag, coherence_tag, placement_tag or sync_tag (rule R3)");

    static constexpr bool no_duplicates = !detail::has_duplicate<Ps...>;
    static_assert(no_duplicates,
                  "unibuf: the same policy is given twice in a buffer's policy list; give each "
                  "category at most once (rule R2)");

    static constexpr bool no_conflicts = !no_duplicates ||
                                         (detail::count_category<access_tag, Ps...> <= 1 &&
                                          detail::count_category<coherence_tag, Ps...> <= 1 &&
                                          detail::count_category<placement_tag, Ps...> <= 1 &&
                                          detail::count_category<sync_tag, Ps...> <= 1);
    static_assert(no_conflicts,
                  "unibuf: conflicting policies: two different policies of one category (two access, "
                  "coherence, placement or sync policies) in a buffer's policy list (rule R2)");

    static_assert(AccessPolicy<access>,
                  "unibuf: the access policy lacks host_read/host_write traits, or neither is true (see AccessPolicy)");
    static_assert(CoherencePolicy<coherence>,
                  "unibuf: the coherence policy lacks requires_flush/uncached traits (see CoherencePolicy)");
    static_assert(PlacementPolicy<placement>,
                  "unibuf: the placement policy lacks kind/host_pointer traits (see PlacementPolicy)");
    static_assert(SyncPolicy<sync>, "unibuf: the sync policy lacks a kind trait (see SyncPolicy)");
};

/// @brief The run-time description of a resolved policy set, for a buffer of `bytes` bytes.
template <class Set>
[[nodiscard]] constexpr memory_request memory_request_for(std::uint64_t bytes) noexcept {
    memory_request r;
    r.size_bytes = bytes;
    r.host_read = Set::access::host_read;
    r.host_write = Set::access::host_write;
    r.explicit_flush = Set::coherence::requires_flush;
    r.write_combined = Set::coherence::uncached;
    r.placement = Set::placement::kind;
    r.sync = Set::sync::kind;
    return r;
}

} // namespace unibuf
