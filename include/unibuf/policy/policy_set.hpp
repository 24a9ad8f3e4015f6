/// @file policy_set.hpp
/// @brief Resolves an unordered policy pack into one policy per category, with defaults.
#pragma once

#include "../core/memory_request.hpp"
#include "concepts.hpp"
#include "../core/detail/meta.hpp"

#include <concepts>
#include <string_view>
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

/// @brief `P` names `policy_category = Tag` (whatever else it lacks).
template <class P, class Tag>
concept names_category = requires { typename P::policy_category; } && std::same_as<typename P::policy_category, Tag>;

/// @brief `P` names itself: `static constexpr std::string_view name`.
template <class P>
concept names_itself = requires {
    { P::name } -> std::convertible_to<std::string_view>;
};

template <class P, class Tag>
inline constexpr bool has_category = names_category<P, Tag>;

/// @brief Picks the first type of category `Tag` in `Ps...`, else `Default`.
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
/// A policy type must provide (the README lists the same, under "The policies"):
/// - `using policy_category = unibuf::access_tag;` (or `coherence_tag`, `placement_tag`, `sync_tag`);
/// - `static constexpr std::string_view name` (how messages and reports name it);
/// - its category's traits: access `host_read`, `host_write` (bool, at least one true);
///   coherence `requires_flush`, `uncached` (bool); placement `kind` (`placement_kind`),
///   `host_pointer` (bool); sync `kind` (`sync_kind`).
///
/// Diagnoses (rules R2, R3 of concepts.hpp) with one message each, each check assuming the ones
/// before it passed; a category whose policy is diagnosed resolves to its default, so that no
/// cascade of follow-on errors buries the message.
template <class... Ps>
struct policy_set {
private:
    // What was given, per category (or the default), before the checks below.
    using given_access = typename detail::pick<access_tag, default_policies::access, Ps...>::type;
    using given_coherence = typename detail::pick<coherence_tag, default_policies::coherence, Ps...>::type;
    using given_placement = typename detail::pick<placement_tag, default_policies::placement, Ps...>::type;
    using given_sync = typename detail::pick<sync_tag, default_policies::sync, Ps...>::type;

public:
    // Declared before the diagnostics: a compiler that drops members after a failed static_assert
    // must still find them, so the diagnosis stays one message.
    using access = std::conditional_t<AccessPolicy<given_access>, given_access, default_policies::access>;
    using coherence = std::conditional_t<CoherencePolicy<given_coherence>, given_coherence, default_policies::coherence>;
    using placement = std::conditional_t<PlacementPolicy<given_placement>, given_placement, default_policies::placement>;
    using sync = std::conditional_t<SyncPolicy<given_sync>, given_sync, default_policies::sync>;

    static constexpr bool all_policies = (detail::known_category<Ps> && ...);
    static_assert(all_policies,
                  "unibuf: a buffer policy argument is not a policy: it names no policy_category of "
                  "access_tag, coherence_tag, placement_tag or sync_tag (rule R3)");

    static constexpr bool all_named = !all_policies || (detail::names_itself<Ps> && ...);
    static_assert(all_named,
                  "unibuf: a buffer policy argument names its policy_category but lacks its name: a "
                  "policy must also declare static constexpr std::string_view name = \"...\"; (rule R3)");

    static constexpr bool no_duplicates = !all_policies || !all_named || !detail::has_duplicate<Ps...>;
    static_assert(no_duplicates,
                  "unibuf: the same policy is given twice in a buffer's policy list; give each "
                  "category at most once (rule R2)");

    static constexpr bool no_conflicts = !all_policies || !all_named || !no_duplicates ||
                                         (detail::count_category<access_tag, Ps...> <= 1 &&
                                          detail::count_category<coherence_tag, Ps...> <= 1 &&
                                          detail::count_category<placement_tag, Ps...> <= 1 &&
                                          detail::count_category<sync_tag, Ps...> <= 1);
    static_assert(no_conflicts,
                  "unibuf: conflicting policies: two different policies of one category (two access, "
                  "coherence, placement or sync policies) in a buffer's policy list (rule R2)");

private:
    static constexpr bool listed_well = all_policies && all_named && no_duplicates && no_conflicts;

public:
    static_assert(!listed_well || AccessPolicy<given_access>,
                  "unibuf: the access policy lacks host_read/host_write traits (static constexpr bool), "
                  "or neither is true (see AccessPolicy) (rule R3)");
    static_assert(!listed_well || CoherencePolicy<given_coherence>,
                  "unibuf: the coherence policy lacks requires_flush/uncached traits (static constexpr "
                  "bool) (see CoherencePolicy) (rule R3)");
    static_assert(!listed_well || PlacementPolicy<given_placement>,
                  "unibuf: the placement policy lacks kind (placement_kind)/host_pointer (bool) traits "
                  "(see PlacementPolicy) (rule R3)");
    static_assert(!listed_well || SyncPolicy<given_sync>,
                  "unibuf: the sync policy lacks a kind trait (static constexpr sync_kind) (see SyncPolicy) (rule R3)");
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
