/// @file view.hpp
/// @brief Host views that follow the access policy: the write-only view.
///
/// `access::read_write` buffers hand out `std::span<T>`, `access::read_only` ones
/// `std::span<const T>`; `access::write_only` ones hand out `write_only_view<T>`, whose elements
/// can be assigned but not read (reading write-combined memory crosses the bus uncached).
#pragma once

#include "detail/meta.hpp"

#include <cstddef>
#include <cstring>
#include <span>

namespace unibuf {

/// @brief Proxy for one element of a write-only view: assignable, never readable.
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
    /// @brief Assigning one proxy to another would read the source: forbidden like any read.
    write_only_ref& operator=(const write_only_ref&) = delete;

    /// @brief Reading is rejected at compile time with the rule that forbids it.
    template <class U>
    operator U() const {  // NOLINT(google-explicit-constructor): exists only to diagnose reads
        static_assert(detail::always_false<U>,
                      "unibuf: reading an element of a write-only view: the buffer's access policy is "
                      "access::write_only (its memory may be write-combined, ~0.03 GB/s to read); "
                      "use access::read_write to read it back (rule R8)");
        return U{};
    }

private:
    T* p_;
};

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
    /// @brief Size in bytes.
    [[nodiscard]] std::size_t size_bytes() const noexcept { return count_ * sizeof(T); }
    /// @brief Copies `src` to elements `[offset, offset + src.size())` (sequential stores, the fast
    /// pattern for write-combined memory). Precondition: the range lies inside the view.
    void assign(std::span<const T> src, std::size_t offset = 0) const noexcept {
        if (!src.empty()) std::memcpy(static_cast<void*>(data_ + offset), src.data(), src.size_bytes());
    }
    /// @brief The raw destination pointer, for memcpy-like producers. Do not read through it.
    [[nodiscard]] T* data() const noexcept { return data_; }

private:
    T* data_ = nullptr;
    std::size_t count_ = 0;
};

} // namespace unibuf
