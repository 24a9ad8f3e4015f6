/// @file view.hpp
/// @brief Host views that follow the access policy: the write-only view.
///
/// `access::read_write` buffers hand out `std::span<T>`, `access::read_only` ones
/// `std::span<const T>`; `access::write_only` ones hand out `write_only_view<T>`, whose elements
/// can be assigned but not read (reading write-combined memory crosses the bus uncached). Every
/// read of an element — a conversion, arithmetic, a comparison, a compound assignment, an
/// increment, assigning one element to another — is rejected at compile time with rule R8.
///
/// Writes through a view reach the device as `basic_buffer_of::view()` describes; a buffer's
/// `write_scope()` (write_scope.hpp) hands out the same view and makes its writes visible to the
/// device when the scope ends.
#pragma once

#include "../core/detail/meta.hpp"
#include "../core/error.hpp"

#include <compare>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

namespace unibuf {

template <class T>
class write_only_ref;

namespace detail {
template <class X>
inline constexpr bool is_write_only_ref = false;
template <class T>
inline constexpr bool is_write_only_ref<write_only_ref<T>> = true;

/// @brief `X` (any cv/ref) is an element proxy of a write-only view.
template <class X>
concept write_only_element = is_write_only_ref<std::remove_cvref_t<X>>;

/// @brief An operator with these operands reads an element of a write-only view.
template <class L, class R>
concept reads_write_only = write_only_element<L> || write_only_element<R>;

template <class X>
struct write_only_value {
    using type = void;
};
template <class T>
struct write_only_value<write_only_ref<T>> {
    using type = T;
};
/// @brief The element type of the write-only operand of `L op R`.
template <class L, class R>
using write_only_value_t =
    typename write_only_value<std::remove_cvref_t<std::conditional_t<write_only_element<L>, L, R>>>::type;

/// @brief The result of `l op= r` when one side is an element: the proxy, or the left operand.
template <class L>
using compound_result_t = std::conditional_t<write_only_element<L>, std::remove_cvref_t<L>, L&>;

/// @brief The one diagnosis of every operator that would read an element of a write-only view.
template <class... Operands>
[[noreturn]] void reject_write_only_read() {
    static_assert(always_false<Operands...>,
                  "unibuf: arithmetic, a comparison, a compound assignment (w[i] += x) or an increment "
                  "on an element of a write-only view reads the element, but the buffer's access policy "
                  "is access::write_only (its memory may be write-combined, uncached, tens of MB/s to read); compute "
                  "the value on the host, then store it with w[i] = value (rule R8)");
    std::abort();
}
} // namespace detail

/// @brief Proxy for one element of a write-only view: assignable, never readable (rule R8).
template <class T>
class write_only_ref {
public:
    explicit write_only_ref(T* p) noexcept : p_(p) {}
    write_only_ref(const write_only_ref&) = default;

    /// @brief Stores `v` into the element (a plain store; no read of the destination).
    write_only_ref& operator=(const T& v) noexcept {
        std::memcpy(static_cast<void*>(p_), &v, sizeof(T));
        return *this;
    }
    /// @brief Assigning one element to another (`w[1] = w[0]`) reads the source: rejected at
    /// compile time with rule R8, like any read.
    write_only_ref& operator=(const write_only_ref&) {
        static_assert(detail::always_false<T>,
                      "unibuf: assigning one element of a write-only view to another (w[1] = w[0]) reads "
                      "the source element, but the buffer's access policy is access::write_only (its "
                      "memory may be write-combined, uncached, tens of MB/s to read); store the value from host data "
                      "instead: w[1] = value (rule R8)");
        return *this;
    }

