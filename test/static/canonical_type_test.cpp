// Policies in any order, with defaults filled in, name one type: basic_buffer with any permutation
// or subset of its policies is the same type as the alias (and the canonical basic_buffer_of) with
// the same resolved policies. Checked at compile time for every order and subset; the run-time
// tests show what that buys: a function taking an alias accepts a buffer spelled another way.
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

namespace unibuf_canonical_test {

using unibuf::host_backend;
namespace access = unibuf::access;
namespace coherence = unibuf::coherence;
namespace placement = unibuf::placement;
namespace sync = unibuf::sync;

template <class... Ts>
struct list {};

/// `Check<Ps...>::value` for every order of the types in `Rest` (after `Pre`).
template <template <class...> class Check, class Pre, class Rest>
struct every_order;
template <template <class...> class Check, class Pre, class Rest, std::size_t Heads>
struct each_head;

template <template <class...> class Check, class... Pre>
struct every_order<Check, list<Pre...>, list<>> : std::bool_constant<Check<Pre...>::value> {};
template <template <class...> class Check, class... Pre, class H, class... Ts>
struct every_order<Check, list<Pre...>, list<H, Ts...>>
    : each_head<Check, list<Pre...>, list<H, Ts...>, 1 + sizeof...(Ts)> {};

// Puts each element of Rest first once (by rotating), and orders the rest after it.
template <template <class...> class Check, class Pre, class Rest>
struct each_head<Check, Pre, Rest, 0> : std::true_type {};
template <template <class...> class Check, class... Pre, class H, class... Ts, std::size_t Heads>
    requires(Heads > 0)
struct each_head<Check, list<Pre...>, list<H, Ts...>, Heads>
    : std::bool_constant<every_order<Check, list<Pre..., H>, list<Ts...>>::value &&
                         each_head<Check, list<Pre...>, list<Ts..., H>, Heads - 1>::value> {};

/// Every order of `Required...` plus any subset of `Optional...`.
template <template <class...> class Check, class Required, class Optional>
struct every_subset;
template <template <class...> class Check, class... Required>
struct every_subset<Check, list<Required...>, list<>> : every_order<Check, list<>, list<Required...>> {};
template <template <class...> class Check, class... Required, class O, class... Os>
struct every_subset<Check, list<Required...>, list<O, Os...>>
    : std::bool_constant<every_subset<Check, list<Required...>, list<Os...>>::value &&
                         every_subset<Check, list<Required..., O>, list<Os...>>::value> {};

template <class Canonical, class T, class B>
struct names {
    template <class... Ps>
    struct check : std::is_same<unibuf::basic_buffer<T, B, Ps...>, Canonical> {};
};

template <class Canonical, class T, class B, class Required, class Optional>
inline constexpr bool one_type = every_subset<names<Canonical, T, B>::template check, Required, Optional>::value;

// The helpers visit more than one order, and the subsets: a check true for one spelling only fails.
template <class... Ps>
struct only_this_order : std::is_same<list<Ps...>, list<int, char, long>> {};
template <class... Ps>
struct three_given : std::bool_constant<sizeof...(Ps) == 3> {};
static_assert(only_this_order<int, char, long>::value);
static_assert(!every_order<only_this_order, list<>, list<int, char, long>>::value);
static_assert(every_order<three_given, list<>, list<int, char, long>>::value);
static_assert(!every_subset<three_given, list<int>, list<char, long>>::value);

// ---- the default buffer: every subset of the defaults, in every order --------------------------

using defaults_of_float =
    unibuf::basic_buffer_of<float, host_backend, access::read_write, coherence::coherent, placement::automatic, sync::fenced>;
static_assert(std::is_same_v<unibuf::basic_buffer<float, host_backend>, defaults_of_float>);
static_assert(std::is_same_v<unibuf::basic_buffer<float, host_backend>,
                             unibuf::basic_buffer<float, host_backend, access::read_write, coherence::coherent,
                                                  placement::automatic, sync::fenced>>);
static_assert(one_type<defaults_of_float, float, host_backend, list<>,
                       list<access::read_write, coherence::coherent, placement::automatic, sync::fenced>>);

// ---- each alias: its non-default policies in any order, its defaults given or not --------------

template <class T>
using upload = unibuf::upload_buffer<T, host_backend>;
static_assert(std::is_same_v<upload<float>,
                             unibuf::basic_buffer<float, host_backend, sync::fenced, access::write_only,
                                                  coherence::write_combined, placement::automatic>>);
static_assert(one_type<upload<float>, float, host_backend, list<access::write_only, coherence::write_combined>,
                       list<placement::automatic, sync::fenced>>);
static_assert(one_type<unibuf::readback_buffer<double, host_backend>, double, host_backend,
                       list<access::read_only, placement::host>, list<coherence::coherent, sync::fenced>>);
static_assert(one_type<unibuf::shared_buffer<int, host_backend>, int, host_backend, list<sync::lazy>,
                       list<access::read_write, coherence::coherent, placement::automatic>>);
static_assert(one_type<unibuf::device_buffer<std::uint8_t, host_backend>, std::uint8_t, host_backend,
                       list<placement::device, sync::lazy>, list<access::read_write, coherence::coherent>>);

// A buffer with no default policy at all: 24 spellings, one type.
using flushed = unibuf::basic_buffer_of<int, host_backend, access::read_only, coherence::explicit_flush,
                                        placement::device_mapped, sync::none>;
static_assert(one_type<flushed, int, host_backend,
                       list<access::read_only, coherence::explicit_flush, placement::device_mapped, sync::none>, list<>>);

// Different policies stay different types; a user policy is its own type even with the same traits.
struct app_write_only {
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = false;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "app::write_only";
};
static_assert(!std::is_same_v<upload<float>, unibuf::basic_buffer<float, host_backend, access::write_only>>);
static_assert(!std::is_same_v<upload<float>, upload<double>>);
static_assert(!std::is_same_v<upload<float>,
                              unibuf::basic_buffer<float, host_backend, app_write_only, coherence::write_combined>>);
static_assert(one_type<unibuf::basic_buffer_of<float, host_backend, app_write_only, coherence::write_combined,
                                               placement::automatic, sync::fenced>,
                       float, host_backend, list<coherence::write_combined, app_write_only>, list<sync::fenced>>);

// The resolved policies of the canonical class are its template arguments.
static_assert(std::is_same_v<flushed::coherence_policy, coherence::explicit_flush>);
static_assert(std::is_same_v<upload<float>::placement_policy, placement::automatic>);

// ---- checked size arithmetic (detail/meta.hpp) ---------------------------------------------------

constexpr std::uint64_t u64_max = ~std::uint64_t{0};
constexpr bool mul(std::uint64_t a, std::uint64_t b, std::uint64_t expect) {
    std::uint64_t out = 0;
    return unibuf::detail::checked_mul(a, b, out) && out == expect;
}
constexpr bool mul_overflows(std::uint64_t a, std::uint64_t b) {
    std::uint64_t out = 42;
    return !unibuf::detail::checked_mul(a, b, out) && out == 42;  // untouched on overflow
}
constexpr bool add(std::uint64_t a, std::uint64_t b, std::uint64_t expect) {
    std::uint64_t out = 0;
    return unibuf::detail::checked_add(a, b, out) && out == expect;
}
constexpr bool add_overflows(std::uint64_t a, std::uint64_t b) {
    std::uint64_t out = 42;
    return !unibuf::detail::checked_add(a, b, out) && out == 42;
}
constexpr bool align(std::uint64_t v, std::uint64_t a, std::uint64_t expect) {
    std::uint64_t out = 0;
    return unibuf::detail::checked_align_up(v, a, out) && out == expect;
}
constexpr bool align_overflows(std::uint64_t v, std::uint64_t a) {
    std::uint64_t out = 42;
    return !unibuf::detail::checked_align_up(v, a, out) && out == 42;
}
static_assert(mul(0, u64_max, 0) && mul(u64_max, 0, 0) && mul(u64_max, 1, u64_max) && mul(u64_max / 8, 8, u64_max - 7));
static_assert(mul_overflows(u64_max / 8 + 2, 8) && mul_overflows(u64_max / 8 + 1, 8) && mul_overflows(u64_max, 2));
static_assert(mul_overflows(std::uint64_t{1} << 32, std::uint64_t{1} << 32));
static_assert(add(u64_max - 1, 1, u64_max) && add(0, 0, 0) && add_overflows(u64_max, 1) && add_overflows(2, u64_max - 1));
static_assert(align(0, 256, 0) && align(1, 256, 256) && align(256, 256, 256) && align(257, 100, 300));
static_assert(align(u64_max - 255, 256, u64_max - 255) && align_overflows(u64_max - 254, 256) && align_overflows(u64_max, 2));

// ---- run time: a function that takes the alias accepts any spelling -----------------------------

float first_after_upload(upload<float>& up, unibuf::readback_buffer<float, host_backend>& down) {
    auto w = up.view();
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) + 0.5f;
    up.flush();
    down.copy_from(up);
    return down.to_vector().front();
}

TEST(CanonicalType, AFunctionTakingAnAliasAcceptsAPermutedSpelling) {
    host_backend dev;
    unibuf::basic_buffer<float, host_backend, sync::fenced, access::write_only, coherence::write_combined,
                         placement::automatic>
        permuted(dev, 8);
    unibuf::basic_buffer<float, host_backend, placement::host, access::read_only> down(dev, 8);
    EXPECT_EQ(first_after_upload(permuted, down), 0.5f);
    EXPECT_EQ(down.to_vector().back(), 7.5f);
    // Moves between spellings are moves of one type.
    upload<float> moved = std::move(permuted);
    EXPECT_TRUE(permuted.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_EQ(moved.size(), 8u);
    std::vector<upload<float>> held;
    held.push_back(std::move(moved));
    held.emplace_back(dev, 4);
    EXPECT_EQ(held[0].size() + held[1].size(), 12u);
}

} // namespace unibuf_canonical_test
