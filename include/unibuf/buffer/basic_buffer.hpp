/// @file basic_buffer.hpp
/// @brief `basic_buffer`: one typed buffer whose behaviour is composed from four policies.
///
/// @code
/// unibuf::host_backend dev;
/// unibuf::basic_buffer<float, unibuf::host_backend,
///                      unibuf::access::write_only, unibuf::coherence::write_combined> up(dev, 1024);
/// {
///     auto w = up.write_scope();   // write_only_view<float> inside: w[i] = x compiles, float x = w[i] does not
///     w[0] = 1.0f;
/// }                                // the writes are flushed / staged to the device here
/// unibuf::shared_buffer<float, unibuf::host_backend> s(dev, 1024);   // read_write, lazy
/// s.fill(0.5f);            // host_only; the next device use flushes/copies first
/// @endcode
///
/// `basic_buffer<T, B, Policies...>` is an alias: the policies, given in any order with missing
/// ones defaulted, resolve (through `policy_set`) to one class, `basic_buffer_of<T, B, Access,
/// Coherence, Placement, Sync>`, so every spelling of the same policies names the same type.
#pragma once

#include "../core/vocabulary.hpp"
#include "concepts.hpp"
#include "../core/detail/meta.hpp"
#include "../backend/detail/backend_label.hpp"
#include "../policy/policy_set.hpp"
#include "../core/error.hpp"
#include "state.hpp"
#include "view.hpp"
#include "write_scope.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief How a pool (or any owner of a larger allocation) takes a slice back.
struct slice_release {
    /// Takes the slice back for reuse (its device work completed).
    void (*fn)(void* ctx, std::uint64_t handle) noexcept = nullptr;
    void* ctx = nullptr;
    std::uint64_t handle = 0;
    /// Takes the slice back *without* reuse: the buffer went away while device work on it had not
    /// completed within its wait bound, so the range must never be handed out again (the owner
    /// frees it with its whole allocation). Null: `fn` is not called and the slice stays taken.
    void (*abandon)(void* ctx, std::uint64_t handle) noexcept = nullptr;
};

/// @brief Tag selecting the constructor that places a buffer in a slice of another allocation.
struct in_slice_t {
    explicit in_slice_t() = default;
};
/// @brief Tag value for the slice constructor (used by `buffer_pool`).
inline constexpr in_slice_t in_slice{};

namespace detail {
template <class T, class A, class C, class P, class S>
struct buffer_rules {
    static_assert(AccessPolicy<A> && CoherencePolicy<C> && PlacementPolicy<P> && SyncPolicy<S>,
                  "unibuf: basic_buffer_of takes one access, coherence, placement and sync policy, in "
                  "that order; basic_buffer<T, B, Policies...> takes them in any order (rules R2, R3)");
    static_assert(BufferElement<T>,
                  "unibuf: a buffer's element type must be a trivially copyable, non-const, non-volatile "
                  "object type: its bytes are mapped, flushed and copied as raw memory (rule R1)");
    static_assert(!(C::uncached && A::host_read),
                  "unibuf: coherence::write_combined memory must never be read by the host (uncached "
                  "reads run at tens of MB/s); use access::write_only, or coherence::coherent to read "
                  "(rule R4)");
    static_assert(!(P::kind == placement_kind::device && S::kind == sync_kind::none),
                  "unibuf: placement::device has no host mapping: host access is a staging copy that "
                  "must be ordered after device work; use sync::fenced or sync::lazy (rule R5)");
    static_assert(!(P::kind == placement_kind::device && (C::requires_flush || C::uncached)),
                  "unibuf: placement::device has no host mapping whose coherence could be chosen; use "
                  "coherence::coherent (the default) with it (rule R6)");
};

/// @brief The message of a backend's allocation failure, with the buffer's request in front.
[[nodiscard]] inline std::string allocation_failure_text(const std::system_error& e, std::uint64_t count,
                                                         std::uint64_t element_size) {
    std::string inner = e.what();
    // std::system_error::what() ends in ": <code message>"; the rethrown error appends it again.
    const std::string tail = ": " + e.code().message();
    if (inner.size() >= tail.size() && inner.compare(inner.size() - tail.size(), tail.size(), tail) == 0)
        inner.resize(inner.size() - tail.size());
    return "unibuf: a buffer of " + elements_text(count, element_size) + ": " + inner;
}
} // namespace detail

template <class T, Backend B, class Access, class Coherence, class Placement, class Sync>
class basic_buffer_of;

namespace detail {
template <class T, class B, class A, class C, class P, class S>
class not_a_backend_buffer;

/// @brief `basic_buffer<T, B, Policies...>`: the canonical class of the resolved policies, or,
/// when `B` is not a backend, a stand-in that is diagnosed once (rule R9).
template <bool IsBackend, class T, class B, class Set>
struct buffer_type {
    using type = basic_buffer_of<T, B, typename Set::access, typename Set::coherence, typename Set::placement,
                                 typename Set::sync>;
};
template <class T, class B, class Set>
struct buffer_type<false, T, B, Set> {
    using type = not_a_backend_buffer<T, B, typename Set::access, typename Set::coherence, typename Set::placement,
                                      typename Set::sync>;
};
} // namespace detail

/// @brief A typed buffer on backend `B` whose policies are given in any order.
///
/// Missing categories take `default_policies` (read_write, coherent, automatic, fenced). Every
/// order and subset of the same resolved policies names one type, `basic_buffer_of<T, B, Access,
/// Coherence, Placement, Sync>` (the aliases `upload_buffer` etc. too). A `B` that is not a
/// `Backend` is rejected with rule R9; a wrong policy list with rule R2 or R3.
///
/// @tparam T element type (trivially copyable)
/// @tparam B backend type (`Backend` concept)
/// @tparam Policies up to one access, coherence, placement and sync policy
template <class T, class B, class... Policies>
using basic_buffer = typename detail::buffer_type<Backend<B>, T, B, policy_set<Policies...>>::type;

