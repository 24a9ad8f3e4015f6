/// @file meta.hpp
/// @brief Small metaprogramming helpers shared by the core headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace unibuf::detail {

/// @brief `v` rounded up to a multiple of `a` (> 0; any value, not only powers of two).
[[nodiscard]] constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) noexcept {
    return (v + a - 1) / a * a;
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
