/// @file meta.hpp
/// @brief Small metaprogramming helpers shared by the core headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace unibuf::detail {

/// @brief `v` rounded up to a multiple of `a` (> 0; any value, not only powers of two).
/// Wraps when the result does not fit in 64 bits: for sizes or offsets a user gave, use
/// `checked_align_up`.
[[nodiscard]] constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) noexcept {
    return (v + a - 1) / a * a;
}

/// @brief `out = a * b`; false (and `out` untouched) when the product does not fit in 64 bits.
[[nodiscard]] constexpr bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
    if (a != 0 && b > ~std::uint64_t{0} / a) return false;
    out = a * b;
    return true;
}

/// @brief `out = a + b`; false (and `out` untouched) when the sum does not fit in 64 bits.
[[nodiscard]] constexpr bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
    if (b > ~std::uint64_t{0} - a) return false;
    out = a + b;
    return true;
}

/// @brief `out = v` rounded up to a multiple of `a` (> 0); false (and `out` untouched) when the
/// rounded value does not fit in 64 bits.
[[nodiscard]] constexpr bool checked_align_up(std::uint64_t v, std::uint64_t a, std::uint64_t& out) noexcept {
    const std::uint64_t rem = v % a;
    if (rem == 0) {
        out = v;
        return true;
    }
    return checked_add(v, a - rem, out);
}

/// @brief Dependent false, for static_asserts in templates that must fire only when instantiated.
template <class...>
inline constexpr bool always_false = false;

/// @brief Number of types in `Ts...` that are exactly `T`.
template <class T, class... Ts>
inline constexpr std::size_t count_same = (std::size_t{0} + ... + (std::is_same_v<T, Ts> ? 1u : 0u));

/// @brief A plain type list.
template <class... Ts>
struct type_list {};

} // namespace unibuf::detail