/// @brief A typed buffer on backend `B` with its four resolved policies (the one class behind
/// `basic_buffer` and the aliases; name it through them).
///
/// Move-only; owns its allocation (or a pool slice) and releases it on destruction after
/// waiting for its last device use. Host views follow the access policy; copies, flushes and
/// waits are named calls, except under `sync::lazy`, which performs them on access.
///
/// Writing through a host view: open a `write_scope()` (buffer/write_scope.hpp), write through it,
/// and let it end; the scope flushes / stages its range (fenced, none) or marks the buffer
/// host-dirty (lazy). A writable `view()` taken under `sync::fenced` or `sync::none` on memory
/// whose host writes need a flush or a staging copy (the report says not `zero_copy &&
/// host_coherent`) marks the buffer as holding unflushed view writes until `flush()`, a write
/// scope's end, a whole-buffer `write`/`fill` (fenced) or a completed fill covers them; binding
/// such a buffer to device work that reads it (`dispatch`, the source of `copy_from`) is a lost
/// write, caught in debug builds by `UNIBUF_ASSERT` (config.hpp), which aborts with a message by
/// default. `has_unflushed_view_writes()` reads the mark in every build. Coherent zero-copy
/// memory and `sync::lazy` buffers are never marked: their view writes reach the device without
/// a named call.
///
/// A moved-from (or reset) buffer is empty: `size()` is 0, `is_idle()` true, `wait()` returns
/// true at once, `reset()`, `after_device_use()`, `end_fill()`, the lazy syncs and marks do
/// nothing; every member that needs memory throws `errc::invalid_argument` ("... on an empty
/// (moved-from) buffer"). Each member's comment says which.
///
/// @tparam T element type (trivially copyable)
/// @tparam B backend type (`Backend` concept)
/// @tparam Access, Coherence, Placement, Sync one policy of each category, in this order
/// @throws std::system_error (unibuf::errc) from the constructor when allocation fails
template <class T, Backend B, class Access, class Coherence, class Placement, class Sync>
class basic_buffer_of : detail::buffer_rules<T, Access, Coherence, Placement, Sync> {
    using set = policy_set<Access, Coherence, Placement, Sync>;

public:
    using value_type = T;
    using backend_type = B;
    using allocation_type = typename B::allocation;
    using fence_type = typename B::fence;
    using access_policy = Access;
    using coherence_policy = Coherence;
    using placement_policy = Placement;
    using sync_policy = Sync;

    static constexpr bool host_readable = access_policy::host_read;
    static constexpr bool host_writable = access_policy::host_write;
    static constexpr bool host_viewable = placement_policy::host_pointer;
    static constexpr sync_kind sync = sync_policy::kind;

    /// @brief The most elements a buffer of `T` can name: more overflow a 64-bit byte size.
    [[nodiscard]] static constexpr std::size_t max_size() noexcept {
        return static_cast<std::size_t>(~std::uint64_t{0} / sizeof(T));
    }

    /// @brief The backend request these policies make for `count` elements.
    /// @throws std::system_error out_of_range when `count * sizeof(T)` overflows 64 bits (the
    /// message names the element count and the element size)
    [[nodiscard]] static constexpr memory_request request_for(std::size_t count) {
        std::uint64_t bytes = 0;
        if (!detail::checked_mul(count, sizeof(T), bytes))
            throw_error(errc::out_of_range, "unibuf: a buffer of " + detail::byte_size_overflow_text(count, sizeof(T)));
        return memory_request_for<set>(bytes);
    }

    /// @brief Allocates `count` elements on `backend`.
    /// @throws std::system_error out_of_range when `count * sizeof(T)` overflows 64 bits;
    /// out_of_memory / mapping_failed / unsupported / invalid_argument from the backend, the
    /// message led by the element count and element size asked for
    basic_buffer_of(B& backend, std::size_t count) : backend_(&backend), count_(count) {
        const memory_request req = request_for(count);
#if UNIBUF_EXCEPTIONS
        try {
            owned_.emplace(backend.allocate(req));
        } catch (const std::system_error& e) {
            throw std::system_error(e.code(), detail::allocation_failure_text(e, count, sizeof(T)));
        }
#else
        owned_.emplace(backend.allocate(req));
#endif
        alloc_ = &*owned_;
    }

    /// @brief Places the buffer in `[offset, offset + count * sizeof(T))` of `base`, an allocation
    /// made with the same policies; `release` is called on destruction. Used by `buffer_pool`,
    /// which checks the range (asserted here).
    basic_buffer_of(in_slice_t, B& backend, allocation_type& base, std::uint64_t offset, std::size_t count,
                    slice_release release) noexcept
        : backend_(&backend), alloc_(&base), offset_(offset), count_(count), release_(release) {
        [[maybe_unused]] std::uint64_t bytes = 0;
        [[maybe_unused]] std::uint64_t end = 0;
        UNIBUF_ASSERT(detail::checked_mul(count, sizeof(T), bytes) && detail::checked_add(offset, bytes, end) &&
                          end <= base.size(),
                      "a pool slice must lie inside its allocation");
    }

