/// @file ring.hpp
/// @brief `ring<Buffer, N>`: N buffers cycled between producers and consumers, each slot guarded
/// by fences of its backend.
///
/// Every item that passes through the ring gets a sequence number `s`; it lives in slot `s % N`.
/// The protocol follows cppcoro's `single_producer_sequencer` / `sequence_barrier` split, with
/// per-slot state so that several producers and several consumers may share one ring:
///
/// | side | call | what it waits for |
/// |---|---|---|
/// | producer | `claim()` → `write_slot` | the consumers released sequence `s - N` of this slot **and** the fence of the device work that read it completed |
/// | producer | `write_slot::publish(f)` | nothing; `f` (default: complete) is device work that writes the slot |
/// | consumer | `read()` → `read_slot` | sequence `s` published **and** its publish fence completed |
/// | consumer | `read_slot::release(f)` | nothing; `f` (default: complete) is device work that still reads the slot |
///
/// So the ring never hands a producer a slot the device still reads: a GPU consumer releases
/// with the fence of the dispatch that read the slot, and the slot becomes claimable when that
/// fence completes (the slot buffer's own `last_use()` fence is checked too). Consumers get
/// items strictly in sequence order, whichever producer published first.
///
/// Waiting is bounded and composable, for a later coroutine pipeline: each operation has a
/// waiting form (`claim(timeout)`, or `claim()` bounded by the ring's `set_wait_timeout`, throws
/// `errc::timeout` naming the wait and its duration; `try_claim_for` returns empty), a
/// form that never waits (`try_claim`), a predicate (`ready_to_claim`), and `claim_blocker()`,
/// which says what the next call would wait for: the consumers (a release), the producers (a
/// publish) or the device, together with the backend fence to await in the device case.
/// For coroutines, `claim_or_wait` / `read_or_wait` take a `ring_waiter` that the ring wakes at
/// its next state change when the other side blocks the call (no thread waits); the async layer's
/// `claim_async` / `read_async` (async/ring_awaitable.hpp) are built on them.
///
/// Threads: every operation may be called from any thread (a mutex guards the slot states;
/// device fences are waited for outside it). A lease (`write_slot`/`read_slot`) gives its holder
/// the slot buffer alone until it publishes/releases; leases are RAII: a `write_slot` destroyed
/// unpublished is abandoned (consumers skip it), a `read_slot` destroyed unreleased is released
/// with no device fence.
///
/// @code
/// unibuf::host_backend dev;
/// unibuf::ring<unibuf::shared_buffer<float, unibuf::host_backend>, 3> r(dev, 1024);  // 3 owning slots
/// {
///     auto w = r.claim();              // waits (bounded) until slot 0 is free
///     w->fill(1.0f);
///     w.publish();                     // host writes done
/// }
/// auto rd = r.read();                  // sequence 0
/// auto f = unibuf::dispatch(dev, kernel, {16}, {}, unibuf::bind(*rd));
/// rd.release(f);                       // slot 0 is claimable again once f completes
/// @endcode
#pragma once

#include "../core/vocabulary.hpp"
#include "../buffer/concepts.hpp"
#include "../core/error.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief What a ring operation would wait for.
enum class ring_wait : std::uint8_t {
    none,      ///< it would not wait
    consumer,  ///< a claim waits for the consumers to release the slot's previous item
    producer,  ///< a read waits for the producers to publish the next item
    device,    ///< device work must finish first (`ring_blocker::fence`)
};

/// @brief Printable name of a ring wait reason.
[[nodiscard]] constexpr const char* to_string(ring_wait w) noexcept {
    switch (w) {
        case ring_wait::none: return "none";
        case ring_wait::consumer: return "consumer";
        case ring_wait::producer: return "producer";
        case ring_wait::device: return "device";
    }
    return "?";
}

/// @brief What the next claim or read of a ring would wait for.
/// @tparam Fence the backend's fence type
template <class Fence>
struct ring_blocker {
    ring_wait reason = ring_wait::none;  ///< none: the call would succeed at once
    Fence fence{};                       ///< the fence to await when `reason == device`
    std::uint64_t sequence = 0;          ///< the sequence the call is for
    std::size_t slot = 0;                ///< its slot index
    /// @brief True when the call would wait.
    [[nodiscard]] explicit operator bool() const noexcept { return reason != ring_wait::none; }
};