    /// @brief Reading is rejected at compile time with the rule that forbids it.
    template <class U>
    operator U() const {  // NOLINT(google-explicit-constructor): exists only to diagnose reads
        static_assert(detail::always_false<U>,
                      "unibuf: reading an element of a write-only view: the buffer's access policy is "
                      "access::write_only (its memory may be write-combined, uncached, tens of MB/s to read); "
                      "use access::read_write to read it back (rule R8)");
        return U{};
    }

private:
    T* p_;
};

// Operators on elements of a write-only view: each reads the element, so each is rejected with
// rule R8 (one error, instead of a list of the built-in candidates that do not match).

// Binary operators (either operand an element): the result type is the element type, so that
// the misuse compiles no further and the R8 message stays the only error.
/// @brief `w[i] + x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator+(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] - x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator-(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] * 2`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator*(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] / x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator/(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] % x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator%(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] & x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator&(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] | x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator|(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] ^ x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator^(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] << x, std::cout << w[i]`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator<<(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] >> x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::write_only_value_t<L, R> operator>>(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] == x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
bool operator==(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] != x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
bool operator!=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] < x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
bool operator<(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] > x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
bool operator>(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] <= x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
bool operator<=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] >= x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
bool operator>=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] <=> x`: reads the element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
std::partial_ordering operator<=>(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
// Compound assignments read the element before they store (either side an element).
/// @brief `w[i] += x`, `x += w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator+=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] -= x`, `x -= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator-=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] *= x`, `x *= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator*=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] /= x`, `x /= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator/=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] %= x`, `x %= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator%=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] &= x`, `x &= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator&=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] |= x`, `x |= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator|=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] ^= x`, `x ^= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator^=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] <<= x`, `x <<= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator<<=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
/// @brief `w[i] >>= x`, `x >>= w[i]`: reads an element (rule R8).
template <class L, class R>
    requires detail::reads_write_only<L, R>
detail::compound_result_t<L> operator>>=(L&&, R&&) {
    detail::reject_write_only_read<L, R>();
}
// Unary operators and increments.
/// @brief `-w[i]`: reads the element (rule R8).
template <detail::write_only_element E>
detail::write_only_value_t<E, E> operator-(const E&) {
    detail::reject_write_only_read<E>();
}
/// @brief `+w[i]`: reads the element (rule R8).
template <detail::write_only_element E>
detail::write_only_value_t<E, E> operator+(const E&) {
    detail::reject_write_only_read<E>();
}
/// @brief `~w[i]`: reads the element (rule R8).
template <detail::write_only_element E>
detail::write_only_value_t<E, E> operator~(const E&) {
    detail::reject_write_only_read<E>();
}
/// @brief `++w[i]`: reads the element before storing (rule R8).
template <detail::write_only_element E>
E operator++(const E&) {
    detail::reject_write_only_read<E>();
}
/// @brief `w[i]++`: reads the element before storing (rule R8).
template <detail::write_only_element E>
detail::write_only_value_t<E, E> operator++(const E&, int) {
    detail::reject_write_only_read<E>();
}
/// @brief `--w[i]`: reads the element before storing (rule R8).
template <detail::write_only_element E>
E operator--(const E&) {
    detail::reject_write_only_read<E>();
}
/// @brief `w[i]--`: reads the element before storing (rule R8).
template <detail::write_only_element E>
detail::write_only_value_t<E, E> operator--(const E&, int) {
    detail::reject_write_only_read<E>();
}

/// @brief A host view of a write-only buffer: `v[i] = x`, `v.assign(src, offset)`, no reads.
/// @tparam T element type
template <class T>
class write_only_view {
public:
    write_only_view() = default;
    write_only_view(T* data, std::size_t count) noexcept : data_(data), count_(count) {}

    /// @brief Element `i` as an assign-only proxy (unchecked, like `std::span::operator[]`).
    [[nodiscard]] write_only_ref<T> operator[](std::size_t i) const noexcept { return write_only_ref<T>(data_ + i); }
    /// @brief Number of elements.
    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    /// @brief Size in bytes (the view of a buffer never overflows: the buffer checked its size).
    [[nodiscard]] std::size_t size_bytes() const noexcept { return count_ * sizeof(T); }
    /// @brief Copies `src` to elements `[offset, offset + src.size())` (sequential stores, the fast
    /// pattern for write-combined memory).
    /// @throws std::system_error out_of_range when the range does not lie inside the view (the
    /// message names the request, the element size and the view's size); nothing is stored then
    void assign(std::span<const T> src, std::size_t offset = 0) const {
        if (offset > count_ || src.size() > count_ - offset)
            throw_error(errc::out_of_range, "unibuf: write_only_view::assign of " +
                                                detail::elements_text(src.size(), sizeof(T)) + " at offset " +
                                                std::to_string(offset) + " in a view of " + std::to_string(count_) +
                                                " elements");
        if (!src.empty()) std::memcpy(static_cast<void*>(data_ + offset), src.data(), src.size_bytes());
    }
    /// @brief The raw destination pointer, for memcpy-like producers. Do not read through it.
    [[nodiscard]] T* data() const noexcept { return data_; }

private:
    T* data_ = nullptr;
    std::size_t count_ = 0;
};

} // namespace unibuf