    /// @brief Non-throwing construction: an empty optional and `ec` set on failure
    /// (`errc::out_of_range` when `count * sizeof(T)` overflows 64 bits, else the backend's code).
    [[nodiscard]] static std::optional<basic_buffer_of> try_create(B& backend, std::size_t count,
                                                                   std::error_code& ec) {
        ec.clear();
        std::uint64_t bytes = 0;
        if (!detail::checked_mul(count, sizeof(T), bytes)) {
            ec = errc::out_of_range;
            return std::nullopt;
        }
        auto a = backend.try_allocate(memory_request_for<set>(bytes), ec);
        if (ec) return std::nullopt;
        return std::optional<basic_buffer_of>(basic_buffer_of(backend, std::move(a), count));
    }

    basic_buffer_of(const basic_buffer_of&) = delete;  // copying device memory is a named call (copy_from)
    basic_buffer_of& operator=(const basic_buffer_of&) = delete;

    /// @brief Takes `o`'s allocation, state and last use; `o` is left empty.
    basic_buffer_of(basic_buffer_of&& o) noexcept { steal(o); }
    /// @brief Releases this buffer's allocation (as `reset`), then takes `o`'s; `o` is left empty.
    basic_buffer_of& operator=(basic_buffer_of&& o) noexcept {
        if (this != &o) {
            reset();
            steal(o);
        }
        return *this;
    }
    ~basic_buffer_of() { reset(); }

    /// @brief Waits for the last device use (bounded by `set_wait_timeout`), then frees the
    /// allocation or slice; the buffer is empty afterwards. Empty buffer: does nothing.
    void reset() noexcept {
        if (backend_ == nullptr) return;
        // Freeing memory the device still uses is undefined behaviour on every API: wait. A lost
        // device runs nothing more, so its error (the only one a wait throws) ends the wait. An
        // owned allocation is safe either way (every backend defers its free until its work ran);
        // a slice whose work did not complete in the bound is abandoned, never reused (the fault
        // walk found a reused slice overwritten by the late work of its previous buffer).
        // `is_complete` may throw that error too (Vulkan polls the device: the walk found it
        // thrown out of this noexcept function).
        bool idle = false;
#if UNIBUF_EXCEPTIONS
        try {
            idle = backend_->is_complete(last_use_) || backend_->wait(last_use_, wait_timeout_);
        } catch (const std::system_error&) {
            idle = true;
        }
#else
        idle = backend_->is_complete(last_use_) || backend_->wait(last_use_, wait_timeout_);
#endif
        if (idle && release_.fn != nullptr) release_.fn(release_.ctx, release_.handle);
        if (!idle && release_.abandon != nullptr) release_.abandon(release_.ctx, release_.handle);
        owned_.reset();
        alloc_ = nullptr;
        backend_ = nullptr;
        count_ = 0;
        offset_ = 0;
        release_ = {};
        last_use_ = fence_type{};
        state_ = buffer_state::uninitialized;
        unflushed_view_writes_ = false;
    }

    // ---- observers -------------------------------------------------------------------------

    /// @brief Number of elements (0 when empty).
    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    /// @brief Size in bytes (0 when empty; never overflows: the constructor checked it).
    [[nodiscard]] std::uint64_t size_bytes() const noexcept { return static_cast<std::uint64_t>(count_) * sizeof(T); }
    /// @brief True when the buffer holds no allocation (moved from or reset).
    [[nodiscard]] bool empty() const noexcept { return alloc_ == nullptr; }
    /// @brief The backend allocation (shared with other slices when pooled).
    /// @throws std::system_error invalid_argument on an empty buffer
    [[nodiscard]] allocation_type& allocation() const {
        require_allocation("allocation()");
        return *alloc_;
    }
    /// @brief Byte offset of this buffer inside `allocation()` (0 when empty).
    [[nodiscard]] std::uint64_t byte_offset() const noexcept { return offset_; }
    /// @brief The backend this buffer lives on.
    /// @throws std::system_error invalid_argument on an empty buffer
    [[nodiscard]] B& backend() const {
        require_allocation("backend()");
        return *backend_;
    }
    /// @brief What memory the backend chose and why (fallbacks included).
    /// @throws std::system_error invalid_argument on an empty buffer
    [[nodiscard]] const allocation_report& report() const {
        require_allocation("report()");
        return alloc_->report();
    }
    /// @brief Lazy state (rule R10: `sync::lazy` only); `uninitialized` when empty.
    [[nodiscard]] buffer_state state() const noexcept {
        static_assert(sync == sync_kind::lazy,
                      "unibuf: state() is tracked only under sync::lazy, but this buffer's sync policy is "
                      "sync::fenced or sync::none; use sync::lazy, or wait()/is_idle() for its device use "
                      "(rule R10)");
        return state_;
    }
    /// @brief The fence of the last device use (complete when idle; a complete fence when empty).
    [[nodiscard]] const fence_type& last_use() const noexcept { return last_use_; }
    /// @brief Bound on every wait this buffer performs for the caller (default 10 s): host
    /// access after device use, staged read-backs (the backend's `invalidate`), `reset`. Works
    /// on an empty buffer too (a buffer moved into it keeps its own bound).
    void set_wait_timeout(std::chrono::nanoseconds t) noexcept { wait_timeout_ = t; }
    /// @brief The bound set by `set_wait_timeout`.
    [[nodiscard]] std::chrono::nanoseconds wait_timeout() const noexcept { return wait_timeout_; }
    /// @brief True when a writable `view()` was taken (sync::fenced / sync::none, memory that is
    /// not coherent zero-copy) and nothing has made its writes visible to the device since: no
    /// `flush()`, no end of a write scope, no whole-buffer `write`/`fill` under fenced, no completed
    /// fill, no device use that only writes. Binding the buffer to device work that reads it is
    /// then a lost write (asserted in debug builds). Always false under sync::lazy and when empty.
    /// `flush(offset, count)` of any range clears it: the mark does not know which elements were written.
    [[nodiscard]] bool has_unflushed_view_writes() const noexcept { return unflushed_view_writes_; }

