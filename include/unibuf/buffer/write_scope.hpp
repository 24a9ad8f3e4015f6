/// @file write_scope.hpp
/// @brief `host_write_scope`: the documented way to write a buffer through a host view; the
/// writes reach the device when the scope ends.
///
/// @code
/// unibuf::upload_buffer<float, unibuf::host_backend> up(dev, 1024);
/// {
///     auto w = up.write_scope();            // waits for the last device use, as view() does
///     for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(i);
/// }                                         // flushed / staged here (fenced, none); lazy: host-dirty
/// unibuf::dispatch(dev, kernel, {4}, {}, unibuf::bind(up, unibuf::usage::read));   // sees every value
/// @endcode
///
/// What the end of a scope does, by the buffer's sync policy:
/// | sync | at `commit()` / scope exit |
/// |---|---|
/// | `fenced`, `none` | `flush(offset, count)` of the scope's range: a no-op on coherent zero-copy memory, a flush rounded to the non-coherent atom, or a staging copy (its fence becomes the buffer's last use) |
/// | `lazy` | `mark_host_dirty()`: the next device use flushes / stages the buffer |
///
/// Errors: `commit()` ends the scope and throws what the flush throws. The destructor commits a
/// scope that is still open, but cannot throw: a failed flush there is dropped, and the buffer
/// keeps its mark of unflushed view writes, so debug builds report it when the buffer is next
/// bound to device work that reads it (see `basic_buffer_of::before_device_use`). Call `commit()`
/// (or `try_commit()`) where a flush can fail and the error matters. Without exceptions, a failed
/// flush aborts with its message, as every throwing entry point does (config.hpp).
#pragma once

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/memory_request.hpp"
#include "view.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace unibuf {

namespace detail {
/// @brief The writable host view of a buffer of `T`: `std::span<T>` when the host may also read
/// (access::read_write), `write_only_view<T>` otherwise.
template <class T, bool HostReadable>
using writable_view_t = std::conditional_t<HostReadable, std::span<T>, write_only_view<T>>;
} // namespace detail

/// @brief A range of a buffer opened for host writes; the writes reach the device when the scope
/// ends (see the file comment for what that means per sync policy).
///
/// Made by `basic_buffer_of::write_scope()` / `write_scope(offset, count)`; a default-constructed
/// scope is closed. Move-only: the moved-from scope is closed, and a closed scope's `commit()`,
/// `try_commit()` and destructor do nothing. The scope refers to its buffer: it must not outlive
/// it, like a view; the buffer must not be moved while a scope of it is open (the scope's
/// `commit()` then throws `errc::invalid_argument`, the moved-to buffer keeps the mark of
/// unflushed view writes).
///
/// @tparam Buf the buffer type (`basic_buffer_of<...>` with a host-writable access policy)
template <class Buf>
class host_write_scope {
public:
    using buffer_type = Buf;
    using value_type = typename Buf::value_type;
    using fence_type = typename Buf::fence_type;
    /// @brief `std::span<T>` (access::read_write) or `write_only_view<T>` (access::write_only).
    using view_type = detail::writable_view_t<value_type, Buf::host_readable>;

    /// @brief A closed scope: no buffer, no elements.
    host_write_scope() noexcept = default;

    /// @brief Takes `o`'s open range; `o` is left closed.
    host_write_scope(host_write_scope&& o) noexcept
        : buf_(std::exchange(o.buf_, nullptr)), offset_(std::exchange(o.offset_, 0)),
          view_(std::exchange(o.view_, view_type{})) {}

    /// @brief Ends this scope as the destructor does (errors dropped), then takes `o`'s range;
    /// `o` is left closed.
    host_write_scope& operator=(host_write_scope&& o) noexcept {
        if (this != &o) {
            [[maybe_unused]] const std::error_code ec = try_commit();
            buf_ = std::exchange(o.buf_, nullptr);
            offset_ = std::exchange(o.offset_, 0);
            view_ = std::exchange(o.view_, view_type{});
        }
        return *this;
    }

    host_write_scope(const host_write_scope&) = delete;  // one scope ends one range of writes
    host_write_scope& operator=(const host_write_scope&) = delete;

    /// @brief Commits a scope that is still open; never throws (see the file comment: a failed
    /// flush is dropped and left to the debug-build check at the next device use).
    ~host_write_scope() { [[maybe_unused]] const std::error_code ec = try_commit(); }

    /// @brief True until the scope is committed or moved from.
    [[nodiscard]] bool is_open() const noexcept { return buf_ != nullptr; }
    /// @brief Number of elements in the scope (0 when closed).
    [[nodiscard]] std::size_t size() const noexcept { return view_.size(); }
    /// @brief Offset of the scope's first element in the buffer (0 when closed).
    [[nodiscard]] std::size_t offset() const noexcept { return offset_; }

    /// @brief The host view of the scope's range (element 0 is buffer element `offset()`).
    /// Writes through it, or through copies of it, count while the scope is open; a view used
    /// after `commit()` is back to `view()`'s rules (flush it yourself).
    /// @throws std::system_error invalid_argument when the scope is closed
    [[nodiscard]] view_type view() const {
        if (buf_ == nullptr)
            throw_error(errc::invalid_argument, "unibuf: view() of a closed write scope (committed or moved from)");
        return view_;
    }

    /// @brief Element `i` of the scope (unchecked, like `std::span::operator[]`): `T&` for
    /// access::read_write, an assign-only proxy for access::write_only. Asserted open (debug).
    [[nodiscard]] decltype(auto) operator[](std::size_t i) const noexcept {
        UNIBUF_ASSERT(buf_ != nullptr, "element of a closed write scope (committed or moved from)");
        return view_[i];
    }

    /// @brief Ends the scope: flushes / stages its range (fenced, none) or marks the buffer
    /// host-dirty (lazy). The scope is closed afterwards, also when this throws. Returns the fence
    /// after which the device sees the writes (complete when no copy was needed, under lazy, and
    /// for a closed scope).
    /// @throws std::system_error what the buffer's `flush` throws (invalid_argument when the
    /// buffer was moved from while the scope was open)
    fence_type commit() {
        if (buf_ == nullptr) return fence_type{};
        Buf* const b = std::exchange(buf_, nullptr);
        const std::size_t off = std::exchange(offset_, 0);
        const std::size_t n = std::exchange(view_, view_type{}).size();
        if constexpr (Buf::sync == sync_kind::lazy) {
            b->mark_host_dirty();  // records writes made after a device use that the scope overlapped
            (void)off, (void)n;
            return fence_type{};
        } else {
            return b->flush(off, n);
        }
    }

    /// @brief Non-throwing `commit()`: the flush's error code (empty on success or when closed).
    /// The scope is closed afterwards in every case.
    [[nodiscard]] std::error_code try_commit() noexcept {
        if (buf_ == nullptr) return {};
        return detail::code_of([this] { commit(); });
    }

private:
    friend Buf;
    host_write_scope(Buf& buf, std::size_t offset, view_type v) noexcept : buf_(&buf), offset_(offset), view_(v) {}

    Buf* buf_ = nullptr;
    std::size_t offset_ = 0;
    view_type view_{};
};

} // namespace unibuf