/// @brief A waiter the ring wakes once, at its next state change (a publish, a release, an
/// abandoned item recycled): the hook the async layer's `claim_async` / `read_async` build on
/// (`ring::claim_or_wait`, `ring::read_or_wait`, `ring::cancel_wait`). `wake()` is called with the
/// ring's lock held, so it must be short and must not call the ring (the async layer posts a
/// coroutine to its scheduler); once `cancel_wait` returned, it is never called again.
class ring_waiter {
public:
    /// @brief Called once, under the ring's lock, after the ring's state changed.
    virtual void wake() noexcept = 0;

protected:
    ring_waiter() = default;
    ring_waiter(const ring_waiter&) = default;
    ring_waiter& operator=(const ring_waiter&) = default;
    ~ring_waiter() = default;
};

namespace detail {
enum class ring_phase : std::uint8_t { free, writing, published, reading };

// Rule R13 as a plain constant: a failed static_assert then prints its message, not the
// Buffer concept's unsatisfied requirements (GCC reports those as further errors).
template <class Buf>
inline constexpr bool ring_buffer_ok = Buffer<Buf>;

// Stand-ins for the slot type of a ring whose buffer argument is rejected (rule R13): they give
// the ring's declarations something to compile against, so the rejection stays the only error.
// Declared, never defined: a program that names them does not compile.
struct rejected_ring_backend {
    struct fence {
        bool operator==(const fence&) const = default;
    };
    bool is_complete(const fence&) const;
    bool wait(const fence&, std::chrono::nanoseconds);
};
struct rejected_ring_slot {
    using backend_type = rejected_ring_backend;
};
template <class Buf, bool Ok = ring_buffer_ok<Buf>>
struct ring_slot_of {
    using type = Buf;
};
template <class Buf>
struct ring_slot_of<Buf, false> {
    using type = rejected_ring_slot;
};

template <class Buf, class Fence>
[[nodiscard]] Fence buffer_last_use(const Buf& b) noexcept {
    if constexpr (requires {
                      { b.last_use() } -> std::convertible_to<const Fence&>;
                      { b.empty() } -> std::convertible_to<bool>;
                  }) {
        return b.empty() ? Fence{} : Fence(b.last_use());
    } else {
        return Fence{};
    }
}
} // namespace detail

/// @brief A ring of `N` buffers guarded by fences (see the file comment).
///
/// Not copyable or movable (leases point to it). An empty lease (default-constructed, moved
/// from, published or released) holds no slot: `buffer()`, `operator*`, `operator->`,
/// `sequence()`, `index()`, `publish()` and `release()` throw `errc::invalid_argument`;
/// `operator bool` is false; destroying or assigning over it does nothing.
///
/// @tparam Buf the slot buffer type (`Buffer` concept; anything else is rejected with rule R13):
///         owning or pool-backed `basic_buffer`
/// @tparam N number of slots (the most items in flight at once; at least 1, rule R13)
template <class Buf, std::size_t N>
class ring {
    static_assert(detail::ring_buffer_ok<Buf>,
                  "unibuf: ring<Buf, N>: Buf is not a buffer type: a ring's slots are buffers (basic_buffer, its "
                  "aliases, or a pool's buffer<T>) that expose value_type, backend_type and their four policies "
                  "(the Buffer concept) (rule R13)");
    static_assert(N > 0, "unibuf: ring<Buf, N>: a ring needs at least one slot (N > 0) (rule R13)");
    static constexpr bool valid = detail::ring_buffer_ok<Buf> && N > 0;
    static constexpr std::size_t S = N > 0 ? N : 1;  // slot count of the arithmetic (N = 0 is rejected above)
    using slot_type = typename detail::ring_slot_of<Buf>::type;

public:
    using buffer_type = Buf;
    using backend_type = typename slot_type::backend_type;
    using fence_type = typename backend_type::fence;
    using blocker_type = ring_blocker<fence_type>;

    /// @brief Number of slots.
    [[nodiscard]] static constexpr std::size_t size() noexcept { return N; }