    // ---- host views (rule R7: not for placement::device) -----------------------------------

    /// @brief The host view the access policy allows: `std::span<T>` (read_write),
    /// `std::span<const T>` (read_only), `write_only_view<T>` (write_only). Under fenced/lazy it
    /// waits for the last device use first; under lazy, a writable view marks the buffer host-dirty
    /// (flushed/staged on the next device use); under fenced/none, writes through the view reach
    /// the device only after `flush()` (a no-op for coherent zero-copy memory, a staging copy or an
    /// atom-rounded flush otherwise). To write, prefer `write_scope()`, which does that flush when
    /// it ends. A writable view under fenced/none on memory that is not coherent zero-copy marks the
    /// buffer (`has_unflushed_view_writes()`): binding it to device work that reads it before a
    /// flush is caught in debug builds (see the class comment). To read a read_write buffer
    /// without that mark, use `const_view()`.
    /// @throws std::system_error timeout when the device use does not complete in time;
    /// invalid_argument on an empty buffer
    [[nodiscard]] auto view() {
        static_assert(host_viewable,
                      "unibuf: placement::device memory is not host-visible, so it has no host view or "
                      "pointer; use write()/read()/to_vector() (staged), or placement::device_mapped / "
                      "placement::automatic for zero-copy (rule R7)");
        if constexpr (host_viewable) {
            check_range("view", 0, count_);
            if constexpr (host_writable) {
                before_host_write(0, count_, false);
                note_view_write();
            } else {
                before_host_read(0, count_);
            }
            return make_view(0, count_);
        } else {
            return std::span<T>{};  // unreachable after the static_assert; keeps the error single
        }
    }

    /// @brief Opens the whole buffer for host writes through a scoped view, the documented way
    /// to write through a view: `auto w = buf.write_scope(); w[i] = x; ...` and, when `w` ends
    /// (or at `w.commit()`), its writes are flushed / staged to the device (fenced, none) or the
    /// buffer is marked host-dirty (lazy). Waits like `view()`. See `host_write_scope`.
    /// @throws std::system_error timeout when the last device use does not complete in time;
    /// invalid_argument on an empty buffer
    [[nodiscard]] host_write_scope<basic_buffer_of> write_scope() { return write_scope(0, count_); }

    /// @brief Opens elements `[offset, offset + count)` for host writes through a scoped view
    /// (element 0 of the scope is element `offset`); its end flushes / stages only that range.
    /// Under lazy, device-newer data is brought back first (the scope may write part of it).
    /// @throws std::system_error out_of_range naming the request and the buffer size; timeout;
    /// invalid_argument on an empty buffer
    [[nodiscard]] host_write_scope<basic_buffer_of> write_scope(std::size_t offset, std::size_t count) {
        static_assert(host_viewable,
                      "unibuf: placement::device memory is not host-visible, so it has no host view or "
                      "write scope; use write()/fill() (staged), or placement::device_mapped / "
                      "placement::automatic for zero-copy (rule R7)");
        static_assert(host_writable,
                      "unibuf: write_scope() on a buffer whose access policy is access::read_only; use "
                      "access::write_only or access::read_write (rule R8)");
        if constexpr (host_viewable && host_writable) {
            check_range("write_scope", offset, count);
            before_host_write(offset, count, false);
            note_view_write();  // until the scope ends: device use that reads it meanwhile loses writes
            return host_write_scope<basic_buffer_of>(*this, offset, make_view(offset, count));
        } else {
            return {};  // unreachable after the static_asserts; keeps the error single
        }
    }

    /// @brief A read-only view that does not mark the buffer dirty (read_write or read_only).
    /// @throws std::system_error timeout; invalid_argument on an empty buffer
    [[nodiscard]] std::span<const T> const_view() {
        static_assert(host_viewable, "unibuf: placement::device memory has no host view; use read() (rule R7)");
        static_assert(host_readable,
                      "unibuf: const_view() reads the buffer, but its access policy is access::write_only; "
                      "use access::read_write or access::read_only (rule R8)");
        if constexpr (host_viewable && host_readable) {
            check_range("const_view", 0, count_);
            before_host_read(0, count_);
            return {host_ptr(), count_};
        } else {
            return {};
        }
    }

    /// @brief Raw host pointer of the first element (no waits, no state change: the caller owns
    /// ordering; under lazy call `mark_host_dirty()` after writing through it). Null when empty.
    [[nodiscard]] auto data() const noexcept {
        static_assert(host_viewable,
                      "unibuf: placement::device memory is not host-visible, so it has no host pointer; "
                      "use write()/read()/to_vector() (rule R7)");
        if constexpr (host_writable) {
            return host_ptr();
        } else {
            return static_cast<const T*>(host_ptr());
        }
    }

    // ---- typed host access ------------------------------------------------------------------

    /// @brief Copies `src` into elements `[offset, offset + src.size())`. Under fenced the range is
    /// flushed / staged to the device at once; under lazy on the next device use; under none the
    /// caller flushes.
    /// @throws std::system_error out_of_range naming the request and the buffer size; timeout;
    /// invalid_argument on an empty buffer
    void write(std::span<const T> src, std::size_t offset = 0) {
        static_assert(host_writable,
                      "unibuf: write() on a buffer whose access policy is access::read_only; use "
                      "access::write_only or access::read_write (rule R8)");
        if constexpr (host_writable) {
            check_range("write", offset, src.size());
            if (src.empty()) return;
            before_host_write(offset, src.size(), offset == 0 && src.size() == count_);
            std::memcpy(static_cast<void*>(host_ptr() + offset), src.data(), src.size_bytes());
            after_host_write(offset, src.size());
        }
    }

