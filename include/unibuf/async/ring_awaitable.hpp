/// @file ring_awaitable.hpp
/// @brief `co_await claim_async(ring, notifier, scheduler)` and `co_await read_async(...)`: the
/// ring's claim and read as coroutine waits. Nothing spins and no thread blocks: a claim blocked
/// by the consumers (all slots in flight) or a read blocked by the producers registers with the
/// ring (`ring::claim_or_wait`, a `ring_waiter`) and is resumed on `scheduler` at the ring's next
/// state change; one blocked by device work awaits the fence through `when_complete(notifier, ...)`.
///
/// They are free functions, not ring members, because the ring (transfer/) sits below the async
/// layer: the ring only provides the hook, the awaitables live here.
///
/// Bounded and cancellable as every awaitable (`wait_options`): running out throws `errc::timeout`
/// naming the claim or read, its sequence and slot, the bound and what it waited for; a stop
/// request throws the cancellation error.
///
/// @code
/// unibuf::ring<unibuf::shared_buffer<float, unibuf::host_backend>, 3> r(dev, 1024);
/// unibuf::task<void> produce(auto& r, unibuf::thread_pool& pool) {
///     auto w = co_await unibuf::claim_async(r, r.backend(), pool);   // write_slot
///     w->fill(1.0f);
///     w.publish();
/// }
/// @endcode
#pragma once

#include "../core/error.hpp"
#include "../core/timeout.hpp"
#include "../transfer/ring.hpp"
#include "detail/wait_state.hpp"
#include "scheduler.hpp"
#include "task.hpp"
#include "wait_options.hpp"
#include "when_complete.hpp"

#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>

namespace unibuf {

namespace detail {

/// @brief What one attempt of a ring wait ended with.
template <class Lease, class Blocker>
struct ring_attempt {
    std::optional<Lease> lease;  ///< the slot, when the attempt got it
    Blocker why{};               ///< else what blocked it (device: the fence to await)
    wait_outcome outcome = wait_outcome::woken;
};

/// @brief One attempt: takes the slot, or suspends until the ring changes (or the deadline, or a
/// stop request), or reports the device fence that blocks it.
template <class Ring, bool Write, Scheduler S>
class ring_attempt_awaiter final : public ring_waiter {
public:
    using lease_type = typename Ring::template lease<Write>;
    using result_type = ring_attempt<lease_type, typename Ring::blocker_type>;

    ring_attempt_awaiter(Ring& r, S& sched, std::chrono::steady_clock::time_point deadline, std::stop_token stop)
        : ring_(&r), sched_(&sched), deadline_(deadline), stop_token_(std::move(stop)) {}
    ring_attempt_awaiter(const ring_attempt_awaiter&) = delete;
    ring_attempt_awaiter& operator=(const ring_attempt_awaiter&) = delete;
    ~ring_attempt_awaiter() = default;

    [[nodiscard]] bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        if (stop_token_.stop_requested()) {
            result_.outcome = wait_outcome::cancelled;
            return false;
        }
        state_ = make_wait_state(h, *sched_);
        if constexpr (Write) {
            result_.lease = ring_->claim_or_wait(*this, result_.why);
        } else {
            result_.lease = ring_->read_or_wait(*this, result_.why);
        }
        if (result_.lease || result_.why.reason == ring_wait::device) {
            state_.reset();
            return false;  // not registered: continue at once
        }
        registered_ = true;
        {
            // Ends before the hand-off below (see when_complete's awaiter).
            std::shared_ptr<wait_state> st = state_;
            timer_ = sched_->timers().call_at(deadline_, [st] { (void)st->decide(wait_outcome::timed_out); });
        }
        if (stop_token_.stop_possible()) stop_.emplace(stop_token_, stop_wait{state_});
        if (!state_->armed()) sched_->post(h);  // decided while arming: still resume on the scheduler
        return true;
    }
    result_type await_resume() {
        if (registered_) {
            stop_.reset();
            (void)sched_->timers().cancel(timer_);
            // After this the ring never calls wake() on this awaiter (its frame may go).
            (void)ring_->cancel_wait(*this);
            result_.outcome = state_->outcome.load(std::memory_order_acquire);
        }
        return std::move(result_);
    }