    /// @brief A lease on one slot, for a producer (`Write`: write the buffer, then `publish`) or a
    /// consumer (read the published buffer, then `release`). Move-only; a moved-from, published
    /// or released lease is empty: `operator bool` is false and every other member throws
    /// `invalid_argument`. Use the names `write_slot` and `read_slot`.
    template <bool Write>
    class lease {
    public:
        /// @brief An empty lease (holds no slot).
        lease() = default;
        /// @brief Takes over `o`'s slot; `o` becomes empty.
        lease(lease&& o) noexcept : ring_(std::exchange(o.ring_, nullptr)), seq_(std::exchange(o.seq_, 0)) {}
        /// @brief Ends the slot held before (if any, as the destructor does), then takes over
        /// `o`'s; `o` becomes empty.
        lease& operator=(lease&& o) noexcept {
            if (this != &o) {
                end_unfinished();
                ring_ = std::exchange(o.ring_, nullptr);
                seq_ = std::exchange(o.seq_, 0);
            }
            return *this;
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        /// @brief A write lease abandons an unpublished slot (consumers skip its sequence); a read
        /// lease releases its slot with no device fence (a host consumer that is done). Nothing
        /// when empty.
        ~lease() { end_unfinished(); }

        /// @brief The slot's buffer (this lease's alone until `publish` / `release`).
        /// @throws std::system_error invalid_argument on an empty lease
        [[nodiscard]] slot_type& buffer() const { return held("buffer()")->slots_[seq_ % S]; }
        /// @brief The slot's buffer, as `buffer()` (throws the same on an empty lease).
        [[nodiscard]] slot_type& operator*() const { return buffer(); }
        /// @brief Member access to the slot's buffer (throws as `buffer()` on an empty lease).
        [[nodiscard]] slot_type* operator->() const { return &buffer(); }
        /// @brief The item's sequence number.
        /// @throws std::system_error invalid_argument on an empty lease
        [[nodiscard]] std::uint64_t sequence() const {
            (void)held("sequence()");
            return seq_;
        }
        /// @brief The slot index (`sequence() % N`).
        /// @throws std::system_error invalid_argument on an empty lease
        [[nodiscard]] std::size_t index() const {
            (void)held("index()");
            return static_cast<std::size_t>(seq_ % S);
        }
        /// @brief True while the lease holds a slot (false when empty).
        [[nodiscard]] explicit operator bool() const noexcept { return ring_ != nullptr; }

        /// @brief Write lease: hands the item to the consumers. `f` is device work that writes
        /// the slot (consumers wait for it); default: the host wrote it and it is ready now. The
        /// lease becomes empty.
        /// @throws std::system_error invalid_argument on an empty lease (already published, moved
        ///         from, or never claimed)
        void publish(const fence_type& f = fence_type{})
            requires Write
        {
            (void)held("publish()");
            std::exchange(ring_, nullptr)->finish_write(std::exchange(seq_, 0), f, false);
        }

        /// @brief Read lease: gives the slot back to the producers. `f` is device work that still
        /// reads the slot (a GPU consumer's dispatch): the slot is not claimed again before `f`
        /// completes. The lease becomes empty.
        /// @throws std::system_error invalid_argument on an empty lease (already released, moved
        ///         from, or never read)
        void release(const fence_type& f = fence_type{})
            requires(!Write)
        {
            (void)held("release()");
            std::exchange(ring_, nullptr)->finish_read(std::exchange(seq_, 0), f);
        }

    private:
        friend class ring;
        lease(ring* r, std::uint64_t s) noexcept : ring_(r), seq_(s) {}
        void end_unfinished() noexcept {
            if (ring_ == nullptr) return;
            if constexpr (Write) {
                ring_->finish_write(seq_, fence_type{}, true);
            } else {
                ring_->finish_read(seq_, fence_type{});
            }
        }
        ring* held(const char* what) const {
            if (ring_ == nullptr)
                throw_error(errc::invalid_argument,
                            std::string("unibuf: ring: ") + what +
                                (Write ? " of an empty write_slot (moved from, published or never claimed)"
                                       : " of an empty read_slot (moved from, released or never read)"));
            return ring_;
        }
        ring* ring_ = nullptr;
        std::uint64_t seq_ = 0;
    };