    /// @brief Non-throwing `write`: returns out_of_range / timeout instead of throwing;
    /// invalid_argument on an empty buffer.
    [[nodiscard]] std::error_code try_write(std::span<const T> src, std::size_t offset = 0) noexcept {
        static_assert(host_writable, "unibuf: try_write() on an access::read_only buffer (rule R8)");
        if (empty()) return errc::invalid_argument;
        if (offset > count_ || src.size() > count_ - offset) return errc::out_of_range;
        return guard([&] { write(src, offset); });
    }

    /// @brief Copies elements `[offset, offset + dst.size())` into `dst`. Under fenced/lazy waits for
    /// the last device use and invalidates / stages the range back first.
    /// @throws std::system_error out_of_range, timeout; invalid_argument on an empty buffer
    void read(std::span<T> dst, std::size_t offset = 0) {
        static_assert(host_readable,
                      "unibuf: read() on a buffer whose access policy is access::write_only (its memory "
                      "may be write-combined, uncached, tens of MB/s to read); use access::read_write or "
                      "access::read_only (rule R8)");
        if constexpr (host_readable) {
            check_range("read", offset, dst.size());
            if (dst.empty()) return;
            before_host_read(offset, dst.size());
            std::memcpy(static_cast<void*>(dst.data()), host_ptr() + offset, dst.size_bytes());
        }
    }

    /// @brief Non-throwing `read`: out_of_range / timeout; invalid_argument on an empty buffer.
    [[nodiscard]] std::error_code try_read(std::span<T> dst, std::size_t offset = 0) noexcept {
        static_assert(host_readable, "unibuf: try_read() on an access::write_only buffer (rule R8)");
        if (empty()) return errc::invalid_argument;
        if (offset > count_ || dst.size() > count_ - offset) return errc::out_of_range;
        return guard([&] { read(dst, offset); });
    }

    /// @brief Sets every element to `value` (a whole-buffer write: device data is not fetched first).
    /// @throws std::system_error timeout; invalid_argument on an empty buffer
    void fill(const T& value) {
        static_assert(host_writable, "unibuf: fill() on an access::read_only buffer (rule R8)");
        if constexpr (host_writable) {
            check_range("fill", 0, count_);
            before_host_write(0, count_, true);
            T* p = host_ptr();
            for (std::size_t i = 0; i < count_; ++i) std::memcpy(static_cast<void*>(p + i), &value, sizeof(T));
            after_host_write(0, count_);
        }
    }

    /// @brief The whole contents as a vector (waits/invalidates/stages as `read`).
    /// @throws std::system_error timeout; invalid_argument on an empty buffer
    [[nodiscard]] std::vector<T> to_vector() {
        static_assert(host_readable, "unibuf: to_vector() on an access::write_only buffer (rule R8)");
        check_range("to_vector", 0, count_);
        std::vector<T> out(count_);
        if constexpr (host_readable) read(out, 0);
        return out;
    }

    /// @brief Device-side copy of all of `src` into this buffer (sizes must match), ordered after
    /// both buffers' previous device use. Returns the copy's fence; it is also each buffer's last use.
    /// A `src` with unflushed view writes fails the debug-build check of `before_device_use`.
    /// @throws std::system_error out_of_range when the sizes differ; invalid_argument when either
    /// buffer is empty
    template <class A2, class C2, class P2, class S2>
    fence_type copy_from(basic_buffer_of<T, B, A2, C2, P2, S2>& src) {
        if (src.empty())
            throw_error(errc::invalid_argument, "unibuf: copy_from (the source) on an empty (moved-from) buffer");
        require_allocation("copy_from (the destination)");
        if (&src.backend() != backend_)
            throw_error(errc::invalid_argument, "unibuf: copy_from a buffer that lives on " +
                                                    detail::backend_label(src.backend()) + " into one on " +
                                                    detail::backend_label(*backend_) +
                                                    "; a copy runs on one backend (context), which must have made both");
        if (src.size() != count_)
            throw_error(errc::out_of_range, "unibuf: copy_from a buffer of " + std::to_string(src.size()) +
                                                " elements into a buffer of " + std::to_string(count_) +
                                                " elements; sizes must match");
        src.before_device_use(usage::read);
        before_device_use(usage::write);
        fence_type f = backend_->copy(src.allocation(), src.byte_offset(), *alloc_, offset_, size_bytes());
        src.after_device_use(f, usage::read);
        after_device_use(f, usage::write);
        return f;
    }

    // ---- explicit synchronization -----------------------------------------------------------

    /// @brief Makes host writes to elements `[offset, offset+count)` visible to the device (flush
    /// rounded to the non-coherent atom, or a staging copy). Needed under sync::none with
    /// explicit_flush and after writes through `view()` (a `write_scope()` does it when it ends);
    /// harmless otherwise. Clears the mark of unflushed view writes (`has_unflushed_view_writes()`).
    /// Returns the fence after which the device sees them; dropping it is fine (the buffer keeps it
    /// as its last use).
    /// @throws std::system_error out_of_range; invalid_argument on an empty buffer
    fence_type flush(std::size_t offset, std::size_t count) {
        check_range("flush", offset, count);
        fence_type f = backend_->flush(*alloc_, offset_ + offset * sizeof(T), count * sizeof(T));
        note_use(f);
        unflushed_view_writes_ = false;
        return f;
    }
    /// @brief Flushes the whole buffer. @throws std::system_error invalid_argument on an empty buffer
    fence_type flush() { return flush(0, count_); }

