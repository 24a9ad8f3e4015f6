/// @file dispatch.hpp
/// @brief Backend-neutral device work: bind buffers with a usage, dispatch a kernel, keep states right.
///
/// @code
/// auto f = unibuf::dispatch(dev, saxpy, {groups}, unibuf::push_constants(params),
///                           unibuf::bind(x, unibuf::usage::read), unibuf::bind(y, unibuf::usage::read_write));
/// y.to_vector();   // fenced/lazy: waits for f, invalidates/stages back as needed
/// @endcode
#pragma once

#include "../core/vocabulary.hpp"
#include "concepts.hpp"
#include "../core/error.hpp"
#include "../backend/detail/backend_label.hpp"

#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>

namespace unibuf {

/// @brief A buffer bound with a usage; made by `bind`.
template <class Buf>
struct binding {
    Buf* buffer;
    usage use;
};

/// @brief Binds `buf` to the next binding slot of a dispatch, used by the device as `u`.
template <DeviceBindable Buf>
[[nodiscard]] binding<Buf> bind(Buf& buf, usage u = usage::read_write) noexcept {
    return {&buf, u};
}

/// @brief The bytes of a trivially copyable parameter block (push constants / uniforms).
template <class P>
[[nodiscard]] std::span<const std::byte> push_constants(const P& p) noexcept {
    static_assert(std::is_trivially_copyable_v<P>, "unibuf: push constants must be trivially copyable");
    return std::as_bytes(std::span<const P, 1>(&p, 1));
}

namespace detail {
/// @brief True when `buf` is an empty (moved-from) buffer; bindable types without `empty()`
/// (stream blocks) are never empty here.
template <class Buf>
[[nodiscard]] bool bound_buffer_empty(const Buf& buf) noexcept {
    if constexpr (requires { { buf.empty() } -> std::convertible_to<bool>; }) {
        return buf.empty();
    } else {
        (void)buf;
        return false;
    }
}
/// @brief The backend object `buf` lives on, where its type tells (buffers, streams' blocks);
/// null when it does not.
template <class B, class Buf>
[[nodiscard]] const B* bound_backend(const Buf& buf) {
    if constexpr (requires { { buf.backend() } -> std::convertible_to<const B&>; }) {
        return &buf.backend();
    } else {
        (void)buf;
        return nullptr;
    }
}
} // namespace detail

/// @brief Runs `kernel` over `groups` work groups with `bindings` bound in order (binding 0, 1, ...).
///
/// Before: each buffer's `before_device_use` (lazy: host-newer data flushed/staged; the dispatch is
/// ordered after those copies; fenced/none: a buffer bound for reading whose view writes were
/// never flushed fails `UNIBUF_ASSERT` in debug builds, a lost write). After: each buffer records
/// the dispatch's fence as its last use.
/// Requires `B::dispatch(kernel, groups, span<const bound_range<B>>, push bytes, span<const fence>)`.
/// @returns the fence of the dispatch
/// @throws std::system_error invalid_argument when a bound buffer is empty (moved from or reset),
/// before any buffer or the device is touched; what the backend's dispatch throws
template <class B, class Kernel, class... Bufs>
typename B::fence dispatch(B& backend, Kernel& kernel, dispatch_size groups, std::span<const std::byte> push,
                           binding<Bufs>... bindings) {
    static_assert((std::is_same_v<typename Bufs::backend_type, B> && ...),
                  "unibuf: every bound buffer must live on the backend that dispatches");
    const std::array<bool, sizeof...(Bufs)> empty{detail::bound_buffer_empty(*bindings.buffer)...};
    for (std::size_t i = 0; i < empty.size(); ++i)
        if (empty[i])
            throw_error(errc::invalid_argument, "unibuf: dispatch: binding " + std::to_string(i) +
                                                    " is an empty (moved-from) buffer");
    // A buffer made by another backend object (another context or device) holds memory this one
    // cannot use, and fences this one does not know: refused before anything is touched.
    const std::array<const B*, sizeof...(Bufs)> owners{detail::bound_backend<B>(*bindings.buffer)...};
    for (std::size_t i = 0; i < owners.size(); ++i)
        if (owners[i] != nullptr && owners[i] != &backend)
            throw_error(errc::invalid_argument, "unibuf: dispatch: binding " + std::to_string(i) + " lives on " +
                                                    detail::backend_label(*owners[i]) + ", but the dispatch runs on " +
                                                    detail::backend_label(backend) +
                                                    "; a buffer can only be used by the backend (context) that made it");
    std::array<typename B::fence, sizeof...(Bufs)> after{bindings.buffer->before_device_use(bindings.use)...};
    std::array<bound_range<B>, sizeof...(Bufs)> ranges{
        bound_range<B>{&bindings.buffer->allocation(), bindings.buffer->byte_offset(),
                       bindings.buffer->size_bytes(), bindings.use}...};
    typename B::fence f = backend.dispatch(kernel, groups, std::span<const bound_range<B>>(ranges),
                                           push, std::span<const typename B::fence>(after));
    (bindings.buffer->after_device_use(f, bindings.use), ...);
    return f;
}

} // namespace unibuf