    /// @brief A producer's lease on one slot: write the buffer, then `publish`.
    using write_slot = lease<true>;
    /// @brief A consumer's lease on one published slot: read the buffer, then `release`.
    using read_slot = lease<false>;

    /// @brief A ring of `N` owning buffers of `elements` elements each, allocated now.
    /// @throws std::system_error from the buffers' allocation
    ring(backend_type& backend, std::size_t elements)
        requires valid && std::constructible_from<slot_type, backend_type&, std::size_t>
        : ring(backend, [&](std::size_t) { return slot_type(backend, elements); }) {}

    /// @brief A ring whose slot `i` is `make(i)` (e.g. `pool.acquire<float>(n)` for pool-backed
    /// slots). Every slot must hold memory on `backend`: the ring waits on `backend`'s fences.
    /// @throws std::system_error invalid_argument when `make` returns an empty (moved-from) buffer
    ///         or a buffer of another backend object (names the slot); whatever `make` throws
    template <class Make>
        requires valid && std::invocable<Make&, std::size_t> &&
                 std::same_as<std::invoke_result_t<Make&, std::size_t>, slot_type>
    ring(backend_type& backend, Make&& make)
        : backend_(&backend), slots_(make_slots(make, std::make_index_sequence<S>{})) {
        for (std::size_t i = 0; i < S; ++i) {
            state_[i].seq = i;
            check_slot(i);
        }
    }

    /// @brief Only for a ring rule R13 rejects: accepts the arguments so that the rejection is
    /// the only error.
    template <class AnyBackend, class Arg>
        requires(!valid)
    ring(AnyBackend&, Arg&&) : backend_(nullptr) {}

    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    /// @brief Leases must be gone; the slot buffers then wait for their last device use themselves.
    ~ring() = default;

    /// @brief Bound on the waits of `claim()` and `read()` without a timeout argument (default
    /// `default_wait_timeout`, 10 s). Any thread may set it.
    void set_wait_timeout(std::chrono::nanoseconds t) noexcept { wait_timeout_.store(t.count(), std::memory_order_relaxed); }
    /// @brief The bound `set_wait_timeout` set.
    [[nodiscard]] std::chrono::nanoseconds wait_timeout() const noexcept {
        return std::chrono::nanoseconds(wait_timeout_.load(std::memory_order_relaxed));
    }

    // ---- producer ---------------------------------------------------------------------------

    /// @brief Claims the next slot, waiting at most `wait_timeout()`.
    /// @throws std::system_error timeout, naming the claim, its duration and what it waited for
    [[nodiscard]] write_slot claim() { return claim(wait_timeout()); }
    /// @brief Claims the next slot, waiting at most `timeout`.
    /// @throws std::system_error timeout, naming the claim, its duration and what it waited for
    [[nodiscard]] write_slot claim(std::chrono::nanoseconds timeout) {
        blocker_type b;
        auto w = wait_loop<write_slot>(&ring::claim_step, timeout, b);
        if (!w) throw_error(errc::timeout, timeout_message("claim", b, timeout));
        return std::move(*w);
    }
    /// @brief Claims the next slot if that needs no wait; empty otherwise (all slots in flight).
    [[nodiscard]] std::optional<write_slot> try_claim() {
        blocker_type b;
        return wait_loop<write_slot>(&ring::claim_step, std::chrono::nanoseconds{0}, b);
    }
    /// @brief Claims the next slot, waiting at most `timeout`; empty on timeout.
    [[nodiscard]] std::optional<write_slot> try_claim_for(std::chrono::nanoseconds timeout) {
        blocker_type b;
        return wait_loop<write_slot>(&ring::claim_step, timeout, b);
    }
    /// @brief What the next claim would wait for (`reason == none`: nothing). Never blocks.
    [[nodiscard]] blocker_type claim_blocker() const {
        std::lock_guard lk(m_);
        return claim_state();
    }
    /// @brief True when `try_claim` would succeed now.
    [[nodiscard]] bool ready_to_claim() const { return !claim_blocker(); }

    // ---- consumer ---------------------------------------------------------------------------