    /// @brief Makes device writes to elements `[offset, offset+count)` visible to the host. The
    /// caller must have waited for the device work (sync::none); fenced/lazy wait here. Every
    /// wait, the backend's staging copy included, is bounded by `set_wait_timeout`.
    /// @throws std::system_error out_of_range, timeout; invalid_argument on an empty buffer
    void invalidate(std::size_t offset, std::size_t count) {
        check_range("invalidate", offset, count);
        if constexpr (sync != sync_kind::none) wait_idle("invalidate");
        backend_invalidate(offset_ + offset * sizeof(T), count * sizeof(T));
    }
    /// @brief Invalidates the whole buffer. @throws as `invalidate(offset, count)`
    void invalidate() { invalidate(0, count_); }

    /// @brief Waits (bounded by `timeout`) for the last device use. Returns false on timeout;
    /// true at once when empty.
    [[nodiscard]] bool wait(std::chrono::nanoseconds timeout) const {
        if (backend_ == nullptr) return true;
        return backend_->is_complete(last_use_) || backend_->wait(last_use_, timeout);
    }
    /// @brief True when no device use is pending (never blocks); true when empty.
    [[nodiscard]] bool is_idle() const {
        return backend_ == nullptr || backend_->is_complete(last_use_);
    }

    /// @brief Lazy (rule R10): brings host data to the device now if it is newer there.
    /// Empty buffer: does nothing.
    void sync_to_device() {
        static_assert(sync == sync_kind::lazy,
                      "unibuf: sync_to_device() exists only under sync::lazy, but this buffer's sync "
                      "policy is sync::fenced or sync::none: use flush() to make host writes visible to "
                      "the device (rule R10)");
        if (empty()) return;
        apply(on_sync_to_device(state_), 0, count_);
    }
    /// @brief Lazy (rule R10): brings device data to the host now if it is newer there.
    /// Empty buffer: does nothing.
    void sync_to_host() {
        static_assert(sync == sync_kind::lazy,
                      "unibuf: sync_to_host() exists only under sync::lazy, but this buffer's sync policy "
                      "is sync::fenced or sync::none: use invalidate() (or read()) to see device writes "
                      "(rule R10)");
        if (empty()) return;
        apply(on_sync_to_host(state_), 0, count_);
    }
    /// @brief Lazy (rule R10): records a host write made through `data()`. Empty buffer: does nothing.
    void mark_host_dirty() noexcept {
        static_assert(sync == sync_kind::lazy,
                      "unibuf: mark_host_dirty() exists only under sync::lazy, but this buffer's sync "
                      "policy is sync::fenced or sync::none: use flush() after writing through data() "
                      "(rule R10)");
        if (empty()) return;
        state_ = on_mark_host_dirty(state_);
    }
    /// @brief Lazy (rule R10): records a device write the buffer did not see. Empty buffer: does nothing.
    void mark_device_dirty() noexcept {
        static_assert(sync == sync_kind::lazy,
                      "unibuf: mark_device_dirty() exists only under sync::lazy, but this buffer's sync "
                      "policy is sync::fenced or sync::none: use invalidate() before reading device "
                      "writes (rule R10)");
        if (empty()) return;
        state_ = on_mark_device_dirty(state_);
    }

    // ---- device-use protocol (called by dispatch/copy helpers of the backends) --------------

    /// @brief Prepares for device work that uses the buffer as `u`: under lazy, host-newer data
    /// is flushed / staged first. Returns the fence the device work must follow (complete if none).
    /// Under fenced/none, device work that reads a buffer with unflushed view writes
    /// (`has_unflushed_view_writes()`) fails `UNIBUF_ASSERT` in debug builds (a lost write; see the
    /// class comment); device work that only writes clears the mark.
    /// @throws std::system_error invalid_argument on an empty buffer (there is nothing to bind)
    fence_type before_device_use(usage u) {
        require_allocation("device use");
        check_view_writes_flushed(u);
        if constexpr (sync == sync_kind::lazy) {
            const transition t = on_device_use(state_, reads(u), writes(u));
            fence_type f{};
            if (t.action == sync_action::to_device) f = do_to_device(0, count_);
            state_ = t.next;
            return f;
        } else {
            (void)u;
            return fence_type{};
        }
    }

    /// @brief Records that device work with fence `f` used the buffer as `u`. Empty buffer: does nothing.
    void after_device_use(const fence_type& f, usage u) noexcept {
        (void)u;
        note_use(f);
    }

    // ---- whole-buffer fill protocol (used by unibuf::producer) ------------------------------