    /// @brief The ring changed (called under its lock): resume on the scheduler to retry.
    void wake() noexcept override { (void)state_->decide(wait_outcome::woken); }

private:
    Ring* ring_;
    S* sched_;
    std::chrono::steady_clock::time_point deadline_;
    std::stop_token stop_token_;
    std::shared_ptr<wait_state> state_;
    result_type result_;
    bool registered_ = false;
    std::uint64_t timer_ = 0;
    std::optional<std::stop_callback<stop_wait>> stop_;
};

template <class Ring, class Blocker>
[[nodiscard]] std::string ring_wait_message(const char* what, const Blocker& b, std::chrono::nanoseconds timeout) {
    return Ring::timeout_message(what, b, timeout);
}

template <bool Write, class Ring, class N, class S>
task<typename Ring::template lease<Write>> ring_wait_async(Ring& r, N& notifier, S& sched, wait_options opt) {
    const char* what = Write ? "claim_async" : "read_async";
    const auto deadline = deadline_after(opt.timeout);
    for (;;) {
        ring_attempt_awaiter<Ring, Write, S> attempt(r, sched, deadline, opt.stop);
        auto res = co_await attempt;
        if (res.lease) co_return std::move(*res.lease);
        if (res.outcome == wait_outcome::timed_out) throw_error(errc::timeout, ring_wait_message<Ring>(what, res.why, opt.timeout));
        if (res.outcome == wait_outcome::cancelled)
            throw_cancelled(std::string("unibuf: ring: ") + what + " of sequence " + std::to_string(res.why.sequence) +
                            " was cancelled (stop requested)");
        if (res.why.reason == ring_wait::device) {
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline) throw_error(errc::timeout, ring_wait_message<Ring>(what, res.why, opt.timeout));
            const wait_options left{std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now), opt.stop};
            bool timed_out = false;
            try {
                co_await when_complete(notifier, res.why.fence, sched, left);
            } catch (const std::system_error& e) {
                if (e.code() != make_error_code(errc::timeout)) throw;
                timed_out = true;
            }
            if (timed_out) throw_error(errc::timeout, ring_wait_message<Ring>(what, res.why, opt.timeout));
        }
        // woken (or the device fence completed): try again
    }
}

} // namespace detail

/// @brief `co_await claim_async(r, notifier, sched)` yields the ring's next `write_slot` (see the
/// file comment). `notifier` signals the ring backend's fences (the host backend itself, a
/// `vulkan_fence_waiter`, a `gl_context_loop`).
/// @throws std::system_error timeout (names the claim, sequence, slot, bound, reason), the
///         cancellation error, a device error
template <class Ring, FenceNotifier N, Scheduler S>
    requires std::same_as<typename N::fence, typename Ring::fence_type>
[[nodiscard]] task<typename Ring::write_slot> claim_async(Ring& r, N& notifier, S& sched, wait_options opt = {}) {
    return detail::ring_wait_async<true>(r, notifier, sched, std::move(opt));
}

/// @brief `co_await read_async(r, notifier, sched)` yields the ring's next published `read_slot`
/// in sequence order (see the file comment).
/// @throws std::system_error timeout (names the read, sequence, slot, bound, reason), the
///         cancellation error, a device error
template <class Ring, FenceNotifier N, Scheduler S>
    requires std::same_as<typename N::fence, typename Ring::fence_type>
[[nodiscard]] task<typename Ring::read_slot> read_async(Ring& r, N& notifier, S& sched, wait_options opt = {}) {
    return detail::ring_wait_async<false>(r, notifier, sched, std::move(opt));
}

} // namespace unibuf