    /// @brief Takes the next published item in sequence order, waiting at most `wait_timeout()`.
    /// @throws std::system_error timeout, naming the read, its duration and what it waited for
    [[nodiscard]] read_slot read() { return read(wait_timeout()); }
    /// @brief Takes the next published item in sequence order, waiting at most `timeout`.
    /// @throws std::system_error timeout, naming the read, its duration and what it waited for
    [[nodiscard]] read_slot read(std::chrono::nanoseconds timeout) {
        blocker_type b;
        auto r = wait_loop<read_slot>(&ring::read_step, timeout, b);
        if (!r) throw_error(errc::timeout, timeout_message("read", b, timeout));
        return std::move(*r);
    }
    /// @brief Takes the next item if it is published and ready; empty otherwise.
    [[nodiscard]] std::optional<read_slot> try_read() {
        blocker_type b;
        return wait_loop<read_slot>(&ring::read_step, std::chrono::nanoseconds{0}, b);
    }
    /// @brief Takes the next item, waiting at most `timeout`; empty on timeout.
    [[nodiscard]] std::optional<read_slot> try_read_for(std::chrono::nanoseconds timeout) {
        blocker_type b;
        return wait_loop<read_slot>(&ring::read_step, timeout, b);
    }
    /// @brief What the next read would wait for. Never blocks.
    [[nodiscard]] blocker_type read_blocker() const {
        std::lock_guard lk(m_);
        return read_state();
    }
    /// @brief True when `try_read` would succeed now.
    [[nodiscard]] bool ready_to_read() const { return !read_blocker(); }

    // ---- waiting without a thread (the async layer's hook) ---------------------------------

    /// @brief Claims the next slot if that needs no wait. Otherwise, atomically with the check:
    /// when the consumers block it, registers `w` to be woken at the next state change
    /// (`why.reason == consumer`); when device work blocks it, registers nothing and names the
    /// fence to await (`why.reason == device`). Never blocks.
    [[nodiscard]] std::optional<write_slot> claim_or_wait(ring_waiter& w, blocker_type& why) {
        return step_or_wait<write_slot>(&ring::claim_step, w, why);
    }
    /// @brief Takes the next item if it is published and ready; otherwise registers `w` when the
    /// producers block it (`why.reason == producer`), or names the device fence (`device`), as
    /// `claim_or_wait`. Never blocks.
    [[nodiscard]] std::optional<read_slot> read_or_wait(ring_waiter& w, blocker_type& why) {
        return step_or_wait<read_slot>(&ring::read_step, w, why);
    }
    /// @brief Waiters registered by `claim_or_wait` / `read_or_wait` and not yet woken.
    [[nodiscard]] std::size_t waiters() const {
        std::lock_guard lk(m_);
        return waiters_.size();
    }
    /// @brief Unregisters `w`; true when it was still registered (it will not be woken), false
    /// when it was woken already or never registered. After it returns, `w` is never called.
    bool cancel_wait(ring_waiter& w) noexcept {
        std::lock_guard lk(m_);
        for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
            if (*it == &w) {
                waiters_.erase(it);
                return true;
            }
        }
        return false;
    }

    // ---- observers --------------------------------------------------------------------------

    /// @brief Slot `i`'s buffer, outside the protocol (set-up and inspection while no lease on it
    /// is held; the caller keeps that order).
    /// @throws std::system_error out_of_range when `i >= N` (names `i` and `N`)
    [[nodiscard]] slot_type& slot(std::size_t i) {
        check_index("slot", i);
        return slots_[i];
    }
    /// @brief The device fence slot `i` waits on before its next hand-out (complete when none).
    /// @throws std::system_error out_of_range when `i >= N` (names `i` and `N`)
    [[nodiscard]] fence_type slot_fence(std::size_t i) const {
        check_index("slot_fence", i);
        std::lock_guard lk(m_);
        return state_[i].fence;
    }
    /// @brief Sequence the next claim gets (= items claimed so far).
    [[nodiscard]] std::uint64_t next_claim_sequence() const {
        std::lock_guard lk(m_);
        return next_claim_;
    }
    /// @brief Sequence the next read gets (= items read or skipped so far).
    [[nodiscard]] std::uint64_t next_read_sequence() const {
        std::lock_guard lk(m_);
        return next_read_;
    }
    /// @brief The backend whose fences guard the slots.
    [[nodiscard]] backend_type& backend() const noexcept { return *backend_; }