    /// @brief Starts a fill of the whole buffer by the library's writers: waits (bounded) for the
    /// last device use and returns the host bytes the writers may store into (the mapping, or the
    /// staging buffer of placement::device). Device data is not fetched: the fill replaces all of it.
    /// @throws std::system_error timeout; invalid_argument on an empty buffer
    [[nodiscard]] std::byte* begin_fill() {
        static_assert(host_writable, "unibuf: a fill writes the buffer, but its access policy is access::read_only (rule R8)");
        check_range("fill", 0, count_);
        if constexpr (sync != sync_kind::none) wait_idle("fill");
        if constexpr (sync == sync_kind::lazy) state_ = buffer_state::host_dirty;
        return alloc_->host_data() + offset_;
    }
    /// @brief Ends a fill: `f` is the fence after which the device sees the data (the last staging
    /// copy or flush), or, with `device_current == false`, the data is only on the host (a fill
    /// that failed part-way: under lazy the buffer stays host-dirty and the next device use
    /// flushes it). Empty buffer: does nothing.
    void end_fill(const fence_type& f, bool device_current) noexcept {
        if (empty()) return;
        note_use(f);
        if constexpr (sync == sync_kind::lazy) state_ = device_current ? buffer_state::synchronized : buffer_state::host_dirty;
        if (device_current) unflushed_view_writes_ = false;  // the fill replaced every element
    }

protected:
    /// @brief An empty buffer (for the stand-in of rule R9 only; buffers are made by the
    /// constructors above, `try_create` or a pool).
    basic_buffer_of() noexcept = default;

private:
    basic_buffer_of(B& backend, allocation_type&& a, std::size_t count) : backend_(&backend), count_(count) {
        owned_.emplace(std::move(a));
        alloc_ = &*owned_;
    }

    void steal(basic_buffer_of& o) noexcept {
        backend_ = std::exchange(o.backend_, nullptr);
        if (o.owned_) {
            owned_.emplace(std::move(*o.owned_));
            o.owned_.reset();
            alloc_ = &*owned_;
            o.alloc_ = nullptr;
        } else {
            alloc_ = std::exchange(o.alloc_, nullptr);
        }
        offset_ = std::exchange(o.offset_, 0);
        count_ = std::exchange(o.count_, 0);
        release_ = std::exchange(o.release_, slice_release{});
        last_use_ = std::exchange(o.last_use_, fence_type{});
        state_ = std::exchange(o.state_, buffer_state::uninitialized);
        unflushed_view_writes_ = std::exchange(o.unflushed_view_writes_, false);
        wait_timeout_ = o.wait_timeout_;
    }

    [[nodiscard]] T* host_ptr() const noexcept {
        if (alloc_ == nullptr) return nullptr;
        return reinterpret_cast<T*>(alloc_->host_data() + offset_);
    }

    [[nodiscard]] auto make_view(std::size_t offset, std::size_t n) {
        if constexpr (host_readable && host_writable) {
            return std::span<T>(host_ptr() + offset, n);
        } else if constexpr (host_readable) {
            return std::span<const T>(host_ptr() + offset, n);
        } else {
            return write_only_view<T>(host_ptr() + offset, n);
        }
    }

    /// True when host writes need a flush or a staging copy to reach the device.
    [[nodiscard]] bool writes_need_flush() const noexcept {
        const allocation_report& r = alloc_->report();
        return !(r.zero_copy && r.host_coherent);
    }

    // The lost-write mark (see the class comment): set by writable views, cleared by what makes
    // the writes visible to the device; never set under lazy (the view marks the state instead).
    void note_view_write() noexcept {
        if constexpr (sync != sync_kind::lazy) {
            if (writes_need_flush()) unflushed_view_writes_ = true;
        }
    }

    // Device work that reads the buffer must not start while view writes are unflushed; device
    // work that only writes supersedes them.
    void check_view_writes_flushed(usage u) noexcept {
        if constexpr (sync != sync_kind::lazy) {
            if (!reads(u)) {
                unflushed_view_writes_ = false;
                return;
            }
            UNIBUF_ASSERT(!unflushed_view_writes_,
                          "a buffer was bound to device work that reads it while host writes made through "
                          "its view() were not flushed: its memory is staged or non-coherent, so the device "
                          "would read old data. Write through write_scope() (flushes when it ends) or call "
                          "flush() before the device use");
        } else {
            (void)u;
        }
    }

    void require_allocation(const char* what) const {
        if (alloc_ == nullptr)
            throw_error(errc::invalid_argument, std::string("unibuf: ") + what + " on an empty (moved-from) buffer");
    }

    void check_range(const char* what, std::size_t offset, std::size_t n) const {
        require_allocation(what);
        if (offset > count_ || n > count_ - offset)
            throw_error(errc::out_of_range, std::string("unibuf: ") + what + " of " + std::to_string(n) +
                                                " elements at offset " + std::to_string(offset) +
                                                " in a buffer of " + std::to_string(count_) + " elements");
    }

    template <class F>
    std::error_code guard(F&& f) noexcept {
        return detail::code_of(std::forward<F>(f));
    }

    void wait_idle(const char* what) {
        if (backend_->is_complete(last_use_)) return;
        if (!backend_->wait(last_use_, wait_timeout_))
            throw_error(errc::timeout,
                        std::string("unibuf: ") + what + ": the buffer's last device use did not complete within " +
                            detail::ms_text(wait_timeout_) +
                            " ms");
    }

    void note_use(const fence_type& f) noexcept {
        if (backend_ == nullptr) return;
        // Fences of one backend complete in submission order, so the newest pending one covers the rest.
        if (!backend_->is_complete(f)) last_use_ = f;
    }

    fence_type do_to_device(std::size_t offset, std::size_t n) {
        fence_type f = backend_->flush(*alloc_, offset_ + offset * sizeof(T), n * sizeof(T));
        note_use(f);
        if (offset == 0 && n == count_) unflushed_view_writes_ = false;  // every element went
        return f;
    }
    void do_to_host(std::size_t offset, std::size_t n) {
        wait_idle("host access");
        backend_invalidate(offset_ + offset * sizeof(T), n * sizeof(T));
    }

    // The backend's invalidate. A staging copy back that timed out stays queued and writes the
    // host copy when it runs: the buffer counts everything submitted so far as its last use, so
    // that its memory (a pool slice) is not handed to another buffer before that copy ran (the
    // fault walk found that reuse).
    void backend_invalidate(std::uint64_t off, std::uint64_t n) {
#if UNIBUF_EXCEPTIONS
        try {
            backend_->invalidate(*alloc_, off, n, wait_timeout_);
        } catch (const std::system_error& e) {
            if constexpr (FenceSource<B>) {
                if (e.code() == make_error_code(errc::timeout)) note_use(backend_->submitted_fence());
            }
            throw;
        }
#else
        backend_->invalidate(*alloc_, off, n, wait_timeout_);
#endif
    }

    void apply(const transition& t, std::size_t offset, std::size_t n) {
        if (t.action == sync_action::to_device) do_to_device(offset, n);
        if (t.action == sync_action::to_host) do_to_host(offset, n);
        state_ = t.next;
    }

    void before_host_write(std::size_t offset, std::size_t n, bool whole) {
        if constexpr (sync == sync_kind::none) {
            (void)offset, (void)n, (void)whole;
        } else {
            wait_idle("host write");  // never write memory the device may still read
            if constexpr (sync == sync_kind::lazy) {
                const transition t = on_host_write(state_, whole);
                // Bring the whole buffer back: a partial host write must not clobber newer device data.
                if (t.action == sync_action::to_host) do_to_host(0, count_);
                state_ = t.next;
            }
            (void)offset, (void)n;
        }
    }

    void after_host_write(std::size_t offset, std::size_t n) {
        if constexpr (sync == sync_kind::fenced) do_to_device(offset, n);
        (void)offset, (void)n;
    }

    void before_host_read(std::size_t offset, std::size_t n) {
        if constexpr (sync == sync_kind::fenced) {
            do_to_host(offset, n);
        } else if constexpr (sync == sync_kind::lazy) {
            apply(on_host_read(state_), 0, count_);
            (void)offset, (void)n;
        } else {
            (void)offset, (void)n;
        }
    }

    // Members in destruction order matter only for owned_: alloc_ may point into it.
    B* backend_ = nullptr;
    std::optional<allocation_type> owned_;
    allocation_type* alloc_ = nullptr;
    std::uint64_t offset_ = 0;
    std::size_t count_ = 0;
    slice_release release_{};
    fence_type last_use_{};
    buffer_state state_ = buffer_state::uninitialized;
    bool unflushed_view_writes_ = false;  // see has_unflushed_view_writes()
    std::chrono::nanoseconds wait_timeout_ = default_wait_timeout;
};

namespace detail {
/// @brief Every member `Backend` asks for, and no behaviour: the stand-in backend of a buffer
/// whose backend argument is not a backend, so that the buffer is diagnosed once (rule R9)
/// instead of by a cascade of errors about the missing members. Never runs.
struct unusable_backend {
    struct allocation {
        [[nodiscard]] std::byte* host_data() const noexcept { return nullptr; }
        [[nodiscard]] std::uint64_t size() const noexcept { return 0; }
        [[nodiscard]] const allocation_report& report() const noexcept { return report_; }
        allocation_report report_;
    };
    struct fence {};
    allocation allocate(const memory_request&) { return {}; }
    allocation try_allocate(const memory_request&, std::error_code&) { return {}; }
    fence flush(allocation&, std::uint64_t, std::uint64_t) { return {}; }
    void invalidate(allocation&, std::uint64_t, std::uint64_t, std::chrono::nanoseconds) {}
    fence copy(allocation&, std::uint64_t, allocation&, std::uint64_t, std::uint64_t) { return {}; }
    bool wait(const fence&, std::chrono::nanoseconds) const { return true; }
    bool is_complete(const fence&) const { return true; }
    device_limits limits() const { return {}; }
    std::string_view name() const { return "unusable"; }
};

/// @brief What `basic_buffer<T, B, ...>` names when `B` is not a backend: rejected once, with
/// rule R9; it has every member of a buffer, so uses of the variable add no further errors.
template <class T, class B, class A, class C, class P, class S>
class not_a_backend_buffer : public basic_buffer_of<T, unusable_backend, A, C, P, S> {
    static_assert(always_false<B>,
                  "unibuf: the backend argument of a buffer is not a backend: it must provide the "
                  "allocation and fence types, allocate, try_allocate, flush, invalidate(a, off, n, "
                  "timeout), copy, wait, is_complete, limits and name (the Backend concept of "
                  "concepts.hpp), like host_backend, vulkan_backend or gl_backend (rule R9)");

public:
    template <class... Args>
    not_a_backend_buffer(Args&&...) noexcept {}  // NOLINT: accepts any arguments, already rejected
    template <class... Args>
    [[nodiscard]] static std::optional<not_a_backend_buffer> try_create(Args&&...) noexcept {
        return std::nullopt;
    }
};
} // namespace detail

/// @brief Streaming upload: host writes only, write-combined, placed automatically, fenced.
template <class T, class B>
using upload_buffer = basic_buffer<T, B, access::write_only, coherence::write_combined, placement::automatic, sync::fenced>;

/// @brief Readback: host reads only, coherent cached system memory, fenced.
template <class T, class B>
using readback_buffer = basic_buffer<T, B, access::read_only, coherence::coherent, placement::host, sync::fenced>;

/// @brief Shared read-write buffer, placed automatically, synchronized lazily.
template <class T, class B>
using shared_buffer = basic_buffer<T, B, access::read_write, coherence::coherent, placement::automatic, sync::lazy>;

/// @brief Device-only buffer (VRAM); host access is staged, synchronized lazily.
template <class T, class B>
using device_buffer = basic_buffer<T, B, access::read_write, coherence::coherent, placement::device, sync::lazy>;

} // namespace unibuf