    /// @brief The message of a claim or read (`what`) that timed out after `timeout`, blocked as `b`
    /// says: the sequence, the slot and what it waited for. The async awaitables throw the same text.
    [[nodiscard]] static std::string timeout_message(const char* what, const blocker_type& b,
                                                     std::chrono::nanoseconds timeout) {
        std::string why;
        switch (b.reason) {
            case ring_wait::consumer: why = "the consumers still hold its previous item (all slots in flight)"; break;
            case ring_wait::producer: why = "no producer published it"; break;
            case ring_wait::device: why = "device work on the slot did not complete"; break;
            case ring_wait::none: why = "it became ready only at the deadline"; break;
        }
        return std::string("unibuf: ring: ") + what + " of sequence " + std::to_string(b.sequence) + " (slot " +
               std::to_string(b.slot) + " of " + std::to_string(N) + ") timed out after " +
               detail::ms_text(timeout) + " ms: " + why;
    }

private:
    using phase = detail::ring_phase;
    using clock = std::chrono::steady_clock;

    struct slot_state {
        std::uint64_t seq = 0;  // the sequence this slot holds or is reserved for next
        phase ph = phase::free;
        bool abandoned = false;
        fence_type fence{};     // free: device work still reading; published: device work writing
    };

    template <class M, std::size_t... I>
    static std::array<slot_type, S> make_slots(M& make, std::index_sequence<I...>) {
        return {{make(I)...}};
    }

    static void check_index(const char* what, std::size_t i) {
        if (i >= S)
            throw_error(errc::out_of_range, std::string("unibuf: ring: ") + what + "(" + std::to_string(i) +
                                                ") of a ring of " + std::to_string(N) + " slots");
    }

    // A slot from `make` must hold memory on this ring's backend: the ring waits on its fences.
    void check_slot(std::size_t i) const {
        const slot_type& b = slots_[i];
        if constexpr (requires { { b.empty() } -> std::convertible_to<bool>; }) {
            if (b.empty())
                throw_error(errc::invalid_argument, "unibuf: ring: slot " + std::to_string(i) + " of " +
                                                        std::to_string(N) +
                                                        " is an empty (moved-from) buffer; each slot needs memory");
        }
        if constexpr (requires { { &b.backend() } -> std::convertible_to<const backend_type*>; }) {
            if (&b.backend() != backend_)
                throw_error(errc::invalid_argument, "unibuf: ring: slot " + std::to_string(i) + " of " +
                                                        std::to_string(N) +
                                                        " lives on another backend object than the ring's; the ring "
                                                        "waits on its own backend's fences");
        }
    }

    // Under the lock. What blocks the next claim (none: it may proceed).
    blocker_type claim_state() const {
        const std::uint64_t s = next_claim_;
        const std::size_t i = static_cast<std::size_t>(s % S);
        const slot_state& st = state_[i];
        if (st.seq != s || st.ph != phase::free) return {ring_wait::consumer, fence_type{}, s, i};
        if (!backend_->is_complete(st.fence)) return {ring_wait::device, st.fence, s, i};
        const fence_type own = detail::buffer_last_use<Buf, fence_type>(slots_[i]);
        if (!backend_->is_complete(own)) return {ring_wait::device, own, s, i};
        return {ring_wait::none, fence_type{}, s, i};
    }

    blocker_type claim_step(std::optional<write_slot>& out, bool& notify) {
        (void)notify;
        blocker_type b = claim_state();
        if (b) return b;
        slot_state& st = state_[b.slot];
        st.ph = phase::writing;
        st.fence = fence_type{};
        ++next_claim_;
        out = write_slot(this, b.sequence);
        return b;
    }

    // Under the lock. What blocks the next read, looking past abandoned items (never changes anything).
    blocker_type read_state() const {
        for (std::uint64_t s = next_read_;; ++s) {
            const std::size_t i = static_cast<std::size_t>(s % S);
            const slot_state& st = state_[i];
            if (st.seq != s || st.ph != phase::published) return {ring_wait::producer, fence_type{}, s, i};
            if (st.abandoned) continue;
            if (!backend_->is_complete(st.fence)) return {ring_wait::device, st.fence, s, i};
            return {ring_wait::none, fence_type{}, s, i};
        }
    }

    // Under the lock. Recycles abandoned items at the read position; true when it freed a slot.
    bool skip_abandoned() {
        bool freed = false;
        for (;;) {
            slot_state& st = state_[next_read_ % S];
            if (st.seq != next_read_ || st.ph != phase::published || !st.abandoned) return freed;
            st.abandoned = false;
            st.ph = phase::free;
            st.seq = next_read_ + S;
            st.fence = fence_type{};
            ++next_read_;
            freed = true;
        }
    }

    blocker_type read_step(std::optional<read_slot>& out, bool& notify) {
        notify = skip_abandoned();
        blocker_type b = read_state();
        if (b) return b;
        slot_state& st = state_[b.slot];
        st.ph = phase::reading;
        st.fence = fence_type{};
        ++next_read_;
        out = read_slot(this, b.sequence);
        return b;
    }

    template <class Lease>
    std::optional<Lease> step_or_wait(blocker_type (ring::*step)(std::optional<Lease>&, bool&), ring_waiter& w,
                                      blocker_type& why) {
        std::optional<Lease> out;
        std::lock_guard lk(m_);
        bool notify = false;
        why = (this->*step)(out, notify);
        if (notify) {
            cv_.notify_all();
            wake_waiters_locked();
        }
        if (why && why.reason != ring_wait::device) waiters_.push_back(&w);
        return out;
    }

    // Under the lock: wakes (and forgets) every registered waiter; they retry.
    void wake_waiters_locked() noexcept {
        if (waiters_.empty()) return;
        std::vector<ring_waiter*> woken;
        woken.swap(waiters_);
        for (ring_waiter* w : woken) w->wake();
    }

    // Repeats `step` until it succeeds or `timeout` passes: waits on the condition variable for
    // the other side, or on the backend fence (outside the lock) for the device.
    template <class Lease>
    std::optional<Lease> wait_loop(blocker_type (ring::*step)(std::optional<Lease>&, bool&),
                                   std::chrono::nanoseconds timeout, blocker_type& last) {
        constexpr auto max_wait = std::chrono::hours(24 * 365);
        if (timeout > max_wait) timeout = max_wait;
        const bool may_wait = timeout.count() > 0;
        const clock::time_point deadline = may_wait ? clock::now() + timeout : clock::time_point{};
        std::optional<Lease> out;
        std::unique_lock lk(m_);
        for (;;) {
            bool notify = false;
            last = (this->*step)(out, notify);
            if (notify) {
                cv_.notify_all();
                wake_waiters_locked();
            }
            if (!last) return out;
            if (!may_wait) return std::nullopt;
            const clock::time_point now = clock::now();
            if (now >= deadline) return std::nullopt;
            if (last.reason == ring_wait::device) {
                const fence_type f = last.fence;
                lk.unlock();
                (void)backend_->wait(f, deadline - now);
                lk.lock();
            } else {
                (void)cv_.wait_until(lk, deadline);
            }
        }
    }

    void finish_write(std::uint64_t s, const fence_type& f, bool abandoned) {
        {
            std::lock_guard lk(m_);
            slot_state& st = state_[s % S];
            UNIBUF_ASSERT(st.seq == s && st.ph == phase::writing, "ring: publish of a slot that is not claimed");
            st.ph = phase::published;
            st.abandoned = abandoned;
            st.fence = abandoned ? fence_type{} : f;
            wake_waiters_locked();
        }
        cv_.notify_all();
    }

    void finish_read(std::uint64_t s, const fence_type& f) {
        {
            std::lock_guard lk(m_);
            slot_state& st = state_[s % S];
            UNIBUF_ASSERT(st.seq == s && st.ph == phase::reading, "ring: release of a slot that is not read");
            st.ph = phase::free;
            st.seq = s + S;
            st.fence = f;
            wake_waiters_locked();
        }
        cv_.notify_all();
    }


    backend_type* backend_;
    std::array<slot_type, S> slots_;  // destroyed last-but-state: each waits for its own last device use
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::array<slot_state, S> state_{};
    std::atomic<std::chrono::nanoseconds::rep> wait_timeout_{default_wait_timeout.count()};
    std::uint64_t next_claim_ = 0;
    std::uint64_t next_read_ = 0;
    std::vector<ring_waiter*> waiters_;  // woken (and cleared) at the next state change
};

} // namespace unibuf
